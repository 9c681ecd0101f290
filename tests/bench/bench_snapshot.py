"""Snapshot throughput by performance.snapshotParallelism, against ``mariadb-dump`` (prints
figures; not a pass/fail test).

    python3 tests/bench/bench_snapshot.py [--rows 200000] [--parallelism 1,4,4p] [--chunk 10000]

Seeds one table (the 10 columns of bench_worker.py's table) in a fresh database, then, each in
its own process and in the same run: the worker in ``snapshot+cdc`` mode into Kafka
(exactly-once, Maxwell) from its start until the snapshot is delivered, once per
parallelism (``4p``: four readers in child processes, ``snapshotReaders: processes``), and
``mariadb-dump --single-transaction`` of the same table. Per phase: rows/s (over the run,
and after the first chunk was delivered, with the time from the worker's start to that
chunk: the sink opened and fenced, the checkpoint read, the first chunk read and committed),
CPU-seconds, and the CPU time of the phase's Python threads against librdkafka's (their sum over the
wall time shows how much of the run one interpreter lock allowed); ``--stages`` adds each
stage's CPU per row on one thread (read and parse, convert, encode, produce), and
``--profile`` the functions that took the most time in the delivering thread (cProfile;
the reader threads are not profiled). Needs tests/infra/up's services.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests.*, run as a script
from tests.bench import bench_worker as common

SEED_STEP = 50_000


def prepare(database: str, rows: int) -> dict[str, Any]:
    conn = common.admin()
    cur = conn.cursor()
    cur.execute(f"CREATE DATABASE `{database}`")
    cur.execute(
        f"CREATE TABLE `{database}`.t (id int PRIMARY KEY, a int, b bigint, c varchar(40), "
        "d decimal(12,2), e double, f datetime(3), g date, h tinyint, i text)"
    )
    began = time.monotonic()
    for low in range(1, rows + 1, SEED_STEP):
        high = min(low + SEED_STEP - 1, rows)
        cur.execute(
            f"INSERT INTO `{database}`.t SELECT seq, seq % 1000, seq * 7, CONCAT('name ', seq), "
            "seq / 100, seq / 3, NOW(3), CURDATE(), seq % 100, REPEAT('x', 20) "
            f"FROM `{database}`.seq_{low}_to_{high}"
        )
    conn.close()
    print(f"seeded {rows} rows in {time.monotonic() - began:.1f}s", flush=True)
    return {"database": database, "table_rows": rows}


def _threads_cpu() -> dict[str, float]:
    """CPU seconds of this process's live threads by name (librdkafka's are rdk:*)."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        seconds = (int(fields[11]) + int(fields[12])) / tick
        out[name] = out.get(name, 0.0) + seconds
    return out


def phase_snapshot(
    plan: dict[str, Any], parallelism: int, readers: str, profile: bool
) -> dict[str, Any]:
    import cProfile
    import pstats
    import threading

    from ferry_runtime.status import StatusTracker
    from ferry_runtime.worker import Worker, tune_garbage_collector

    tune_garbage_collector()  # as ferry-worker does

    cfg = common._worker_config(
        {**plan, "start": None},
        mode="snapshot+cdc",
        startPosition=None,
        performance={
            "batchSize": 5000,
            "maxBatchDelay": "200ms",
            "snapshotChunkSize": plan["chunk"],
            "snapshotParallelism": parallelism,
            "snapshotReaders": readers,
        },
    )
    os.environ["BENCH_PW"] = common.PASSWORD
    tracker = StatusTracker()
    worker = Worker(cfg, tracker)
    profiler = cProfile.Profile() if profile else None
    run = worker.run if profiler is None else lambda: profiler.runcall(worker.run)
    thread = threading.Thread(target=run, daemon=True)
    own = resource.getrusage(resource.RUSAGE_SELF)
    began = time.monotonic()
    thread.start()
    first: tuple[float, int] | None = None  # when the first chunk was delivered, and its rows
    while not tracker.snapshot_done:
        if not thread.is_alive():
            raise SystemExit(f"worker ended: {worker.failure}")
        if first is None and tracker.events:
            first = (time.monotonic(), tracker.events)
        time.sleep(0.005)
    elapsed = time.monotonic() - began
    if first is None:
        first = (began, 0)
    threads = _threads_cpu()
    end = resource.getrusage(resource.RUSAGE_SELF)
    worker.stop()
    thread.join(30)
    result: dict[str, Any] = {"rows": tracker.events, "seconds": elapsed}
    # From the worker's start to its first delivered chunk (sink, fencing, checkpoint, plan,
    # the first chunk read and committed).
    result["first_chunk"] = first[0] - began
    # After the first chunk: without the start (sink, transactions, readers, first read).
    result["steady_rate"] = (tracker.events - first[1]) / max(1e-9, began + elapsed - first[0])
    # CPU of this process during the run (threads that ended too), less librdkafka's
    # threads (C, outside the interpreter lock): what the Python threads used.
    rdkafka = sum(v for k, v in threads.items() if k.startswith("rdk:"))
    run_cpu = end.ru_utime + end.ru_stime - own.ru_utime - own.ru_stime
    result["python_thread_cpu"] = run_cpu - rdkafka
    result["rdkafka_cpu"] = rdkafka
    if profiler is not None:
        stats = pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime")
        stats.print_stats(18)
    return result


