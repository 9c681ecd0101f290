"""StatusTracker arithmetic: lag, rate, progress and ETA, errors, histogram, heartbeats."""

from __future__ import annotations

from ferry_runtime.status import (
    POSITION_DISPLAY_MAX,
    LatencyHistogram,
    StatusTracker,
    position_display,
)


class Clock:
    """A settable clock injected into the tracker."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_lag_is_now_minus_last_event_time_and_zero_when_caught_up() -> None:
    clock = Clock()
    tracker = StatusTracker(clock=clock)
    assert tracker.lag_seconds() == 0.0  # nothing delivered yet
    tracker.record_delivered({("db.t", "insert"): 1}, {"file": "b.1", "pos": 4}, clock.now - 7)
    clock.now += 3
    assert tracker.lag_seconds() == 10.0
    tracker.set_caught_up(True)
    assert tracker.lag_seconds() == 0.0
    tracker.set_caught_up(False)
    assert tracker.lag_seconds() == 10.0


def test_events_per_second_counts_a_ten_second_window() -> None:
    clock = Clock()
    tracker = StatusTracker(clock=clock)
    clock.now += 0.2
    tracker.record_delivered({("db.t", "insert"): 50}, {}, None)
    assert tracker.events_per_second() == 50.0  # young tracker: over at least 1 s
    clock.now += 4.8
    tracker.record_delivered({("db.t", "update"): 30, ("db.u", "delete"): 20}, {}, None)
    assert tracker.events_per_second() == 20.0  # 100 events over its 5 s of life
    clock.now += 5
    assert tracker.events_per_second() == 10.0  # 100 events / the 10 s window
    clock.now += 0.5  # the first batch leaves the window
    assert tracker.events_per_second() == 5.0
    clock.now += 20
    assert tracker.events_per_second() == 0.0
    assert tracker.events == 100


def test_progress_percent_and_eta_from_elapsed_rate() -> None:
    clock = Clock()
    tracker = StatusTracker(clock=clock)
    tracker.plan_table("db.a", 600)
    tracker.plan_table("db.b", 400)
    tracker.set_state("Snapshotting")
    tracker.start_table("db.a", 600)
    clock.now += 10
    tracker.record_snapshot_rows("db.a", 250)
    progress = tracker.progress()
    assert progress["percent"] == 25.0
    assert (progress["rowsDone"], progress["rowsTotal"]) == (250, 1000)
    # 250 rows in 10 s -> 750 rows left take 30 s more
    assert progress["eta"] == "2027-01-15T08:00:40Z"
    assert [t["state"] for t in progress["tables"]] == ["Running", "Pending"]


def test_progress_reaches_100_only_when_every_table_is_done() -> None:
    clock = Clock()
    tracker = StatusTracker(clock=clock)
    tracker.set_state("Snapshotting")
    tracker.start_table("db.a", 100)  # the estimate is low: 120 rows arrive
    tracker.record_snapshot_rows("db.a", 120)
    assert tracker.progress()["percent"] == 99.9
    tracker.finish_table("db.a")
    progress = tracker.progress()
    assert progress["percent"] == 100.0
    assert progress["eta"] is None
    assert progress["tables"][0] == {
        "name": "db.a",
        "rowsDone": 120,
        "rowsTotal": 120,
        "state": "Done",
    }


def test_last_errors_keep_the_newest_ten_newest_first() -> None:
    clock = Clock()
    tracker = StatusTracker(clock=clock)
    for n in range(13):
        clock.now += 1
        tracker.record_error("ConnectionLost" if n % 2 else "PoisonRow", f"error {n}", "db.t")
    view = tracker.view()
    assert [e["message"] for e in view["lastErrors"]] == [f"error {n}" for n in range(12, 2, -1)]
    assert view["counters"]["errors"] == 13
    assert tracker.breakdown()["errorsByReason"] == {"PoisonRow": 7, "ConnectionLost": 6}


def test_breakdown_groups_events_by_table_then_op() -> None:
    tracker = StatusTracker(clock=Clock())
    tracker.record_delivered({("db.a", "insert"): 3, ("db.b", "delete"): 1}, {}, None)
    tracker.record_delivered({("db.a", "insert"): 2, ("db.a", "update"): 4}, {}, None)
    assert tracker.breakdown()["eventsByTable"] == {
        "db.a": {"insert": 5, "update": 4},
        "db.b": {"delete": 1},
    }


def test_latency_histogram_buckets_are_cumulative() -> None:
    histogram = LatencyHistogram(bounds=(0.1, 1.0), counts=[0, 0, 0])
    for value in (0.05, 0.1, 0.5, 3.0):
        histogram.observe(value)
    assert histogram.cumulative() == [("0.1", 2), ("1.0", 3), ("+Inf", 4)]
    assert histogram.count == 4
    assert abs(histogram.total - 3.65) < 1e-9


def test_checkpoint_age_and_stalled_components() -> None:
    clock = Clock()
    tracker = StatusTracker(clock=clock)
    assert tracker.checkpoint_age() is None
    tracker.record_checkpoint({"file": "b.1", "pos": 100})
    tracker.heartbeat("reader")
    tracker.heartbeat("sink")
    clock.now += 30
    tracker.heartbeat("sink")
    assert tracker.checkpoint_age() == 30.0
    assert tracker.position == {"file": "b.1", "pos": 100}
    assert tracker.stalled(timeout=20) == ["reader"]
    assert tracker.stalled(timeout=60) == []
    tracker.set_state("Completed")  # a finished worker's threads may stop beating
    assert tracker.stalled(timeout=20) == []


def test_state_change_listeners_fire_only_on_transitions() -> None:
    tracker = StatusTracker(clock=Clock())
    seen: list[str] = []
    tracker.on_state_change(seen.append)
    tracker.set_state("Snapshotting")
    tracker.set_state("Snapshotting")
    tracker.set_state("Streaming")
    assert seen == ["Snapshotting", "Streaming"]


def test_the_reported_position_carries_its_display_and_the_checkpoint_does_not() -> None:
    tracker = StatusTracker(clock=Clock())
    assert "display" not in tracker.view()["position"]  # nothing yet: an empty column
    tracker.record_checkpoint({"file": "binlog.000003", "pos": 1234, "gtid": "0-1-7"})
    assert tracker.view()["position"] == {
        "file": "binlog.000003", "pos": 1234, "gtid": "0-1-7", "display": "binlog.000003:1234",
    }  # fmt: skip
    assert "display" not in tracker.position
    long_gtid = "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5000"
    shown = position_display({"gtid": long_gtid})
    assert shown == long_gtid[:39] + "…" and len(shown) == POSITION_DISPLAY_MAX
    assert position_display({"gtid": "0-1-100"}) == "0-1-100"
    assert position_display({}) is None


def test_a_new_snapshot_after_a_finished_one_is_not_shown_done() -> None:
    tracker = StatusTracker()
    tracker.start_table("db.a", 10)
    tracker.record_snapshot_rows("db.a", 10)
    tracker.finish_table("db.a")
    tracker.finish_snapshot()
    tracker.plan_table("db.b", 100)  # snapshotNewTables, a snapshotRequest, a recovery
    tracker.reopen_snapshot()
    tracker.start_table("db.b", 100)
    assert tracker.progress()["percent"] < 100
    tracker.finish_table("db.b")
    tracker.finish_snapshot()
    assert tracker.progress()["percent"] == 100
