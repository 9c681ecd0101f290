"""Objects the operator's unit tests share: one ready task with its two Connectors, and an
object as the API server holds it after the applier wrote it."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from ferry_operator.applier import APPLIED_HASH, content_hash

__all__ = ["MANAGED", "READY", "as_applied", "connectors", "served", "sync_task", "task_objects"]

MANAGED = [{"manager": "kube-controller-manager", "fieldsV1": {"f:status": {}}}]

READY = {
    "conditions": [
        {"type": "Ready", "status": "True", "message": "ok"},
        {"type": "BinlogReady", "status": "True", "message": "ok"},
    ]
}


def connectors() -> dict[str, dict[str, Any]]:
    mysql = {
        "apiVersion": "ferry.dev/v1alpha1",
        "kind": "Connector",
        "metadata": {"name": "db", "namespace": "shop"},
        "spec": {
            "type": "mysql",
            "mysql": {
                "host": "db.example",
                "port": 3306,
                "user": "ferry",
                "passwordSecretRef": {"name": "db", "key": "password"},
            },
        },
        "status": READY,
    }
    kafka = {
        "apiVersion": "ferry.dev/v1alpha1",
        "kind": "Connector",
        "metadata": {"name": "kafka", "namespace": "shop"},
        "spec": {"type": "kafka", "kafka": {"bootstrapServers": "kafka.example:9092"}},
        "status": READY,
    }
    return {"db": mysql, "kafka": kafka}


def sync_task(
    spec: dict[str, Any] | None = None, status: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The task "orders" on the two Connectors; ``spec``: fields added to its spec;
    ``status``: its status (none when None)."""
    body: dict[str, Any] = {
        "apiVersion": "ferry.dev/v1alpha1",
        "kind": "SyncTask",
        "metadata": {"name": "orders", "namespace": "shop", "uid": "uid-1", "generation": 1},
        "spec": {
            "source": {"connectorRef": {"name": "db"}, "include": ["shop.*"]},
            "sink": {"connectorRef": {"name": "kafka"}, "kafka": {}},
            **(spec or {}),
        },
    }
    if status is not None:
        body["status"] = status
    return body


def as_applied(desired: dict[str, Any]) -> dict[str, Any]:
    """What the API server holds after the applier wrote ``desired``."""
    found = copy.deepcopy(desired)
    found["metadata"].setdefault("annotations", {})[APPLIED_HASH] = content_hash(desired)
    return found


def served(desired: dict[str, Any]) -> dict[str, Any]:
    """An object as the API server returns it after the applier wrote ``desired``."""
    found = as_applied(desired)
    found["metadata"].update(uid="uid-x", resourceVersion="42", managedFields=MANAGED)
    return found


def task_objects() -> list[dict[str, Any]]:
    """The objects a new ready task's first reconcile makes, as the API server serves them."""
    from ferry_operator.context import Context
    from ferry_operator.reconcile import synctask

    now = datetime(2026, 1, 1, tzinfo=UTC)
    observed = synctask.Observed(sync_task(), None, connectors(), [], {}, now)
    plan = synctask.decide(Context("shop", "orders", "uid-1", "create"), observed)
    return [served(desired) for desired, _ in plan.apply]
