"""restartPolicy.maxRetries caps *consecutive* failures: recoveries spaced past resetAfter of
healthy progress never add up to the limit, while failures in a row stop the worker with
TooManyRestarts naming the cause. Failures are real: the worker's binlog connection is
killed on the real MariaDB."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest
from tests.integration.runtime.conftest import Pipeline, WorkerThread, local_ports_to

pytestmark = [pytest.mark.mysql, pytest.mark.kafka]


def _kill_binlog_dump(pipeline: Pipeline, port: int) -> None:
    """KILL the worker's Binlog Dump connection (ours: found by this process's ports)."""

    def dump() -> Any:
        ours = local_ports_to(port)
        found = [
            row[0]
            for row in pipeline.sql("SHOW PROCESSLIST")
            if row[4] == "Binlog Dump" and int(str(row[2]).rsplit(":", 1)[-1]) in ours
        ]
        return found[0] if len(found) == 1 else None

    pipeline.sql(f"KILL CONNECTION {pipeline.wait_until(dump, 30, 'the binlog connection')}")


def _deliver(pipeline: Pipeline, worker: WorkerThread, row: int) -> None:
    pipeline.sql(f"INSERT INTO {pipeline.db}.t VALUES ({row})")
    pipeline.wait_until(lambda: worker.tracker.events >= row, 60, f"row {row} delivered")


def test_recoveries_spaced_past_reset_after_keep_the_task_running(
    pipeline: Pipeline, testenv: Any
) -> None:
    pipeline.sql(f"CREATE TABLE {pipeline.db}.t (id int PRIMARY KEY)")
    worker = pipeline.run(
        mode="cdc",
        restartPolicy={"maxRetries": 2, "resetAfter": "1s", "backoff": "100ms"},
    )
    pipeline.wait_streaming(worker)
    for row in range(1, 12):
        _deliver(pipeline, worker, row)
        time.sleep(1.3)  # healthy for longer than resetAfter
        _kill_binlog_dump(pipeline, testenv.mysql["port"])
        pipeline.wait_until(lambda: worker.tracker.retry_streak >= 1, 30, "the failure seen")
    _deliver(pipeline, worker, 12)

    # 11 recovered failures, more than maxRetries (2), and still streaming.
    assert worker.tracker.restarts == 11
    assert worker.tracker.errors_by_reason == {"ConnectionLost": 11}
    assert worker.tracker.state == "Streaming" and worker.exit_code is None
    time.sleep(1.3)
    _deliver(pipeline, worker, 13)  # progress past resetAfter: the streak is 0 again
    assert worker.tracker.view()["retry"] == {"streak": 0, "nextRetryTime": None}
    records = pipeline.records("t")
    assert Counter(v["data"]["id"] for _, v in records) == {n: 1 for n in range(1, 14)}


def test_failures_in_a_row_stop_the_worker_even_with_progress_between(
    pipeline: Pipeline, testenv: Any
) -> None:
    """Progress between failures does not reset the streak; only resetAfter of it does."""
    pipeline.sql(f"CREATE TABLE {pipeline.db}.t (id int PRIMARY KEY)")
    worker = pipeline.run(
        mode="cdc",
        restartPolicy={"maxRetries": 2, "resetAfter": "1h", "backoff": "100ms"},
    )
    pipeline.wait_streaming(worker)
    for row in range(1, 4):
        _deliver(pipeline, worker, row)
        _kill_binlog_dump(pipeline, testenv.mysql["port"])
        if row < 3:
            pipeline.wait_until(lambda n=row: worker.tracker.retry_streak >= n, 30, "the failure")
            view = worker.tracker.view()["retry"]
            assert view["streak"] == row
    assert worker.join(60) == 1
    failure = worker.worker.failure
    assert failure is not None and failure.reason == "TooManyRestarts"
    assert "3 consecutive failures, more than restartPolicy.maxRetries (2)" in failure.message
    assert "ConnectionLost" in failure.message
    assert worker.tracker.view()["lastErrors"][0]["reason"] == "TooManyRestarts"
    records = pipeline.records("t")
    assert Counter(v["data"]["id"] for _, v in records) == {1: 1, 2: 1, 3: 1}


def test_eleven_consecutive_failures_stop_with_the_reason_and_show_the_next_retry(
    pipeline: Pipeline,
) -> None:
    config = pipeline.config(
        restartPolicy={"maxRetries": 10, "backoff": "200ms", "maxBackoff": "400ms"}
    )
    config["source"]["port"] = 1  # nothing listens there: every attempt fails
    worker = pipeline.start(config)
    # While backing off, status says which failure this is and when the next try comes.
    seen = pipeline.wait_until(
        lambda: (r := worker.tracker.view()["retry"])["nextRetryTime"] and r, 30, "a retry"
    )
    assert seen["streak"] >= 1
    assert worker.join(60) == 1
    failure = worker.worker.failure
    assert failure is not None and failure.reason == "TooManyRestarts"
    assert "11 consecutive failures, more than restartPolicy.maxRetries (10)" in failure.message
    assert worker.tracker.errors_by_reason == {"ConnectionLost": 11, "TooManyRestarts": 1}
