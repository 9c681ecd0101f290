"""performance.snapshotParallelism: the chunk readers hand over contiguous key ranges of
exactly the chunk size in ascending binlog position while rows change; and two tables
snapshotted on several connections at once while a writer inserts, updates and deletes in
both. Every key's records are placed in its
history (the checker of test_snapshot_chaos.py): first its snapshot row or its insert, then
every change once, in order; the replayed topics equal the source row for row. The
connections the worker holds to MariaDB during the snapshot show the parallelism."""

from __future__ import annotations

import itertools
import multiprocessing
import threading
import time
from typing import Any

import pytest
from tests.integration.runtime.conftest import Pipeline, local_ports_to
from tests.integration.runtime.test_snapshot_chaos import Writer, check

from ferry_runtime import config
from ferry_runtime.source import chunks, mysql, schema

pytestmark = [pytest.mark.mysql, pytest.mark.kafka]

ROWS = 6_000  # per table, even ids
CHUNK = 200
PARALLELISM = 4
TABLES = ("k1", "k2")


@pytest.mark.parametrize("readers", ["threads", "processes"])
def test_chunks_come_in_ascending_position_as_contiguous_key_ranges(
    pipeline: Pipeline, testenv: Any, source_password: str, readers: str
) -> None:
    sql = pipeline.sql
    sql(f"CREATE TABLE {pipeline.db}.n (id int PRIMARY KEY, v int)")
    sql(f"INSERT INTO {pipeline.db}.n SELECT 2 * seq, seq FROM {pipeline.db}.seq_1_to_20000")
    sql(f"CREATE TABLE {pipeline.db}.s (k varchar(20) PRIMARY KEY, v int)")
    sql(
        f"INSERT INTO {pipeline.db}.s SELECT CONCAT('k', seq), seq FROM {pipeline.db}.seq_1_to_3000"
    )
    source = config.SourceConfig.model_validate(pipeline.config()["source"])
    conn = mysql.connect(source)
    tables = [schema.load(conn, pipeline.database, name) for name in ("n", "s")]
    conn.close()
    stop = threading.Event()

    def write() -> None:  # inserts into the gaps and deletes, while chunks are read
        i = 0
        while not stop.is_set():
            i += 1
            sql(f"INSERT INTO {pipeline.db}.n VALUES ({2 * i + 1}, 0)")
            sql(f"DELETE FROM {pipeline.db}.n WHERE id = {4 * i}")

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    make = chunks.ReaderProcess if readers == "processes" else chunks.reader_connection
    reader = chunks.ChunkReader(lambda: make(source), [(t, None) for t in tables if t], 1000, 4)
    reader.start()
    got: list[chunks.KeyedChunk] = []
    try:
        while not reader.done:
            chunk = reader.take(1.0)
            if chunk is not None:
                got.append(chunk)
    finally:
        reader.close()
        stop.set()
        writer.join()
    positions = [(c.position["file"], c.position["pos"]) for c in got]
    assert positions == sorted(positions)
    assert len(set(positions)) > 1, "the writer moved the binlog between chunks"
    assert [c.table.table for c in got].count("s") == 4  # 3,000 rows: 1000 + 1000 + 1000 + 0
    for before, after in itertools.pairwise(got):
        if before.table is after.table:
            assert after.after == before.upto  # contiguous: no key range skipped or read twice
        else:
            assert before.upto is None and after.after is None  # a table ends, the next begins
    for chunk in got:
        keys = [[row[k] for k in chunk.table.primary_key] for row in chunk.rows]
        if chunk.upto is not None:
            assert len(chunk.rows) == 1000 and keys[-1] == chunk.upto


@pytest.mark.timeout(300)
@pytest.mark.parametrize("readers", ["threads", "processes"])
def test_parallel_snapshot_of_two_tables_under_writes_is_exactly_once(
    pipeline: Pipeline, testenv: Any, readers: str
) -> None:
    port = int(testenv.mysql["port"])
    sql = pipeline.sql
    writers = []
    for name in TABLES:
        table = f"{pipeline.db}.{name}"
        sql(f"CREATE TABLE {table} (id int PRIMARY KEY, seq bigint)")
        sql(f"INSERT INTO {table} SELECT 2 * seq, 0 FROM {pipeline.db}.seq_1_to_{ROWS}")
        writers.append(Writer(sql, table, ROWS))
    before = len(local_ports_to(port))  # the test's own admin connection
    for writer in writers:
        writer.start()
    time.sleep(0.5)  # changes land before, inside and after every chunk
    worker = pipeline.run(
        performance={
            "snapshotChunkSize": CHUNK,
            "snapshotParallelism": PARALLELISM,
            "snapshotReaders": readers,
            "batchSize": 500,
        }
    )
    peak = children = 0
    deadline = time.monotonic() + 180
    while not worker.tracker.snapshot_done and time.monotonic() < deadline:
        assert worker.thread.is_alive(), worker.worker.failure
        peak = max(peak, len(local_ports_to(port)) - before)
        children = max(children, len(multiprocessing.active_children()))
        time.sleep(0.02)
    assert worker.tracker.snapshot_done, "the snapshot did not end in 180 s"
    time.sleep(1)  # streaming under the writers
    for writer in writers:
        writer.done.set()
        writer.join()
    pipeline.wait_caught_up(worker, 120)
    assert worker.stop() == 0

    # The PARALLELISM readers, and ctl, the planning connection, the binlog stream and its
    # library's control connection (at parallelism 1 the peak is 6, at 4 it is 9).
    if readers == "threads":  # child processes' connections start as they spawn, unsampled
        assert peak >= PARALLELISM + 4, f"{peak} connections to MariaDB during the snapshot"
    # snapshotReaders: processes reads in child processes; threads never starts one.
    assert children == (PARALLELISM if readers == "processes" else 0), children
    for name, writer in zip(TABLES, writers, strict=True):
        records = pipeline.records(name)
        verdict = check(records, writer.history)
        changes = sum(len(h) - (h[0][0] == "seed") for h in writer.history.values())
        summary = f"{name}: {ROWS} rows + {changes} changes, {len(records)} records; {verdict}"
        assert changes > 300, summary
        assert verdict.clean, summary + "\n" + "\n".join(verdict.examples)
        source = {
            (r[0],): {"id": r[0], "seq": r[1]}
            for r in sql(f"SELECT id, seq FROM {pipeline.db}.{name}")
        }
        assert pipeline.replay(records) == source, summary
