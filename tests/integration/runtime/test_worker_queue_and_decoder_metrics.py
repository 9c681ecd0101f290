"""The worker's /metrics, as a ``ferry-worker`` process serves it while it runs on the real
MariaDB and Kafka: ``ferry_queue_fill_ratio`` rises while the sink falls behind the binlog
reader and goes back to 0 once it caught up; ``ferry_slow_decoder_events_total`` counts the
rows events of a table the fast row decoder leaves to the library (a GEOMETRY column), and
none of a table it decodes."""

from __future__ import annotations

import re
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.support import wait_until

pytestmark = [pytest.mark.mysql, pytest.mark.kafka]

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(worker: Any) -> Samples | None:
    found = re.search(r"status on port (\d+)", worker.output())
    if not found:
        return None
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{found.group(1)}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return None
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def state(samples: Samples | None) -> str | None:
    for (name, labels), value in (samples or {}).items():
        if name == "ferry_state" and value == 1:
            return dict(labels)["ferry_state"]
    return None


def test_queue_fill_and_slow_decoder_events_on_metrics(
    database: str,
    admin_sql: Callable[..., Any],
    mysql_connect: Callable[..., Any],
    make_config: Callable[..., dict[str, Any]],
    spawn_worker: Callable[..., Any],
) -> None:
    admin_sql(f"CREATE TABLE `{database}`.fast (id int PRIMARY KEY, v int)")
    admin_sql(f"CREATE TABLE `{database}`.geo (id int PRIMARY KEY, p POINT NOT NULL)")
    # One Kafka transaction per source transaction (batchSize 1) against a queue of 8: the
    # reader, which only parses, gets ahead of the sink, which commits each one.
    config = make_config(
        mode="cdc",
        performance={"batchSize": 1, "queueSize": 8, "maxBatchDelay": "100ms"},
    )
    worker = spawn_worker(config)
    wait_until(lambda: state(scrape(worker)) == "Streaming", 60, "the worker to stream")
    # Other tests' transactions on the shared server pass through the reader too: wait for a
    # quiet moment rather than expect one.
    before = wait_until(
        lambda: (m := scrape(worker)) and m[("ferry_queue_fill_ratio", frozenset())] == 0.0 and m,
        30,
        "an empty queue",
    )
    assert not any(name == "ferry_slow_decoder_events_total" for name, _ in before)

    writes = 600
    done = threading.Event()

    def write() -> None:
        conn = mysql_connect(admin=True)  # autocommit
        try:
            with conn.cursor() as cursor:
                for n in range(1, writes + 1):  # each its own transaction
                    cursor.execute(f"INSERT INTO `{database}`.fast VALUES (%s, %s)", (n, n))
                for n in range(1, 6):
                    cursor.execute(
                        f"INSERT INTO `{database}`.geo VALUES (%s, POINT(%s, 2))", (n, n)
                    )
        finally:
            conn.close()
            done.set()

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    fills: list[float] = []
    deadline = time.monotonic() + 120
    events_key = (
        "ferry_events_total",
        frozenset({("table", f"{database}.fast"), ("op", "insert")}),
    )
    while time.monotonic() < deadline:
        samples = scrape(worker)
        if samples is not None:
            fills.append(samples[("ferry_queue_fill_ratio", frozenset())])
            if done.is_set() and samples.get(events_key, 0) >= writes:
                break
        time.sleep(0.02)
    writer.join(10)
    assert max(fills) >= 0.5, f"the queue never filled: {sorted(fills)[-10:]}"
    assert all(0.0 <= f <= 1.0 for f in fills)

    geo = frozenset({("table", f"{database}.geo"), ("reason", "unsupported")})
    wait_until(
        lambda: (scrape(worker) or {}).get(("ferry_slow_decoder_events_total", geo)) == 5,
        60,
        "5 slow-decoded rows events of the GEOMETRY table",
    )
    wait_until(
        lambda: (scrape(worker) or {}).get(("ferry_queue_fill_ratio", frozenset())) == 0.0,
        30,
        "the queue to drain",
    )
    after = scrape(worker)
    assert after is not None
    slow = {labels: v for (name, labels), v in after.items() if name.startswith("ferry_slow_")}
    assert slow == {geo: 5.0}, slow  # the table the fast decoder reads has no series
    worker.process.terminate()
    assert worker.wait(30) == 0
