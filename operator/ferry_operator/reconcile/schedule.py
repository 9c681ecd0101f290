"""Snapshot runs of a ``mode: snapshot`` task (pure): when the next scheduled run is due,
whether a run is going on, and what a finished one records.

A *run* is one snapshot, from the moment the operator starts its worker to the worker's
report that it is ``Completed`` or ``Failed``. Status keeps ``activeRun`` while one goes on,
then ``lastRun`` and ``runs`` (the newest :data:`HISTORY` first). Every ``mode: snapshot``
task has runs; with ``spec.schedule`` the operator also starts them:

* ``status.nextRun`` holds the next tick of the schedule (croniter, in ``spec.timeZone``).
  Once it has passed, the run for that tick starts unless one is still going (then the tick
  is skipped with a ``RunSkipped`` Event, like a CronJob's ``concurrencyPolicy: Forbid``) or
  the task is paused (``nextRun`` is cleared while paused: ticks that pass then are not run
  later). An operator that was down when a tick passed starts that run when it is back.
* A scheduled run's id is its tick (``20261202T020000Z``). The worker Deployment gets it as
  the env ``FERRY_RUN`` (and the pod annotation ``ferry.dev/run``) and one replica while the
  run goes on, 0 between runs; the worker starts a new snapshot when its checkpoint's run
  differs, and resumes the one in its checkpoint otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

from ferry_operator.api.synctask import SyncTaskSpec
from ferry_operator.reconcile import health
from ferry_operator.recorder import rfc3339
from ferry_runtime.status import format_duration

__all__ = [
    "HISTORY",
    "Cron",
    "RunPlan",
    "ScheduleError",
    "finished_run",
    "next_run",
    "parse",
    "plan",
    "run_id",
]

HISTORY = 10
Event = tuple[str, str, str]


class ScheduleError(ValueError):
    """spec.schedule or spec.timeZone cannot be used; the message names the field."""


@dataclass(frozen=True)
class Cron:
    expression: str
    zone: tzinfo


def parse(
    schedule: str,
    time_zone: str | None,
    *,
    field: str = "spec.schedule",
    zone_field: str = "spec.timeZone",
) -> Cron:
    """The schedule, checked again as the API server cannot (a zone name that does not exist,
    a sixth field croniter would read as seconds); messages name ``field``/``zone_field``."""
    try:
        zone: tzinfo = ZoneInfo(time_zone) if time_zone else UTC
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            f"{zone_field}: unknown time zone {time_zone!r}: use an IANA name such as "
            "Europe/Berlin or UTC"
        ) from None
    expression = " ".join(schedule.split())
    if not expression.startswith("@") and len(expression.split(" ")) != 5:
        raise ScheduleError(
            f"{field}: {schedule!r} is not a cron expression of 5 fields (minute hour "
            "day-of-month month day-of-week)"
        )
    try:
        croniter(expression, datetime.now(zone))
    except (CroniterError, ValueError) as error:
        message = f"{field}: {schedule!r} is not a cron expression: {error}"
        raise ScheduleError(message) from None
    return Cron(expression, zone)


def next_run(cron: Cron, after: datetime) -> datetime:
    """The first tick strictly after ``after`` (UTC). A wall-clock time that the autumn
    change of clocks makes happen twice fires once, at its first occurrence (as cron does)."""
    ticks = croniter(cron.expression, after.astimezone(cron.zone))
    tick: datetime = ticks.get_next(datetime)
    while _second_occurrence(tick, cron.zone):
        tick = ticks.get_next(datetime)
    return tick.astimezone(UTC)


def _second_occurrence(tick: datetime, zone: tzinfo) -> bool:
    """Whether ``tick``'s wall-clock time happened earlier that night already."""
    wall = tick.astimezone(zone).replace(tzinfo=None)
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    return first < tick.astimezone(UTC)


def run_id(tick: datetime) -> str:
    return tick.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


@dataclass(frozen=True)
class RunPlan:
    """What the runs need now: whether the worker should run, the run id it gets, the status
    fields (nextRun, activeRun, lastRun, runs) and Events."""

    wants_worker: bool
    run: str | None
    fields: dict[str, Any] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)


def finished_run(
    active: dict[str, Any], status: dict[str, Any], now: datetime
) -> dict[str, Any] | None:
    """The record of ``active`` when this worker (reports after status.lastStartTime) says it
    is Completed or Failed; None while it goes on."""
    worker = health.this_worker(status)
    state = worker.get("workerState")
    if state not in ("Completed", "Failed"):
        return None
    start = health.parse_time(active.get("start")) or now
    end = health.parse_time(worker.get("heartbeatTime")) or now
    end = max(end, start)
    seconds = int((end - start).total_seconds())
    record: dict[str, Any] = {
        "id": active.get("id"),
        "scheduledTime": active.get("scheduledTime"),
        "start": rfc3339(start),
        "end": rfc3339(end),
        "duration": format_duration(seconds),
        "durationSeconds": seconds,
        "rows": (worker.get("progress") or {}).get("rowsDone") or 0,
        "result": state,
    }
    if state == "Failed":
        error = (worker.get("lastErrors") or [{}])[0]
        record["reason"] = error.get("reason") or "WorkerFailed"
        record["message"] = error.get("message") or "the worker failed"
    return {k: v for k, v in record.items() if v is not None}