def _pymysql_text() -> dict[Any, Any]:
    """PyMySQL's conversions without DECIMAL and temporal ones (how snapshots read before
    they read with mysqlclient)."""
    import pymysql.converters
    from pymysql.constants import FIELD_TYPE

    text = (FIELD_TYPE.DECIMAL, FIELD_TYPE.NEWDECIMAL, FIELD_TYPE.DATE, FIELD_TYPE.TIME,
            FIELD_TYPE.DATETIME, FIELD_TYPE.TIMESTAMP)  # fmt: skip
    return {k: v for k, v in pymysql.converters.conversions.items() if k not in text}


def phase_stages(plan: dict[str, Any]) -> dict[str, Any]:
    """The snapshot's per-row work, stage by stage on one thread (CPU µs per row): the
    SELECT read and parsed by the reader connection (mysqlclient), the JSON conversion, the
    Kafka records (routing, Maxwell encoding: the worker's own code), and produce() into
    Kafka (librdkafka's own threads and the final flush not counted). Their sum bounds what
    one interpreter can do."""
    from confluent_kafka import Producer

    from ferry_runtime.events import Change, RenderedRows
    from ferry_runtime.sink.base import Reads
    from ferry_runtime.sink.kafka_records import KafkaRecords
    from ferry_runtime.source import chunks, mysql, schema
    from ferry_runtime.source import snapshot as snapshot_module
    from ferry_runtime.status import StatusTracker
    from ferry_runtime.worker import Worker

    cfg = common._worker_config({**plan, "start": None}, mode="snapshot+cdc")
    os.environ["BENCH_PW"] = common.PASSWORD
    encoder = KafkaRecords(cfg, Worker(cfg, StatusTracker())._poison)  # the worker's records
    snap = chunks.reader_connection(cfg.source)  # the snapshot's reader (mysqlclient)
    conn = mysql.connect(cfg.source, conv=_pymysql_text())  # PyMySQL: the reader before
    table = schema.load(conn, plan["database"], "t")
    assert table is not None
    producer = Producer({"bootstrap.servers": common.BOOTSTRAP, "linger.ms": 50})
    topic = f"bench-stages-{uuid.uuid4().hex[:8]}"
    spent = dict.fromkeys(("select+parse", "convert", "encode", "produce"), 0.0)
    # The path the worker takes for this table: rendered by the server (snapshot.row_json).
    expression = snapshot_module.row_json(table, {}, [])
    assert expression is not None, "the bench table's columns are all rendered kinds"
    rendered_table = dataclasses.replace(
        table, row_json=expression, row_fields=snapshot_module.row_fields(table, {}, [])
    )
    rendered = dict.fromkeys(("select rendered", "encode rendered"), 0.0)
    before = 0.0  # the same rows read and converted by PyMySQL (how snapshots read before)
    after: list[Any] | None = None
    rows = 0
    select = f"SELECT * FROM `{plan['database']}`.t WHERE id > %s{{upto}} ORDER BY id"
    while True:
        clock = time.thread_time()
        upto, _ = snap.open_chunk(table, after, plan["chunk"])
        args = [after[0] if after else 0] + ([] if upto is None else [upto[0]])
        sql = select.format(upto="" if upto is None else " AND id <= %s")
        raw = snap._execute(sql, args)
        snap.end()
        spent["select+parse"] += time.thread_time() - clock
        clock = time.thread_time()
        with conn.cursor() as cursor:
            cursor.execute(sql, args)
            old_rows = snapshot_module._convert(table, cursor.fetchall())
        before += time.thread_time() - clock
        clock = time.thread_time()
        converted = snapshot_module._convert(table, raw)
        assert converted == old_rows, "both drivers must give the same JSON values"
        spent["convert"] += time.thread_time() - clock
        clock = time.thread_time()
        template = Change(
            table.database, table.table, "read", {}, None, table.primary_key, 0, "f:4"
        )
        records, _ = encoder.encode([Reads(template, converted)])
        spent["encode"] += time.thread_time() - clock
        clock = time.thread_time()
        snap.open_chunk(table, after, plan["chunk"])
        by_server = snap.chunk_rows(rendered_table, after, upto)
        rendered["select rendered"] += time.thread_time() - clock
        assert isinstance(by_server, RenderedRows) and by_server.dicts() == converted
        clock = time.thread_time()
        encoder.encode([Reads(template, by_server)])
        rendered["encode rendered"] += time.thread_time() - clock
        clock = time.thread_time()
        for record in records:
            while True:
                try:
                    producer.produce(topic, record.value, record.key)
                    break
                except BufferError:
                    producer.poll(0.05)
        producer.poll(0)
        spent["produce"] += time.thread_time() - clock
        rows += len(raw)
        if upto is None:
            break
        after = upto
    producer.flush(60)
    snap.close()
    conn.close()
    micros = {name: seconds / rows * 1e6 for name, seconds in spent.items()}
    return {
        "rows": rows,
        "seconds": sum(spent.values()),
        "micros_per_row": micros,
        "rendered_micros_per_row": {k: v / rows * 1e6 for k, v in rendered.items()},
        "before_micros_per_row": before / rows * 1e6,
    }


