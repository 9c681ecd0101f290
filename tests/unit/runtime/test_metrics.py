"""The Prometheus collector reads the tracker; registries are private per tracker."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ferry_runtime import metrics
from ferry_runtime.status import StatusTracker


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def samples(tracker: StatusTracker) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = generate_latest(metrics.registry(tracker)).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_follow_the_tracker() -> None:
    clock = Clock()
    tracker = StatusTracker(clock=clock)
    tracker.set_state("Snapshotting")
    tracker.start_table("shop.orders", 200)
    tracker.record_snapshot_rows("shop.orders", 50)
    tracker.record_delivered(
        {("shop.orders", "insert"): 50, ("shop.users", "update"): 2}, {}, clock.now - 4
    )
    tracker.record_error("ConnectionLost", "lost the binlog connection")
    tracker.record_error("ConnectionLost", "lost it again")
    tracker.record_restart()
    tracker.observe_batch_latency(0.02)
    tracker.observe_batch_latency(0.7)
    clock.now += 1
    got = samples(tracker)

    assert (
        got[("ferry_events_total", frozenset({("table", "shop.orders"), ("op", "insert")}))] == 50
    )
    assert got[("ferry_events_total", frozenset({("table", "shop.users"), ("op", "update")}))] == 2
    assert got[("ferry_errors_total", frozenset({("reason", "ConnectionLost")}))] == 2
    assert got[("ferry_snapshot_rows_total", frozenset({("table", "shop.orders")}))] == 50
    assert got[("ferry_snapshot_rows_estimate", frozenset({("table", "shop.orders")}))] == 200
    assert got[("ferry_snapshot_progress_percent", frozenset())] == 25.0
    assert got[("ferry_lag_seconds", frozenset())] == 5.0
    assert got[("ferry_checkpoint_age_seconds", frozenset())] == 1.0
    assert got[("ferry_restarts_total", frozenset())] == 1
    assert got[("ferry_batch_latency_seconds_count", frozenset())] == 2
    assert got[("ferry_batch_latency_seconds_bucket", frozenset({("le", "0.025")}))] == 1
    assert got[("ferry_batch_latency_seconds_bucket", frozenset({("le", "1.0")}))] == 2
    assert got[("ferry_state", frozenset({("ferry_state", "Snapshotting")}))] == 1
    assert got[("ferry_state", frozenset({("ferry_state", "Streaming")}))] == 0

    tracker.set_state("Streaming")
    tracker.set_caught_up(True)
    got = samples(tracker)
    assert got[("ferry_state", frozenset({("ferry_state", "Streaming")}))] == 1
    assert got[("ferry_lag_seconds", frozenset())] == 0.0


def test_no_checkpoint_age_before_the_first_checkpoint_and_registries_are_separate() -> None:
    first, second = StatusTracker(clock=Clock()), StatusTracker(clock=Clock())
    second.record_delivered({("a.b", "insert"): 9}, {}, None)
    assert not any(name == "ferry_checkpoint_age_seconds" for name, _ in samples(first))
    assert ("ferry_events_total", frozenset({("table", "a.b"), ("op", "insert")})) not in samples(
        first
    )
    assert (
        samples(second)[("ferry_events_total", frozenset({("table", "a.b"), ("op", "insert")}))]
        == 9
    )
