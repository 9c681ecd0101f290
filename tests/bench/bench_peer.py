"""Ferry's worker against a peer, Debezium's MariaDB connector, on one binlog range (prints
figures; not a pass/fail test).

    python3 tests/bench/bench_peer.py [--changes 300000] [--only ferry,debezium]
                                      [--timeout 900] [--keep]

Builds one binlog range of row changes with bench_worker.py's ``prepare`` (the same table,
the same mix of inserts, updates and deletes in 5,000-row source transactions; ``--changes``
rows in all) in a fresh database, then reads that range into Kafka twice, one reader after
the other, each as its own process writing to its own fresh topic:

  ferry     the worker (``python -m ferry_runtime.cli``, this checkout's runtime) in ``cdc``
            mode from the range's start, exactly-once, ``format: debezium``,
            ``batchSize: 5000``, ``maxBatchDelay: 200ms`` (bench_worker.py's settings);
  debezium  Debezium's MariaDB connector (io.debezium:debezium-connector-mariadb) on Kafka
            Connect standalone (org.apache.kafka:connect-runtime), with
            connect-standalone.sh's heap (-Xms256M -Xmx2G); JSON converters without
            schemas, ``tombstones.on.delete=false``, ``decimal.handling.mode=string`` (the
            records Ferry's debezium format writes), everything else at Debezium's
            defaults (max.batch.size 2048, no exactly-once: Connect standalone has none).

Debezium is started at the range's start the way its docs allow: the connector is created
STOPPED (``initial_state``), its offsets are set to ``{file, pos, gtids}`` through Connect's
offsets REST API (PATCH /connectors/NAME/offsets; the MariaDB connector needs the GTID
position, taken with ``BINLOG_GTID_POS(file, pos)``), then it is resumed; ``snapshot.mode:
recovery`` builds its schema history (a file) from the tables' current definitions without
reading any row.

The jars come from Maven Central: a generated pom and ``mvn dependency:copy-dependencies``
under ~/.cache/ferry-bench/ (``--debezium-version``, ``--connect-version``; downloaded once).
Needs JDK 17+ and ``mvn`` on PATH, and the services of tests/infra/up (reads
~/.local/state/ferry-testenv/env).

For each reader the script consumes its topic (read_committed) from the parent process
until every change of the range has arrived, checks the count of each op (c, u, d), and
samples the reader's process from /proc:

  start-up  from the process's launch until its first record arrived;
  rows/s    the range's rows over the time from the first record to the last;
  CPU-s     the reader process's user + system time (all threads, and its children), over
            the same stretch, and in total from launch to the last record;
  peak RSS  VmHWM of the reader process;
  the range's second half: rows/s and rows per CPU-second from the moment half the range
            had arrived (the JVM's JIT compiler has done most of its work by then);
  CPU by thread: the reader's CPU-s from launch by thread name (digits folded to N; the
            kernel keeps 15 characters): the JIT, GC, binlog, producer threads apart.

Rows per CPU-second is the figure that survives a busy machine (this one has 2 shared
cores); the load average is printed before and after each reader. The consumer's own CPU
(in this process) is not counted for either side. Run the two orders (``--only
debezium,ferry``) to see what the load's drift does. The JIT's cost is roughly fixed, so
Debezium's figures improve with the range's length (``--changes 1000000``). Below ~100k
changes the figures say little: both readers decode ahead into their queues before their
first record is written, and the JVM's heap has not grown yet.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_worker, run as a script
import bench_worker  # the same range: its prepare(), admin() and services

REPO = Path(__file__).resolve().parents[2]
CACHE = Path.home() / ".cache" / "ferry-bench"
HOST, PORT, PASSWORD = bench_worker.HOST, bench_worker.PORT, bench_worker.PASSWORD
BOOTSTRAP = bench_worker.BOOTSTRAP
TICK = os.sysconf("SC_CLK_TCK")
# connect-standalone.sh's KAFKA_HEAP_OPTS and kafka-run-class.sh's KAFKA_JVM_PERFORMANCE_OPTS.
JVM_OPTIONS = [
    "-Xms256M", "-Xmx2G", "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
]  # fmt: skip
POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.ferry.bench</groupId>
  <artifactId>debezium-peer</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>connect-runtime</artifactId>
      <version>{connect}</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>connect-json</artifactId>
      <version>{connect}</version></dependency>
    <dependency><groupId>io.debezium</groupId><artifactId>debezium-connector-mariadb</artifactId>
      <version>{debezium}</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-simple</artifactId>
      <version>1.7.36</version></dependency>
  </dependencies>
</project>
"""


