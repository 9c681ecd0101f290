"""Reconcile one SyncTask: observe (read the task, its template, connectors, revisions and
owned objects — all but the task from the watch-fed cache in a steady state) → decide (pure:
render the desired objects, the revision to create or prune, the operator-owned status) →
act (apply through the one applier, record status, emit events).

Waiting is not failing: a missing or not-Ready Connector, or a missing TaskTemplate, gives a
Problem(permanent=False) that the handler turns into kopf.TemporaryError; a spec that cannot
work gives Problem(permanent=True) → kopf.PermanentError. The operator never writes spec.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import yaml
from pydantic import ValidationError

from ferry_operator.api.connector import Connector
from ferry_operator.api.synctask import SyncTask, SyncTaskSpec
from ferry_operator.api.tasktemplate import TaskTemplate
from ferry_operator.applier import Applier, needs_apply
from ferry_operator.cache import Cache, pod_view
from ferry_operator.context import Context
from ferry_operator.kube import Clients
from ferry_operator.observability import RECONCILES
from ferry_operator.reconcile import failures, health, notify, recovery, schedule
from ferry_operator.reconcile import pods as pods_module
from ferry_operator.reconcile import verify_schedule as verify_ticks
from ferry_operator.reconcile.connector import BINLOG_READY
from ferry_operator.reconcile.failures import Failure
from ferry_operator.reconcile.health import OK_CONDITION, Problem, assess, parse_time
from ferry_operator.recorder import conditions, record, rfc3339
from ferry_operator.render import changes, errors, meta, objects
from ferry_operator.render.meta import Owner
from ferry_operator.render.worker_config import (
    config_hash,
    effective_spec,
    render_worker_config,
    secret_env,
    secret_volumes,
    secrets_hash,
    stored_spec,
)
from ferry_runtime import live
from ferry_runtime.config import WorkerConfig

# The worker image when a task names none (the Helm chart sets it to the release's image).
WORKER_IMAGE = os.environ.get("FERRY_WORKER_IMAGE") or objects.DEFAULT_IMAGE

__all__ = [
    "OWNED_STATUS",
    "Observed",
    "Plan",
    "act",
    "decide",
    "failure_status",
    "forget",
    "observe",
    "reconcile",
    "record_failure",
    "stop_worker",
    "uses",
    "writes_objects",
]

DEFAULT_HISTORY = 10
OWNED_STATUS = {
    "phase",
    "observedGeneration",
    "conditions",
    "configRevision",
    "scheduledResume",
    "lastResetNonce",
    "lastRestartNonce",
    "lastSkipNonce",
    "lastVerifyNonce",
    "lastResnapshotAnnounced",
    "lastKeylessRestartAnnounced",
    "lastStartTime",
    "workerPod",
    # snapshot runs (reconcile/schedule.py)
    "nextRun",
    "activeRun",
    "lastRun",
    "runs",
    # periodic verification (reconcile/verify_schedule.py)
    *verify_ticks.FIELDS,
}
Event = tuple[str, str, str]  # (type, reason, message)
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


@dataclass(frozen=True)
class Observed:
    """What is there now (read-only snapshot)."""

    task: dict[str, Any]
    template: dict[str, Any] | None
    connectors: dict[str, dict[str, Any]]
    revisions: list[dict[str, Any]]  # this task's ConfigMaps, oldest first
    owned: dict[str, dict[str, Any] | None]  # kind → observed object
    now: datetime
    pods: list[dict[str, Any]] = field(default_factory=list)  # the worker's pods
    secret_keys: dict[str, list[str]] = field(default_factory=dict)  # a Secret a pod misses


@dataclass(frozen=True)
class Plan:
    """What to do; computed without side effects."""

    apply: list[tuple[dict[str, Any], dict[str, Any] | None]] = field(default_factory=list)
    delete: list[dict[str, Any]] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    problem: Problem | None = None
    notifications: list[notify.Delivery] = field(default_factory=list)
    # When to look again with no event (health.next_check), and what the task reads (for
    # waking it when a Connector or its TaskTemplate changes).
    wake_at: datetime | None = None
    uses: frozenset[tuple[str, str]] = frozenset()


# ---------------------------------------------------------------- observe


def _revision_number(configmap: dict[str, Any]) -> int:
    return int(configmap["metadata"].get("labels", {}).get(meta.REVISION, "0"))


def _is_revision(configmap: dict[str, Any]) -> bool:
    return meta.REVISION in (configmap["metadata"].get("labels") or {})


def _worker_configmap(ctx: Context, configmaps: list[dict[str, Any]]) -> dict[str, Any] | None:
    name = meta.worker_config_name(ctx.name)
    return next((c for c in configmaps if c["metadata"].get("name") == name), None)


def _connector_names(spec: dict[str, Any]) -> set[str]:
    return {
        ref["name"]
        for part in ("source", "sink")
        for ref in [(spec.get(part) or {}).get("connectorRef")]
        if ref
    }


def uses(task: dict[str, Any], template: dict[str, Any] | None) -> frozenset[tuple[str, str]]:
    """The Connectors and the TaskTemplate ``task`` reads, as (plural, name) (pure)."""
    spec = task.get("spec") or {}
    names = _connector_names(spec)
    if template:
        names |= _connector_names(template.get("spec", {}).get("template", {}))
    found = {("connectors", name) for name in names}
    if spec.get("templateRef"):
        found.add(("tasktemplates", spec["templateRef"]["name"]))
    return frozenset(found)


def observe(
    ctx: Context,
    clients: Clients,
    task: dict[str, Any],
    cache: Cache | None = None,
    owned_from_cache: bool = False,
) -> Observed:
    """Read what the task depends on: template and Connectors from ``cache`` when given (else
    the API); revisions and owned objects from the API unless ``owned_from_cache``."""

    def read(plural: str, name: str) -> dict[str, Any] | None:
        if cache is None:
            return clients.get_custom(ctx.namespace, plural, name)
        if plural == "tasktemplates":
            return cache.template(ctx.namespace, name)
        return cache.connector(ctx.namespace, name)

    spec = task.get("spec") or {}
    template = (
        read("tasktemplates", spec["templateRef"]["name"]) if spec.get("templateRef") else None
    )
    names = _connector_names(spec)
    if template:
        names |= _connector_names(template.get("spec", {}).get("template", {}))
    found = {name: read("connectors", name) for name in sorted(names)}
    connectors = {name: body for name, body in found.items() if body is not None}
    if cache is not None and owned_from_cache:
        revisions, owned = _owned_cached(ctx, cache)
    else:
        revisions, owned = _owned_fresh(ctx, clients)
    pods = _pods(ctx, clients, cache)
    return Observed(
        task,
        template,
        connectors,
        revisions,
        owned,
        datetime.now(UTC),
        pods,
        _secret_keys(clients, pods),
    )


def _pods(ctx: Context, clients: Clients, cache: Cache | None) -> list[dict[str, Any]]:
    """The worker's pods: from the watch-fed index, else listed."""
    if cache is not None:
        return cache.pods_of(ctx.namespace, ctx.name)
    listed = clients.core.list_namespaced_pod(
        ctx.namespace, label_selector=f"{meta.TASK_LABEL}={ctx.name}"
    )
    return [pod_view(clients.api.sanitize_for_serialization(item)) for item in listed.items]


