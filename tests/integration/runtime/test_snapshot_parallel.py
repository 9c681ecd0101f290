"""performance.snapshotParallelism: two tables snapshotted on several connections at once
while a writer inserts, updates and deletes in both. Every key's records are placed in its
history (the checker of test_snapshot_chaos.py): first its snapshot row or its insert, then
every change once, in order; the replayed topics equal the source row for row. The
connections the worker holds to MariaDB during the snapshot show the parallelism."""

from __future__ import annotations

import time
from typing import Any

import pytest
from tests.integration.runtime.conftest import Pipeline, local_ports_to
from tests.integration.runtime.test_snapshot_chaos import Writer, check

pytestmark = [pytest.mark.mysql, pytest.mark.kafka]

ROWS = 6_000  # per table, even ids
CHUNK = 200
PARALLELISM = 4
TABLES = ("k1", "k2")


@pytest.mark.timeout(300)
def test_parallel_snapshot_of_two_tables_under_writes_is_exactly_once(
    pipeline: Pipeline, testenv: Any
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
            "batchSize": 500,
        }
    )
    peak = 0
    deadline = time.monotonic() + 180
    while not worker.tracker.snapshot_done and time.monotonic() < deadline:
        assert worker.thread.is_alive(), worker.worker.failure
        peak = max(peak, len(local_ports_to(port)) - before)
        time.sleep(0.02)
    assert worker.tracker.snapshot_done, "the snapshot did not end in 180 s"
    time.sleep(1)  # streaming under the writers
    for writer in writers:
        writer.done.set()
        writer.join()
    pipeline.wait_caught_up(worker, 120)
    assert worker.stop() == 0

    # ctl, the planning connection and the PARALLELISM readers (the binlog's joins them)
    assert peak >= PARALLELISM + 2, f"{peak} connections to MariaDB during the snapshot"
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