# ---------------------------------------------------------------- the range


def start_gtids(plan: dict[str, Any]) -> str:
    """The GTID position at the range's start (what Debezium's MariaDB offsets need)."""
    conn = bench_worker.admin()
    cur = conn.cursor()
    cur.execute("SELECT BINLOG_GTID_POS(%s, %s)", (plan["start"]["file"], plan["start"]["pos"]))
    (gtids,) = cur.fetchone()
    conn.close()
    if not gtids:
        raise SystemExit(f"no GTID position for {plan['start']} (is the binlog still there?)")
    return str(gtids)


def expected_ops(changes: int) -> Counter[str]:
    """The ops prepare() writes for ``changes`` (its own arithmetic)."""
    inserts = changes * 10 // 17
    return Counter({"c": inserts, "u": inserts // 2, "d": inserts // 5})


# ---------------------------------------------------------------- the readers


def classpath(debezium: str, connect: str) -> str:
    """Connect + the connector's jars, fetched once with mvn into ~/.cache/ferry-bench/."""
    home = CACHE / f"debezium-{debezium}-connect-{connect}"
    lib = home / "lib"
    if not (home / "done").exists():
        home.mkdir(parents=True, exist_ok=True)
        (home / "pom.xml").write_text(POM.format(debezium=debezium, connect=connect))
        if lib.exists():
            shutil.rmtree(lib)
        print(f"fetching Debezium {debezium} and Connect {connect} into {home}", flush=True)
        subprocess.run(
            ["mvn", "-q", "-B", f"-Dmaven.repo.local={CACHE / 'm2'}",
             "dependency:copy-dependencies", f"-DoutputDirectory={lib}"],
            cwd=home, check=True,
        )  # fmt: skip
        (home / "done").write_text("")
    return ":".join(str(jar) for jar in sorted(lib.glob("*.jar")))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RestError(Exception):
    """Connect's REST API refused a request."""


def rest(method: str, url: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read().decode()
    except urllib.error.HTTPError as error:
        raise RestError(f"{method} {url}: {error.code} {error.read().decode()[:2000]}") from None
    return json.loads(text) if text else None


class Reader:
    """One side: starts its process (``launch``), then ``started`` once it runs."""

    name = ""
    topic = ""
    other_topics: tuple[str, ...] = ()  # the reader's own (Ferry's checkpoint topic)

    def launch(self, log: Any) -> subprocess.Popen[bytes]:
        raise NotImplementedError

    def started(self, process: subprocess.Popen[bytes]) -> None:
        """Called right after launch (Debezium: create, position and resume the connector)."""

    def check(self) -> None:
        """Raise SystemExit if the reader has failed without its process ending."""

    def details(self) -> dict[str, Any]:
        return {}


class Ferry(Reader):
    def __init__(self, plan: dict[str, Any], work: Path) -> None:
        tag = uuid.uuid4().hex[:8]
        self.name = f"ferry-{tag}"
        self.topic = f"{self.name}.{plan['database']}.t"
        self.other_topics = (f"{self.name}.offsets",)
        config = {
            "task": {"name": self.name, "namespace": "bench"},
            "source": {"host": HOST, "port": PORT, "user": "ferry", "passwordEnv": "BENCH_PW",
                       "serverId": int(time.time()) % 100000 + 400000},
            "include": [f"{plan['database']}.*"],
            "sink": {"kafka": {"bootstrapServers": BOOTSTRAP, "format": "debezium",
                               "topic": f"{self.name}.{{database}}.{{table}}",
                               "offsetsTopic": f"{self.name}.offsets"}},
            "mode": "cdc",
            "startPosition": plan["start"],
            "delivery": "exactly-once",
            "performance": {"batchSize": 5000, "maxBatchDelay": "200ms"},
            "reporting": {"port": 0},
        }  # fmt: skip
        self.config = work / f"{self.name}.json"  # JSON is YAML
        self.config.write_text(json.dumps(config, indent=1))

    def launch(self, log: Any) -> subprocess.Popen[bytes]:
        path = os.pathsep.join([str(REPO / "runtime"), str(REPO / "operator")])
        env = {**os.environ, "BENCH_PW": PASSWORD, "PYTHONPATH": path}
        command = [sys.executable, "-m", "ferry_runtime.cli", "--config", str(self.config),
                   "--no-watch"]  # fmt: skip
        return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)


class Debezium(Reader):
    def __init__(self, plan: dict[str, Any], work: Path, jars: str, version: str) -> None:
        tag = uuid.uuid4().hex[:8]
        self.name = f"dbz-{tag}"
        self.topic = f"{self.name}.{plan['database']}.t"
        self.jars, self.version = jars, version
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.properties = work / f"{self.name}.properties"
        self.properties.write_text(
            "\n".join(
                [
                    f"bootstrap.servers={BOOTSTRAP}",
                    "key.converter=org.apache.kafka.connect.json.JsonConverter",
                    "value.converter=org.apache.kafka.connect.json.JsonConverter",
                    "key.converter.schemas.enable=false",
                    "value.converter.schemas.enable=false",
                    f"offset.storage.file.filename={work / (self.name + '.offsets')}",
                    "offset.flush.interval.ms=10000",
                    f"listeners=http://127.0.0.1:{self.port}",
                    # What Connect's own start-up warning advises when every plugin has a
                    # ServiceLoader manifest (they do): hybrid_warn's class scan took ~25 s.
                    "plugin.discovery=service_load",
                    "",
                ]
            )
        )
        self.connector = {
            "connector.class": "io.debezium.connector.mariadb.MariaDbConnector",
            "tasks.max": "1",
            "database.hostname": HOST,
            "database.port": str(PORT),
            "database.user": "ferry",
            "database.password": PASSWORD,
            "database.server.id": str(int(time.time()) % 100000 + 500000),
            "database.ssl.mode": "disable",
            "topic.prefix": self.name,
            "database.include.list": plan["database"],
            "table.include.list": f"{plan['database']}.t",
            "snapshot.mode": "recovery",
            "snapshot.locking.mode": "none",
            "schema.history.internal": "io.debezium.storage.file.history.FileSchemaHistory",
            "schema.history.internal.file.filename": str(work / f"{self.name}.history"),
            # Else the recovery reads every table's definition on the server, and fails when
            # another test drops its table meanwhile (seen on this shared server).
            "schema.history.internal.store.only.captured.tables.ddl": "true",
            "include.schema.changes": "false",
            "tombstones.on.delete": "false",
            "decimal.handling.mode": "string",
        }
        self.offset = {
            "file": plan["start"]["file"],
            "pos": plan["start"]["pos"],
            "gtids": start_gtids(plan),
        }
        self.final_offsets: Any = None

    def launch(self, log: Any) -> subprocess.Popen[bytes]:
        command = [
            "java", *JVM_OPTIONS,
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
            "-Dorg.slf4j.simpleLogger.showDateTime=true",
            "-cp", self.jars, "org.apache.kafka.connect.cli.ConnectStandalone",
            str(self.properties),
        ]  # fmt: skip
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)

    def started(self, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + 300
        while True:  # until the REST API answers (404 while its resources are registered)
            if process.poll() is not None:
                raise SystemExit(f"Connect exited ({process.returncode}) before its REST API")
            try:
                rest("GET", self.url + "/connectors")
                break
            except (RestError, urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    raise SystemExit("Connect's REST API did not come up in 300 s") from None
                time.sleep(0.1)
        body = {"name": self.name, "config": self.connector, "initial_state": "STOPPED"}
        rest("POST", self.url + "/connectors", body)
        offsets = [{"partition": {"server": self.name}, "offset": self.offset}]
        rest("PATCH", f"{self.url}/connectors/{self.name}/offsets", {"offsets": offsets})
        rest("PUT", f"{self.url}/connectors/{self.name}/resume")

    def check(self) -> None:
        status = rest("GET", f"{self.url}/connectors/{self.name}/status")
        for part in [status["connector"], *status["tasks"]]:
            if part["state"] == "FAILED":
                lines = part.get("trace", "").splitlines()
                causes = [line for line in lines if line.startswith("Caused by")]
                raise SystemExit(f"{self.name} failed: {' / '.join(lines[:1] + causes[-1:])}")

    def before_stop(self) -> None:
        """Connect's view of the connector's offsets once the range has arrived."""
        try:
            self.final_offsets = rest("GET", f"{self.url}/connectors/{self.name}/offsets")
        except (RestError, urllib.error.URLError):
            self.final_offsets = None

    def details(self) -> dict[str, Any]:
        return {"start_offset": self.offset, "final_offsets": self.final_offsets}


# ---------------------------------------------------------------- measuring a reader


def cpu_seconds(pid: int) -> float:
    """utime + stime + cutime + cstime of a process, seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / TICK


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of a process's live threads by name (digits folded: "GC Thread#0" and
    "GC Thread#1" are one line), the largest first."""
    by_name: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        name = re.sub(r"\d+", "N", stat[stat.index("(") + 1 : stat.rindex(")")])
        fields = stat.rsplit(")", 1)[1].split()
        by_name[name] = by_name.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / TICK
    return dict(sorted(by_name.items(), key=lambda item: -item[1]))


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def create_topic(topic: str) -> None:
    """Both readers' topics exist before they start (one partition each, like the broker's
    default): neither start-up includes creating its topic, and the consumer needs no
    metadata refresh to see it."""
    from confluent_kafka.admin import AdminClient
    from confluent_kafka.cimpl import NewTopic

    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)


def delete_topics(topics: list[str]) -> None:
    """The readers' topics go when measured (1M changes are ~0.6 GB a topic)."""
    from confluent_kafka.admin import AdminClient

    if not topics:
        return
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    for topic, future in admin.delete_topics(topics).items():
        try:
            future.result(30)
        except Exception as error:  # e.g. never created: the reader failed first
            print(f"  (topic {topic} not deleted: {error})")


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def measure(reader: Reader, plan: dict[str, Any], work: Path, timeout: float) -> dict[str, Any]:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    rows, wanted = plan["rows"], expected_ops(plan["changes"])
    create_topic(reader.topic)

    def consumer(isolation: str) -> Any:
        made = Consumer(
            {
                "bootstrap.servers": BOOTSTRAP,
                "group.id": f"bench-peer-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "isolation.level": isolation,
                "fetch.wait.max.ms": 50,
            }
        )
        made.assign([TopicPartition(reader.topic, 0, OFFSET_BEGINNING)])
        return made

    # Completion: every change committed (Ferry's exactly-once transactions). Start-up: the
    # first record written, committed or not (one transaction holds up to 5,000 rows).
    committed, written = consumer("read_committed"), consumer("read_uncommitted")
    ops: Counter[str] = Counter()
    labels = {f'"op":"{op}"'.encode(): op for op in "cud"}
    count, first, cpu_first, last_value = 0, 0.0, 0.0, b""
    half, cpu_half, rows_half = 0.0, 0.0, 0
    load_before = load()
    log_path = work / f"{reader.name}.log"
    with log_path.open("wb") as log:
        began = time.monotonic()
        process = reader.launch(log)
        checked = began
        try:
            reader.started(process)
            while count < rows:
                if process.poll() is not None:
                    tail = log_path.read_text(errors="replace")[-3000:]
                    raise SystemExit(f"{reader.name} exited ({process.returncode}):\n{tail}")
                if time.monotonic() - checked > 2:
                    reader.check()
                    checked = time.monotonic()
                if time.monotonic() - began > timeout:
                    raise SystemExit(f"{reader.name}: {count} of {rows} rows after {timeout}s")
                if not first:
                    if any(not m.error() for m in written.consume(1, 0.05)):
                        first, cpu_first = time.monotonic(), cpu_seconds(process.pid)
                        written.close()
                    else:
                        continue
                for message in committed.consume(10_000, 0.1):
                    if message.error():
                        continue
                    count += 1
                    last_value = message.value()
                    for label, op in labels.items():
                        if label in last_value:
                            ops[op] += 1
                            break
                if not half and count >= rows // 2:  # the JVM's JIT has warmed up by then
                    half, cpu_half, rows_half = time.monotonic(), cpu_seconds(process.pid), count
            done = time.monotonic()
            cpu_done, peak = cpu_seconds(process.pid), peak_rss_mib(process.pid)
            threads = thread_cpu(process.pid)
            if isinstance(reader, Debezium):
                reader.before_stop()
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    time.sleep(1)  # anything written after the range (there should be nothing)
    extra = sum(1 for m in committed.consume(10_000, 2) if not m.error())
    committed.close()
    if ops != wanted or extra:
        print(f"  WARNING {reader.name}: ops {dict(ops)}, expected {dict(wanted)}, "
              f"{extra} records more after the range")  # fmt: skip
    return {
        "reader": reader.name,
        "rows": count,
        "ops": dict(ops),
        "extra": extra,
        "startup": first - began,
        "seconds": done - first,
        "total_seconds": done - began,
        "cpu_stream": cpu_done - cpu_first,
        "cpu_total": cpu_done,
        "second_half": {
            "rows": count - rows_half,
            "seconds": done - half,
            "cpu": cpu_done - cpu_half,
        },
        "peak_rss_mib": peak,
        "threads": threads,
        "load_before": load_before,
        "load_after": load(),
        "last_record": last_value[:300].decode(errors="replace"),
        **reader.details(),
    }


def report(side: str, r: dict[str, Any]) -> None:
    rate, cpu_rate = r["rows"] / r["seconds"], r["rows"] / r["cpu_stream"]
    r["rate"], r["cpu_rate"] = rate, cpu_rate
    print(
        f"{side:>9}: {r['rows']} rows, start-up {r['startup']:5.2f}s; then "
        f"{r['seconds']:6.2f}s = {rate:>7,.0f} rows/s; {r['cpu_stream']:6.2f} CPU-s = "
        f"{cpu_rate:>7,.0f} rows/CPU-s ({r['cpu_stream'] / r['seconds']:.2f} of a core); "
        f"from launch {r['total_seconds']:.2f}s, {r['cpu_total']:.2f} CPU-s "
        f"= {r['rows'] / r['cpu_total']:,.0f} rows/CPU-s; peak RSS {r['peak_rss_mib']:.0f} MiB; "
        f"load average {r['load_before']} → {r['load_after']}",
        flush=True,
    )
    half = r["second_half"]
    print(
        f"{'':>9}  the range's second half: {half['rows'] / half['seconds']:,.0f} rows/s, "
        f"{half['rows'] / max(half['cpu'], 0.01):,.0f} rows/CPU-s",
        flush=True,
    )
    top = list(r["threads"].items())[:8]
    print(f"{'':>9}  CPU-s by thread (from launch): "
          + ", ".join(f"{name} {cpu:.2f}" for name, cpu in top), flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0].replace("\n", " "),
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--changes", type=int, default=300_000,
        help="row changes in the binlog range (inserts, updates and deletes; default 300000)",
    )  # fmt: skip
    parser.add_argument(
        "--only", default="ferry,debezium",
        help="the readers to run, in this order (default: ferry,debezium)",
    )  # fmt: skip
    parser.add_argument("--debezium-version", default="3.5.0.Final")
    parser.add_argument("--connect-version", default="4.1.1")
    parser.add_argument("--timeout", type=float, default=900, help="per reader, seconds")
    parser.add_argument(
        "--keep", action="store_true",
        help="keep the work dir (logs, configs) and the readers' topics",
    )  # fmt: skip
    args = parser.parse_args()
    sides = args.only.split(",")
    unknown = set(sides) - {"ferry", "debezium"}
    if unknown:
        parser.error(f"unknown readers: {', '.join(sorted(unknown))}")
    jars = classpath(args.debezium_version, args.connect_version) if "debezium" in sides else ""
    # SIGTERM (timeout, kill): still stop the reader and drop the database (the finally's).
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
    database = f"bench_{uuid.uuid4().hex[:8]}"
    print(f"database {database}; load average before seeding: {load()}", flush=True)
    plan = {**bench_worker.prepare(database, args.changes), "database": database}
    plan["changes"] = args.changes
    work = Path(tempfile.mkdtemp(prefix="bench-peer-"))
    results: dict[str, dict[str, Any]] = {}
    topics: list[str] = []
    makers: dict[str, Callable[[], Reader]] = {
        "ferry": lambda: Ferry(plan, work),
        "debezium": lambda: Debezium(plan, work, jars, args.debezium_version),
    }
    try:
        for side in sides:
            reader = makers[side]()
            topics += [reader.topic, *reader.other_topics]
            results[side] = measure(reader, plan, work, args.timeout)
            report(side, results[side])
    finally:
        conn = bench_worker.admin()
        conn.cursor().execute(f"DROP DATABASE IF EXISTS `{database}`")
        conn.close()
        if args.keep:
            print(f"work dir (logs, configs): {work}; topics: {', '.join(topics)}")
        else:
            shutil.rmtree(work, ignore_errors=True)
            delete_topics(topics)
    if {"ferry", "debezium"} <= results.keys():
        f, d = results["ferry"], results["debezium"]
        print(
            f"ferry / debezium: rows/s {f['rate'] / d['rate']:.2f}x, rows/CPU-s "
            f"{f['cpu_rate'] / d['cpu_rate']:.2f}x, peak RSS "
            f"{f['peak_rss_mib'] / d['peak_rss_mib']:.3f}x (1/"
            f"{d['peak_rss_mib'] / f['peak_rss_mib']:.0f}), start-up "
            f"{f['startup']:.2f}s vs {d['startup']:.2f}s"
        )
    print(f"load average after: {load()}")
    print(json.dumps(results, indent=1, default=str), file=sys.stderr)


if __name__ == "__main__":
    main()
