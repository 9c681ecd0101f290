"""The Kubernetes API clients the reconcilers use (the official client, sync; kopf runs sync
handlers in its thread pool). Built once per process from the kubeconfig or in-cluster.

Every request they make is counted in ``ferry_operator_api_requests_total{verb,resource}``
(served on the operator's /metrics): what the operator costs the API server. kopf's own
watch streams and its annotation patches use kopf's client and are not in it."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from kubernetes import client, config
from prometheus_client import Counter

from ferry_operator.api import GROUP, VERSION

__all__ = ["REQUESTS", "Clients", "CountingApiClient", "clients", "is_not_found", "request_labels"]

REQUESTS = Counter(
    "ferry_operator_api_requests",
    "Kubernetes API requests made by the operator's reconcilers (kopf's watches excluded)",
    ["verb", "resource"],
    registry=None,  # observability.serve registers it on the operator's /metrics
)


def request_labels(method: str, url: str) -> tuple[str, str]:
    """(verb, resource) of an API request, as the API server names them: GET of one object is
    ``get``, of a collection ``list`` (or ``watch``); resource is ``plural[/subresource]``."""
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    # /api/v1/... or /apis/<group>/<version>/...
    rest = segments[2:] if segments[:1] == ["api"] else segments[3:]
    if len(rest) >= 3 and rest[0] == "namespaces":
        rest = rest[2:]  # namespaced: drop "namespaces/<ns>"
    resource = "/".join([rest[0], *rest[2:3]]) if rest else ""
    named = len(rest) >= 2
    verb = {
        "GET": "get" if named else "list",
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete" if named else "deletecollection",
    }.get(method.upper(), method.lower())
    if verb == "list" and parse_qs(parts.query).get("watch") in (["true"], ["True"], ["1"]):
        verb = "watch"
    return verb, resource


class CountingApiClient(client.ApiClient):
    """The official ApiClient, counting each request in :data:`REQUESTS`."""

    def call_api(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        REQUESTS.labels(*request_labels(method, url)).inc()
        return super().call_api(method, url, *args, **kwargs)


@dataclass(frozen=True)
class Clients:
    api: Any  # kubernetes.client.ApiClient
    core: Any
    apps: Any
    rbac: Any
    custom: Any

    def get_custom(self, namespace: str, plural: str, name: str) -> dict[str, Any] | None:
        """A Ferry object, or None when it does not exist."""
        try:
            found: dict[str, Any] = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, name
            )
        except client.ApiException as error:
            if error.status == 404:
                return None
            raise
        return found

    def list_custom(self, namespace: str, plural: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.custom.list_namespaced_custom_object(
            GROUP, VERSION, namespace, plural
        )["items"]
        return items


def is_not_found(error: Exception) -> bool:
    return isinstance(error, client.ApiException) and error.status == 404


@functools.cache
def clients() -> Clients:
    """The process-wide clients: in-cluster when there, else the kubeconfig ($KUBECONFIG)."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(configuration)  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    api = CountingApiClient(configuration)
    return Clients(
        api=api,
        core=client.CoreV1Api(api),
        apps=client.AppsV1Api(api),
        rbac=client.RbacAuthorizationV1Api(api),
        custom=client.CustomObjectsApi(api),
    )
