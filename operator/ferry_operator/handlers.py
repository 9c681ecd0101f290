"""kopf registrations: each handler builds a Context, calls one reconciler and turns its
outcome into kopf's language (TemporaryError to wait, PermanentError for a bad spec) and
Kubernetes Events. No logic lives here. The watch-fed indexes are registered in cache.py;
kopf passes them to every handler in ``kwargs``."""

from __future__ import annotations

import logging
import os
import time
from datetime import UTC, datetime
from typing import Any

import kopf

from ferry_operator import cache, notifier
from ferry_operator.api import GROUP, VERSION
from ferry_operator.applier import Applier
from ferry_operator.context import Context
from ferry_operator.kube import clients
from ferry_operator.reconcile import connector, failures, synctask, tasktemplate
from ferry_operator.reconcile.health import parse_time

__all__ = ["APPLIER", "FAILURES", "PROBE_SECONDS", "RESYNC_SECONDS"]

RESYNC_SECONDS = float(os.environ.get("FERRY_RESYNC_SECONDS", "10"))
PROBE_SECONDS = float(os.environ.get("FERRY_PROBE_SECONDS", "60"))
WAIT_SECONDS = float(os.environ.get("FERRY_WAIT_SECONDS", "5"))
APPLIER: Applier | None = None  # made on first use, so importing needs no cluster
FAILURES = failures.Failures(base_delay=WAIT_SECONDS)
log = logging.getLogger(__name__)


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
    # How long a replica that stopped renewing its peering entry (e.g. killed) keeps the
    # standby replicas paused: the failover time.
    settings.peering.lifetime = int(os.environ.get("FERRY_PEERING_LIFETIME", "60"))
    # The API server filters the watches of the owned kinds (only Ferry's objects reach the
    # cache) and of Secrets (Helm releases and service-account tokens never hold a
    # Connector's password: their changes need no re-probe).
    for kind in cache.OWNED_KINDS:
        settings.watching.label_selectors[kind] = cache.TASK_LABEL
    settings.watching.field_selectors["", "v1", "secrets"] = cache.SECRET_FIELD_SELECTOR


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


def _reconcile_task(body: Any, trigger: str, kwargs: dict[str, Any], raise_problem: bool) -> None:
    _reconcile_in(_ctx(body, trigger), body, kwargs, raise_problem)


def _reconcile_in(ctx: Context, body: Any, kwargs: dict[str, Any], raise_problem: bool) -> None:
    """Reconcile one task; a reconcile that raises becomes status, an Event and one log line
    per change, and is tried again after a backoff by the resync (never re-raised to kopf,
    which would log a traceback on every retry)."""
    trigger = ctx.trigger
    if trigger == "resync" and not FAILURES.due(ctx.uid, time.monotonic()):
        return
    try:
        plan = synctask.reconcile(ctx, clients(), _applier(), cache.from_kwargs(kwargs))
    except Exception as error:  # any failure: say it once, retry with backoff
        _reconcile_failed(ctx, body, error)
        return
    if plan is not None:  # its status is written: announce what changed (spec.notifications)
        notifier.submit(ctx, clients(), plan.notifications)
    recovered = FAILURES.succeeded(ctx.uid)
    if recovered is not None:
        # INFO after a streak (it was Stalled); a single failure between successes is noise.
        level = logging.INFO if recovered.stalled else logging.DEBUG
        log.log(level, "%s reconciles again (after %d failures)", ctx, recovered.attempts)
    _task_outcome(body, plan, raise_problem=raise_problem)


def _reconcile_failed(ctx: Context, body: Any, error: Exception) -> None:
    now = time.monotonic()
    failure = FAILURES.failed(ctx.uid, failures.describe(error), now)
    retry_in = failure.retry_at - now
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


@kopf.on.resume(GROUP, VERSION, "synctasks")
@kopf.on.create(GROUP, VERSION, "synctasks")
@kopf.on.update(GROUP, VERSION, "synctasks")
def synctask_changed(body: kopf.Body, reason: str, **kwargs: Any) -> None:
    _reconcile_task(body, str(reason), kwargs, raise_problem=True)


@kopf.timer(GROUP, VERSION, "synctasks", interval=RESYNC_SECONDS, initial_delay=RESYNC_SECONDS)
def synctask_resync(body: kopf.Body, **kwargs: Any) -> None:
    """Follow what the worker reports (phase, Degraded, Stalled) and connector changes;
    repair drift of the owned objects; retry a failed reconcile once its backoff is over."""
    if body["metadata"].get("deletionTimestamp"):
        return
    _reconcile_task(body, "resync", kwargs, raise_problem=False)


def _resume_scheduled(spec: kopf.Spec, **_: Any) -> bool:
    return bool(spec.get("paused") and spec.get("resumeAt"))


# cancellation_backoff: when resumeAt or paused changes, kopf first asks the daemon to stop
# (stopped.wait returns at once) instead of cancelling it (a WARNING for an ordinary resume).
@kopf.daemon(
    GROUP,
    VERSION,
    "synctasks",
    when=_resume_scheduled,
    cancellation_backoff=5,
    cancellation_timeout=5,
)
def synctask_resume_at(
    stopped: kopf.DaemonStopped, body: kopf.Body, spec: kopf.Spec, **kwargs: Any
) -> None:
    """Sleep until spec.resumeAt, then reconcile: the task runs again, spec untouched."""
    resume_at = parse_time(spec["resumeAt"])
    assert resume_at is not None
    delay = (resume_at - datetime.now(UTC)).total_seconds()
    if delay > 0 and stopped.wait(delay):
        return
    _reconcile_task(body, "resumeAt", kwargs, raise_problem=False)


@kopf.on.delete(GROUP, VERSION, "synctasks")
def synctask_deleted(body: kopf.Body, **_: Any) -> None:
    """Let the worker stop (SIGTERM → checkpoint) before the owned objects are collected."""
    ctx = _ctx(body, "delete")
    if not synctask.stop_worker(ctx, clients()):
        raise kopf.TemporaryError("waiting for the worker to stop", delay=2)
    synctask.forget(ctx.uid)
    FAILURES.forget(ctx.uid)


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

    def reconcile_task(task_ctx: Context, task: dict[str, Any]) -> None:
        _reconcile_in(task_ctx, task, kwargs, raise_problem=False)

    found = None if deleted else dict(body)
    tasktemplate.reconcile(ctx, clients(), _applier(), found, reconcile_task)


@kopf.on.resume(GROUP, VERSION, "tasktemplates")
@kopf.on.create(GROUP, VERSION, "tasktemplates")
@kopf.on.update(GROUP, VERSION, "tasktemplates")
def template_changed(body: kopf.Body, reason: str, **kwargs: Any) -> None:
    _template(body, str(reason), kwargs)


@kopf.timer(GROUP, VERSION, "tasktemplates", interval=RESYNC_SECONDS * 3)
def template_users(body: kopf.Body, **_: Any) -> None:
    # A LIST per template, not an index of SyncTasks: an index on SyncTasks makes kopf hold
    # every task's handlers until all are listed, and that burst at startup cost ~45 MiB
    # RSS per 200 tasks (measured with tests/bench/bench_operator.py).
    tasktemplate.count(_ctx(body, "count"), clients(), _applier(), dict(body))


@kopf.on.delete(GROUP, VERSION, "tasktemplates", optional=True)
def template_deleted(body: kopf.Body, **kwargs: Any) -> None:
    _template(body, "delete", kwargs, deleted=True)
