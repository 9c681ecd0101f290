"""Worker throughput on one binlog of row changes (prints figures; not a pass/fail test).

    python3 tests/bench/bench_worker.py [--changes 340000] [--only decode,decode-ferry]

Builds one binlog range of inserts, updates and deletes (~10 columns, 5,000-row source
transactions) in a fresh database, then measures, each in its own process (so peak RSS and CPU
time are per phase; rows per CPU-second is the figure that survives a busy machine):
  (a) python-mysql-replication decoding alone (every row's values), rows/s
  (a') Ferry's row decoders alone (source/rows.py: every row's JSON values; the library
       still frames the stream and parses TableMap events), rows/s
  (b) the worker, binlog → Kafka acknowledged, exactly-once and at-least-once, rows/s
  (b') the worker, binlog → MySQL (``mysql-sink``: the same range applied to a copy of the
       table in a second database on the same server, checked row for row), rows/s
  (e) ``latency``: rows written at a steady ``--rate`` (5,000 rows/s: 50-row transactions
      every 10 ms) for ``--seconds`` while the worker streams them to Kafka (exactly-once,
      maxBatchDelay ``--batch-delay``); each row carries its send time, and a read_committed
      consumer takes the time each record arrives: p50/p99/max of arrival - send (the first
      second left out as warm-up). ``rows``/``seconds`` there are the rows written.
  (c) ``mariadb-binlog -v --read-from-remote-server`` on the same range (native ceiling)
  (d) the worker's snapshot (mode: snapshot) against ``mariadb-dump`` of the same table
Needs the services of tests/infra/up (reads ~/.local/state/ferry-testenv/env).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pymysql

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests.support, run as a script
from tests.support import testenv_values

CHUNK = 5000
ENV = testenv_values()
HOST, PORT = ENV.get("FERRY_MYSQL_HOST", "127.0.0.1"), int(ENV.get("FERRY_MYSQL_PORT", "13306"))
PASSWORD = ENV["FERRY_MYSQL_PASSWORD"]
BOOTSTRAP = ENV.get("FERRY_KAFKA_BOOTSTRAP", "127.0.0.1:19092")


def admin() -> Any:
    return pymysql.connect(
        host=HOST, port=PORT, user="ferry_admin", password=PASSWORD, autocommit=True
    )


def position(cur: Any) -> dict[str, Any]:
    cur.execute("SHOW MASTER STATUS")
    file, pos = cur.fetchone()[:2]
    return {"file": file, "pos": int(pos)}


def prepare(database: str, changes: int) -> dict[str, Any]:
    inserts = changes * 10 // 17
    updates, deletes = inserts // 2, inserts // 5
    conn = admin()
    cur = conn.cursor()
    cur.execute(f"CREATE DATABASE `{database}`")
    cur.execute(
        f"CREATE TABLE `{database}`.t (id int PRIMARY KEY, a int, b bigint, c varchar(40), "
        "d decimal(12,2), e double, f datetime(3), g date, h tinyint, i text)"
    )
    start = position(cur)
    began = time.monotonic()
    for low in range(1, inserts + 1, CHUNK):
        high = min(low + CHUNK - 1, inserts)
        cur.execute(
            f"INSERT INTO `{database}`.t SELECT seq, seq % 1000, seq * 7, CONCAT('name ', seq), "
            "seq / 100, seq / 3, NOW(3), CURDATE(), seq % 100, REPEAT('x', 20) "
            f"FROM `{database}`.seq_{low}_to_{high}"
        )
    for low in range(1, updates * 2 + 1, CHUNK * 2):
        cur.execute(
            f"UPDATE `{database}`.t SET a = a + 1, c = 'updated' "
            f"WHERE id BETWEEN {low} AND {low + CHUNK * 2 - 1} AND id % 2 = 0"
        )
    for low in range(1, deletes * 5 + 1, CHUNK * 5):
        cur.execute(
            f"DELETE FROM `{database}`.t WHERE id BETWEEN {low} AND {low + CHUNK * 5 - 1} "
            "AND id % 5 = 1"
        )
    end = position(cur)
    conn.close()
    total = inserts + updates + deletes
    print(f"prepared {total} row changes in {time.monotonic() - began:.1f}s: {start} → {end}")
    return {"start": start, "end": end, "rows": total, "table_rows": inserts - deletes}


def _reached(pos: dict[str, Any], end: dict[str, Any]) -> bool:
    return (pos.get("file", ""), pos.get("pos", 0)) >= (end["file"], end["pos"])


# ---------------------------------------------------------------- phases (run in a child)


def _row_events(plan: dict[str, Any], server_id: int) -> Any:
    """The library's stream of the bench range's row events (row images not yet decoded)."""
    from pymysqlreplication import BinLogStreamReader
    from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent

    return BinLogStreamReader(
        connection_settings={"host": HOST, "port": PORT, "user": "ferry", "password": PASSWORD},
        server_id=server_id,
        log_file=plan["start"]["file"],
        log_pos=plan["start"]["pos"],
        resume_stream=True,
        is_mariadb=False,
        blocking=True,
        only_events=[WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent],
        only_schemas=[plan["database"]],
    )


def phase_decode(plan: dict[str, Any]) -> dict[str, Any]:
    stream = _row_events(plan, int(time.time()) % 100000 + 200000)
    rows = 0
    began = time.monotonic()
    for event in stream:
        rows += len(event.rows)
        if rows >= plan["rows"]:
            break
    elapsed = time.monotonic() - began
    stream.close()
    return {"rows": rows, "seconds": elapsed}


def phase_decode_ferry(plan: dict[str, Any]) -> dict[str, Any]:
    from ferry_runtime import types
    from ferry_runtime.source import rows as row_decoders

    stream = _row_events(plan, int(time.time()) % 100000 + 250000)
    decoders: dict[int, Any] = {}
    rows = 0
    began = time.monotonic()
    for event in stream:
        decoder = decoders.get(event.table_id)
        if decoder is None:  # the bench table has no JSON column
            kinds = [types.from_binlog_column(c) for c in event.columns]
            decoder = decoders[event.table_id] = row_decoders.table_decoder(
                event.columns, kinds, event.table
            )
            assert decoder is not None, "the bench table must take the fast path"
        rows += len(decoder.decode(event))
        if rows >= plan["rows"]:
            break
    elapsed = time.monotonic() - began
    stream.close()
    return {"rows": rows, "seconds": elapsed}


# The tasks this phase's process configured: their topics are deleted after the phase.
_TASKS: list[str] = []


def drop_topics() -> None:
    """Delete the Kafka topics of the tasks this phase ran: a 1M-row snapshot leaves ~400 MB,
    and a broker holding tens of GB of old bench topics measured slower and less steadily."""
    if not _TASKS:
        return
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    names = set(_TASKS)
    topics = [t for t in admin.list_topics(timeout=30).topics if t.split(".")[0] in names]
    for future in admin.delete_topics(topics, request_timeout=60).values() if topics else ():
        future.result()


def _worker_config(plan: dict[str, Any], **overrides: Any) -> Any:
    from ferry_runtime import config

    name = f"bench-{uuid.uuid4().hex[:8]}"
    _TASKS.append(name)
    data: dict[str, Any] = {
        "task": {"name": name, "namespace": "bench"},
        "source": {"host": HOST, "port": PORT, "user": "ferry", "passwordEnv": "BENCH_PW",
                   "serverId": int(time.time()) % 100000 + 300000},
        "include": [f"{plan['database']}.*"],
        "sink": {"kafka": {"bootstrapServers": BOOTSTRAP, "topic": f"{name}.{{table}}",
                           "offsetsTopic": f"{name}.offsets"}},
        "mode": "cdc",
        "startPosition": plan["start"],
        "performance": {"batchSize": 5000, "maxBatchDelay": "200ms"},
        "reporting": {"port": 0},
    }  # fmt: skip
    data.update(overrides)
    return config.parse(data)


def _run_worker(cfg: Any, done: Any) -> dict[str, Any]:
    import threading

    from ferry_runtime.status import StatusTracker
    from ferry_runtime.worker import Worker, tune_garbage_collector

    tune_garbage_collector()  # as ferry-worker does
    os.environ["BENCH_PW"] = PASSWORD
    tracker = StatusTracker()
    worker = Worker(cfg, tracker)
    thread = threading.Thread(target=worker.run, daemon=True)
    began = time.monotonic()
    thread.start()
    while not done(tracker):
        if not thread.is_alive():
            raise SystemExit(f"worker ended: {worker.failure}")
        time.sleep(0.05)
    elapsed = time.monotonic() - began
    worker.stop()
    thread.join(30)
    return {"rows": tracker.events, "seconds": elapsed}


def phase_worker(plan: dict[str, Any], delivery: str) -> dict[str, Any]:
    cfg = _worker_config(plan, delivery=delivery)
    return _run_worker(cfg, lambda t: _reached(t.position, plan["end"]))


def phase_mysql_sink(plan: dict[str, Any]) -> dict[str, Any]:
    """The bench range applied to a copy of the table in ``<database>_copy`` (same server)."""
    target = f"{plan['database']}_copy"
    conn = admin()
    cur = conn.cursor()
    cur.execute(f"CREATE DATABASE `{target}`")
    cur.execute(f"CREATE TABLE `{target}`.t LIKE `{plan['database']}`.t")
    os.environ["BENCH_ADMIN_PW"] = PASSWORD
    sink = {"mysql": {"host": HOST, "port": PORT, "user": "ferry_admin",
                      "passwordEnv": "BENCH_ADMIN_PW", "database": target}}  # fmt: skip
    try:
        cfg = _worker_config(plan, sink=sink)
        result = _run_worker(cfg, lambda t: _reached(t.position, plan["end"]))
        checksums = []
        for database in (plan["database"], target):
            cur.execute(f"CHECKSUM TABLE `{database}`.t")
            checksums.append(cur.fetchone()[1])
        assert checksums[0] == checksums[1], f"the copy differs: {checksums}"
    finally:
        cur.execute(f"DROP DATABASE IF EXISTS `{target}`")
        conn.close()
    return result


def phase_latency(plan: dict[str, Any]) -> dict[str, Any]:
    """Source commit → Kafka, at a steady rate: see the module's docstring (e)."""
    import threading

    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    from ferry_runtime.status import StatusTracker
    from ferry_runtime.worker import Worker, tune_garbage_collector

    rate, seconds, per_txn = plan["rate"], plan["seconds"], 50
    conn = admin()
    cur = conn.cursor()
    table = f"`{plan['database']}`.lat"
    cur.execute(f"CREATE TABLE {table} (id int AUTO_INCREMENT PRIMARY KEY, sent double)")
    cfg = _worker_config(
        plan,
        delivery="exactly-once",
        include=[f"{plan['database']}.lat"],
        startPosition=position(cur),
        performance={"batchSize": 5000, "maxBatchDelay": plan["batch_delay"]},
    )
    assert cfg.sink.kafka is not None
    topic = cfg.sink.kafka.topic.replace("{table}", "lat")
    admin_client = AdminClient({"bootstrap.servers": BOOTSTRAP})
    admin_client.create_topics([NewTopic(topic, 1, 1)])[topic].result()
    arrived: list[tuple[float, float]] = []  # (sent, arrived)
    stop = threading.Event()

    def consume() -> None:
        consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": f"lat-{uuid.uuid4()}",
                             "isolation.level": "read_committed", "fetch.wait.max.ms": 5,
                             "enable.auto.commit": False})  # fmt: skip
        consumer.assign([TopicPartition(topic, 0, 0)])
        while not stop.is_set():  # poll, not consume(n, timeout): that waits out the timeout
            message = consumer.poll(0.05)
            if message is not None and message.error() is None:
                now = time.time()
                arrived.append((json.loads(message.value())["data"]["sent"], now))
        consumer.close()

    tune_garbage_collector()  # as ferry-worker does
    os.environ["BENCH_PW"] = PASSWORD
    tracker = StatusTracker()
    worker = Worker(cfg, tracker)
    threads = [threading.Thread(target=worker.run, daemon=True),
               threading.Thread(target=consume, daemon=True)]  # fmt: skip
    for thread in threads:
        thread.start()
    while tracker.state != "Streaming":
        time.sleep(0.05)
    insert = f"INSERT INTO {table} (sent) VALUES " + ", ".join(["(%s)"] * per_txn)
    interval = per_txn / rate
    began = time.monotonic()
    written = 0
    while (elapsed := time.monotonic() - began) < seconds:
        cur.execute(insert, [time.time()] * per_txn)  # autocommit: one transaction
        written += per_txn
        time.sleep(max(0.0, began + written / rate - time.monotonic()))
    deadline = time.monotonic() + 60
    while len(arrived) < written and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()
    worker.stop()
    for thread in threads:
        thread.join(30)
    conn.close()
    warm = min(sent for sent, _ in arrived) + 1.0
    delays = sorted(got - sent for sent, got in arrived if sent >= warm)
    assert len(arrived) == written, f"{len(arrived)} of {written} rows arrived"

    def pick(q: float) -> float:
        return delays[min(len(delays) - 1, int(q * len(delays)))] * 1000

    return {"rows": written, "seconds": elapsed, "p50_ms": pick(0.5), "p99_ms": pick(0.99),
            "max_ms": delays[-1] * 1000, "interval_ms": interval * 1000}  # fmt: skip


