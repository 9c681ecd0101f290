"""kopf registrations: each handler builds a Context, calls one reconciler and turns its
outcome into kopf's language (TemporaryError to wait, PermanentError for a bad spec) and
Kubernetes Events. No logic lives here. The watch-fed indexes of Connectors and TaskTemplates
are registered in cache.py (kopf passes them to every handler in ``kwargs``); the owned
objects and worker pods are in :data:`STORE`, filled by the operator's own watches
(owned_store.py, started at kopf's startup), which a SyncTask's reconcile waits for.

A SyncTask is reconciled when a watch event says something changed — its own (spec, or the
status its worker writes), its worker's Deployment or pods, another owned object, a Connector
it uses — and otherwise only at the wake-ups of wakeups.py (a health deadline, the
safety-net resync every ``FERRY_RESYNC_SECONDS`` ± 20 %). An idle fleet costs no requests."""

from __future__ import annotations

import asyncio
import contextvars
import fnmatch
import hashlib
import json
import logging
import os
import threading
import time
from datetime import UTC, datetime
from typing import Any

import kopf

from ferry_operator import (
    cache,
    kopf_streams,
    kopf_toggles,
    notifier,
    owned,
    owned_store,
    wakeups,
)
from ferry_operator.api import GROUP, VERSION
from ferry_operator.applier import Applier
from ferry_operator.context import Context
from ferry_operator.kube import clients
from ferry_operator.reconcile import connector, failures, pods, synctask, tasktemplate

__all__ = [
    "APPLIER",
    "DEPENDENTS",
    "FAILURES",
    "NAMESPACES",
    "PROBE_SECONDS",
    "RESYNC_SECONDS",
    "STORE",
    "WAKEUPS",
]

# The safety net: every task is read afresh this often (± 20 %) even when no event came.
RESYNC_SECONDS = float(os.environ.get("FERRY_RESYNC_SECONDS", "300"))
# A change to an object a task depends on wakes the task this much later (a burst of pod
# events becomes one reconcile).
KICK_SECONDS = float(os.environ.get("FERRY_KICK_SECONDS", "0.5"))
PROBE_SECONDS = float(os.environ.get("FERRY_PROBE_SECONDS", "60"))
WAIT_SECONDS = float(os.environ.get("FERRY_WAIT_SECONDS", "5"))
APPLIER: Applier | None = None  # made on first use, so importing needs no cluster
FAILURES = failures.Failures(base_delay=WAIT_SECONDS)
DEPENDENTS = wakeups.Dependents()
log = logging.getLogger(__name__)
_CACHE: cache.Cache | None = None  # the indexes, captured from the first handler call
_KOPF_CONTEXT: contextvars.Context | None = None
# kopf's startup wait for the indexes, linear instead of quadratic in the watched objects.
kopf_toggles.install()
# kopf keeps of each watched object what the operator reads, not the whole object.
kopf_streams.install()
# How long a SyncTask handler waits for the owned objects' store to be filled before it leaves
# the task to a wake-up (which waits again).
STORE_WAIT_SECONDS = float(os.environ.get("FERRY_STORE_WAIT_SECONDS", "60"))
# The namespaces the operator serves ([]: all), set by main.run: the owned objects' watches.
NAMESPACES: list[str] = []
_WATCHES: list[asyncio.Task[None]] = []


def _applier() -> Applier:
    global APPLIER
    if APPLIER is None:
        APPLIER = Applier(clients())
    return APPLIER


