"""The one place that writes the operator's objects: server-side apply under the field manager
``ferry-operator`` (the kinds of owned.py), status, the pruning of old revisions and the
scale-down before a task's deletion. An object whose observed copy already carries the desired
content's hash is not sent at all, so a steady state makes no API writes."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from ferry_operator import owned
from ferry_operator.api import GROUP, VERSION
from ferry_operator.context import Context
from ferry_operator.kube import Clients

__all__ = ["APPLIED_HASH", "FIELD_MANAGER", "Applier", "content_hash", "needs_apply"]

FIELD_MANAGER = "ferry-operator"
APPLIED_HASH = "ferry.dev/applied-hash"
log = logging.getLogger(__name__)
_SSA: dict[str, Any] = {
    "field_manager": FIELD_MANAGER,
    "force": True,
    "_content_type": "application/apply-patch+yaml",  # JSON is YAML
}


def _drifted(desired: dict[str, Any], observed: dict[str, Any] | None) -> bool:
    """Whether a guarded field of the kind (owned.Kind.guarded) differs from ``desired``."""
    kind = owned.BY_KIND.get(desired["kind"])
    for path in kind.guarded if kind is not None else ():
        want: Any = desired
        have: Any = observed or {}
        for key in path:
            want, have = want.get(key), (have or {}).get(key)
        if want != have:
            return True
    return False


def content_hash(obj: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def needs_apply(desired: dict[str, Any], observed: dict[str, Any] | None) -> bool:
    """Whether ``observed`` lacks ``desired``: another content hash, or a guarded field
    changed behind the operator's back (pure)."""
    annotations = ((observed or {}).get("metadata") or {}).get("annotations") or {}
    return annotations.get(APPLIED_HASH) != content_hash(desired) or _drifted(desired, observed)


class Applier:
    """Applies objects; counts the writes it made (tests and the benchmark read it)."""

    def __init__(self, clients: Clients) -> None:
        self.clients = clients
        self.writes = 0
        # (namespace, name) → resourceVersion of the last status this operator wrote, so that
        # a reconcile can tell a watch event's copy that predates it (reconcile/synctask/).
        self.status_versions: dict[tuple[str, str], int] = {}

    def apply(self, ctx: Context, desired: dict[str, Any], observed: dict[str, Any] | None) -> bool:
        """Apply ``desired`` unless ``observed`` already holds it; True when it wrote."""
        if not needs_apply(desired, observed):
            return False
        body = json.loads(json.dumps(desired))
        body["metadata"].setdefault("annotations", {})[APPLIED_HASH] = content_hash(desired)
        self.patch(body)
        log.info("%s applied %s %s", ctx, desired["kind"], desired["metadata"]["name"])
        return True

    def patch(self, body: dict[str, Any]) -> None:
        """Server-side apply of a whole object of an owned kind (force: the operator owns these
        fields)."""
        self.writes += 1
        meta = body["metadata"]
        patch = owned.BY_KIND[body["kind"]].patch(self.clients)
        patch(meta["name"], meta["namespace"], body, **_SSA)

    def scale_to_zero(self, ctx: Context, name: str, namespace: str) -> None:
        """Scale Deployment ``name`` to 0 through its scale subresource (a task's deletion: the
        worker checkpoints on SIGTERM before its objects are collected)."""
        self.writes += 1
        self.clients.apps.patch_namespaced_deployment_scale(
            name, namespace, {"spec": {"replicas": 0}}
        )
        log.info("%s scaled Deployment %s to 0", ctx, name)

    def patch_status(self, plural: str, body: dict[str, Any]) -> None:
        """Server-side apply of the status subresource of a Ferry resource."""
        self.writes += 1
        meta = body["metadata"]
        written = self.clients.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, meta["namespace"], plural, meta["name"], body, **_SSA
        )
        version = str(((written or {}).get("metadata") or {}).get("resourceVersion") or "")
        if plural == "synctasks" and version.isdigit():
            self.status_versions[meta["namespace"], meta["name"]] = int(version)

    def delete_configmap(self, ctx: Context, name: str, namespace: str) -> None:
        self.writes += 1
        self.clients.core.delete_namespaced_config_map(name, namespace)
        log.info("%s deleted ConfigMap %s", ctx, name)