def _finish(status: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    runs = [record, *(status.get("runs") or [])][:HISTORY]
    return {"activeRun": None, "lastRun": record, "runs": runs}


def plan(
    spec: SyncTaskSpec,
    cron: Cron | None,
    status: dict[str, Any],
    *,
    paused: bool,
    stop_worker: bool,
    now: datetime,
) -> RunPlan:
    """The runs of a ``mode: snapshot`` task (``cron``: its parsed schedule, or None).

    Unscheduled tasks keep today's worker (one replica) and only record their runs; the
    caller marks the start of one (``start_unscheduled``) when it starts the worker."""
    active = status.get("activeRun") or None
    fields: dict[str, Any] = {
        "activeRun": active,
        "lastRun": status.get("lastRun"),
        "runs": status.get("runs"),
    }
    events: list[Event] = []
    if active is not None:
        record = finished_run(active, status, now)
        if record is None and stop_worker:  # too many restarts: the run is over, failed
            record = {**(finished_run(active, {**status, "workerState": "Failed"}, now) or {})}
        if record is not None:
            fields.update(_finish(status, record))
            what = f"run {record['id']} " if record.get("id") else "snapshot "
            kind = "Normal" if record["result"] == "Completed" else "Warning"
            events.append(
                (
                    kind,
                    f"Run{record['result']}",
                    f"{what}{record['result'].lower()}: {record['rows']} rows in "
                    f"{record['duration']}",
                )
            )
            active = None
    last = fields.get("lastRun") or {}
    if cron is None:
        return RunPlan(not paused, None, {**fields, "nextRun": None}, events)
    if paused:
        # Suspended: no tick is due, and none is shown; the run going on (if any) stops
        # with the worker and goes on after the pause.
        return RunPlan(False, (active or last).get("id"), {**fields, "nextRun": None}, events)
    stored = health.parse_time(status.get("nextRun"))
    fields["nextRun"] = rfc3339(next_run(cron, now))
    if stored is not None and stored <= now:  # a tick has come
        if active is not None:
            events.append(
                (
                    "Normal",
                    "RunSkipped",
                    f"skipped the run of {rfc3339(stored)}: run {active.get('id')} is still "
                    "going (runs never overlap)",
                )
            )
        else:
            active = {
                "id": run_id(stored),
                "scheduledTime": rfc3339(stored),
                "start": rfc3339(now),
            }
            fields["activeRun"] = active
            events.append(
                (
                    "Normal",
                    "RunStarted",
                    f"run {active['id']} started (spec.schedule {cron_text(spec)})",
                )
            )
    run = (active or last).get("id")
    return RunPlan(active is not None, run, fields, events)


def cron_text(spec: SyncTaskSpec) -> str:
    zone = f" {spec.time_zone}" if spec.time_zone else ""
    return f"{spec.schedule!r}{zone}"


def start_unscheduled(fields: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The run of an unscheduled ``mode: snapshot`` task starts with its worker."""
    if fields.get("activeRun"):
        return fields
    return {**fields, "activeRun": {"start": rfc3339(now)}}


def idle_message(fields: dict[str, Any], spec: SyncTaskSpec) -> str:
    """Ready's message between runs: the last run and the next one."""
    last = fields.get("lastRun") or {}
    text = ""
    if last:
        text = (
            f"run {last.get('id') or ''} {str(last.get('result', '')).lower()} at "
            f"{last.get('end')}; ".replace("run  ", "the last run ")
        )
    nxt = fields.get("nextRun")
    return text + (f"next run at {nxt} (spec.schedule {cron_text(spec)})" if nxt else "")


def between_runs(verdict: health.Assessment, message: str) -> health.Assessment:
    """A scheduled task with no run going on: before its first run phase Scheduled (Ready:
    it waits for its tick, as it should); after a completed one, Ready says when the next is.
    A failed last run stays Failed (Stalled) until the next run starts."""
    if verdict.phase == "Starting":
        return health.Assessment(
            "Scheduled",
            {
                "Ready": ("True", "Scheduled", message),
                "Reconciling": ("False", "Scheduled", ""),
                "Stalled": health.OK_CONDITION,
                "Degraded": verdict.conditions["Degraded"],
            },
            False,
        )
    if verdict.phase == "Completed":
        ready = ("True", "Completed", message)
        return health.Assessment(
            verdict.phase, {**verdict.conditions, "Ready": ready}, verdict.stop_worker
        )
    return verdict
