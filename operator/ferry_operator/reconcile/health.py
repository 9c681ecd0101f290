"""Phase and conditions of a SyncTask (pure): from what blocks it, whether it is paused, the
fields the worker reports (workerState, heartbeatTime, lag, counters) and what its pod says
(status.workerPod, from reconcile/pods.py).

In order: a blocking problem; paused; too many restarts (the worker's own and its pods');
the pod cannot run (CrashLoopBackOff, ImagePullBackOff, OOMKilled, Unschedulable, a missing
Secret or key: Ready=False and Stalled=True with that reason) unless the worker itself says
why it failed; a silent worker (HeartbeatMissing); a worker that has not reported
``startTimeout`` after it was started (StartTimeout); then what the worker reports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ferry_operator.api.synctask import SyncTaskSpec
from ferry_operator.recorder import ConditionValue
from ferry_runtime import reporter
from ferry_runtime.config import RestartPolicy, parse_duration

__all__ = [
    "OK_CONDITION",
    "WORKER_FIELDS",
    "Assessment",
    "Problem",
    "assess",
    "next_check",
    "parse_time",
    "reports_running",
    "reset_after",
    "this_worker",
]

HEARTBEAT_INTERVALS = 3
DEFAULT_START_TIMEOUT = timedelta(minutes=5)
# The status fields the worker owns: one list, in the runtime (the contract's side).
WORKER_FIELDS = reporter.WORKER_FIELDS
REPORT_INTERVAL = timedelta(seconds=10)
OK_CONDITION: ConditionValue = ("False", "AsExpected", "")
_OK = OK_CONDITION


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


def _nothing_selected(spec: SyncTaskSpec) -> ConditionValue:
    source = spec.source
    include = ", ".join((source.include if source else None) or ["*.*"])
    exclude = ", ".join((source.exclude if source else None) or [])
    left_out = f" (exclude: {exclude})" if exclude else ""
    return (
        "True",
        "NoTablesSelected",
        f"spec.source.include [{include}]{left_out} matches no table on the source: nothing is "
        "synced; fix the globs, or create the table (the worker looks again every 30s)",
    )


def _degraded(spec: SyncTaskSpec, status: dict[str, Any]) -> ConditionValue:
    if status.get("selectedTables") == 0:
        return _nothing_selected(spec)
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


def this_worker(status: dict[str, Any]) -> dict[str, Any]:
    """``status`` without the worker's fields when the worker reported them before the
    operator last (re)started it: they are about the previous worker."""
    started = parse_time(status.get("lastStartTime"))
    heartbeat = parse_time(status.get("heartbeatTime"))
    if started and (heartbeat is None or heartbeat < started):
        return {k: v for k, v in status.items() if k not in WORKER_FIELDS}
    return status


def reports_running(status: dict[str, Any], now: datetime) -> bool:
    """Whether the worker reports, freshly, that it streams or snapshots."""
    heartbeat = parse_time(status.get("heartbeatTime"))
    if heartbeat is None or status.get("workerState") not in ("Streaming", "Snapshotting"):
        return False
    return now - heartbeat <= HEARTBEAT_INTERVALS * REPORT_INTERVAL


def _runs_now(status: dict[str, Any], now: datetime) -> bool:
    """Whether a worker reports as running, freshly, after its pod's last exit: then what
    the pod said before (a crash loop it came out of) is not the state now."""
    heartbeat = parse_time(status.get("heartbeatTime"))
    if heartbeat is None or not reports_running(status, now):
        return False
    since = parse_time((status.get("workerPod") or {}).get("since"))
    return since is None or heartbeat > since


def reset_after(spec: SyncTaskSpec | None) -> timedelta:
    """spec.restartPolicy.resetAfter, else the worker's default (10m)."""
    policy = spec.restart_policy if spec is not None else None
    if policy is not None and policy.reset_after:
        return parse_duration(policy.reset_after)
    return RestartPolicy().reset_after


def _start_timeout(
    spec: SyncTaskSpec, status: dict[str, Any], started: datetime | None, now: datetime
) -> str | None:
    """The message when a started worker has not reported within spec.startTimeout."""
    if started is None or status.get("workerState"):
        return None
    limit = parse_duration(spec.start_timeout) if spec.start_timeout else DEFAULT_START_TIMEOUT
    waited = now - started
    if waited <= limit:
        return None
    where = (status.get("workerPod") or {}).get("summary")
    return (
        f"the worker has not reported {int(waited.total_seconds())}s after it was started "
        f"(spec.startTimeout {spec.start_timeout or '5m'})"
        + (f": {where}" if where else "")
        + "; kubectl describe the worker pod, and kubectl logs it"
    )