def _secret_keys(clients: Clients, pods: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The key names (never the values) of a Secret whose key a worker pod cannot find, so
    that the message can list them. Read only while a pod reports it."""
    from kubernetes import client

    missing = pods_module.missing_secret_key(pods)
    if missing is None:
        return {}
    namespace, name = missing
    try:
        secret = clients.core.read_namespaced_secret(name, namespace)
    except client.ApiException:
        return {}
    return {name: sorted((secret.data or {}).keys())}


def _owned_cached(
    ctx: Context, cache: Cache
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any] | None]]:
    configmaps = cache.revisions_of(ctx.namespace, ctx.name)
    revisions = sorted(filter(_is_revision, configmaps), key=_revision_number)
    worker = meta.worker_name(ctx.name)
    owned = {
        kind: cache.owned_object(kind, ctx.namespace, worker)
        for kind in ("Deployment", "ServiceAccount", "Role", "RoleBinding")
    }
    owned["ConfigMap"] = _worker_configmap(ctx, configmaps)
    return revisions, owned


def _owned_fresh(
    ctx: Context, clients: Clients
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any] | None]]:
    selector = f"{meta.TASK_LABEL}={ctx.name}"
    listed = clients.core.list_namespaced_config_map(ctx.namespace, label_selector=selector)
    configmaps = [clients.api.sanitize_for_serialization(item) for item in listed.items]
    revisions = sorted(filter(_is_revision, configmaps), key=_revision_number)
    worker = meta.worker_name(ctx.name)
    read = {
        "Deployment": _read(clients.apps.read_namespaced_deployment, worker, ctx.namespace),
        "ServiceAccount": _read(
            clients.core.read_namespaced_service_account, worker, ctx.namespace
        ),
        "Role": _read(clients.rbac.read_namespaced_role, worker, ctx.namespace),
        "RoleBinding": _read(clients.rbac.read_namespaced_role_binding, worker, ctx.namespace),
    }
    owned = {
        kind: clients.api.sanitize_for_serialization(obj) if obj is not None else None
        for kind, obj in read.items()
    }
    owned["ConfigMap"] = _worker_configmap(ctx, configmaps)
    return revisions, owned


def _read(reader: Any, name: str, namespace: str) -> Any:
    from kubernetes import client

    try:
        return reader(name, namespace)
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise


# ---------------------------------------------------------------- decide


def _condition(connector: dict[str, Any], kind: str) -> tuple[bool, str]:
    status = connector.get("status") or {}
    for condition in status.get("conditions") or []:
        if condition.get("type") == kind:
            return condition.get("status") == "True", condition.get("message") or ""
    return False, "not probed yet"


def _connector_problem(spec: SyncTaskSpec, observed: Observed) -> Problem | None:
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


def _generations(observed: Observed) -> dict[str, str]:
    """The generations a revision is rendered from, kept on it to explain the next one."""
    out = {meta.TASK_GENERATION: str(observed.task["metadata"].get("generation"))}
    if observed.template is not None:
        out[meta.TEMPLATE_GENERATION] = str(observed.template["metadata"].get("generation"))
    return out


def _cause(
    observed: Observed,
    previous: dict[str, Any] | None,
    spec: SyncTaskSpec,
    digest: str,
    config: WorkerConfig,
) -> str:
    """Why a new revision: from what differs from the previous one, not from what woke us.
    Names the changed fields (``performance.batchSize: 500 → 2000``); a config equal to an
    older revision's is ``rollback to rN``."""
    if previous is None:
        return "created"
    old_spec = yaml.safe_load(previous.get("data", {}).get(objects.SPEC_KEY) or "{}") or {}
    old_nonce = (old_spec.get("resetPosition") or {}).get("nonce")
    if spec.reset_position and spec.reset_position.nonce != old_nonce:
        return f"resetPosition (nonce {spec.reset_position.nonce})"
    old_skip = (old_spec.get("skipEvent") or {}).get("nonce")
    if spec.skip_event and spec.skip_event.nonce != old_skip:
        return f"skipEvent (nonce {spec.skip_event.nonce})"
    old_config = yaml.safe_load(previous.get("data", {}).get(objects.WORKER_CONFIG_KEY) or "{}")
    rendered = config.verify_request.nonce if config.verify_request else None
    scheduled = verify_ticks.cause(old_config or {}, rendered)
    if scheduled is not None:
        return scheduled
    old_verify = (old_spec.get("verifyRequest") or {}).get("nonce")
    if spec.verify_request and spec.verify_request.nonce != old_verify:
        return f"verifyRequest (nonce {spec.verify_request.nonce})"
    for older in reversed(observed.revisions[:-1]):
        if (older["metadata"].get("annotations") or {}).get(meta.CONFIG_HASH) == digest:
            return f"rollback to r{_revision_number(older)}"
    fields = changes.describe(old_spec, stored_spec(spec))
    before = previous["metadata"].get("annotations") or {}
    now = _generations(observed)
    if spec.template_ref and before.get(meta.TEMPLATE_GENERATION) != now.get(
        meta.TEMPLATE_GENERATION
    ):
        changed = f"TaskTemplate {spec.template_ref.name} changed"
        return f"{changed}: {fields}" if fields else changed
    if fields:
        return fields
    if before.get(meta.TASK_GENERATION) != now[meta.TASK_GENERATION]:
        return f"spec changed (generation {now[meta.TASK_GENERATION]})"
    return "a Connector changed"


def _status_base(observed: Observed) -> dict[str, Any]:
    return dict(observed.task.get("status") or {})


def _finish(
    observed: Observed,
    spec: SyncTaskSpec | None,
    problem: Problem | None,
    fields: dict[str, Any],
    plan_apply: list[tuple[dict[str, Any], dict[str, Any] | None]],
    delete: list[dict[str, Any]],
    events: list[Event],
    paused: bool,
    resume_at: datetime | None,
    *,
    idle: str | None = None,
) -> Plan:
    status = _status_base(observed)
    kept = (
        "configRevision",
        "lastResetNonce",
        "lastRestartNonce",
        "lastSkipNonce",
        "lastVerifyNonce",
        "lastResnapshotAnnounced",
        "lastKeylessRestartAnnounced",
        "lastStartTime",
        "nextRun",
        "activeRun",
        "lastRun",
        "runs",
        *verify_ticks.FIELDS,
    )
    fields = {**{k: status.get(k) for k in kept}, **fields}
    if fields.get("lastStartTime"):
        status["lastStartTime"] = fields["lastStartTime"]
    if "workerPod" not in fields:
        fields["workerPod"] = _worker_pod(observed, spec, new_start=False)
    status["workerPod"] = fields["workerPod"]
    verdict = assess(
        spec or SyncTaskSpec(),
        status,
        problem=problem,
        paused=paused,
        resume_at=resume_at,
        now=observed.now,
    )
    if idle is not None and not fields.get("activeRun"):
        verdict = schedule.between_runs(verdict, idle)
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
    if verdict.phase != status.get("phase"):
        kind = "Warning" if verdict.phase in ("Failed",) or problem else "Normal"
        ready = verdict.conditions["Ready"]
        events.append((kind, verdict.phase, ready[2] or f"phase {verdict.phase}"))
    elif (
        verdict.conditions["Stalled"][0] == "True"
        and _stalled_reason(status) != verdict.conditions["Stalled"][1]
    ):
        # Stalled for a new reason in the same phase (a crash loop while Starting): say it.
        _, reason, message = verdict.conditions["Stalled"]
        events.append(("Warning", reason, message))
    meta_ = observed.task["metadata"]
    sends = notify.deliveries(
        spec or SyncTaskSpec(),
        meta_["namespace"],
        meta_["name"],
        notify.fired(status, verdict.phase, verdict.conditions),
        verdict.phase,
        verdict.conditions,
        observed.now,
        fields.get("lastRun"),
    )
    wake_at = health.next_check(
        spec, status, problem=problem, paused=paused, phase=verdict.phase, now=observed.now
    )
    tick = health.parse_time(fields.get("nextRun"))  # a scheduled run starts with no event
    if tick is not None and (wake_at is None or tick < wake_at):
        wake_at = tick
    wake_at = verify_ticks.earliest(wake_at, fields)
    return Plan(
        plan_apply,
        delete,
        fields,
        events,
        problem,
        notifications=sends,
        wake_at=wake_at,
        uses=uses(observed.task, observed.template),
    )


def _worker_pod(
    observed: Observed, spec: SyncTaskSpec | None, new_start: bool
) -> dict[str, Any] | None:
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


def _revisions(
    owner: Owner, observed: Observed, spec: SyncTaskSpec, config: WorkerConfig, digest: str
) -> tuple[
    str, list[tuple[dict[str, Any], dict[str, Any] | None]], list[dict[str, Any]], list[Event]
]:
    """The current revision's name: the newest one when its hash matches, else a new one;
    and the revisions beyond revisionHistoryLimit to delete."""
    events: list[Event] = []
    apply: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
    latest = observed.revisions[-1] if observed.revisions else None
    latest_hash = (latest or {}).get("metadata", {}).get("annotations", {}).get(meta.CONFIG_HASH)
    if latest is not None and latest_hash == digest:
        revision = latest["metadata"]["name"]
        kept = observed.revisions
    else:
        number = (_revision_number(latest) if latest else 0) + 1
        cause = _cause(observed, latest, spec, digest, config)
        configmap = objects.revision_configmap(
            owner, number, config, stored_spec(spec), digest, cause, _generations(observed)
        )
        apply.append((configmap, None))
        revision = configmap["metadata"]["name"]
        kept = [*observed.revisions, configmap]
        events.append(("Normal", "RevisionCreated", f"config revision {revision}: {cause}"))
    limit = spec.revision_history_limit or DEFAULT_HISTORY
    delete = kept[:-limit] if len(kept) > limit else []
    return revision, apply, delete, events


def decide(ctx: Context, observed: Observed) -> Plan:
    """Everything to do, as data; raises nothing."""
    task = SyncTask.model_validate(observed.task)
    template = None
    if task.spec.template_ref is not None:
        if observed.template is None:
            problem = Problem(
                "TemplateNotFound",
                f"spec.templateRef: TaskTemplate {task.spec.template_ref.name!r} does not exist",
                False,
            )
            return _finish(observed, None, problem, {}, [], [], [], False, None)
        template = TaskTemplate.model_validate(observed.template)
    try:
        spec = effective_spec(task, template)
    except ValidationError as error:
        problem = Problem("InvalidSpec", f"template and task do not merge: {error}", True)
        return _finish(observed, None, problem, {}, [], [], [], False, None)
    cron = None
    if spec.schedule:
        try:
            cron = schedule.parse(spec.schedule, spec.time_zone)
        except schedule.ScheduleError as error:
            return _finish(
                observed,
                spec,
                Problem("InvalidSpec", str(error), True),
                {},
                [],
                [],
                [],
                False,
                None,
            )
        if (spec.mode or "snapshot+cdc") != "snapshot":
            problem = Problem(
                "InvalidSpec",
                "spec.schedule needs spec.mode: snapshot (the effective mode is "
                f"{spec.mode or 'snapshot+cdc'})",
                True,
            )
            return _finish(observed, spec, problem, {}, [], [], [], False, None)
    ticks = _verify_ticks(observed, spec)
    if isinstance(ticks, Problem):
        return _finish(observed, spec, ticks, {}, [], [], [], False, None)
    waiting = _connector_problem(spec, observed)
    if waiting is not None:
        return _finish(observed, spec, waiting, {}, [], [], [], False, None)
    connectors = {
        name: Connector.model_validate(body) for name, body in observed.connectors.items()
    }
    rendered = task.model_copy(update={"spec": verify_ticks.with_request(task.spec, ticks.request)})
    try:
        config = render_worker_config(rendered, connectors, template)
    except errors.RenderError as error:
        problem = Problem(error.reason, str(error), True)
        return _finish(observed, spec, problem, {}, [], [], [], False, None)

    owner = Owner(ctx.name, ctx.namespace, ctx.uid)
    digest = config_hash(config)
    revision, apply, delete, events = _revisions(owner, observed, spec, config, digest)
    # The pod template carries the hash of the config's restart part only: a change of live
    # fields (ferry_runtime.live.LIVE_FIELDS) reaches the running worker through its mounted
    # ConfigMap, still as a new revision.
    restart_digest = live.restart_hash(config)
    resume_at = parse_time(spec.resume_at)
    paused = bool(spec.paused) and (resume_at is None or observed.now < resume_at)
    status = _status_base(observed)
    env = secret_env(spec, connectors)
    volumes = secret_volumes(spec, connectors)
    rotated = secrets_hash(
        spec,
        {
            name: ((body.get("status") or {}).get("secretVersions"))
            for name, body in observed.connectors.items()
        },
    )
    fields: dict[str, Any] = {
        "configRevision": revision,
        "scheduledResume": rfc3339(resume_at) if paused and resume_at else None,
        **ticks.fields,
    }
    events += ticks.events
    runs = None
    if spec.mode == "snapshot":
        runs = schedule.plan(
            spec,
            cron,
            status,
            paused=paused,
            stop_worker=_stalled_reason(status) == "TooManyRestarts",
            now=observed.now,
        )
        fields.update(runs.fields)
        events += runs.events
    wants_worker = runs.wants_worker if runs is not None else not paused
    run = runs.run if runs is not None else None
    running = objects.deployment(
        owner,
        spec,
        restart_digest,
        env,
        replicas=1,
        image=WORKER_IMAGE,
        secret_volumes=volumes,
        secrets_hash=rotated,
        run=run,
    )
    if wants_worker and _starts_worker(running, observed.owned.get("Deployment"), status):
        # Worker fields reported before this moment describe the previous worker.
        status["lastStartTime"] = fields["lastStartTime"] = rfc3339(observed.now)
        if runs is not None and cron is None and status.get("phase") != "Completed":
            fields = schedule.start_unscheduled(fields, observed.now)
    fields["workerPod"] = status["workerPod"] = _worker_pod(
        observed, spec, new_start="lastStartTime" in fields
    )
    verdict = assess(
        spec, status, problem=None, paused=paused, resume_at=resume_at, now=observed.now
    )
    replicas = 0 if not wants_worker or verdict.stop_worker else 1
    desired = [
        objects.worker_configmap(owner, config, revision),
        objects.service_account(owner),
        objects.role(owner),
        objects.role_binding(owner),
        objects.deployment(
            owner,
            spec,
            restart_digest,
            env,
            replicas=replicas,
            image=WORKER_IMAGE,
            secret_volumes=volumes,
            secrets_hash=rotated,
            run=run,
        ),
    ]
    apply += [(obj, observed.owned.get(obj["kind"])) for obj in desired]
    if spec.reset_position and status.get("lastResetNonce") != spec.reset_position.nonce:
        fields["lastResetNonce"] = spec.reset_position.nonce
        events.append(
            ("Normal", "PositionReset", f"reset position once (nonce {spec.reset_position.nonce})")
        )
    if spec.restart_nonce and status.get("lastRestartNonce") != spec.restart_nonce:
        fields["lastRestartNonce"] = spec.restart_nonce
        events.append(("Normal", "Restarted", f"restarted the worker (nonce {spec.restart_nonce})"))
    if not paused and status.get("phase") == "Paused":
        events.append(("Normal", "Resumed", "the worker runs again"))
    skipped = _skip_announcement(status)
    if skipped is not None:
        fields["lastSkipNonce"], message = skipped
        events.append(("Normal", "EventSkipped", message))
    verified = _verify_announcement(status)
    if verified is not None:
        fields["lastVerifyNonce"], event = verified
        events.append(event)
    recovered = recovery.announcement(status)
    if recovered is not None:
        fields["lastResnapshotAnnounced"], message = recovered
        events.append(("Warning", recovery.EVENT_REASON, message))
    restarted = recovery.keyless(status)
    if restarted is not None:
        fields["lastKeylessRestartAnnounced"], messages = restarted
        events.extend(("Warning", recovery.KEYLESS_REASON, text) for text in messages)
    idle = schedule.idle_message(fields, spec) if cron is not None else None
    return _finish(
        observed, spec, None, fields, apply, delete, events, paused, resume_at, idle=idle
    )


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
    return verify_ticks.plan(spec, cron, _status_base(observed), paused=paused, now=observed.now)


def _skip_announcement(status: dict[str, Any]) -> tuple[str, str] | None:
    """The worker's status.lastSkip not announced yet: (its nonce, the Event's message)."""
    last = status.get("lastSkip") or {}
    nonce = last.get("nonce")
    if not nonce or nonce == status.get("lastSkipNonce"):
        return None
    events = last.get("events") or 0
    what = f"{events} row event{'s' if events != 1 else ''}"
    of = f" of {last['table']}" if last.get("table") else ""
    gtid = f" (GTID {last['gtid']})" if last.get("gtid") else ""
    where = last.get("position") or "?"
    return nonce, f"skipped {what}{of} at {where}{gtid} once (spec.skipEvent nonce {nonce})"


def _verify_announcement(status: dict[str, Any]) -> tuple[str, Event] | None:
    """The worker's finished status.verification not announced yet: (its nonce, the Event):
    Verified (Normal) with no drift, DriftFound or VerificationFailed (Warning) otherwise."""
    found = status.get("verification") or {}
    nonce = found.get("nonce")
    if not nonce or found.get("state") in (None, "Running"):
        return None
    if nonce == status.get("lastVerifyNonce"):
        return None
    if found.get("state") == "Failed":
        message = f"verification (verifyRequest nonce {nonce}) failed: {found.get('message')}"
        return nonce, ("Warning", "VerificationFailed", message)
    tables, chunks = len(found.get("tables") or []), found.get("chunks") or 0
    mismatched, unsettled = found.get("mismatchedRows") or 0, found.get("unsettledRows") or 0
    summary = (
        f"compared {tables} table(s) in {chunks} chunk(s) (verifyRequest nonce {nonce}): "
        f"{mismatched} mismatched row(s)"
    )
    if unsettled:
        summary += f", {unsettled} still changing (not judged)"
    if found.get("repairedRows"):
        summary += f", {found['repairedRows']} repaired"
    if not mismatched:
        return nonce, ("Normal", "Verified", summary)
    keys = ", ".join(
        f"{k.get('table')} {k.get('key')}" for k in (found.get("sampleKeys") or [])[:5]
    )
    return nonce, ("Warning", "DriftFound", f"{summary}; e.g. {keys}")


def _pod_identity(deployment: dict[str, Any] | None) -> tuple[int, dict[str, Any]]:
    spec = (deployment or {}).get("spec") or {}
    annotations = ((spec.get("template") or {}).get("metadata") or {}).get("annotations") or {}
    ours = {k: v for k, v in annotations.items() if k.startswith("ferry.dev/")}
    return spec.get("replicas") or 0, ours


def _stalled_reason(status: dict[str, Any]) -> str | None:
    found = [c for c in status.get("conditions") or [] if c.get("type") == "Stalled"]
    return found[0].get("reason") if found and found[0].get("status") == "True" else None


def _starts_worker(
    running: dict[str, Any], observed: dict[str, Any] | None, status: dict[str, Any]
) -> bool:
    """Whether running ``running`` means a new worker process: a new pod template, or a
    scale-up (not after a stop for too many restarts, which lasts until a new restartNonce)."""
    _, identity = _pod_identity(running)
    before_replicas, before_identity = _pod_identity(observed)
    if identity != before_identity:
        return True
    return before_replicas == 0 and _stalled_reason(status) != "TooManyRestarts"


# ---------------------------------------------------------------- act


def act(ctx: Context, applier: Applier, observed: Observed, plan: Plan) -> list[Event]:
    """Apply, prune, then record status (status last: it reports what was done)."""
    for desired, current in plan.apply:
        applier.apply(ctx, desired, current)
    for old in plan.delete:
        applier.delete_configmap(ctx, old["metadata"]["name"], ctx.namespace)
    record(ctx, applier, observed.task, plan.status, OWNED_STATUS)
    return plan.events


def _lock(uid: str) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(uid, threading.Lock())


def forget(uid: str) -> None:
    """Drop a deleted task's lock."""
    with _LOCKS_GUARD:
        _LOCKS.pop(uid, None)


def writes_objects(plan: Plan) -> bool:
    """Whether acting on ``plan`` would write or delete an object (status aside)."""
    return bool(plan.delete) or any(needs_apply(d, o) for d, o in plan.apply)


# Triggers that expect to write (a new or changed spec, a template change): fresh reads at once.
FRESH_TRIGGERS = ("create", "update", "template/")


def _rv(obj: dict[str, Any] | None) -> int:
    try:
        return int((obj or {}).get("metadata", {}).get("resourceVersion") or 0)
    except ValueError:  # not etcd's revision: never trust a copy
        return 0


def reconcile(
    ctx: Context,
    clients: Clients,
    applier: Applier,
    cache: Cache | None = None,
    task: dict[str, Any] | None = None,
) -> Plan | None:
    """observe → decide → act, one at a time per task. None when the task is gone. The handler
    turns plan.problem into a kopf error.

    ``task`` is a copy the caller already has (a watch event's body): used when it is not older
    than this operator's own last status write of the task (resourceVersions are etcd
    revisions), else the task is read afresh — a wake-up and a change handler may fire
    together, and an event queued before our write carries the status before it.

    With a ``cache`` (the watch-fed copies), a reconcile in a steady state reads nothing more.
    When the copies say an object must be written, the owned objects and revisions are read
    afresh and the plan made again: writes are decided only on fresh reads, so a lagging copy
    never takes a revision number twice nor overwrites what someone just changed. Triggers
    that expect to write (create, update, a template change) read afresh at once.
    """
    RECONCILES.labels(ctx.trigger.split("/")[0]).inc()
    with _lock(ctx.uid):
        written = applier.status_versions.get((ctx.namespace, ctx.name), 0)
        if task is None or _rv(task) < written:
            task = clients.get_custom(ctx.namespace, "synctasks", ctx.name)
        if task is None or task["metadata"].get("uid") != ctx.uid:
            return None
        if task["metadata"].get("deletionTimestamp"):
            return None
        if cache is not None and not ctx.trigger.startswith(FRESH_TRIGGERS):
            observed = observe(ctx, clients, task, cache, owned_from_cache=True)
            plan = decide(ctx, observed)
            if not writes_objects(plan):
                act(ctx, applier, observed, plan)
                return plan
        observed = observe(ctx, clients, task, cache)
        plan = decide(ctx, observed)
        act(ctx, applier, observed, plan)
        return plan


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


def record_failure(ctx: Context, clients: Clients, applier: Applier, failure: Failure) -> None:
    """Write ``failure`` into the task's status (the act step of a reconcile that raised)."""
    with _lock(ctx.uid):
        task = clients.get_custom(ctx.namespace, "synctasks", ctx.name)
        if task is None or task["metadata"].get("uid") != ctx.uid:
            return
        generation = task["metadata"].get("generation")
        fields = failure_status(task.get("status") or {}, generation, failure, datetime.now(UTC))
        record(ctx, applier, task, fields, OWNED_STATUS)


def stop_worker(ctx: Context, clients: Clients) -> bool:
    """Scale the worker to 0 (it checkpoints on SIGTERM); True once no pod is left."""
    from kubernetes import client

    name = meta.worker_name(ctx.name)
    try:
        deployment = clients.apps.read_namespaced_deployment(name, ctx.namespace)
    except client.ApiException as error:
        if error.status == 404:
            return True
        raise
    if deployment.spec.replicas:
        clients.apps.patch_namespaced_deployment_scale(
            name, ctx.namespace, {"spec": {"replicas": 0}}
        )
    return not (deployment.status and deployment.status.replicas)