def phase_dump(plan: dict[str, Any]) -> dict[str, Any]:
    began = time.monotonic()
    subprocess.run(
        ["mariadb-dump", f"--host={common.HOST}", f"--port={common.PORT}",
         "--user=ferry_admin", f"--password={common.PASSWORD}", "--single-transaction",
         plan["database"], "t"],
        stdout=subprocess.DEVNULL, check=True,
    )  # fmt: skip
    return {"rows": plan["table_rows"], "seconds": time.monotonic() - began}


def _services_cpu() -> dict[str, float]:
    """CPU seconds used so far by this machine's MariaDB and Kafka broker (the test
    environment's, found by name; none when they run elsewhere): on a shared 2-core machine
    the rows per CPU-second of the whole path, not only the worker's, bound the rate."""
    found: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for name, pattern in (("mariadbd", "mariadbd --no-defaults"), ("kafka", "java .*kafka")):
        out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout
        for pid in out.split()[:1]:
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                found[name] = (int(fields[11]) + int(fields[12])) / tick
    return found


def child(name: str, plan: dict[str, Any], profile: bool) -> None:
    services = _services_cpu()
    cpu = common._cpu_seconds()
    if name == "mariadb-dump":
        result = phase_dump(plan)
    elif name == "stages":
        result = phase_stages(plan)
    else:
        spec = name.removeprefix("parallelism-")
        readers = "processes" if spec.endswith("p") else "threads"
        result = phase_snapshot(plan, int(spec.rstrip("p")), readers, profile)
    result["cpu_seconds"] = common._cpu_seconds() - cpu
    after = _services_cpu()
    result["services_cpu"] = {k: after[k] - v for k, v in services.items() if k in after}
    common.drop_topics()
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--chunk", type=int, default=10_000)
    parser.add_argument(
        "--parallelism",
        default="1,4,4p",
        help="comma-separated, e.g. 1,2,4; a trailing p: readers in child processes",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile each worker phase")
    parser.add_argument(
        "--stages", action="store_true", help="also the per-row CPU of each stage, one thread"
    )
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--plan", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        child(args.phase, json.loads(args.plan), args.profile)
        return
    database = f"bench_{uuid.uuid4().hex[:8]}"
    plan = {**prepare(database, args.rows), "chunk": args.chunk}
    phases = [f"parallelism-{p}" for p in args.parallelism.split(",")] + ["mariadb-dump"]
    phases += ["stages"] if args.stages else []
    results: dict[str, dict[str, Any]] = {}
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    try:
        for name in phases:
            command = [sys.executable, __file__, "--phase", name, "--plan", json.dumps(plan)]
            out = subprocess.run(
                command + (["--profile"] if args.profile else []),
                capture_output=True, text=True,
            )  # fmt: skip
            if out.returncode:  # the phase's own error, not only its exit status
                raise SystemExit(f"phase {name} failed ({out.returncode}):\n{out.stderr[-4000:]}")
            if args.profile and out.stderr.strip():
                print(out.stderr)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            result["rate"] = result["rows"] / result["seconds"]
            results[name] = result
            line = (
                f"{name:>15}: {result['rows']:>8} rows in {result['seconds']:6.2f}s = "
                f"{result['rate']:>9,.0f} rows/s; {result['cpu_seconds']:6.2f} CPU-s"
            )
            if "steady_rate" in result:
                line += (
                    f", {result['steady_rate']:,.0f} rows/s after the first chunk (delivered "
                    f"{result['first_chunk']:.2f}s after the start)"
                )
            if result.get("services_cpu") and "steady_rate" in result:
                spent = result["cpu_seconds"] + sum(result["services_cpu"].values())
                line += (
                    "; with "
                    + " and ".join(f"{k} {v:.2f}" for k, v in result["services_cpu"].items())
                    + f" CPU-s: {spent / result['rows'] * 1e6:.1f} µs a row in all"
                )
            if "python_thread_cpu" in result:
                line += (
                    f" (during the run: Python threads {result['python_thread_cpu']:.2f} CPU-s ="
                    f" {result['python_thread_cpu'] / result['seconds']:.2f} of the wall time,"
                    f" librdkafka {result['rdkafka_cpu']:.2f})"
                )
            if "micros_per_row" in result:
                parts = ", ".join(f"{k} {v:.1f}" for k, v in result["micros_per_row"].items())
                total = sum(result["micros_per_row"].values())
                line = (
                    f"{name:>15}: CPU µs per row on one thread: {parts}; sum {total:.1f} "
                    f"(= {1e6 / total:,.0f} rows per CPU-second); select+parse+convert with "
                    f"PyMySQL (the reader before): {result['before_micros_per_row']:.1f}"
                )
                server = result["rendered_micros_per_row"]
                line += (
                    "; rendered by the server (the worker's path): "
                    + ", ".join(f"{k} {v:.1f}" for k, v in server.items())
                    + f", produce {result['micros_per_row']['produce']:.1f}; sum "
                    + f"{sum(server.values()) + result['micros_per_row']['produce']:.1f}"
                )
            print(line, flush=True)
    finally:
        conn = common.admin()
        conn.cursor().execute(f"DROP DATABASE IF EXISTS `{database}`")
        conn.close()
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    dump = results["mariadb-dump"]["rate"]
    first = results[phases[0]]["rate"]
    for name in (p for p in phases if p.startswith("parallelism-")):
        rate, steady = results[name]["rate"], results[name]["steady_rate"]
        print(
            f"{name}: {rate / dump:.3f} of mariadb-dump ({steady / dump:.3f} after the first "
            f"chunk), {rate / first:.2f} of {phases[0]}"
        )


if __name__ == "__main__":
    main()
