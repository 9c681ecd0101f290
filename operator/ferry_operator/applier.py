"""The one place that writes desired objects: server-side apply under the field manager
``ferry-operator``. An object whose observed copy already carries the desired content's hash
is not sent at all, so a steady state makes no API writes."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

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


# Fields someone may change behind the operator's back that must be put back at once: two
# replicas of a binlog reader would deliver every event twice; the worker's RBAC must stay
# "its own task's status, nothing else".
_GUARDED: dict[str, list[tuple[str, ...]]] = {
    "Deployment": [("spec", "replicas")],
    "Role": [("rules",)],
    "RoleBinding": [("subjects",), ("roleRef",)],
}


def _drifted(desired: dict[str, Any], observed: dict[str, Any] | None) -> bool:
    for path in _GUARDED.get(desired["kind"], []):
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
        # a reconcile can tell a watch event's copy that predates it (reconcile/synctask.py).
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

    def _patcher(self, kind: str) -> Any:
        c = self.clients
        return {
            "ConfigMap": c.core.patch_namespaced_config_map,
            "ServiceAccount": c.core.patch_namespaced_service_account,
            "Deployment": c.apps.patch_namespaced_deployment,
            "Role": c.rbac.patch_namespaced_role,
            "RoleBinding": c.rbac.patch_namespaced_role_binding,
        }[kind]

    def patch(self, body: dict[str, Any]) -> None:
        """Server-side apply of a whole object (force: the operator owns these fields)."""
        self.writes += 1
        meta = body["metadata"]
        self._patcher(body["kind"])(meta["name"], meta["namespace"], body, **_SSA)

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