def _ctx(body: Any, trigger: str) -> Context:
    meta = body["metadata"]
    return Context(meta["namespace"], meta["name"], meta["uid"], trigger)


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # kopf's own bookkeeping goes to annotations, so status has one owner per field.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="ferry.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="ferry.dev", key="last-handled-configuration"
    )
    settings.persistence.finalizer = "ferry.dev/finalizer"
    settings.posting.level = logging.INFO
    settings.execution.max_workers = int(os.environ.get("FERRY_MAX_WORKERS", "8"))
    settings.watching.server_timeout = 300
    # An object's kopf worker (a task, a queue, the object) exits this long after its last
    # event: at startup thousands of objects are each handled once.
    settings.queueing.idle_timeout = float(os.environ.get("FERRY_KOPF_IDLE_SECONDS", "1"))
    # kopf's startup listings (SyncTasks, Connectors, TaskTemplates, Secrets) in pages (0: at
    # once, the default). Off: when kopf still watched the owned kinds, pages of 200 waited
    # behind the objects' handling at 5,000 tasks, the start took 7.5 minutes and kopf listed
    # the tasks twice (docs/benchmarks.md). The owned objects' own watches list in pages.
    chunk = int(os.environ.get("FERRY_LIST_CHUNK", "0"))
    settings.watching.chunk_size = chunk if chunk > 0 else None
    # How long a replica that stopped renewing its peering entry (e.g. killed) keeps the
    # standby replicas paused: the failover time.
    settings.peering.lifetime = int(os.environ.get("FERRY_PEERING_LIFETIME", "60"))
    # The API server filters the watch of Secrets (Helm releases and service-account tokens
    # never hold a Connector's password: their changes need no re-probe).
    settings.watching.field_selectors["", "v1", "secrets"] = cache.SECRET_FIELD_SELECTOR


@kopf.on.startup()
async def watch_owned(settings: kopf.OperatorSettings, **_: Any) -> None:
    """The owned objects and worker pods: the operator's own watches fill STORE (started
    here, inside kopf's context: they use its client and credentials)."""
    _WATCHES.extend(owned_store.start(STORE, settings, owned_store.scopes(NAMESPACES)))


@kopf.on.cleanup()
async def stop_watching_owned(**_: Any) -> None:
    await owned_store.stop(_WATCHES)
    _WATCHES.clear()


# ---------------------------------------------------------------- SyncTask


def _task_outcome(body: Any, plan: synctask.Plan | None, raise_problem: bool = True) -> None:
    if plan is None:  # the task is gone
        return
    for kind, reason, message in plan.events:
        kopf.event(body, type=kind, reason=reason, message=message)
    if plan.problem is None or not raise_problem:
        return
    if plan.problem.permanent:
        raise kopf.PermanentError(plan.problem.message)
    raise kopf.TemporaryError(plan.problem.message, delay=WAIT_SECONDS)


def _cache(kwargs: dict[str, Any]) -> cache.Cache:
    """The indexes kopf passed; also kept (with kopf's context: kopf.event needs it) for the
    wake-ups, which run outside any handler."""
    global _CACHE, _KOPF_CONTEXT
    found = cache.from_kwargs(kwargs, STORE)
    _CACHE = found
    if _KOPF_CONTEXT is None:
        _KOPF_CONTEXT = contextvars.copy_context()
    return found


def _reconcile_task(
    body: Any, trigger: str, kwargs: dict[str, Any], raise_problem: bool, fresh: bool = False
) -> None:
    """``fresh``: ``body`` is a watch event's copy, good enough to decide from."""
    task = dict(body) if fresh else None
    _reconcile_in(_ctx(body, trigger), body, _cache(kwargs), raise_problem, task)


def _key(ctx: Context) -> wakeups.Key:
    return ctx.namespace, ctx.name


def _wake_after(ctx: Context, plan: synctask.Plan) -> None:
    """Schedule the task's next look: its health deadline, else the safety net."""
    now = time.monotonic()
    when = wakeups.safety_net(now, RESYNC_SECONDS)
    trigger = "resync"
    if plan.wake_at is not None:
        due = now + (plan.wake_at - datetime.now(UTC)).total_seconds()
        if due < when:
            when, trigger = max(due, now), "deadline"
    WAKEUPS.at(_key(ctx), when, trigger)


