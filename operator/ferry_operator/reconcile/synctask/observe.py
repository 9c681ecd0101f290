"""Observe a SyncTask: what it reads (its TaskTemplate and Connectors) and what it owns (its
revisions, the objects of owned.KINDS, its worker's pods), from the watch-fed cache or the
API. Read-only."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ferry_operator import owned as owned_kinds
from ferry_operator.cache import Cache, pod_view
from ferry_operator.context import Context
from ferry_operator.kube import Clients
from ferry_operator.reconcile import pods as pods_module
from ferry_operator.render import meta

__all__ = ["Observed", "is_revision", "observe", "revision_number", "uses"]


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

    @property
    def status(self) -> dict[str, Any]:
        """A private copy of the task's status."""
        return dict(self.task.get("status") or {})


def revision_number(configmap: dict[str, Any]) -> int:
    return int(configmap["metadata"].get("labels", {}).get(meta.REVISION, "0"))


def is_revision(configmap: dict[str, Any]) -> bool:
    return meta.REVISION in (configmap["metadata"].get("labels") or {})


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
        configmaps, owned = _owned_cached(ctx, cache)
    else:
        configmaps, owned = _owned_fresh(ctx, clients)
    revisions = sorted(filter(is_revision, configmaps), key=revision_number)
    name = meta.worker_config_name(ctx.name)
    owned["ConfigMap"] = next((c for c in configmaps if c["metadata"].get("name") == name), None)
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


Owned = dict[str, dict[str, Any] | None]


def _owned_cached(ctx: Context, cache: Cache) -> tuple[list[dict[str, Any]], Owned]:
    """The task's ConfigMaps and its one object per kind of owned.PER_TASK, from the cache."""
    worker = meta.worker_name(ctx.name)
    owned: Owned = {
        kind.kind: cache.owned_object(kind.kind, ctx.namespace, worker)
        for kind in owned_kinds.PER_TASK
    }
    return cache.revisions_of(ctx.namespace, ctx.name), owned


def _owned_fresh(ctx: Context, clients: Clients) -> tuple[list[dict[str, Any]], Owned]:
    """The same, read from the API."""
    selector = f"{meta.TASK_LABEL}={ctx.name}"
    listed = clients.core.list_namespaced_config_map(ctx.namespace, label_selector=selector)
    configmaps = [clients.api.sanitize_for_serialization(item) for item in listed.items]
    worker = meta.worker_name(ctx.name)
    owned: Owned = {}
    for kind in owned_kinds.PER_TASK:
        found = _read(kind.read(clients), worker, ctx.namespace)
        owned[kind.kind] = (
            clients.api.sanitize_for_serialization(found) if found is not None else None
        )
    return configmaps, owned


def _read(reader: Any, name: str, namespace: str) -> Any:
    from kubernetes import client

    try:
        return reader(name, namespace)
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise
