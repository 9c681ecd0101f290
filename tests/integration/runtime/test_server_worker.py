"""The status port of a real worker (real MariaDB and Kafka): /status and /metrics while it
snapshots and streams — ETA while snapshotting, every table at 100 %, lag back near 0 after
catching up, counters and metrics that match what happened."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ferry_runtime import server

pytestmark = [pytest.mark.mysql, pytest.mark.kafka]
ROWS = 40_000


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def metric_samples(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    _, text = get(url + "/metrics")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_status_and_metrics_of_a_real_worker(
    database: str,
    admin_sql: Callable[..., Any],
    make_config: Callable[..., dict[str, Any]],
    run_worker: Callable[..., Any],
    helpers: Any,
) -> None:
    admin_sql(f"CREATE TABLE `{database}`.items (id int PRIMARY KEY, name varchar(40))")
    admin_sql(
        f"INSERT INTO `{database}`.items SELECT seq, CONCAT('item ', seq) "
        f"FROM `{database}`.seq_1_to_{ROWS}"
    )
    admin_sql(f"CREATE TABLE `{database}`.empty (id int PRIMARY KEY)")
    worker = run_worker(make_config(performance={"snapshotChunkSize": 500}))
    status_server = server.start(worker.tracker, 0)
    url = f"http://127.0.0.1:{status_server.port}"
    try:
        snapshotting: list[dict[str, Any]] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            body = json.loads(get(url + "/status")[1])
            if body["state"] == "Snapshotting":
                snapshotting.append(body)
            if body["state"] == "Streaming":
                break
            time.sleep(0.05)
        assert body["state"] == "Streaming"
        assert get(url + "/readyz")[0] == 200
        mid = [s for s in snapshotting if 0 < s["progress"]["rowsDone"] < ROWS]
        assert mid, "never saw the snapshot in progress"
        assert all(s["progress"]["eta"] for s in mid), "an ETA is shown while snapshotting"
        # Below 100 % while a table is still being copied (the state can stay Snapshotting a
        # moment after the last table is done, while the final checkpoint commits).
        copying = [
            s for s in snapshotting if any(t["state"] != "Done" for t in s["progress"]["tables"])
        ]
        assert copying and all(s["progress"]["percent"] < 100 for s in copying)
        assert body["progress"]["percent"] == 100.0
        assert body["progress"]["eta"] is None
        assert {t["name"]: (t["rowsDone"], t["state"]) for t in body["progress"]["tables"]} == {
            f"{database}.items": (ROWS, "Done"),
            f"{database}.empty": (0, "Done"),
        }

        admin_sql(
            f"INSERT INTO `{database}`.items VALUES (%s, 'new')",
            [(ROWS + n,) for n in range(1, 301)],
            many=True,
        )
        admin_sql(f"UPDATE `{database}`.items SET name = 'changed' WHERE id <= 20")
        helpers.wait_until(
            lambda: json.loads(get(url + "/status")[1])["counters"]["events"] >= ROWS + 320,
            60,
            "the streamed changes",
        )
        # caught up again: the lag goes back to (near) zero
        helpers.wait_until(
            lambda: json.loads(get(url + "/status")[1])["lag"]["seconds"] < 1.0,
            30,
            "the lag to come back near 0",
        )
        body = json.loads(get(url + "/status")[1])
        assert body["counters"]["eventsByTable"] == {
            f"{database}.items": {"read": ROWS, "insert": 300, "update": 20}
        }
        assert body["counters"]["errors"] == 0 and body["lastErrors"] == []
        assert body["position"]["file"].startswith("binlog.")

        samples = metric_samples(url)
        table = f"{database}.items"
        assert samples[("ferry_snapshot_rows_total", frozenset({("table", table)}))] == ROWS
        assert (
            samples[("ferry_events_total", frozenset({("table", table), ("op", "insert")}))] == 300
        )
        assert (
            samples[("ferry_events_total", frozenset({("table", table), ("op", "update")}))] == 20
        )
        assert samples[("ferry_batch_latency_seconds_count", frozenset())] >= ROWS / 500
        assert samples[("ferry_checkpoint_age_seconds", frozenset())] < 60
        assert samples[("ferry_state", frozenset({("ferry_state", "Streaming")}))] == 1

        assert worker.stop() == 0
        assert json.loads(get(url + "/readyz")[1]) == {"ready": False, "state": "Stopped"}
    finally:
        status_server.stop()
