"""The MySQL sink alone (prints figures; not a pass/fail test).

    python3 tests/bench/bench_mysql_sink.py [--changes 340000] [--runs 1] [--offline]

bench_worker.py's mysql-sink phase without the binlog reader: the same mix of changes on the
same 10-column table (inserts, then updates of every second row, then deletes of every fifth;
5,000-change batches) is built in memory and handed to ``MySQLSink.deliver`` batch by batch,
into a fresh database on the MariaDB of tests/infra/up. Prints rows/s (wall), rows per
CPU-second of this process (the sink's own work: planning, escaping, the driver), the CPU
seconds of the server process (mariadbd, when it runs on this machine: shared with whatever
else uses it) and the load average. ferry_runtime comes from PYTHONPATH, so one copy of this
script measures any tree.

``--offline`` (no server): the sink's client side, ``MySQLSink._apply_fast`` on a PyMySQL
cursor whose ``_query`` does nothing, in changes/CPU-s; and the escaping of the bench rows
alone in rows/CPU-s: PyMySQL's cursor (``mogrify``), mysqlclient's ``Connection.literal``
path (its C ``string_literal`` and ``escape`` with its converters, per value), and
``sql.literal``'s row (when the tree has it).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_worker, run as a script
import bench_worker

BATCH = 5000
COLUMNS = (
    "id int PRIMARY KEY, a int, b bigint, c varchar(40), d decimal(12,2), e double, "
    "f datetime(3), g date, h tinyint, i text"
)


def _row(n: int) -> dict[str, Any]:  # JSON values, as the reader hands them over
    return {"id": n, "a": n % 1000, "b": n * 7, "c": f"name {n}", "d": f"{n / 100:.2f}",
            "e": n / 3, "f": "2026-12-03 08:00:00.123", "g": "2026-12-03", "h": n % 100,
            "i": "x" * 20}  # fmt: skip


def changes(total: int) -> list[Any]:
    from ferry_runtime.events import Change

    inserts = total * 10 // 17
    key = ("id",)
    out = [Change("src", "t", "insert", _row(n), None, key) for n in range(1, inserts + 1)]
    out += [
        Change("src", "t", "update", {**_row(n), "a": n % 1000 + 1, "c": "updated"}, _row(n), key)
        for n in range(2, inserts + 1, 2)
    ]
    out += [Change("src", "t", "delete", _row(n), None, key) for n in range(1, inserts + 1, 5)]
    return out


def server_cpu() -> float | None:
    """CPU seconds of the local mariadbd processes (None: not on this machine)."""
    pids = subprocess.run(["pgrep", "-x", "mariadbd"], capture_output=True, text=True).stdout
    if not pids.split():
        return None
    total = 0.0
    for pid in pids.split():
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def run(all_changes: list[Any]) -> None:
    from ferry_runtime import checkpoint, config
    from ferry_runtime.sink.base import Segment
    from ferry_runtime.sink.mysql import MySQLSink

    database = f"bench_sink_{uuid.uuid4().hex[:8]}"
    conn = bench_worker.admin()
    cur = conn.cursor()
    cur.execute(f"CREATE DATABASE `{database}`")
    cur.execute(f"CREATE TABLE `{database}`.t ({COLUMNS})")
    os.environ["BENCH_ADMIN_PW"] = bench_worker.PASSWORD
    sink_config = config.parse({
        "task": {"name": database, "namespace": "bench"},
        "source": {"host": "127.0.0.1", "port": 1, "user": "unused", "passwordEnv": "UNUSED",
                   "serverId": 1},
        "include": ["src.*"],
        "sink": {"mysql": {"host": bench_worker.HOST, "port": bench_worker.PORT,
                           "user": "ferry_admin", "passwordEnv": "BENCH_ADMIN_PW",
                           "database": database}},
        "mode": "cdc",
    }).sink.mysql  # fmt: skip
    assert sink_config is not None
    sink = MySQLSink(sink_config, database, lambda poison: None)
    batches = [[Segment(all_changes[i : i + BATCH])] for i in range(0, len(all_changes), BATCH)]
    try:
        sink.open()
        load = os.getloadavg()[0]
        server, cpu, began = server_cpu(), time.process_time(), time.monotonic()
        for batch in batches:
            sink.deliver(batch, checkpoint.Checkpoint(position={"file": "bench", "pos": 4}))
        wall, cpu = time.monotonic() - began, time.process_time() - cpu
        after = server_cpu()
        cur.execute(f"SELECT COUNT(*) FROM `{database}`.t")
        (rows,) = cur.fetchone()
        assert rows == len({c.data["id"] for c in all_changes}) - sum(
            c.op == "delete" for c in all_changes
        ), rows
    finally:
        sink.close()
        cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
        conn.close()
    used = "" if server is None or after is None else f"; mariadbd {after - server:.2f} CPU-s"
    print(
        f"{len(all_changes)} changes in {wall:.2f}s = {len(all_changes) / wall:,.0f} rows/s; "
        f"{cpu:.2f} CPU-s = {len(all_changes) / cpu:,.0f} rows/CPU-s{used}; load average "
        f"{load:.2f} → {os.getloadavg()[0]:.2f}",
        flush=True,
    )


def _cpu_rate(count: int, work: Any) -> float:
    began = time.process_time()
    work()
    return count / (time.process_time() - began)


def offline(all_changes: list[Any]) -> None:
    from decimal import Decimal

    import pymysql
    from MySQLdb import _mysql, converters

    from ferry_runtime import types
    from ferry_runtime.sink import mysql, sql

    class Cursor(pymysql.cursors.Cursor):  # type: ignore[misc]
        def _query(self, q: Any) -> int:
            return 0

    conn = pymysql.connections.Connection(defer_connect=True, charset="utf8mb4")
    conn.server_status = 0  # what the server's handshake would set: backslash escapes
    cursor = Cursor(conn)
    sink = mysql.MySQLSink.__new__(mysql.MySQLSink)
    columns = tuple(
        types.Column(name, kind)
        for name, kind in (("id", "int"), ("a", "int"), ("b", "int"), ("c", "text"),
                           ("d", "decimal"), ("e", "double"), ("f", "datetime"), ("g", "date"),
                           ("h", "int"), ("i", "text"))
    )  # fmt: skip
    sink.config = argparse.Namespace(database="copy", schema_changes=None)
    sink._targets = {("copy", "t"): sql.Target("copy", "t", columns, ("id",))}
    rate = _cpu_rate(
        len(all_changes),
        lambda: [
            sink._apply_fast(cursor, all_changes[i : i + BATCH])
            for i in range(0, len(all_changes), BATCH)
        ],
    )
    print(f"client side (_apply_fast, no server): {rate:,.0f} changes/CPU-s")

    rows = [(n, n % 1000, n * 7, f"name {n}", Decimal(n) / 100, n / 3, "2026-12-03 08:00:00.123",
             "2026-12-03", n % 100, "x" * 20) for n in range(100_000)]  # fmt: skip
    template = "(" + ",".join(["%s"] * 10) + ")"

    def mysqlclient_literal(value: Any) -> bytes:  # Connection.literal without a connection
        if isinstance(value, str):
            return bytes(_mysql.string_literal(value.encode()))
        found = _mysql.escape(value, converters.conversions)
        return found.encode() if isinstance(found, str) else bytes(found)

    rates = {
        "PyMySQL mogrify": _cpu_rate(
            len(rows), lambda: [cursor.mogrify(template, r) for r in rows]
        ),
        "mysqlclient literal": _cpu_rate(
            len(rows), lambda: [b"(%s)" % b",".join(map(mysqlclient_literal, r)) for r in rows]
        ),
    }
    row = getattr(sql, "_row", None)
    if row is not None:
        rates["sql.literal"] = _cpu_rate(len(rows), lambda: [row(r) for r in rows])
    print(
        "escaping the bench rows: "
        + ", ".join(f"{k} {v:,.0f} rows/CPU-s" for k, v in rates.items())
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=340_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--offline", action="store_true", help="no server: client side only")
    args = parser.parse_args()
    import ferry_runtime

    print(f"ferry_runtime from {Path(ferry_runtime.__file__).parent}")
    all_changes = changes(args.changes)
    if args.offline:
        offline(all_changes)
        return
    for _ in range(args.runs):
        run(all_changes)


if __name__ == "__main__":
    main()
