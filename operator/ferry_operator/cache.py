"""Watch-fed copies of what a SyncTask's resync reads, so a steady state costs the API server
no reads: Connectors and TaskTemplates (a task's inputs), kept by kopf from its watches
(``@kopf.index``: filled before any handler of a task, Connector or TaskTemplate runs at
startup, an entry dropped when its object is deleted, passed to every handler as keyword
arguments); and the objects the operator owns (revision ConfigMaps, ServiceAccount, Role,
RoleBinding, Deployment) and the worker pods the Deployment makes, kept by the operator's own
watches (owned_store.py: only those carrying Ferry's task label, filtered by the API server;
the SyncTask handlers wait until it is filled). :func:`from_kwargs` wraps both for the
reconcilers. kopf's objects arrive slimmed (kopf_streams.py).

A copy lags the API server by at most a watch event, so readers use it only where lag is
harmless: an input not found yet is "not found, retry in a few seconds"; owned objects only
confirm that nothing needs writing — a write is always decided again on fresh reads
(reconcile/synctask/), so a lagging copy can delay a repair but never cause a wrong write.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import kopf

from ferry_operator import owned
from ferry_operator.api import GROUP, VERSION
from ferry_operator.render.meta import TASK_LABEL

if TYPE_CHECKING:
    from ferry_operator import owned_store

__all__ = [
    "OWNED_INDEXES",
    "OWNED_KINDS",
    "SECRET_FIELD_SELECTOR",
    "TASK_LABEL",
    "Cache",
    "Key",
    "Lookup",
    "connectors_using",
    "from_kwargs",
    "pod_view",
    "secret_names",
    "trimmed",
]

Key = tuple[str, str]  # (namespace, name)
Lookup = Mapping[Key, Iterable[dict[str, Any]]]  # a kopf.Index, or a plain dict in tests
# kind → the index of its one object per task (owned.py, the table of owned kinds).
OWNED_INDEXES = {kind.kind: kind.index for kind in owned.PER_TASK if kind.index}
# The watched kinds of a task's objects, as kopf selectors (group, version, plural).
OWNED_KINDS = owned.WATCHED
SECRET_FIELD_SELECTOR = "type!=helm.sh/release.v1,type!=kubernetes.io/service-account-token"


def trimmed(body: Mapping[str, Any], keep_data: bool = True) -> dict[str, Any]:
    """A private copy without managedFields (large, never read); revision ConfigMaps also
    without their data (only read when a new revision is made, which reads afresh)."""
    found: dict[str, Any] = owned.compact(dict(body))
    found.get("metadata", {}).pop("managedFields", None)
    if not keep_data:
        found.pop("data", None)
    return found


@dataclass(frozen=True)
class Cache:
    """Read-only lookups over the indexes (each a mapping key → the values stored for it)."""

    connectors: Lookup
    templates: Lookup
    revisions: Lookup  # (namespace, task) → its revision ConfigMaps
    owned: Mapping[str, Lookup]  # kind → (namespace, name) → object
    pods: Lookup = field(default_factory=dict)  # (namespace, task) → its worker pods

    def connector(self, namespace: str, name: str) -> dict[str, Any] | None:
        return _one(self.connectors, (namespace, name))

    def template(self, namespace: str, name: str) -> dict[str, Any] | None:
        return _one(self.templates, (namespace, name))

    def revisions_of(self, namespace: str, task: str) -> list[dict[str, Any]]:
        return list(self.revisions.get((namespace, task)) or ())

    def owned_object(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return _one(self.owned[kind], (namespace, name))

    def pods_of(self, namespace: str, task: str) -> list[dict[str, Any]]:
        return list(self.pods.get((namespace, task)) or ())


def _one(lookup: Lookup, key: Key) -> dict[str, Any] | None:
    # list() of a kopf Store copies its values in one C call: safe from a handler thread
    # while the event loop updates the index.
    values = list(lookup.get(key) or ())
    return values[-1] if values else None


def from_kwargs(kwargs: Mapping[str, Any], store: owned_store.Store) -> Cache:
    """The Cache over the indexes kopf passed to a handler and the owned objects' store."""
    return Cache(
        connectors=kwargs["ferry_connectors"],
        templates=kwargs["ferry_templates"],
        revisions=store.lookup("configmaps"),
        owned={kind.kind: store.lookup(kind.plural) for kind in owned.PER_TASK},
        pods=store.lookup("pods"),
    )


def connectors_using(kwargs: Mapping[str, Any], namespace: str, secret: str) -> list[str]:
    """Names of the Connectors in ``namespace`` whose spec names Secret ``secret``."""
    lookup: Lookup = kwargs["ferry_connector_secrets"]
    return sorted({str(name) for name in lookup.get((namespace, secret)) or ()})


TLS_REFS = ("caSecretRef", "clientCertSecretRef")


def secret_names(spec: Mapping[str, Any]) -> set[str]:
    """The Secrets a Connector spec refers to (pure)."""
    mysql = spec.get("mysql") or {}
    kafka = spec.get("kafka") or {}
    names = [
        (mysql.get("passwordSecretRef") or {}).get("name"),
        (kafka.get("sasl") or {}).get("secretRef"),
    ]
    for tls in (mysql.get("tls") or {}, kafka.get("tls") or {}):
        names += [(tls.get(ref) or {}).get("name") for ref in TLS_REFS]
    return {name for name in names if name}


# ---------------------------------------------------------------- the indexes kopf keeps


def _key(body: kopf.Body) -> Key:
    return str(body["metadata"]["namespace"]), str(body["metadata"]["name"])


@kopf.index(GROUP, VERSION, "connectors")
async def ferry_connectors(body: kopf.Body, **_: Any) -> dict[Key, dict[str, Any]]:
    return {_key(body): trimmed(body)}


@kopf.index(GROUP, VERSION, "connectors")
async def ferry_connector_secrets(body: kopf.Body, **_: Any) -> dict[Key, str]:
    namespace, name = _key(body)
    return {(namespace, secret): name for secret in secret_names(body.get("spec") or {})}


@kopf.index(GROUP, VERSION, "tasktemplates")
async def ferry_templates(body: kopf.Body, **_: Any) -> dict[Key, dict[str, Any]]:
    return {_key(body): trimmed(body)}


def pod_view(body: Mapping[str, Any]) -> dict[str, Any]:
    """What status.workerPod reads of a pod: name, creation time, containers' image and
    resources, status (pure; a private copy)."""
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    return owned.compact(  # type: ignore[no-any-return]
        {
            "metadata": {
                "name": meta.get("name"),
                "namespace": meta.get("namespace"),
                "creationTimestamp": meta.get("creationTimestamp"),
            },
            "spec": {
                "nodeName": spec.get("nodeName"),
                "containers": [
                    {
                        "name": c.get("name"),
                        "image": c.get("image"),
                        "resources": c.get("resources"),
                    }
                    for c in spec.get("containers") or []
                ],
            },
            "status": dict(body.get("status") or {}),
        }
    )
