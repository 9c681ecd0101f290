"""Phase and conditions of a SyncTask (pure): from what blocks it, whether it is paused, and
the fields the worker reports (workerState, heartbeatTime, lag, counters)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ferry_operator.api.synctask import SyncTaskSpec
from ferry_operator.recorder import ConditionValue
from ferry_runtime import reporter
from ferry_runtime.config import parse_duration

__all__ = ["WORKER_FIELDS", "Assessment", "Problem", "assess", "parse_time"]

HEARTBEAT_INTERVALS = 3
# The status fields the worker owns: one list, in the runtime (the contract's side).
WORKER_FIELDS = reporter.WORKER_FIELDS
REPORT_INTERVAL = timedelta(seconds=10)
_OK = ("False", "AsExpected", "")


@dataclass(frozen=True)
class Problem:
    """Something that keeps the task from running; ``permanent`` needs a spec change."""

    reason: str
    message: str
    permanent: bool


@dataclass(frozen=True)
class Assessment:
    phase: str
    conditions: dict[str, ConditionValue]
    stop_worker: bool  # too many restarts: scale to 0


def parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _degraded(spec: SyncTaskSpec, status: dict[str, Any]) -> ConditionValue:
    alerts = spec.alerts
    if alerts is None:
        return _OK
    lag = (status.get("lag") or {}).get("seconds")
    if alerts.lag_threshold and lag is not None:
        limit = parse_duration(alerts.lag_threshold).total_seconds()
        if lag > limit:
            return ("True", "LagAboveThreshold", f"lag {lag:.0f}s is above {alerts.lag_threshold}")
    counters = status.get("counters") or {}
    events, errors = counters.get("events") or 0, counters.get("errors") or 0
    if alerts.error_rate_threshold is not None and errors:
        rate = errors / max(events + errors, 1)
        if rate > alerts.error_rate_threshold:
            return (
                "True",
                "ErrorRateAboveThreshold",
                f"{rate:.1%} of events failed, above {alerts.error_rate_threshold:.1%}",
            )
    return _OK


def _too_many_restarts(spec: SyncTaskSpec, status: dict[str, Any]) -> str | None:
    """Why the worker must stay stopped for its failure streak, or None. The streak counts
    consecutive failures only (the worker starts it again after restartPolicy.resetAfter of
    healthy progress); maxRetries unset means no limit."""
    errors = status.get("lastErrors") or [{}]
    if status.get("workerState") == "Failed" and errors[0].get("reason") == "TooManyRestarts":
        return str(errors[0].get("message") or "too many consecutive failures")
    policy = spec.restart_policy
    limit = None if policy is None else policy.max_retries
    streak = (status.get("retry") or {}).get("streak") or 0
    if limit is None or streak <= limit:
        return None
    return (
        f"the worker failed {streak} times in a row, more than restartPolicy.maxRetries "
        f"({limit}); it is stopped: see status.lastErrors, fix the cause, then set "
        "spec.restartNonce"
    )


def _blocked(problem: Problem) -> Assessment:
    if problem.permanent:
        return Assessment(
            "Failed",
            {
                "Ready": ("False", problem.reason, problem.message),
                "Reconciling": ("False", problem.reason, ""),
                "Stalled": ("True", problem.reason, problem.message),
                "Degraded": _OK,
            },
            False,
        )
    return Assessment(
        "Pending",
        {
            "Ready": ("False", problem.reason, problem.message),
            "Reconciling": ("True", problem.reason, problem.message),
            "Stalled": _OK,
            "Degraded": _OK,
        },
        False,
    )


def assess(
    spec: SyncTaskSpec,
    status: dict[str, Any],
    *,
    problem: Problem | None,
    paused: bool,
    resume_at: datetime | None,
    now: datetime,
) -> Assessment:
    """The phase and the four conditions."""
    started = parse_time(status.get("lastStartTime"))
    heartbeat = parse_time(status.get("heartbeatTime"))
    if started and (heartbeat is None or heartbeat < started):
        # Reported by the worker before the operator (re)started it: not about this worker.
        status = {k: v for k, v in status.items() if k not in WORKER_FIELDS}
    if problem is not None:
        return _blocked(problem)
    if paused:
        until = f" until {resume_at.isoformat()}" if resume_at else ""
        return Assessment(
            "Paused",
            {
                "Ready": ("False", "Paused", f"paused by spec.paused{until}"),
                "Reconciling": ("False", "Paused", ""),
                "Stalled": _OK,
                "Degraded": _OK,
            },
            False,
        )
    stopped = _too_many_restarts(spec, status)
    if stopped is not None:
        blocked = _blocked(Problem("TooManyRestarts", stopped, True))
        return Assessment(blocked.phase, blocked.conditions, stop_worker=True)
    state = status.get("workerState")
    heartbeat = parse_time(status.get("heartbeatTime"))
    degraded = _degraded(spec, status)
    if heartbeat and state not in ("Completed", "Failed", "Stopped"):
        age = now - heartbeat
        if age > HEARTBEAT_INTERVALS * REPORT_INTERVAL:
            message = f"no report from the worker for {int(age.total_seconds())}s"
            return Assessment(
                "Running" if state == "Streaming" else "Starting",
                {
                    "Ready": ("False", "HeartbeatMissing", message),
                    "Reconciling": ("False", "HeartbeatMissing", ""),
                    "Stalled": ("True", "HeartbeatMissing", message),
                    "Degraded": degraded,
                },
                False,
            )
    if state == "Failed":
        errors = status.get("lastErrors") or [{}]
        message = errors[0].get("message") or "the worker failed"
        reason = errors[0].get("reason") or "WorkerFailed"
        return Assessment(
            "Failed",
            {
                "Ready": ("False", reason, message),
                "Reconciling": ("False", reason, ""),
                "Stalled": ("True", reason, message),
                "Degraded": degraded,
            },
            False,
        )
    phases = {"Streaming": "Running", "Snapshotting": "Snapshotting", "Completed": "Completed"}
    if state in phases:
        phase = phases[state]
        return Assessment(
            phase,
            {
                "Ready": ("True", phase, f"the worker is {state.lower()}"),
                "Reconciling": ("False", phase, ""),
                "Stalled": _OK,
                "Degraded": degraded,
            },
            False,
        )
    return Assessment(
        "Starting",
        {
            "Ready": ("False", "Starting", "waiting for the worker to report"),
            "Reconciling": ("True", "Starting", "waiting for the worker to report"),
            "Stalled": _OK,
            "Degraded": degraded,
        },
        False,
    )