def _too_many_restarts(spec: SyncTaskSpec, status: dict[str, Any]) -> str | None:
    """Why the worker must stay stopped, or None. restartPolicy.maxRetries (unset: no limit)
    caps two counts, each on its own and never added up (a failure is in one of them only):
    the worker's failure streak (status.retry.streak: consecutive failures inside one worker
    process, which it starts again after restartPolicy.resetAfter of healthy progress), and
    its pod's restarts in a row (status.workerPod.restartStreak: the process itself exited or
    was killed, a crash loop; 0 again on a new start or after resetAfter of running)."""
    errors = status.get("lastErrors") or [{}]
    if status.get("workerState") == "Failed" and errors[0].get("reason") == "TooManyRestarts":
        return str(errors[0].get("message") or "too many consecutive failures")
    policy = spec.restart_policy
    limit = None if policy is None else policy.max_retries
    if limit is None:
        return None
    streak = (status.get("retry") or {}).get("streak") or 0
    if streak > limit:
        return (
            f"the worker failed {streak} times in a row, more than restartPolicy.maxRetries "
            f"({limit}); it is stopped: see status.lastErrors, fix the cause, then set "
            "spec.restartNonce"
        )
    worker_pod = status.get("workerPod") or {}
    pod = worker_pod.get("restartStreak", worker_pod.get("restartsSinceStart")) or 0
    if pod <= limit:
        return None
    return (
        f"the worker pod restarted {pod} times in a row, more than restartPolicy.maxRetries "
        f"({limit}); it is stopped: see status.lastErrors and status.workerPod, fix the "
        "cause, then set spec.restartNonce"
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
    status = this_worker(status)
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
    pod = status.get("workerPod") or {}
    stopped = _too_many_restarts(spec, status)
    if stopped is not None:
        blocked = _blocked(Problem("TooManyRestarts", stopped, True))
        return Assessment(blocked.phase, blocked.conditions, stop_worker=True)
    state = status.get("workerState")
    heartbeat = parse_time(status.get("heartbeatTime"))
    degraded = _degraded(spec, status)
    if pod.get("reason") and state not in ("Failed", "Completed") and not _runs_now(status, now):
        reason, message = str(pod["reason"]), str(pod.get("message") or pod["reason"])
        return Assessment(
            "Running" if state == "Streaming" else "Starting",
            {
                "Ready": ("False", reason, message),
                "Reconciling": ("False", reason, ""),
                "Stalled": ("True", reason, message),
                "Degraded": degraded,
            },
            False,
        )
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
        if pod.get("reason"):  # and the kubelet keeps restarting it: say that too
            message += f" (pod: {pod['reason']}, {pod.get('restartsSinceStart') or 0} restarts)"
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
    late = _start_timeout(spec, status, started, now)
    if late is not None:
        return Assessment(
            "Starting",
            {
                "Ready": ("False", "StartTimeout", late),
                "Reconciling": ("False", "StartTimeout", ""),
                "Stalled": ("True", "StartTimeout", late),
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


# While a pod's restarts are counted in a row, how often to look whether the streak ends.
STREAK_CHECK = timedelta(seconds=60)
# A task waiting on something that should wake it by an event (a Connector, a template).
WAITING_CHECK = timedelta(seconds=60)
_SLACK = timedelta(seconds=1)


def next_check(
    spec: SyncTaskSpec | None,
    status: dict[str, Any],
    *,
    problem: Problem | None,
    paused: bool,
    phase: str,
    now: datetime,
) -> datetime | None:
    """When the verdict of :func:`assess` could change with no watch event (pure): the moment
    a heartbeat goes missing or startTimeout runs out, and a periodic look while a pod's
    restart streak may reset or a task waits. None in a steady state (a task that runs and
    reports: its next report is an event; paused; Failed; Completed)."""
    if problem is not None:
        return None if problem.permanent else now + WAITING_CHECK
    if paused or spec is None or phase in ("Failed", "Completed"):
        return None
    started = parse_time(status.get("lastStartTime"))
    worker = this_worker(status)
    state = worker.get("workerState")
    heartbeat = parse_time(worker.get("heartbeatTime"))
    candidates: list[datetime] = []
    if heartbeat is not None and state not in ("Completed", "Failed", "Stopped"):
        missing_at = heartbeat + HEARTBEAT_INTERVALS * REPORT_INTERVAL + _SLACK
        if missing_at > now:
            candidates.append(missing_at)
    if started is not None and not state:
        limit = parse_duration(spec.start_timeout) if spec.start_timeout else None
        late_at = started + (limit or DEFAULT_START_TIMEOUT) + _SLACK
        if late_at > now:
            candidates.append(late_at)
    if ((status.get("workerPod") or {}).get("restartStreak") or 0) > 0:
        candidates.append(now + STREAK_CHECK)
    return min(candidates) if candidates else None
