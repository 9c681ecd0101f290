"""What the operator says about a snapshot that had to start again (pure): a recovery from
a purged binlog, and a keyless table's pass cut short.

With ``onPositionUnavailable: resnapshot`` the worker replaces a checkpoint whose binlog is
gone with a new snapshot and reports it in ``status.lastResnapshot`` ({time, position,
finishedTime}) and ``status.counters.resnapshots``. From those the operator makes:

* one Warning Event ``PositionUnavailableResnapshot`` per recovery, remembered by the
  recovery's time in the operator-owned ``status.lastResnapshotAnnounced``;
* the ``Recovering`` condition: True (reason ``PositionUnavailableResnapshot``) while the new
  snapshot runs, False (reason ``Resnapshotted``) once it finished, with the purged position
  and the times in its message. A task that never recovered has no such condition.

A table with neither a primary key nor a unique key over NOT NULL columns is read in one
pass; when a crash cuts it short, the worker starts it over and records a
``KeylessSnapshotRestarted`` entry (with the table) in ``status.lastErrors``. The operator
announces each such entry once with a Warning Event of that reason, remembered by the
entry's time in ``status.lastKeylessRestartAnnounced``.
"""

from __future__ import annotations

from typing import Any

from ferry_operator.recorder import ConditionValue

__all__ = ["CONDITION", "EVENT_REASON", "KEYLESS_REASON", "announcement", "condition", "keyless"]

CONDITION = "Recovering"
EVENT_REASON = "PositionUnavailableResnapshot"
KEYLESS_REASON = "KeylessSnapshotRestarted"


def _last(status: dict[str, Any]) -> dict[str, Any]:
    last = status.get("lastResnapshot")
    return last if isinstance(last, dict) and last.get("time") else {}


def announcement(status: dict[str, Any]) -> tuple[str, str] | None:
    """The recovery not announced yet: (its time, the Event's message), or None."""
    last = _last(status)
    if not last or last["time"] == status.get("lastResnapshotAnnounced"):
        return None
    count = (status.get("counters") or {}).get("resnapshots")
    nth = f" (recovery {count} of this task)" if count else ""
    return last["time"], (
        f"the binlog at {last.get('position') or '?'} was purged before the worker read it: "
        "re-snapshotting every selected table and streaming on from there "
        f"(onPositionUnavailable: resnapshot){nth}; consumers get every row again as a "
        "snapshot row, and the changes in the purged binlog only as their result"
    )


def condition(status: dict[str, Any]) -> ConditionValue | None:
    """The Recovering condition, or None when the task never recovered."""
    last = _last(status)
    if not last:
        return None
    where, since = last.get("position") or "?", last["time"]
    if last.get("finishedTime"):
        return (
            "False",
            "Resnapshotted",
            f"re-snapshotted after the binlog at {where} was purged: started {since}, "
            f"finished {last['finishedTime']}, streaming since then",
        )
    return (
        "True",
        EVENT_REASON,
        f"the binlog at {where} was purged: a new snapshot of every selected table runs "
        f"since {since} (onPositionUnavailable: resnapshot)",
    )


def keyless(status: dict[str, Any]) -> tuple[str, list[str]] | None:
    """KeylessSnapshotRestarted entries of status.lastErrors not announced yet: (the newest
    one's time, the Events' messages, oldest first), or None."""
    announced = str(status.get("lastKeylessRestartAnnounced") or "")
    entries = [
        entry
        for entry in status.get("lastErrors") or []
        if entry.get("reason") == KEYLESS_REASON and str(entry.get("time") or "") > announced
    ]
    if not entries:
        return None
    entries.sort(key=lambda entry: str(entry["time"]))
    return str(entries[-1]["time"]), [str(entry.get("message") or "") for entry in entries]
