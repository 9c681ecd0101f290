"""The Kafka broker restarted mid-stream: the worker retries with backoff, counts the error,
and a read_committed consumer sees every change exactly once. The broker is a private one
(tests/integration/scratch.py), so the shared broker is never restarted."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tests.integration.scratch import ScratchKafka

pytestmark = [pytest.mark.mysql, pytest.mark.kafka]


@pytest.fixture
def broker(kafka_bootstrap: str) -> Iterator[ScratchKafka]:
    server = ScratchKafka()
    yield server
    server.remove()


@pytest.mark.long
def test_broker_restart_mid_stream_loses_and_repeats_nothing(
    broker: ScratchKafka,
    database: str,
    admin_sql: Callable[..., Any],
    make_config: Callable[..., dict[str, Any]],
    run_worker: Callable[..., Any],
    topic_prefix: str,
    helpers: Any,
) -> None:
    table = f"`{database}`.t"
    admin_sql(f"CREATE TABLE {table} (id INT PRIMARY KEY)")
    admin_sql(f"INSERT INTO {table} VALUES " + ", ".join(f"({i})" for i in range(1, 101)))
    config = make_config(restartPolicy={"maxRetries": 30, "backoff": "500ms", "maxBackoff": "3s"})
    config["sink"]["kafka"]["bootstrapServers"] = broker.bootstrap
    worker = run_worker(config)
    helpers.wait_until(lambda: worker.tracker.events >= 100, 90, "the snapshot")

    admin_sql(f"INSERT INTO {table} VALUES " + ", ".join(f"({i})" for i in range(101, 201)))
    helpers.wait_until(lambda: worker.tracker.events >= 200, 60, "the first live rows")
    broker.stop_server()
    for first in range(201, 301, 10):  # rows written while the broker is down
        admin_sql(
            f"INSERT INTO {table} VALUES " + ", ".join(f"({i})" for i in range(first, first + 10))
        )
    # librdkafka rides out a short outage by itself (nothing to count); this one outlasts the
    # sink's 30 s acknowledgement timeout, so the worker must give up the batch and restart.
    time.sleep(40)
    broker.start_server()
    admin_sql(f"INSERT INTO {table} VALUES " + ", ".join(f"({i})" for i in range(301, 401)))

    helpers.wait_until(lambda: worker.tracker.events >= 400, 180, "every row after the restart")
    assert worker.tracker.restarts >= 1, worker.tracker.view()
    assert worker.tracker.errors >= 1
    assert worker.tracker.view()["lastErrors"], "the error is visible in status"
    records = helpers.read_topic(broker.bootstrap, f"{topic_prefix}.{database}.t")
    ids = Counter(v["data"]["id"] for _, v in records)
    assert set(ids) == set(range(1, 401))
    assert max(ids.values()) == 1, ids.most_common(3)