def phase_snapshot(plan: dict[str, Any]) -> dict[str, Any]:
    cfg = _worker_config(plan, mode="snapshot", startPosition=None)
    return _run_worker(cfg, lambda t: t.state == "Completed")


def phase_mariadb_binlog(plan: dict[str, Any]) -> dict[str, Any]:
    began = time.monotonic()
    out = subprocess.run(
        ["mariadb-binlog", "-v", "--read-from-remote-server", f"--host={HOST}", f"--port={PORT}",
         "--user=ferry", f"--password={PASSWORD}", f"--start-position={plan['start']['pos']}",
         f"--stop-position={plan['end']['pos']}", plan["start"]["file"]],
        capture_output=True, check=True,
    )  # fmt: skip
    elapsed = time.monotonic() - began
    rows = sum(out.stdout.count(k) for k in (b"### INSERT", b"### UPDATE", b"### DELETE"))
    return {"rows": rows, "seconds": elapsed}


def phase_mariadb_dump(plan: dict[str, Any]) -> dict[str, Any]:
    began = time.monotonic()
    subprocess.run(
        ["mariadb-dump", f"--host={HOST}", f"--port={PORT}", "--user=ferry_admin",
         f"--password={PASSWORD}", "--single-transaction", plan["database"], "t"],
        stdout=subprocess.DEVNULL, check=True,
    )  # fmt: skip
    return {"rows": plan["table_rows"], "seconds": time.monotonic() - began}


