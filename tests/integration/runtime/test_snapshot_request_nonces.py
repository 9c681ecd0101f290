"""The one-shot nonces stored beside the checkpoint survive each other: a resetPosition
applied after a snapshotRequest keeps the request's nonce, so the same manifest (both
fields set) does not read the tables a second time."""

from __future__ import annotations

from collections import Counter

import pytest
from tests.integration.runtime.conftest import Pipeline

pytestmark = [pytest.mark.mysql, pytest.mark.kafka]


def _reads(pipeline: Pipeline) -> Counter[int]:
    records = pipeline.records("t")
    return Counter(v["data"]["id"] for _, v in records if v["type"] == "bootstrap-insert")


@pytest.mark.timeout(120)
def test_a_reset_position_keeps_the_snapshot_request_nonce(pipeline: Pipeline) -> None:
    sql, table, name = pipeline.sql, f"{pipeline.db}.t", f"{pipeline.database}.t"
    sql(f"CREATE TABLE {table} (id int PRIMARY KEY, v int)")
    sql(f"INSERT INTO {table} SELECT seq, 0 FROM {pipeline.db}.seq_1_to_50")
    worker = pipeline.run()
    pipeline.wait_streaming(worker)
    assert worker.stop() == 0

    request = {"tables": [name], "nonce": "again-1"}
    worker = pipeline.run(snapshotRequest=request)
    pipeline.wait_until(lambda: worker.tracker.snapshot_done, 60, "the re-read")
    pipeline.wait_streaming(worker)
    assert worker.stop() == 0
    assert set(_reads(pipeline).values()) == {2}

    # The same manifest with a resetPosition added: the reset applies, the request does not
    # run again (before the fix, the reset's checkpoint dropped the request's nonce).
    worker = pipeline.run(
        snapshotRequest=request, resetPosition={"to": "latest", "nonce": "reset-1"}
    )
    pipeline.wait_streaming(worker)
    sql(f"UPDATE {table} SET v = 1 WHERE id = 1")
    pipeline.wait_caught_up(worker, 30, "the update")
    assert worker.stop() == 0
    # And once more: the stored nonces hold across a plain restart too.
    worker = pipeline.run(
        snapshotRequest=request, resetPosition={"to": "latest", "nonce": "reset-1"}
    )
    pipeline.wait_streaming(worker)
    pipeline.wait_caught_up(worker, 30)
    assert worker.stop() == 0

    reads = _reads(pipeline)
    assert set(reads.values()) == {2}, f"keys read {sorted(set(reads.values()))} times"
    updates = [v for _, v in pipeline.records("t") if v["type"] == "update"]
    assert [u["data"] for u in updates] == [{"id": 1, "v": 1}]
