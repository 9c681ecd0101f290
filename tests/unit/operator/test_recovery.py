"""The operator's words for an onPositionUnavailable: resnapshot recovery: one Event per
recovery, and the Recovering condition while its snapshot runs and after."""

from __future__ import annotations

from ferry_operator.reconcile import recovery

RUNNING = {"time": "2027-01-15T08:00:00Z", "position": "binlog.000001:4"}


def test_no_recovery_no_event_and_no_condition() -> None:
    assert recovery.announcement({}) is None
    assert recovery.condition({"counters": {"resnapshots": 0}}) is None


def test_a_recovery_is_announced_once_by_its_time() -> None:
    status = {"lastResnapshot": RUNNING, "counters": {"resnapshots": 2}}
    announced = recovery.announcement(status)
    assert announced is not None
    when, message = announced
    assert when == RUNNING["time"]
    assert "binlog at binlog.000001:4 was purged" in message and "recovery 2" in message
    assert recovery.announcement({**status, "lastResnapshotAnnounced": when}) is None
    later = {**RUNNING, "time": "2027-01-16T08:00:00Z"}
    assert recovery.announcement(
        {**status, "lastResnapshot": later, "lastResnapshotAnnounced": when}
    )


def test_recovering_while_the_snapshot_runs_then_resnapshotted() -> None:
    assert recovery.condition({"lastResnapshot": RUNNING}) == (
        "True",
        "PositionUnavailableResnapshot",
        "the binlog at binlog.000001:4 was purged: a new snapshot of every selected table runs "
        "since 2027-01-15T08:00:00Z (onPositionUnavailable: resnapshot)",
    )
    done = {**RUNNING, "finishedTime": "2027-01-15T08:05:00Z"}
    status, reason, message = recovery.condition({"lastResnapshot": done}) or ("", "", "")
    assert (status, reason) == ("False", "Resnapshotted")
    assert "finished 2027-01-15T08:05:00Z" in message


def test_each_keyless_restart_is_announced_once() -> None:
    errors = [
        {"time": "2027-01-15T08:02:00Z", "reason": "KeylessSnapshotRestarted", "message": "b"},
        {"time": "2027-01-15T08:01:30Z", "reason": "ConnectionLost", "message": "x"},
        {"time": "2027-01-15T08:01:00Z", "reason": "KeylessSnapshotRestarted", "message": "a"},
    ]  # newest first, as the worker reports them
    assert recovery.keyless({"lastErrors": errors}) == ("2027-01-15T08:02:00Z", ["a", "b"])
    status = {"lastErrors": errors, "lastKeylessRestartAnnounced": "2027-01-15T08:01:00Z"}
    assert recovery.keyless(status) == ("2027-01-15T08:02:00Z", ["b"])
    assert (
        recovery.keyless({**status, "lastKeylessRestartAnnounced": "2027-01-15T08:02:00Z"}) is None
    )
    assert recovery.keyless({}) is None
