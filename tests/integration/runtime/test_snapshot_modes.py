"""mode: snapshot copies the selected tables (with and without a primary key) and completes."""

from __future__ import annotations

from collections import Counter

import pytest
from tests.integration.runtime.conftest import Pipeline

pytestmark = [pytest.mark.mysql, pytest.mark.kafka]


def test_snapshot_mode_copies_tables_with_and_without_a_key_and_completes(
    pipeline: Pipeline,
) -> None:
    sql, db, database = pipeline.sql, pipeline.db, pipeline.database
    sql(f"CREATE TABLE {db}.keyed (a int, b varchar(10), PRIMARY KEY (b, a))")
    sql(f"CREATE TABLE {db}.loose (line varchar(20))")
    sql(f"INSERT INTO {db}.keyed SELECT seq % 7, CONCAT('k', seq % 13) FROM {db}.seq_1_to_91")
    sql(f"INSERT INTO {db}.loose SELECT CONCAT('line ', seq) FROM {db}.seq_1_to_2500")
    sql(f"INSERT INTO {db}.loose VALUES ('line 1')")  # a duplicate row, no key
    worker = pipeline.run(mode="snapshot", performance={"snapshotChunkSize": 10})
    assert worker.join(120) == 0
    assert worker.tracker.state == "Completed"
    progress = worker.tracker.progress()
    assert progress["percent"] == 100.0
    assert {t["name"]: t["rowsDone"] for t in progress["tables"]} == {
        f"{database}.keyed": 91,
        f"{database}.loose": 2501,
    }
    keyed = pipeline.records("keyed")
    assert sorted((v["data"]["b"], v["data"]["a"]) for _, v in keyed) == sorted(
        (f"k{n % 13}", n % 7) for n in range(1, 92)
    )
    assert keyed[0][0] == {"database": database, "table": "keyed", "pk.b": "k0", "pk.a": 0}
    loose = pipeline.records("loose")
    expected = Counter(f"line {n}" for n in range(1, 2501)) + Counter(["line 1"])
    assert Counter(v["data"]["line"] for _, v in loose) == expected
