"""Decide for one SyncTask (pure): from what was observed, the effective spec, or the Problem
that blocks it (a missing TaskTemplate or Connector: wait; a spec that cannot work: say
which field); else the rendered objects of owned.KINDS, the revision to create or prune, the
worker's start, one health assessment, and the Events to announce. plan.conclude makes the
status of it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ferry_operator.api.connector import Connector
from ferry_operator.api.synctask import SyncTask, SyncTaskSpec
from ferry_operator.api.tasktemplate import TaskTemplate
from ferry_operator.context import Context
from ferry_operator.reconcile import schedule
from ferry_operator.reconcile import verify_schedule as verify_ticks
from ferry_operator.reconcile.connector import BINLOG_READY
from ferry_operator.reconcile.health import Problem, assess, parse_time
from ferry_operator.reconcile.synctask import announce, revisions
from ferry_operator.reconcile.synctask.observe import Observed
from ferry_operator.reconcile.synctask.plan import (
    Apply,
    Outcome,
    Plan,
    conclude,
    stalled_reason,
    worker_pod,
)
from ferry_operator.recorder import rfc3339
from ferry_operator.render import errors, objects
from ferry_operator.render.meta import Owner
from ferry_operator.render.worker_config import (
    config_hash,
    effective_spec,
    render_worker_config,
    secret_env,
    secret_volumes,
    secrets_hash,
)
from ferry_runtime import live
from ferry_runtime.config import WorkerConfig

__all__ = ["WORKER_IMAGE", "connector_problem", "decide"]

# The worker image when a task names none (the Helm chart sets it to the release's image).
WORKER_IMAGE = os.environ.get("FERRY_WORKER_IMAGE") or objects.DEFAULT_IMAGE


@dataclass(frozen=True)
class _Inputs:
    """What a runnable task is rendered from."""

    task: SyncTask
    spec: SyncTaskSpec  # the effective spec (the template's, merged)
    cron: Any  # spec.schedule, parsed (None: not scheduled)
    ticks: verify_ticks.VerifyPlan
    connectors: dict[str, Connector]
    config: WorkerConfig


def decide(ctx: Context, observed: Observed) -> Plan:
    """Everything to do, as data; raises nothing."""
    found = _inputs(observed)
    if isinstance(found, Outcome):  # blocked
        return conclude(observed, found)
    return conclude(observed, _running(ctx, observed, found))


def _inputs(observed: Observed) -> _Inputs | Outcome:
    """The inputs, or the blocked Outcome that says why there are none."""
    task = SyncTask.model_validate(observed.task)
    template = None
    if task.spec.template_ref is not None:
        if observed.template is None:
            name = task.spec.template_ref.name
            return Outcome.blocked(
                None,
                Problem(
                    "TemplateNotFound",
                    f"spec.templateRef: TaskTemplate {name!r} does not exist",
                    False,
                ),
            )
        template = TaskTemplate.model_validate(observed.template)
    try:
        spec = effective_spec(task, template)
    except ValidationError as error:
        problem = Problem("InvalidSpec", f"template and task do not merge: {error}", True)
        return Outcome.blocked(None, problem)
    cron = None
    if spec.schedule:
        try:
            cron = schedule.parse(spec.schedule, spec.time_zone)
        except schedule.ScheduleError as error:
            return Outcome.blocked(spec, Problem("InvalidSpec", str(error), True))
        if (spec.mode or "snapshot+cdc") != "snapshot":
            problem = Problem(
                "InvalidSpec",
                "spec.schedule needs spec.mode: snapshot (the effective mode is "
                f"{spec.mode or 'snapshot+cdc'})",
                True,
            )
            return Outcome.blocked(spec, problem)
    ticks = _verify_ticks(observed, spec)
    if isinstance(ticks, Problem):
        return Outcome.blocked(spec, ticks)
    waiting = connector_problem(spec, observed)
    if waiting is not None:
        return Outcome.blocked(spec, waiting)
    connectors = {
        name: Connector.model_validate(body) for name, body in observed.connectors.items()
    }
    rendered = task.model_copy(update={"spec": verify_ticks.with_request(task.spec, ticks.request)})
    try:
        config = render_worker_config(rendered, connectors, template)
    except errors.RenderError as error:
        return Outcome.blocked(spec, Problem(error.reason, str(error), True))
    return _Inputs(task, spec, cron, ticks, connectors, config)


def _running(ctx: Context, observed: Observed, found: _Inputs) -> Outcome:
    """The objects of a runnable task, its revision, its worker's start and health."""
    spec, cron, config = found.spec, found.cron, found.config
    owner = Owner(ctx.name, ctx.namespace, ctx.uid)
    revision = revisions.plan(owner, observed, spec, config, config_hash(config))
    resume_at = parse_time(spec.resume_at)
    paused = bool(spec.paused) and (resume_at is None or observed.now < resume_at)
    status = observed.status
    fields: dict[str, Any] = {
        "configRevision": revision.current,
        "scheduledResume": rfc3339(resume_at) if paused and resume_at else None,
        **found.ticks.fields,
    }
    events = [*revision.events, *found.ticks.events]
    runs = None
    if spec.mode == "snapshot":
        runs = schedule.plan(
            spec,
            cron,
            status,
            paused=paused,
            stop_worker=stalled_reason(status) == "TooManyRestarts",
            now=observed.now,
        )
        fields.update(runs.fields)
        events += runs.events
    wants_worker = runs.wants_worker if runs is not None else not paused
    # The pod template carries the hash of the config's restart part only: a change of live
    # fields (ferry_runtime.live.LIVE_FIELDS) reaches the running worker through its mounted
    # ConfigMap, still as a new revision.
    deployment = objects.deployment(
        owner,
        spec,
        live.restart_hash(config),
        secret_env(spec, found.connectors),
        replicas=1,
        image=WORKER_IMAGE,
        secret_volumes=secret_volumes(spec, found.connectors),
        secrets_hash=secrets_hash(
            spec,
            {
                name: ((body.get("status") or {}).get("secretVersions"))
                for name, body in observed.connectors.items()
            },
        ),
        run=runs.run if runs is not None else None,
    )
    if wants_worker and _starts_worker(deployment, observed.owned.get("Deployment"), status):
        # Worker fields reported before this moment describe the previous worker.
        status["lastStartTime"] = fields["lastStartTime"] = rfc3339(observed.now)
        if runs is not None and cron is None and status.get("phase") != "Completed":
            fields = schedule.start_unscheduled(fields, observed.now)
    fields["workerPod"] = status["workerPod"] = worker_pod(
        observed, spec, new_start="lastStartTime" in fields
    )
    verdict = assess(
        spec, status, problem=None, paused=paused, resume_at=resume_at, now=observed.now
    )
    if not wants_worker or verdict.stop_worker:
        deployment = objects.scaled(deployment, 0)
    desired = [  # in the order of owned.KINDS
        objects.worker_configmap(owner, config, revision.current),
        objects.service_account(owner),
        objects.role(owner),
        objects.role_binding(owner),
        deployment,
    ]
    apply: list[Apply] = [(revision.create, None)] if revision.create is not None else []
    apply += [(obj, observed.owned.get(obj["kind"])) for obj in desired]
    announced, said = announce.announcements(spec, status, paused)
    fields.update(announced)
    return Outcome(
        spec,
        fields=fields,
        apply=apply,
        delete=revision.delete,
        events=events + said,
        paused=paused,
        resume_at=resume_at,
        idle=schedule.idle_message(fields, spec) if cron is not None else None,
        verdict=verdict,
    )


