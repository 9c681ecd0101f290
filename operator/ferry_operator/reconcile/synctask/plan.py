"""What a reconcile decided (:class:`Outcome`: the objects, the fields, the Events, or the
Problem that blocks the task) and how it becomes a :class:`Plan`: the whole operator-owned
status (phase and conditions from one health assessment), the Event of a phase change, the
notifications, the next look. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ferry_operator.api.synctask import SyncTaskSpec
from ferry_operator.reconcile import failures, health, notify, recovery, schedule
from ferry_operator.reconcile import pods as pods_module
from ferry_operator.reconcile import verify_schedule as verify_ticks
from ferry_operator.reconcile.failures import Failure
from ferry_operator.reconcile.health import OK_CONDITION, Assessment, Problem, assess
from ferry_operator.reconcile.synctask.announce import Event
from ferry_operator.reconcile.synctask.observe import Observed, uses
from ferry_operator.recorder import conditions

__all__ = [
    "KEPT_STATUS",
    "OWNED_STATUS",
    "Apply",
    "Outcome",
    "Plan",
    "conclude",
    "failure_status",
    "stalled_reason",
    "worker_pod",
]

# The operator-owned status fields a reconcile keeps as they are unless it sets them.
KEPT_STATUS = (
    "configRevision",
    "lastResetNonce",
    "lastRestartNonce",
    "lastSkipNonce",
    "lastVerifyNonce",
    "lastResnapshotAnnounced",
    "lastKeylessRestartAnnounced",
    "lastStartTime",
    # snapshot runs (reconcile/schedule.py)
    "nextRun",
    "activeRun",
    "lastRun",
    "runs",
    # periodic verification (reconcile/verify_schedule.py)
    *verify_ticks.FIELDS,
)
# Every status field the operator writes (the worker writes the others).
OWNED_STATUS = {
    "phase",
    "observedGeneration",
    "conditions",
    "scheduledResume",
    "workerPod",
    *KEPT_STATUS,
}
Apply = tuple[dict[str, Any], dict[str, Any] | None]  # (desired, observed)


@dataclass(frozen=True)
class Plan:
    """What to do; computed without side effects."""

    apply: list[Apply] = field(default_factory=list)
    delete: list[dict[str, Any]] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    problem: Problem | None = None
    notifications: list[notify.Delivery] = field(default_factory=list)
    # When to look again with no event (health.next_check), and what the task reads (for
    # waking it when a Connector or its TaskTemplate changes).
    wake_at: datetime | None = None
    uses: frozenset[tuple[str, str]] = frozenset()


@dataclass(frozen=True)
class Outcome:
    """What decide found, before the status is concluded from it."""

    spec: SyncTaskSpec | None  # None: no effective spec (a missing or unmergeable template)
    problem: Problem | None = None
    fields: dict[str, Any] = field(default_factory=dict)  # status fields it sets
    apply: list[Apply] = field(default_factory=list)
    delete: list[dict[str, Any]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    paused: bool = False
    resume_at: datetime | None = None
    idle: str | None = None  # a scheduled task between runs: why (schedule.idle_message)
    verdict: Assessment | None = None  # the health assessment, when decide made it

    @classmethod
    def blocked(cls, spec: SyncTaskSpec | None, problem: Problem) -> Outcome:
        """The task cannot run as it is: nothing to write, the status says why."""
        return cls(spec, problem)


def stalled_reason(status: dict[str, Any]) -> str | None:
    found = [c for c in status.get("conditions") or [] if c.get("type") == "Stalled"]
    return found[0].get("reason") if found and found[0].get("status") == "True" else None


def worker_pod(
    observed: Observed, spec: SyncTaskSpec | None, new_start: bool
) -> dict[str, Any] | None:
    """status.workerPod from the worker's pods (reconcile/pods.py)."""
    status = observed.task.get("status") or {}
    return pods_module.worker_pod_status(
        status.get("workerPod"),
        observed.owned.get("Deployment"),
        observed.pods,
        observed.secret_keys,
        new_start,
        reset_after=health.reset_after(spec),
        worker_runs=health.reports_running(health.this_worker(status), observed.now),
        now=observed.now,
    )


