"""Periodic verification, ``spec.verifySchedule`` (pure): when a tick is due, whether a check
is still running, which verifyRequest the worker config carries, and what status records.

A tick starts a check exactly as a ``spec.verifyRequest`` would: the worker config gets a
verifyRequest with the schedule's tables/repair/chunkSize and the nonce
``scheduled-<tick, UTC>`` (:func:`nonce`), which makes a new config revision (the worker
restarts with it, as for any verifyRequest). The nonce is the tick's, so a reconcile that
runs again after a lost status write, a re-applied manifest or an operator restart renders
the same config and never starts a tick twice; the worker runs each nonce once.

* ``status.nextVerification`` holds the next tick (the cron parsing, time zones and the
  wake-up at the tick are those of scheduled snapshot runs: reconcile/schedule.py). Once it
  has passed, the check starts unless the check the config carries now is still running or
  has not reported yet (then the tick is skipped: ``skipped``, a ``VerificationSkipped``
  Event); checks never overlap. Paused: no tick is due and ``nextVerification`` is cleared;
  ticks that pass then are not run later.
* ``status.scheduledVerification`` records the last tick: the nonce started and when, or
  that it was skipped and why. ``requestNonce`` is spec.verifyRequest's nonce when the check
  started: a verifyRequest with another nonce is newer and is what the config carries (so a
  user's own request runs, and an old one never runs again because the schedule's ran
  after it; the worker keeps only the last nonce it ran).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ferry_operator.api.synctask import SyncTaskSpec, VerifyRequest
from ferry_operator.reconcile import schedule
from ferry_operator.reconcile.health import parse_time
from ferry_operator.recorder import rfc3339

__all__ = [
    "NONCE_PREFIX",
    "VerifyPlan",
    "busy",
    "cause",
    "current_request",
    "earliest",
    "nonce",
    "parse",
    "plan",
    "with_request",
]

NONCE_PREFIX = "scheduled-"
Event = tuple[str, str, str]
FIELDS = ("nextVerification", "scheduledVerification")


def nonce(tick: datetime) -> str:
    """The nonce of the check a tick starts: ``scheduled-20261203T020000Z``."""
    return NONCE_PREFIX + schedule.run_id(tick)


def parse(spec: SyncTaskSpec) -> schedule.Cron | None:
    """spec.verifySchedule's cron; raises schedule.ScheduleError naming the field."""
    found = spec.verify_schedule
    if found is None:
        return None
    return schedule.parse(
        found.schedule,
        found.time_zone,
        field="spec.verifySchedule.schedule",
        zone_field="spec.verifySchedule.timeZone",
    )


def current_request(spec: SyncTaskSpec, scheduled: dict[str, Any] | None) -> VerifyRequest | None:
    """The verifyRequest the worker config carries, given status.scheduledVerification:
    spec.verifyRequest when the schedule never started a check or the user set a new nonce
    since; else the schedule's last check (none once spec.verifySchedule is removed)."""
    started = (scheduled or {}).get("nonce")
    own = spec.verify_request
    if not started:
        return own
    if own is not None and own.nonce != (scheduled or {}).get("requestNonce"):
        return own
    if spec.verify_schedule is None:
        return None
    return spec.verify_schedule.request(started)


def busy(request: VerifyRequest | None, status: dict[str, Any]) -> str | None:
    """Why a new check cannot start now (the config's check is running or has not reported),
    or None."""
    if request is None:
        return None
    found = status.get("verification") or {}
    if found.get("nonce") != request.nonce:
        return f"verification {request.nonce} has not started yet"
    if found.get("state") in (None, "Running"):
        return f"verification {request.nonce} is still running"
    return None


@dataclass(frozen=True)
class VerifyPlan:
    """The verifyRequest to render, the status fields (nextVerification,
    scheduledVerification) and Events."""

    request: VerifyRequest | None
    fields: dict[str, Any] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)


def _text(spec: SyncTaskSpec) -> str:
    found = spec.verify_schedule
    assert found is not None
    zone = f" {found.time_zone}" if found.time_zone else ""
    return f"{found.schedule!r}{zone}"


def plan(
    spec: SyncTaskSpec,
    cron: schedule.Cron | None,
    status: dict[str, Any],
    *,
    paused: bool,
    now: datetime,
) -> VerifyPlan:
    """What spec.verifySchedule does now (``cron``: its parsed schedule, or None)."""
    before: dict[str, Any] = dict(status.get("scheduledVerification") or {})
    fields: dict[str, Any] = {"scheduledVerification": before or None, "nextVerification": None}
    request = current_request(spec, before)
    if cron is None or paused:
        return VerifyPlan(request, fields)
    stored = parse_time(status.get("nextVerification"))
    fields["nextVerification"] = rfc3339(schedule.next_run(cron, now))
    if stored is None or stored > now or before.get("lastTick") == rfc3339(stored):
        return VerifyPlan(request, fields)
    reason = busy(request, status)
    if reason is not None:
        skipped = (before.get("skippedTicks") or 0) + 1
        message = f"skipped the check of {rfc3339(stored)}: {reason} (checks never overlap)"
        fields["scheduledVerification"] = {
            **before,
            "lastTick": rfc3339(stored),
            "skipped": True,
            "skippedTicks": skipped,
            "message": message,
        }
        return VerifyPlan(request, fields, [("Normal", "VerificationSkipped", message)])
    started = {
        "lastTick": rfc3339(stored),
        "nonce": nonce(stored),
        "startTime": rfc3339(now),
        "requestNonce": spec.verify_request.nonce if spec.verify_request else None,
    }
    fields["scheduledVerification"] = {k: v for k, v in started.items() if v is not None}
    event = (
        "Normal",
        "VerificationScheduled",
        f"started verification {started['nonce']} (spec.verifySchedule {_text(spec)})",
    )
    return VerifyPlan(current_request(spec, started), fields, [event])


def with_request(spec: SyncTaskSpec, request: VerifyRequest | None) -> SyncTaskSpec:
    """``spec`` with the verifyRequest the worker config carries (what the renderer reads)."""
    if request == spec.verify_request:
        return spec
    return spec.model_copy(update={"verify_request": request})


def cause(previous_config: dict[str, Any], rendered: str | None) -> str | None:
    """A new revision's cause when the schedule started a check (``rendered``: the new
    config's verifyRequest nonce; ``previous_config``: the previous revision's worker
    config), else None."""
    if rendered is None or not rendered.startswith(NONCE_PREFIX):
        return None
    if (previous_config.get("verifyRequest") or {}).get("nonce") == rendered:
        return None
    return f"verifySchedule (nonce {rendered})"


def earliest(wake_at: datetime | None, fields: dict[str, Any]) -> datetime | None:
    """``wake_at``, or the next tick when it comes first (a tick starts with no event)."""
    tick = parse_time(fields.get("nextVerification"))
    if tick is not None and (wake_at is None or tick < wake_at):
        return tick
    return wake_at