def _reconcile_in(
    ctx: Context,
    body: Any,
    found: cache.Cache,
    raise_problem: bool,
    task: dict[str, Any] | None = None,
) -> None:
    """Reconcile one task; a reconcile that raises becomes status, an Event and one log line
    per change, and is tried again when its backoff is over (never re-raised to kopf, which
    would log a traceback on every retry)."""
    trigger = ctx.trigger
    if trigger == "resync" and not FAILURES.due(ctx.uid, time.monotonic()):
        return
    if not STORE.wait_filled(STORE_WAIT_SECONDS):  # decide from every owned object, or later
        WAKEUPS.at(_key(ctx), time.monotonic() + WAIT_SECONDS, trigger)
        return
    try:
        plan = synctask.reconcile(ctx, clients(), _applier(), found, task)
    except Exception as error:  # any failure: say it once, retry with backoff
        _reconcile_failed(ctx, body, error)
        return
    if plan is None:
        _forget_task(ctx)
        return
    notifier.submit(ctx, clients(), plan.notifications)  # its status is written: announce
    _count_users(ctx.namespace, DEPENDENTS.record(_key(ctx), plan.uses))
    _wake_after(ctx, plan)
    recovered = FAILURES.succeeded(ctx.uid)
    if recovered is not None:
        # INFO after a streak (it was Stalled); a single failure between successes is noise.
        level = logging.INFO if recovered.stalled else logging.DEBUG
        log.log(level, "%s reconciles again (after %d failures)", ctx, recovered.attempts)
    _task_outcome(body, plan, raise_problem=raise_problem)


def _count_users(namespace: str, changed: frozenset[tuple[str, str]]) -> None:
    """A task started or stopped using a TaskTemplate: its status.users, from memory."""
    for plural, name in changed:
        template = _CACHE.template(namespace, name) if _CACHE is not None else None
        if plural != "tasktemplates" or template is None:
            continue
        number = len(DEPENDENTS.users(namespace, plural, name))
        try:
            tasktemplate.record_users(
                Context(namespace, name, template["metadata"]["uid"], "count"),
                _applier(),
                template,
                number,
            )
        except Exception as error:  # the timer counts again
            log.warning("[%s/%s count] could not record users: %s", namespace, name, error)


def _reconcile_failed(ctx: Context, body: Any, error: Exception) -> None:
    now = time.monotonic()
    failure = FAILURES.failed(ctx.uid, failures.describe(error), now)
    retry_in = failure.retry_at - now
    WAKEUPS.at(_key(ctx), failure.retry_at, "resync")
    log.debug("%s reconcile failed", ctx, exc_info=error)  # the traceback, for developers
    if FAILURES.should_say(ctx.uid, failure.message, now):
        log.error("%s reconcile failed: %s (retry in %.0fs)", ctx, failure.message, retry_in)
        kopf.event(body, type="Warning", reason=failures.REASON, message=failure.message)
    else:
        log.debug("%s reconcile failed again (%d): %s", ctx, failure.attempts, failure.message)
    if not (failure.changed or failure.attempts == failures.STALLED_AFTER):
        return
    try:
        synctask.record_failure(ctx, clients(), _applier(), failure)
    except Exception as record_error:  # e.g. the API server is down: the log line stands
        log.warning("%s could not record the failure in status: %s", ctx, record_error)


# No on.resume: at startup the listing's events (below) reconcile every unchanged task, from
# the listed copy and the cache, without kopf's progress bookkeeping (a patch per task).
@kopf.on.create(GROUP, VERSION, "synctasks")
@kopf.on.update(GROUP, VERSION, "synctasks")
def synctask_changed(body: kopf.Body, reason: str, **kwargs: Any) -> None:
    _reconcile_task(body, str(reason), kwargs, raise_problem=True)


@kopf.on.event(GROUP, VERSION, "synctasks")
def synctask_event(type: str | None, body: kopf.Body, **kwargs: Any) -> None:
    """Every other watch event of a task: the startup listing (``type`` None: the resume), the
    status its worker writes (phase, Degraded, Stalled follow it), kopf's and our own writes.
    Decided from the event's copy and the cache: no request unless something must change. A
    new generation is left to the change handlers."""
    meta = body["metadata"]
    if type == "DELETED":
        _forget_task(_ctx(body, "deleted"))
        return
    if meta.get("deletionTimestamp"):
        return
    if meta.get("generation") != (body.get("status") or {}).get("observedGeneration"):
        return
    _reconcile_task(body, "resume" if type is None else "event", kwargs, False, fresh=True)


def _forget_task(ctx: Context) -> None:
    WAKEUPS.forget(_key(ctx))
    _count_users(ctx.namespace, DEPENDENTS.forget(_key(ctx)))
    _applier().status_versions.pop(_key(ctx), None)


