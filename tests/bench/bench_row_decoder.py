"""Row decoding alone, in memory: the C decoder and generated code (source/rows.py).

    python3 tests/bench/bench_row_decoder.py [--rows 100000]

Writes the bench table of bench_worker.py (10 columns: int, int, bigint, varchar, decimal,
double, datetime(3), date, tinyint, text) with inserts, reads the binlog once and keeps each
rows event's body, then decodes those bodies again and again with (1) the C decoder Ferry
uses (source/_rowimage.c), (2) the generated per-bitmap Python functions it falls back to,
(3) a closure per column driven by a loop (the obvious alternative), and (4)
python-mysql-replication's own ``.rows`` on the live stream for scale.
Prints rows/s and rows/CPU-s (process time) for each. Needs tests/infra/up's MariaDB.
"""

from __future__ import annotations

import argparse
import struct
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import bench_worker

from ferry_runtime import types
from ferry_runtime.source import rows

Read = Callable[[bytes, int], tuple[Any, int]]


def _closure(column: Any) -> Read:
    """One column's reader as a closure (only the bench table's types)."""
    code = int(column.type)
    if code in (rows.LONG, rows.LONGLONG, rows.TINY, rows.DOUBLE):
        fmt = {rows.LONG: "<i", rows.LONGLONG: "<q", rows.TINY: "<b", rows.DOUBLE: "<d"}[code]
        unpack, size = struct.Struct(fmt).unpack_from, struct.calcsize(fmt)
        return lambda d, p: (unpack(d, p)[0], p + size)
    if code == rows.NEWDECIMAL:
        decimal, size = rows.decimal_reader(column.precision, column.decimals)
        return lambda d, p: (decimal(d[p : p + size]), p + size)
    if code in (rows.DATETIME2, rows.DATE):
        temporal, size = rows.temporal_reader(code, getattr(column, "fsp", 0))
        return lambda d, p: (temporal(d[p : p + size]), p + size)
    if code == rows.VARCHAR:
        wide = column.max_length > 255

        def text(d: bytes, p: int) -> tuple[Any, int]:
            n, p = (d[p] | d[p + 1] << 8, p + 2) if wide else (d[p], p + 1)
            return d[p : p + n].decode(), p + n

        return text
    if code == rows.BLOB:
        width = column.length_size

        def blob(d: bytes, p: int) -> tuple[Any, int]:
            n = int.from_bytes(d[p : p + width], "little")
            return d[p + width : p + width + n].decode(), p + width + n

        return blob
    raise SystemExit(f"no closure for type {code}")


def closure_image(columns: list[Any]) -> Callable[[bytes, int], tuple[dict[str, Any], int]]:
    readers = [(str(c.name), _closure(c)) for c in columns]
    null_bytes = (len(readers) + 7) // 8

    def image(d: bytes, p: int) -> tuple[dict[str, Any], int]:
        nulls = int.from_bytes(d[p : p + null_bytes], "little")
        p += null_bytes
        out: dict[str, Any] = {}
        bit = 1
        for name, read in readers:
            if nulls & bit:
                out[name] = None
            else:
                out[name], p = read(d, p)
            bit <<= 1
        return out, p

    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from pymysqlreplication import BinLogStreamReader
    from pymysqlreplication.row_event import WriteRowsEvent

    database = f"bench_{uuid.uuid4().hex[:8]}"
    plan = {**bench_worker.prepare(database, args.rows * 17 // 10), "database": database}
    try:
        stream = BinLogStreamReader(
            connection_settings={"host": bench_worker.HOST, "port": bench_worker.PORT,
                                 "user": "ferry", "password": bench_worker.PASSWORD},
            server_id=int(time.time()) % 100000 + 400000,
            log_file=plan["start"]["file"], log_pos=plan["start"]["pos"],
            resume_stream=True, is_mariadb=False, blocking=True,
            only_events=[WriteRowsEvent], only_schemas=[database],
        )  # fmt: skip
        bodies: list[bytes] = []
        library_rows, library_cpu, columns = 0, 0.0, None
        for event in stream:
            bodies.append(rows.row_body(event))
            columns = event.columns
            cpu = time.process_time()
            library_rows += len(event.rows)
            library_cpu += time.process_time() - cpu
            if library_rows >= args.rows:
                break
        stream.close()
    finally:
        conn = bench_worker.admin()
        conn.cursor().execute(f"DROP DATABASE IF EXISTS `{database}`")
        conn.close()
    assert columns is not None
    kinds = [types.from_binlog_column(c) for c in columns]
    decoder = rows.table_decoder(columns, kinds, "bench.t")
    assert decoder is not None
    generated = decoder.image(b"\xff" * ((len(columns) + 7) // 8))
    closures = closure_image(columns)
    print(f"{len(bodies)} events, {library_rows} rows (inserts)")
    print(f"{'library .rows':>16}: {library_rows / library_cpu:>10,.0f} rows/CPU-s")
    bitmap = b"\xff" * ((len(columns) + 7) // 8)
    native = decoder.native
    assert native is not None
    best = 0.0
    for _ in range(args.repeat):
        count, cpu = 0, time.process_time()
        for body in bodies:
            count += len(native.decode(body, bitmap))
        best = max(best, count / (time.process_time() - cpu))
    print(f"{'C (_rowimage)':>16}: {best:>10,.0f} rows/CPU-s (best of {args.repeat})")
    for name, image in (("generated code", generated), ("closures", closures)):
        best = 0.0
        for _ in range(args.repeat):
            count, cpu, wall = 0, time.process_time(), time.monotonic()
            for body in bodies:
                pos = 0
                while pos < len(body):
                    _, pos = image(body, pos)
                    count += 1
            cpu, wall = time.process_time() - cpu, time.monotonic() - wall
            best = max(best, count / cpu)
        print(f"{name:>16}: {best:>10,.0f} rows/CPU-s (best of {args.repeat})")
    same = all(
        generated(b, 0) == closures(b, 0) and native.decode(b, bitmap)[0][0] == generated(b, 0)[0]
        for b in bodies[:50]
    )
    print(f"same values: {same}")


if __name__ == "__main__":
    main()