def _condition(connector: dict[str, Any], kind: str) -> tuple[bool, str]:
    status = connector.get("status") or {}
    for condition in status.get("conditions") or []:
        if condition.get("type") == kind:
            return condition.get("status") == "True", condition.get("message") or ""
    return False, "not probed yet"


def connector_problem(spec: SyncTaskSpec, observed: Observed) -> Problem | None:
    """Why a Connector the task uses keeps it waiting (missing, not Ready, a source whose
    binlog cannot be read), or None."""
    for part in ("source", "sink"):
        ref = getattr(getattr(spec, part), "connector_ref", None)
        if ref is None:
            continue
        found = observed.connectors.get(ref.name)
        if found is None:
            return Problem(
                "ConnectorNotFound",
                f"spec.{part}.connectorRef: Connector {ref.name!r} does not exist "
                f"in namespace {observed.task['metadata']['namespace']}",
                False,
            )
        ready, why = _condition(found, "Ready")
        if not ready:
            return Problem(
                "ConnectorNotReady",
                f"spec.{part}.connectorRef: Connector {ref.name!r} is not Ready: {why}",
                False,
            )
        # A source's binlog must be readable too; a MySQL sink only needs to be reachable.
        if part == "source":
            readable, why = _condition(found, BINLOG_READY)
            if not readable:
                return Problem(
                    "ConnectorNotReady",
                    f"spec.source.connectorRef: Connector {ref.name!r} cannot be read as a "
                    f"binlog source: {why}",
                    False,
                )
    return None


def _verify_ticks(observed: Observed, spec: SyncTaskSpec) -> verify_ticks.VerifyPlan | Problem:
    """spec.verifySchedule's plan (the verifyRequest to render, status, Events), or why it
    cannot work (InvalidSpec naming the field)."""
    try:
        cron = verify_ticks.parse(spec)
    except schedule.ScheduleError as error:
        return Problem("InvalidSpec", str(error), True)
    if cron is not None and spec.mode == "snapshot":
        return Problem(
            "InvalidSpec",
            "spec.verifySchedule needs a streaming task (mode snapshot+cdc or cdc): a mode: "
            "snapshot worker ends after its copy",
            True,
        )
    resume_at = parse_time(spec.resume_at)
    paused = bool(spec.paused) and (resume_at is None or observed.now < resume_at)
    return verify_ticks.plan(spec, cron, observed.status, paused=paused, now=observed.now)


def _pod_identity(deployment: dict[str, Any] | None) -> tuple[int, dict[str, Any]]:
    spec = (deployment or {}).get("spec") or {}
    annotations = ((spec.get("template") or {}).get("metadata") or {}).get("annotations") or {}
    ours = {k: v for k, v in annotations.items() if k.startswith("ferry.dev/")}
    return spec.get("replicas") or 0, ours


def _starts_worker(
    running: dict[str, Any], observed: dict[str, Any] | None, status: dict[str, Any]
) -> bool:
    """Whether running ``running`` means a new worker process: a new pod template, or a
    scale-up (not after a stop for too many restarts, which lasts until a new restartNonce)."""
    _, identity = _pod_identity(running)
    before_replicas, before_identity = _pod_identity(observed)
    if identity != before_identity:
        return True
    return before_replicas == 0 and stalled_reason(status) != "TooManyRestarts"
