"""Scheduled snapshot runs on the worker's side (FERRY_RUN, ferry_runtime.runs): a new run id
copies every table again, the same id (a pod restarted after its run) copies nothing, against
the real MariaDB and Kafka."""

from __future__ import annotations

from typing import Any

import pytest

from ferry_runtime import runs

pytestmark = [pytest.mark.mysql, pytest.mark.kafka]


def test_each_run_copies_once_and_a_restart_of_a_run_copies_nothing(
    pipeline: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline.sql(f"CREATE TABLE {pipeline.db}.orders (id INT PRIMARY KEY, v INT)")
    pipeline.sql(f"INSERT INTO {pipeline.db}.orders VALUES (1, 1), (2, 2), (3, 3)")

    def run(run_id: str) -> Any:
        monkeypatch.setenv(runs.RUN_ENV, run_id)
        worker = pipeline.run(mode="snapshot")
        assert worker.join(90) == 0
        assert worker.tracker.state == "Completed"
        return worker

    first = run("20261202T020000Z")
    assert first.tracker.view()["progress"]["rowsDone"] == 3
    assert len(pipeline.records("orders")) == 3

    again = run("20261202T020000Z")  # the same run: its checkpoint says it is done
    assert again.tracker.events == first.tracker.events
    assert len(pipeline.records("orders")) == 3

    pipeline.sql(f"INSERT INTO {pipeline.db}.orders VALUES (4, 4)")
    pipeline.sql(f"UPDATE {pipeline.db}.orders SET v = 20 WHERE id = 2")
    second = run("20261203T020000Z")  # the next tick: every row once more, as it is now
    assert second.tracker.view()["progress"]["rowsDone"] == 4
    records = pipeline.records("orders")
    assert len(records) == 3 + 4
    latest = pipeline.replay(records)
    assert sorted(row["v"] for row in latest.values()) == [1, 3, 4, 20]
