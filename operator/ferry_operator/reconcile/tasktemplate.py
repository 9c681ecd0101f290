"""Reconcile one TaskTemplate: re-render every SyncTask that uses it (each gets a new revision
whose change cause names the template) and count its users in status."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ferry_operator.applier import Applier
from ferry_operator.context import Context
from ferry_operator.kube import Clients
from ferry_operator.recorder import record

__all__ = ["OWNED_STATUS", "count", "reconcile", "record_users", "users"]

OWNED_STATUS = {"observedGeneration", "users"}


def users(clients: Clients, namespace: str, template: str) -> list[dict[str, Any]]:
    return [
        task
        for task in clients.list_custom(namespace, "synctasks")
        if ((task.get("spec") or {}).get("templateRef") or {}).get("name") == template
        and not task["metadata"].get("deletionTimestamp")
    ]


def reconcile(
    ctx: Context,
    clients: Clients,
    applier: Applier,
    body: dict[str, Any] | None,
    reconcile_task: Callable[[Context, dict[str, Any]], None],
) -> int:
    """Re-render the users (``body`` None: the template was deleted) through
    ``reconcile_task`` (the handlers' SyncTask reconcile: one task's failure is that task's
    ReconcileError, the others go on); returns their count."""
    tasks = users(clients, ctx.namespace, ctx.name)
    for task in tasks:
        meta = task["metadata"]
        task_ctx = Context(ctx.namespace, meta["name"], meta["uid"], f"template/{ctx.name}")
        reconcile_task(task_ctx, task)
    if body is not None:
        record_users(ctx, applier, body, len(tasks))
    return len(tasks)


def count(ctx: Context, clients: Clients, applier: Applier, body: dict[str, Any]) -> int:
    """Only refresh status.users (tasks come and go without the template changing)."""
    number = len(users(clients, ctx.namespace, ctx.name))
    record_users(ctx, applier, body, number)
    return number


def record_users(ctx: Context, applier: Applier, body: dict[str, Any], number: int) -> None:
    fields = {"observedGeneration": body["metadata"].get("generation"), "users": number}
    record(ctx, applier, body, fields, OWNED_STATUS)
