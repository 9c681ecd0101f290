"""Status survives a worker restart: the counters, the per-table snapshot progress and a
finished snapshot come back from the checkpoint (the real Kafka sink and MariaDB source),
instead of dropping to 0."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = [pytest.mark.mysql, pytest.mark.kafka]


def _rows(pipeline: Any, table: str, first: int, last: int) -> None:
    values = ", ".join(f"({i})" for i in range(first, last + 1))
    pipeline.sql(f"INSERT INTO {pipeline.db}.{table} VALUES {values}")


def test_counters_and_progress_unchanged_across_a_restart(pipeline: Any) -> None:
    pipeline.sql(f"CREATE TABLE {pipeline.db}.a (id INT PRIMARY KEY)")
    pipeline.sql(f"CREATE TABLE {pipeline.db}.b (id INT PRIMARY KEY)")
    _rows(pipeline, "a", 1, 300)
    _rows(pipeline, "b", 1, 50)
    first = pipeline.run()
    pipeline.wait_streaming(first)
    _rows(pipeline, "a", 301, 320)
    pipeline.wait_until(lambda: first.tracker.events >= 370, 60, "snapshot and live rows")
    pipeline.wait_caught_up(first)
    assert first.stop() == 0
    before = first.tracker.view()
    assert before["counters"]["events"] == 370
    assert before["progress"]["percent"] == 100.0

    second = pipeline.run()
    pipeline.wait_streaming(second)
    after = second.tracker.view()
    assert after["counters"]["events"] == before["counters"]["events"]
    assert after["counters"]["errors"] == before["counters"]["errors"]
    assert after["counters"]["restarts"] == before["counters"]["restarts"]
    progress = after["progress"]
    assert (progress["percent"], progress["display"]) == (100.0, "100%")
    assert progress["eta"] is None
    by_name = {t["name"]: t for t in progress["tables"]}
    assert by_name == {t["name"]: t for t in before["progress"]["tables"]}
    assert by_name[f"{pipeline.database}.a"] == {
        "name": f"{pipeline.database}.a", "rowsDone": 300, "rowsTotal": 300, "state": "Done",
    }  # fmt: skip
    assert by_name[f"{pipeline.database}.b"]["rowsDone"] == 50

    _rows(pipeline, "b", 51, 55)  # and they go on counting from there
    pipeline.wait_until(lambda: second.tracker.events >= 375, 60, "new rows counted on top")
    assert second.tracker.events == 375
