"""snapshotRequest.where: only the rows matching the condition are read again (a second
snapshot row for each of them, none for the others), on every chunk of the request's tables
only; a condition the server refuses stops the task with InvalidConfig naming the field."""

from __future__ import annotations

from collections import Counter

import pytest
from tests.integration.runtime.conftest import Pipeline

pytestmark = [pytest.mark.mysql, pytest.mark.kafka]


def _reads(pipeline: Pipeline, table: str) -> Counter[int]:
    records = pipeline.records(table)
    return Counter(v["data"]["id"] for _, v in records if v["type"] == "bootstrap-insert")


@pytest.mark.timeout(120)
def test_only_the_rows_matching_where_are_read_again(pipeline: Pipeline) -> None:
    sql, db = pipeline.sql, pipeline.db
    sql(f"CREATE TABLE {db}.t (id int PRIMARY KEY, note varchar(10))")
    sql(f"CREATE TABLE {db}.other (id int PRIMARY KEY, note varchar(10))")
    for table in ("t", "other"):  # even ids 'k…', odd ids 'x'
        sql(
            f"INSERT INTO {db}.{table} SELECT seq, IF(seq % 2 = 0, 'k%', 'x') "
            f"FROM {db}.seq_1_to_200"
        )
    performance = {"snapshotChunkSize": 10}
    worker = pipeline.run(performance=performance)
    pipeline.wait_streaming(worker)
    assert worker.stop() == 0

    # A '%' in the condition is literal (chunks after the first are formatted with keys).
    where = "id > 150 AND note LIKE 'k\\%'"
    request = {"tables": [f"{pipeline.database}.t"], "nonce": "w1", "where": where}
    worker = pipeline.run(performance=performance, snapshotRequest=request)
    pipeline.wait_until(lambda: worker.tracker.snapshot_done, 60, "the re-read")
    pipeline.wait_streaming(worker)
    sql(f"UPDATE {db}.t SET note = 'y' WHERE id = 3")  # outside the condition: streams
    pipeline.wait_caught_up(worker, 30, "the update")
    assert worker.stop() == 0

    reads = _reads(pipeline, "t")
    twice = {key for key, count in reads.items() if count == 2}
    assert twice == set(range(152, 201, 2)), sorted(twice)
    assert set(reads) == set(range(1, 201)) and max(reads.values()) == 2
    assert set(_reads(pipeline, "other").values()) == {1}  # not in the request: not re-read
    source = {(r[0],): {"id": r[0], "note": r[1]} for r in sql(f"SELECT id, note FROM {db}.t")}
    assert pipeline.replay(pipeline.records("t")) == source

    # A condition the server refuses stops the task before anything is recorded.
    bad = {**request, "nonce": "w2", "where": "no_such_column > 1"}
    worker = pipeline.run(performance=performance, snapshotRequest=bad)
    assert worker.join(60) == 1
    failure = worker.worker.failure
    assert failure is not None and failure.reason == "InvalidConfig", failure
    assert "spec.snapshotRequest.where 'no_such_column > 1'" in failure.message
    assert f"{pipeline.database}.t" in failure.message
    assert _reads(pipeline, "t") == reads  # nothing read again
