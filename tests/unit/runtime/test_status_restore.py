"""The tracker carries on from a checkpoint (counters, tables, a finished snapshot) and
formats lag and progress as ``kubectl get`` shows them."""

from __future__ import annotations

from ferry_runtime import checkpoint
from ferry_runtime.checkpoint import Checkpoint, Counters, SnapshotState, TableState
from ferry_runtime.status import StatusTracker, format_duration


def test_counters_round_trip_and_default_to_zero_for_old_records() -> None:
    state = Checkpoint(position={"file": "b.1", "pos": 4}, counters=Counters(1900000, 3, 2))
    assert checkpoint.decode(checkpoint.encode(state, "t")).counters == Counters(1900000, 3, 2)
    old = b'{"task": "t", "position": {"file": "b.1", "pos": 4}, "time": 1.0}'
    assert checkpoint.decode(old).counters == Counters()


def test_restore_shows_a_finished_snapshot_and_the_counters() -> None:
    tracker = StatusTracker(clock=lambda: 1000.0)
    tracker.restore((1900000, 3, 2), {"shop.a": (1500000, True), "shop.b": (400000, True)}, True)
    view = tracker.view()
    assert view["counters"] == {
        "events": 1900000, "errors": 3, "restarts": 2, "restartsSinceStart": 0, "resnapshots": 0,
    }  # fmt: skip
    assert view["progress"]["percent"] == 100.0 and view["progress"]["display"] == "100%"
    assert view["progress"]["rowsDone"] == 1900000
    assert [t["state"] for t in view["progress"]["tables"]] == ["Done", "Done"]
    tracker.record_restart()
    assert tracker.view()["counters"]["restartsSinceStart"] == 1


def test_restore_never_moves_numbers_back_and_is_idempotent() -> None:
    tracker = StatusTracker(clock=lambda: 1000.0)
    tracker.events, tracker.errors = 50, 4  # this process already counted more
    for _ in range(2):
        tracker.restore((40, 1, 0), {"shop.a": (10, False)}, False)
    assert (tracker.events, tracker.errors) == (50, 4)
    assert tracker.tables["shop.a"].rows_done == 10


def test_a_resumed_snapshot_counts_its_rows_once_and_its_eta_from_this_run() -> None:
    now = [1000.0]
    tracker = StatusTracker(clock=lambda: now[0])
    tracker.restore((100, 0, 0), {"shop.a": (100, False)}, False)
    tracker.plan_table("shop.a", 400)
    tracker.set_state("Snapshotting")
    tracker.start_table("shop.a", 400)
    tracker.set_table_rows("shop.a", 100)  # the worker re-announces the resumed rows
    tracker.set_table_rows("shop.a", 100)
    assert tracker.progress()["rowsDone"] == 100
    assert tracker.progress()["display"] == "25%"
    now[0] += 10
    tracker.record_snapshot_rows("shop.a", 100)  # 100 rows in 10 s: 200 left → 20 s
    assert tracker.progress()["eta"] == "1970-01-01T00:17:10Z"


def test_cdc_only_has_no_progress_to_show() -> None:
    assert StatusTracker().progress()["display"] is None


def test_durations_read_like_kubectl_ages() -> None:
    cases = {0: "0s", 0.9: "0s", 45: "45s", 60: "1m", 778.532: "12m58s", 3600: "1h",
             3840: "1h4m", 86400 * 2 + 3600 * 3: "2d3h", 86400: "1d"}  # fmt: skip
    assert {k: format_duration(k) for k in cases} == cases


def test_snapshot_state_unchanged_by_counters() -> None:
    snap = SnapshotState({"file": "b", "pos": 1}, {"a": TableState(True, [1], 1)}, True)
    state = Checkpoint(snapshot=snap, counters=Counters(1, 0, 0))
    assert checkpoint.decode(checkpoint.encode(state, "t")) == state
