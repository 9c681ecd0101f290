"""Transient errors: a lost MySQL connection is retried from the checkpoint, counted and shown
in status, and loses or repeats nothing."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from tests.integration.runtime.conftest import Pipeline, local_ports_to

pytestmark = [pytest.mark.mysql, pytest.mark.kafka]


def test_lost_mysql_connection_is_retried_counted_and_loses_nothing(
    pipeline: Pipeline,
    testenv: Any,
) -> None:
    sql, table = pipeline.sql, f"{pipeline.db}.t"
    sql(f"CREATE TABLE {table} (id int PRIMARY KEY)")
    worker = pipeline.run(mode="cdc")
    pipeline.wait_streaming(worker)
    sql(f"INSERT INTO {table} VALUES (1), (2)")
    pipeline.wait_until(lambda: worker.tracker.events >= 2, 30, "the first events")

    ours = local_ports_to(testenv.mysql["port"])
    dumps = [
        row[0]
        for row in sql("SHOW PROCESSLIST")
        if row[4] == "Binlog Dump" and int(str(row[2]).rsplit(":", 1)[-1]) in ours
    ]
    assert len(dumps) == 1, dumps
    sql(f"INSERT INTO {table} VALUES (3)")
    sql(f"KILL CONNECTION {dumps[0]}")
    sql(f"INSERT INTO {table} VALUES (4)")

    pipeline.wait_until(lambda: worker.tracker.events >= 4, 60, "events after the retry")
    assert worker.tracker.restarts >= 1
    assert worker.tracker.errors_by_reason.get("ConnectionLost", 0) >= 1
    assert any(e["reason"] == "ConnectionLost" for e in worker.tracker.view()["lastErrors"])
    assert worker.tracker.state == "Streaming"
    records = pipeline.records("t")
    assert Counter(v["data"]["id"] for _, v in records) == {1: 1, 2: 1, 3: 1, 4: 1}


def test_unreachable_source_is_retried_with_backoff_then_fails_with_the_reason(
    make_config: Callable[..., dict[str, Any]], run_worker: Callable[..., Any]
) -> None:
    import time

    config = make_config(restartPolicy={"maxRetries": 2, "backoff": "300ms", "multiplier": 2})
    config["source"]["port"] = 1  # nothing listens there
    started = time.monotonic()
    worker = run_worker(config)
    assert worker.join(60) == 1
    elapsed = time.monotonic() - started
    # The third consecutive failure is one more than maxRetries: stopped, naming the cause.
    assert worker.worker.failure.reason == "TooManyRestarts"
    assert "3 consecutive failures" in worker.worker.failure.message
    assert "ConnectionLost" in worker.worker.failure.message
    assert worker.tracker.restarts == 2
    assert worker.tracker.errors_by_reason == {"ConnectionLost": 3, "TooManyRestarts": 1}
    assert elapsed < 0.3 + 0.6 + 15  # full jitter: each wait in [0, backoff x multiplier^n)
    assert worker.tracker.state == "Failed"
    assert worker.tracker.view()["retry"] == {"streak": 3, "nextRetryTime": None}