def _wake(key: wakeups.Key, trigger: str) -> None:
    """A wake-up is due (wakeups.py): read the task afresh and reconcile it."""
    if _CACHE is None or _KOPF_CONTEXT is None:  # no handler has run yet: no indexes
        WAKEUPS.at(key, time.monotonic() + WAIT_SECONDS, trigger)
        return
    # A copy per call: one Context cannot be entered by two threads at once.
    _KOPF_CONTEXT.copy().run(_wake_in_context, _CACHE, key, trigger)


def _wake_in_context(found: cache.Cache, key: wakeups.Key, trigger: str) -> None:
    namespace, name = key
    try:
        task = clients().get_custom(namespace, "synctasks", name)
    except Exception as error:  # the API server is away: try again later
        log.warning("[%s/%s %s] could not read the task: %s", namespace, name, trigger, error)
        WAKEUPS.at(key, time.monotonic() + WAIT_SECONDS * 4, trigger)
        return
    if task is None or task["metadata"].get("deletionTimestamp"):
        WAKEUPS.forget(key)
        DEPENDENTS.forget(key)
        return
    _reconcile_in(_ctx(task, trigger), task, found, raise_problem=False, task=task)


WAKEUPS = wakeups.Schedule(_wake, workers=int(os.environ.get("FERRY_WAKE_WORKERS", "4")))


def _kick(namespace: str, tasks: list[str], why: str) -> None:
    when = time.monotonic() + KICK_SECONDS
    for name in tasks:
        WAKEUPS.sooner((namespace, name), when, why)


# The part of an object whose change a task must act on. Not what the operator itself writes
# (a content hash, the pod template), so its own applies wake nothing.
_VIEWS: dict[tuple[str, str, str], str] = {}
_VIEWS_LOCK = threading.Lock()


