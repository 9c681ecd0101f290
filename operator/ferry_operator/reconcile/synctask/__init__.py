"""Reconcile one SyncTask: observe (observe.py: read the task, its template, connectors,
revisions and owned objects — all but the task from the watch-fed cache in a steady state) →
decide (decide.py, pure: render the desired objects, the revision to create or prune
(revisions.py), the Events to announce (announce.py); plan.py concludes the operator-owned
status) → act (here: apply through the one applier, record status; the handler emits the
events).

Waiting is not failing: a missing or not-Ready Connector, or a missing TaskTemplate, gives a
Problem(permanent=False) that the handler turns into kopf.TemporaryError; a spec that cannot
work gives Problem(permanent=True) → kopf.PermanentError. The operator never writes spec.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from ferry_operator import owned
from ferry_operator.applier import Applier, needs_apply
from ferry_operator.cache import Cache
from ferry_operator.context import Context
from ferry_operator.kube import Clients
from ferry_operator.observability import RECONCILES
from ferry_operator.reconcile.failures import Failure
from ferry_operator.reconcile.synctask.announce import Event
from ferry_operator.reconcile.synctask.decide import WORKER_IMAGE, connector_problem, decide
from ferry_operator.reconcile.synctask.observe import Observed, observe, uses
from ferry_operator.reconcile.synctask.plan import OWNED_STATUS, Plan, failure_status
from ferry_operator.recorder import record
from ferry_operator.render import meta

__all__ = [
    "OWNED_STATUS",
    "WORKER_IMAGE",
    "Event",
    "Observed",
    "Plan",
    "act",
    "connector_problem",
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

_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


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


def record_failure(ctx: Context, clients: Clients, applier: Applier, failure: Failure) -> None:
    """Write ``failure`` into the task's status (the act step of a reconcile that raised)."""
    with _lock(ctx.uid):
        task = clients.get_custom(ctx.namespace, "synctasks", ctx.name)
        if task is None or task["metadata"].get("uid") != ctx.uid:
            return
        generation = task["metadata"].get("generation")
        fields = failure_status(task.get("status") or {}, generation, failure, datetime.now(UTC))
        record(ctx, applier, task, fields, OWNED_STATUS)


def stop_worker(ctx: Context, clients: Clients, applier: Applier) -> bool:
    """Scale the worker to 0 (it checkpoints on SIGTERM); True once no pod is left."""
    from kubernetes import client

    name = meta.worker_name(ctx.name)
    try:
        deployment = owned.BY_KIND["Deployment"].read(clients)(name, ctx.namespace)
    except client.ApiException as error:
        if error.status == 404:
            return True
        raise
    if deployment.spec.replicas:
        applier.scale_to_zero(ctx, name, ctx.namespace)
    return not (deployment.status and deployment.status.replicas)