def conclude(observed: Observed, outcome: Outcome) -> Plan:
    """The Plan of ``outcome``: every operator-owned status field (the kept ones as they were),
    phase and conditions, a phase change's Event, the notifications, the next look."""
    status = observed.status
    problem, spec = outcome.problem, outcome.spec
    fields = {**{k: status.get(k) for k in KEPT_STATUS}, **outcome.fields}
    if fields.get("lastStartTime"):
        status["lastStartTime"] = fields["lastStartTime"]
    if "workerPod" not in fields:
        fields["workerPod"] = worker_pod(observed, spec, new_start=False)
    status["workerPod"] = fields["workerPod"]
    verdict = outcome.verdict
    if verdict is None:
        verdict = assess(
            spec or SyncTaskSpec(),
            status,
            problem=problem,
            paused=outcome.paused,
            resume_at=outcome.resume_at,
            now=observed.now,
        )
    if outcome.idle is not None and not fields.get("activeRun"):
        verdict = schedule.between_runs(verdict, outcome.idle)
    generation = observed.task["metadata"].get("generation")
    wanted = dict(verdict.conditions)
    recovering = recovery.condition(status)
    if recovering is not None:  # the task re-snapshotted after a purged binlog
        wanted[recovery.CONDITION] = recovering
    fields = {
        **fields,
        "phase": verdict.phase,
        "observedGeneration": generation,
        "conditions": conditions(wanted, status.get("conditions"), generation, observed.now),
    }
    events = list(outcome.events)
    if verdict.phase != status.get("phase"):
        kind = "Warning" if verdict.phase in ("Failed",) or problem else "Normal"
        ready = verdict.conditions["Ready"]
        events.append((kind, verdict.phase, ready[2] or f"phase {verdict.phase}"))
    elif (
        verdict.conditions["Stalled"][0] == "True"
        and stalled_reason(status) != verdict.conditions["Stalled"][1]
    ):
        # Stalled for a new reason in the same phase (a crash loop while Starting): say it.
        _, reason, message = verdict.conditions["Stalled"]
        events.append(("Warning", reason, message))
    meta = observed.task["metadata"]
    sends = notify.deliveries(
        spec or SyncTaskSpec(),
        meta["namespace"],
        meta["name"],
        notify.fired(status, verdict.phase, verdict.conditions),
        verdict.phase,
        verdict.conditions,
        observed.now,
        fields.get("lastRun"),
    )
    wake_at = health.next_check(
        spec,
        status,
        problem=problem,
        paused=outcome.paused,
        phase=verdict.phase,
        now=observed.now,
    )
    tick = health.parse_time(fields.get("nextRun"))  # a scheduled run starts with no event
    if tick is not None and (wake_at is None or tick < wake_at):
        wake_at = tick
    wake_at = verify_ticks.earliest(wake_at, fields)
    resume_at = outcome.resume_at if outcome.paused else None
    if resume_at is not None and (wake_at is None or resume_at < wake_at):
        wake_at = resume_at  # spec.resumeAt: the task runs again then
    return Plan(
        outcome.apply,
        outcome.delete,
        fields,
        events,
        problem,
        notifications=sends,
        wake_at=wake_at,
        uses=uses(observed.task, observed.template),
    )


def failure_status(
    status: dict[str, Any], generation: int | None, failure: Failure, now: datetime
) -> dict[str, Any]:
    """The operator-owned status after a reconcile that raised (pure): the other fields as
    they were, Ready=False ReconcileError, and Stalled once the same failure repeats."""
    message = f"reconcile failed: {failure.message}"
    if failure.stalled:
        message += f" (failed {failure.attempts} times in a row; retrying with backoff)"
    before = {c.get("type"): c for c in status.get("conditions") or []}
    degraded = before.get("Degraded") or {}
    wanted = {
        "Ready": ("False", failures.REASON, message),
        "Reconciling": ("True", failures.REASON, message),
        "Stalled": ("True", failures.REASON, message) if failure.stalled else OK_CONDITION,
        "Degraded": (
            str(degraded.get("status") or "False"),
            str(degraded.get("reason") or "AsExpected"),
            str(degraded.get("message") or ""),
        ),
    }
    recovering = recovery.condition(status)
    if recovering is not None:
        wanted[recovery.CONDITION] = recovering
    fields = {key: status.get(key) for key in OWNED_STATUS}
    return {
        **fields,
        "phase": status.get("phase") or "Pending",
        "observedGeneration": generation,
        "conditions": conditions(wanted, status.get("conditions"), generation, now),
    }
