"""A real status server on a free port, fed by the test through its tracker."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ferry_runtime import server
from ferry_runtime.status import StatusTracker


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def tracker(clock: Clock) -> StatusTracker:
    return StatusTracker(clock=clock)


@pytest.fixture
def base_url(tracker: StatusTracker) -> Iterator[str]:
    running = server.start(tracker, 0, stall_timeout=30)
    assert running.port > 0
    yield f"http://127.0.0.1:{running.port}"
    running.stop()


def get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


def get_json(url: str) -> tuple[int, Any]:
    code, content_type, body = get(url)
    assert content_type == "application/json"
    return code, json.loads(body)


def test_readyz_follows_the_state(base_url: str, tracker: StatusTracker) -> None:
    assert get_json(base_url + "/readyz") == (503, {"ready": False, "state": "Starting"})
    for state, code in [
        ("Snapshotting", 200),
        ("Streaming", 200),
        ("Stopping", 503),
        ("Completed", 200),
        ("Failed", 503),
    ]:
        tracker.set_state(state)  # type: ignore[arg-type]
        assert get_json(base_url + "/readyz")[0] == code, state


def test_healthz_fails_when_a_thread_stops_beating(
    base_url: str, tracker: StatusTracker, clock: Clock
) -> None:
    assert get_json(base_url + "/healthz") == (200, {"ok": True})
    tracker.heartbeat("binlog-reader")
    tracker.heartbeat("sink")
    clock.now += 31
    tracker.heartbeat("sink")
    assert get_json(base_url + "/healthz") == (503, {"ok": False, "stalled": ["binlog-reader"]})
    tracker.heartbeat("binlog-reader")
    assert get_json(base_url + "/healthz")[0] == 200


def test_status_holds_the_view_and_the_breakdown(
    base_url: str, tracker: StatusTracker, clock: Clock
) -> None:
    tracker.set_state("Snapshotting")
    tracker.start_table("shop.orders", 1000)
    clock.now += 10
    tracker.record_snapshot_rows("shop.orders", 400)
    tracker.record_delivered(
        {("shop.orders", "insert"): 400}, {"file": "binlog.000003", "pos": 1234}, None
    )
    for n in range(12):
        tracker.record_error("ConnectionLost", f"lost connection {n}", position="binlog.000003:4")

    code, body = get_json(base_url + "/status")
    assert code == 200
    assert body["state"] == "Snapshotting"
    assert body["position"] == {
        "file": "binlog.000003",
        "pos": 1234,
        "display": "binlog.000003:1234",
    }
    assert body["progress"]["percent"] == 40.0
    assert body["progress"]["eta"] == "2027-01-15T08:00:25Z"  # 400 rows/10 s, 600 to go
    assert body["counters"]["events"] == 400
    assert body["counters"]["errors"] == 12
    assert body["counters"]["eventsByTable"] == {"shop.orders": {"insert": 400}}
    assert body["counters"]["errorsByReason"] == {"ConnectionLost": 12}
    assert len(body["lastErrors"]) == 10
    assert body["lastErrors"][0]["message"] == "lost connection 11"
    assert body["throughput"]["eventsPerSecond"] == 40.0
    assert set(body) == {
        "state",
        "position",
        "lag",
        "throughput",
        "progress",
        "counters",
        "retry",
        "lastErrors",
        "lastSkip",
        "lastResnapshot",
        "verification",
        "selectedTables",
        "appliedRevision",
        "heartbeatTime",
    }
    assert body["appliedRevision"] is None  # no revision file (not on Kubernetes)
    assert body["lastSkip"] is None  # no spec.skipEvent applied
    assert body["lastResnapshot"] is None  # no purged binlog recovered from
    assert body["verification"] is None  # no spec.verifyRequest
    assert body["retry"] == {"streak": 0, "nextRetryTime": None}

    tracker.finish_table("shop.orders")
    tracker.set_state("Streaming")
    _, body = get_json(base_url + "/status")
    assert body["progress"]["percent"] == 100.0
    assert body["progress"]["eta"] is None


def test_metrics_are_exposed_in_prometheus_text(base_url: str, tracker: StatusTracker) -> None:
    tracker.record_delivered({("shop.orders", "delete"): 3}, {}, None)
    tracker.observe_batch_latency(0.2)
    code, content_type, text = get(base_url + "/metrics")
    assert code == 200
    assert content_type.startswith("text/plain")
    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert {
        "ferry_events",
        "ferry_errors",
        "ferry_lag_seconds",
        "ferry_batch_latency_seconds",
        "ferry_snapshot_rows",
        "ferry_restarts",
        "ferry_state",
        "ferry_checkpoint_age_seconds",
    } <= set(families)
    events = [s for s in families["ferry_events"].samples if s.name == "ferry_events_total"]
    assert [(s.labels, s.value) for s in events] == [
        ({"table": "shop.orders", "op": "delete"}, 3.0)
    ]


def test_unknown_path_is_404_and_stop_releases_the_port(tracker: StatusTracker) -> None:
    running = server.start(tracker, 0)
    url = f"http://127.0.0.1:{running.port}"
    assert get_json(url + "/nope")[0] == 404
    running.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "/healthz", timeout=2)
    again = server.start(tracker, running.port)  # the port is free again
    try:
        assert get_json(f"http://127.0.0.1:{again.port}/healthz")[0] == 200
    finally:
        again.stop()
