"""The one table of the kinds of object the operator owns for a SyncTask, and of the worker
pods it watches. Everything that differs by kind reads it: the watches and the store
(owned_store.py, cache.py), the reads of a task's objects (reconcile/synctask/observe.py), the
writes (applier.py) and which change of an object wakes its task (handlers.py). Adding a kind
is a row here plus its renderer (render/objects.py) in the desired list of
reconcile/synctask/decide.py.

Pure data and pure functions: no client is made here; a row names the methods of
kube.Clients that read and apply its kind (written out, so that a search for a client call,
e.g. the chart's RBAC test, finds them)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BY_KIND",
    "BY_PLURAL",
    "KINDS",
    "PER_TASK",
    "POD_SELECTOR",
    "WATCHED",
    "Kind",
    "compact",
    "slim",
]

View = Callable[[Mapping[str, Any]], Any]
Method = Callable[[Any], Any]  # kube.Clients → one of its clients' bound methods


def _deployment_view(body: Mapping[str, Any]) -> Any:
    spec, status = body.get("spec") or {}, body.get("status") or {}
    return [
        spec.get("replicas"),
        status.get("replicas"),
        [
            [c.get("type"), c.get("status"), c.get("reason")]
            for c in status.get("conditions") or []
            if c.get("type") in ("ReplicaFailure", "Progressing")
        ],
    ]


def _present(_body: Mapping[str, Any]) -> Any:
    return None  # being there is what counts


@dataclass(frozen=True)
class Kind:
    """One owned kind."""

    kind: str  # "Deployment"
    group: str  # "" for the core group
    version: str
    plural: str
    read: Method  # read_namespaced_<kind>(name, namespace)
    patch: Method  # patch_namespaced_<kind>(name, namespace, body, ...): server-side apply
    # The name of the store's lookup of the one object per task named <task>-worker, by
    # (namespace, name) (owned_store.py, cache.py); None for ConfigMaps, looked up by task
    # (the revisions and the worker's ConfigMap).
    index: str | None
    # Fields someone may change behind the operator's back that must be put back at once
    # (applier.needs_apply).
    guarded: tuple[tuple[str, ...], ...] = ()
    # The part of an object whose change wakes its task: not what the operator itself writes
    # (a content hash, the pod template), so its own applies wake nothing.
    view: View = _present
    # What a reconcile reads of the object besides its metadata and guarded fields: all the
    # cache keeps of it (slim), so thousands of tasks' copies stay small.
    read_fields: tuple[tuple[str, ...], ...] = ()

    @property
    def selector(self) -> tuple[str, str, str]:
        """(group, version, plural), as kopf names a resource."""
        return self.group, self.version, self.plural


# In the order a task's objects are applied: its config before the Deployment that mounts it,
# the RBAC before the worker that uses it.
KINDS: tuple[Kind, ...] = (
    Kind(
        "ConfigMap",
        "",
        "v1",
        "configmaps",
        read=lambda c: c.core.read_namespaced_config_map,
        patch=lambda c: c.core.patch_namespaced_config_map,
        index=None,
    ),
    Kind(
        "ServiceAccount",
        "",
        "v1",
        "serviceaccounts",
        read=lambda c: c.core.read_namespaced_service_account,
        patch=lambda c: c.core.patch_namespaced_service_account,
        index="ferry_serviceaccounts",
    ),
    Kind(
        "Role",
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        read=lambda c: c.rbac.read_namespaced_role,
        patch=lambda c: c.rbac.patch_namespaced_role,
        index="ferry_roles",
        # the worker's RBAC must stay "its own task's status, nothing else"
        guarded=(("rules",),),
        view=lambda body: body.get("rules"),
    ),
    Kind(
        "RoleBinding",
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        read=lambda c: c.rbac.read_namespaced_role_binding,
        patch=lambda c: c.rbac.patch_namespaced_role_binding,
        index="ferry_rolebindings",
        guarded=(("subjects",), ("roleRef",)),
        view=lambda body: [body.get("subjects"), body.get("roleRef")],
    ),
    Kind(
        "Deployment",
        "apps",
        "v1",
        "deployments",
        read=lambda c: c.apps.read_namespaced_deployment,
        patch=lambda c: c.apps.patch_namespaced_deployment,
        index="ferry_deployments",
        # two replicas of a binlog reader would deliver every event twice
        guarded=(("spec", "replicas"),),
        view=_deployment_view,
        # the pod template's annotations (a new worker?), the rollout's trouble and replicas
        read_fields=(("spec", "template", "metadata", "annotations"), ("status",)),
    ),
)
BY_KIND = {kind.kind: kind for kind in KINDS}


_SHORT = 64  # strings up to this long are shared (sys.intern): keys, labels, kinds, names


def compact(value: Any) -> Any:
    """A deep copy of parsed JSON whose keys and short strings are shared with every other
    copy (pure): thousands of tasks' copies repeat the same keys, labels and names, which
    each watch event's JSON brings as new strings."""
    if isinstance(value, str):
        return sys.intern(value) if len(value) <= _SHORT and type(value) is str else value
    if isinstance(value, Mapping):
        return {compact(k): compact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [compact(v) for v in value]
    return value  # numbers, booleans, None: immutable


def slim(kind: Kind, body: Mapping[str, Any]) -> dict[str, Any]:
    """What a reconcile reads of an object of ``kind`` (pure; a private copy): apiVersion,
    kind, metadata without managedFields, the guarded fields and ``read_fields``. A copy the
    cache keeps: a ConfigMap's data, a Deployment's pod spec are read only afresh."""
    metadata = {k: v for k, v in (body.get("metadata") or {}).items() if k != "managedFields"}
    found: dict[str, Any] = {
        "apiVersion": compact(body.get("apiVersion")),
        "kind": compact(body.get("kind") or kind.kind),
        "metadata": compact(metadata),
    }
    for path in (*kind.guarded, *kind.read_fields):
        value: Any = body
        for key in path:
            value = value.get(key) if isinstance(value, Mapping) else None
        if value is None:
            continue
        into = found
        for key in path[:-1]:
            into = into.setdefault(key, {})
        into[path[-1]] = compact(value)
    return found


BY_PLURAL = {kind.plural: kind for kind in KINDS}
# The kinds with one object per task, named <task>-worker.
PER_TASK = tuple(kind for kind in KINDS if kind.index is not None)
# What the operator watches of a task's objects, as kopf selectors: the owned kinds and the
# worker pods (not owned directly, the ReplicaSet is: read for status.workerPod).
POD_SELECTOR = ("", "v1", "pods")
WATCHED = [*(kind.selector for kind in KINDS), POD_SELECTOR]