PHASES = {
    "decode": phase_decode,
    "decode-ferry": phase_decode_ferry,
    "exactly-once": lambda plan: phase_worker(plan, "exactly-once"),
    "at-least-once": lambda plan: phase_worker(plan, "at-least-once"),
    "mysql-sink": phase_mysql_sink,
    "mariadb-binlog": phase_mariadb_binlog,
    "snapshot": phase_snapshot,
    "mariadb-dump": phase_mariadb_dump,
    "latency": phase_latency,
}


def _cpu_seconds() -> float:
    """CPU time of this process (all threads, librdkafka's included) and its children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def child(name: str, plan: dict[str, Any]) -> None:
    cpu = _cpu_seconds()
    result = PHASES[name](plan)
    result["cpu_seconds"] = _cpu_seconds() - cpu
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    drop_topics()
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=340_000)
    parser.add_argument("--only", help="comma-separated phases to run (default: all)")
    parser.add_argument("--rate", type=int, default=5000, help="latency: rows/s written")
    parser.add_argument("--seconds", type=float, default=10.0, help="latency: how long")
    parser.add_argument("--batch-delay", default="20ms", help="latency: maxBatchDelay")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--plan", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        child(args.phase, json.loads(args.plan))
        return
    database = f"bench_{uuid.uuid4().hex[:8]}"
    plan = {**prepare(database, args.changes), "database": database, "rate": args.rate,
            "seconds": args.seconds, "batch_delay": args.batch_delay}  # fmt: skip
    results: dict[str, dict[str, Any]] = {}
    phases = args.only.split(",") if args.only else list(PHASES)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    try:
        for name in phases:
            out = subprocess.run(
                [sys.executable, __file__, "--phase", name, "--plan", json.dumps(plan)],
                capture_output=True, text=True,
            )  # fmt: skip
            if out.returncode:  # the phase's own error, not only its exit status
                raise SystemExit(f"phase {name} failed ({out.returncode}):\n{out.stderr[-4000:]}")
            result = json.loads(out.stdout.strip().splitlines()[-1])
            result["rate"] = result["rows"] / result["seconds"]
            result["cpu_rate"] = result["rows"] / result["cpu_seconds"]
            results[name] = result
            print(
                f"{name:>15}: {result['rows']:>8} rows in {result['seconds']:6.2f}s = "
                f"{result['rate']:>9,.0f} rows/s; {result['cpu_seconds']:6.2f} CPU-s = "
                f"{result['cpu_rate']:>9,.0f} rows/CPU-s; peak RSS {result['peak_rss_mb']:.0f} MB",
                flush=True,
            )
            if "p99_ms" in result:
                print(
                    f"{'':>15}  source commit → Kafka (read_committed consumer): p50 "
                    f"{result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, max "
                    f"{result['max_ms']:.1f} ms at {args.rate} rows/s, maxBatchDelay "
                    f"{args.batch_delay}",
                    flush=True,
                )
    finally:
        conn = admin()
        conn.cursor().execute(f"DROP DATABASE IF EXISTS `{database}`")
        conn.close()
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    # Wall-clock ratios suffer from other load on a shared machine; CPU ratios much less.
    for basis in ("rate", "cpu_rate"):
        if "decode" in results and "decode-ferry" in results:
            ratio = results["decode-ferry"][basis] / results["decode"][basis]
            print(f"decode-ferry ({basis}): a'/a = {ratio:.2f}")
        if "decode" not in results:
            continue
        decode = results["decode"][basis]
        for name in ("exactly-once", "at-least-once", "mysql-sink"):
            if name not in results:
                continue
            rate = results[name][basis]
            line = f"{name} ({basis}): b/a = {rate / decode:.2f}"
            if "decode-ferry" in results:
                line += f", b/a' = {rate / results['decode-ferry'][basis]:.2f}"
            if "mariadb-binlog" in results:
                line += f", b/c = {rate / results['mariadb-binlog'][basis]:.3f}"
            print(line)
    if "snapshot" in results and "mariadb-dump" in results:
        snapshot, dump = results["snapshot"]["rate"], results["mariadb-dump"]["rate"]
        print(f"snapshot / mariadb-dump = {snapshot / dump:.3f}")


if __name__ == "__main__":
    main()
