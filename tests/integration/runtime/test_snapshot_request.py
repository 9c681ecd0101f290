"""spec.snapshotRequest with ``cancel``: a re-read of a table stopped half-way leaves the
snapshot in one checkpoint; the rows delivered so far stand, the table's changes stream on,
status shows it Cancelled, and the consumer's per-key history stays in step."""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from tests.integration.runtime.conftest import Pipeline
from tests.integration.runtime.test_snapshot_chaos import (
    Writer,
    _rows_done,
    _status,
    _wait_chunk,
    _wait_started,
    _wait_streaming,
    check,
)

pytestmark = [pytest.mark.mysql, pytest.mark.kafka]


def _table_progress(worker: Any, name: str) -> dict[str, Any]:
    tables = (_status(worker).get("progress") or {}).get("tables") or []
    return next((t for t in tables if t.get("name") == name), {})


@pytest.mark.timeout(300)
def test_a_cancelled_reread_stops_half_way_and_the_table_streams_on(
    pipeline: Pipeline, spawn_worker: Callable[..., Any]
) -> None:
    rows = 10_000
    sql, table, name = pipeline.sql, f"{pipeline.db}.k", f"{pipeline.database}.k"
    sql(f"CREATE TABLE {table} (id int PRIMARY KEY, seq bigint)")
    sql(f"INSERT INTO {table} SELECT 2 * seq, 0 FROM {pipeline.db}.seq_1_to_{rows}")
    config = pipeline.config(performance={"snapshotChunkSize": 20, "batchSize": 100})
    writer = Writer(sql, table, rows)
    writer.start()
    worker = spawn_worker(config)
    _wait_streaming(pipeline, worker)
    first_read = _rows_done(worker)
    worker.process.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0, worker.output()

    # Read it again, and stop that half-way with a cancel under a new nonce.
    again = {**config, "snapshotRequest": {"tables": [name], "nonce": "again-1"}}
    worker = spawn_worker(again)
    _wait_started(pipeline, worker)
    _wait_chunk(pipeline, worker, first_read)  # the count goes on from the first read's
    assert _status(worker).get("state") == "Snapshotting", "the re-read ended too soon"
    worker.process.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0, worker.output()
    cancel = {
        **config,
        "snapshotRequest": {"tables": [name], "nonce": "again-2", "cancel": True},
    }
    worker = spawn_worker(cancel)
    _wait_streaming(pipeline, worker, timeout=30)
    assert _table_progress(worker, name).get("state") == "Cancelled", _status(worker)
    time.sleep(1)  # the writer's changes to the table stream on
    writer.done.set()
    writer.join()
    target = pipeline.server_position()

    def caught_up() -> bool:
        position = _status(worker).get("position") or {}
        return bool(position) and (position["file"], position["pos"]) >= target

    pipeline.wait_until(caught_up, 120, "catching up")
    worker.process.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0, worker.output()

    records = pipeline.records("k")
    verdict = check(records, writer.history, rereads=True)
    assert verdict.clean, f"{verdict}"
    reads = Counter(v["data"]["id"] for _, v in records if v["type"] == "bootstrap-insert")
    read_twice = sum(1 for count in reads.values() if count == 2)
    seeded = {r[0] for r in sql(f"SELECT id FROM {table} WHERE id % 2 = 0 AND id <= {2 * rows}")}
    # Cut short after its first chunks: far fewer keys read twice than a whole re-read.
    assert 0 < read_twice < len(seeded) // 2, f"{read_twice} of {len(seeded)} keys read again"
    assert max(reads.values()) == 2
    source = {(r[0],): {"id": r[0], "seq": r[1]} for r in sql(f"SELECT id, seq FROM {table}")}
    assert pipeline.replay(records) == source