def _digest(value: Any) -> str:
    return hashlib.sha1(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def _changed(kind: str, type: str | None, body: Any, view: Any) -> bool:
    """Whether this event changes ``view`` of the object (a deletion always does; the startup
    listing and a creation only remember it)."""
    key = (kind, body["metadata"]["namespace"], body["metadata"]["name"])
    with _VIEWS_LOCK:
        if type == "DELETED":
            _VIEWS.pop(key, None)
            return True
        digest = _digest(view)
        before = _VIEWS.get(key)
        _VIEWS[key] = digest
    return type == "MODIFIED" and before is not None and before != digest


def _owned_view(plural: str, body: Any) -> Any:
    if plural == "pods":
        return pods.change_view(body)
    return owned.BY_PLURAL[plural].view(body)


def _owned_changed(plural: str, type: str | None, body: Any, task: str | None) -> None:
    """An owned object (or a worker pod) changed (owned_store.py, in the event loop): wake its
    task, unless only what the operator itself writes changed. Before any handler ran (a
    standby replica, or the startup listing) there is nothing to wake: the tasks' resumes
    read the store."""
    if not _changed(plural, type, body, _owned_view(plural, body)):
        return
    namespace = body["metadata"]["namespace"]
    served = not NAMESPACES or any(fnmatch.fnmatchcase(namespace, ns) for ns in NAMESPACES)
    if task and served and _KOPF_CONTEXT is not None:
        _kick(namespace, [task], plural)


STORE = owned_store.Store(on_change=_owned_changed)


@kopf.on.delete(GROUP, VERSION, "synctasks")
def synctask_deleted(body: kopf.Body, **_: Any) -> None:
    """Let the worker stop (SIGTERM → checkpoint) before the owned objects are collected."""
    ctx = _ctx(body, "delete")
    if not synctask.stop_worker(ctx, clients(), _applier()):
        raise kopf.TemporaryError("waiting for the worker to stop", delay=2)
    synctask.forget(ctx.uid)
    FAILURES.forget(ctx.uid)
    _forget_task(ctx)


# ---------------------------------------------------------------- Connector


def _probe(body: Any, trigger: str) -> None:
    ctx = _ctx(body, trigger)
    ready, reason, message, changed = connector.reconcile(ctx, clients(), _applier(), dict(body))
    if changed:
        kopf.event(
            body,
            type="Normal" if ready else "Warning",
            reason=reason,
            message=message,
        )


@kopf.on.resume(GROUP, VERSION, "connectors")
@kopf.on.create(GROUP, VERSION, "connectors")
@kopf.on.update(GROUP, VERSION, "connectors")
def connector_changed(body: kopf.Body, reason: str, **_: Any) -> None:
    _probe(body, str(reason))


@kopf.timer(GROUP, VERSION, "connectors", interval=PROBE_SECONDS, initial_delay=PROBE_SECONDS)
def connector_reprobe(body: kopf.Body, **_: Any) -> None:
    _probe(body, "reprobe")


@kopf.on.event(GROUP, VERSION, "connectors")
def connector_event(type: str | None, body: kopf.Body, **_: Any) -> None:
    """A Connector's spec or probed status changed: wake the tasks that use it (known from
    their reconciles), which render a new revision or wait."""
    status = body.get("status") or {}
    view = [
        body.get("spec"),
        [
            [c.get("type"), c.get("status"), c.get("reason"), c.get("message")]
            for c in status.get("conditions") or []
        ],
        status.get("secretVersions"),
    ]
    if type == "ADDED" or _changed("connectors", type, body, view):
        namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
        _kick(namespace, DEPENDENTS.users(namespace, "connectors", name), f"connector/{name}")


@kopf.on.event("", "v1", "secrets")
def secret_event(type: str | None, body: kopf.Body, **kwargs: Any) -> None:
    """A Secret changed: re-probe the Connectors that use it (the initial listing is skipped).
    Which ones comes from an index: a Secret no Connector names costs no API request."""
    if type not in ("ADDED", "MODIFIED"):
        return
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    for connector_name in cache.connectors_using(kwargs, namespace, name):
        # Read afresh: the probe compares with the Connector's current status.
        found = clients().get_custom(namespace, "connectors", connector_name)
        if found is not None:
            _probe(found, f"secret/{name}")


# ---------------------------------------------------------------- TaskTemplate


def _template(body: Any, trigger: str, kwargs: dict[str, Any], deleted: bool = False) -> None:
    ctx = _ctx(body, trigger)
    found_cache = _cache(kwargs)

    def reconcile_task(task_ctx: Context, task: dict[str, Any]) -> None:
        _reconcile_in(task_ctx, task, found_cache, raise_problem=False)

    found = None if deleted else dict(body)
    tasktemplate.reconcile(ctx, clients(), _applier(), found, reconcile_task)


@kopf.on.resume(GROUP, VERSION, "tasktemplates")
@kopf.on.create(GROUP, VERSION, "tasktemplates")
@kopf.on.update(GROUP, VERSION, "tasktemplates")
def template_changed(body: kopf.Body, reason: str, **kwargs: Any) -> None:
    _template(body, str(reason), kwargs)


@kopf.timer(
    GROUP,
    VERSION,
    "tasktemplates",
    interval=min(RESYNC_SECONDS * 3, 60),
    initial_delay=min(RESYNC_SECONDS * 3, 60),
)
def template_users(body: kopf.Body, **_: Any) -> None:
    # Counted from what the tasks' reconciles recorded (wakeups.Dependents): no request, and a
    # status write only when the count changed. Not an index of SyncTasks: that makes kopf
    # hold every task's handlers until all are listed (~45 MiB RSS per 200 tasks, measured
    # with tests/bench/bench_operator.py).
    meta = body["metadata"]
    number = len(DEPENDENTS.users(meta["namespace"], "tasktemplates", meta["name"]))
    tasktemplate.record_users(_ctx(body, "count"), _applier(), dict(body), number)


@kopf.on.event(GROUP, VERSION, "tasktemplates")
def template_event(type: str | None, body: kopf.Body, **_: Any) -> None:
    """A TaskTemplate deleted: wake its users at once (they become TemplateNotFound), also
    when the delete handler below missed the deletion."""
    if type == "DELETED":
        namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
        _kick(namespace, DEPENDENTS.users(namespace, "tasktemplates", name), f"template/{name}")


@kopf.on.delete(GROUP, VERSION, "tasktemplates", optional=True)
def template_deleted(body: kopf.Body, **kwargs: Any) -> None:
    _template(body, "delete", kwargs, deleted=True)
