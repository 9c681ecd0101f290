"""The Kubernetes API clients the reconcilers use (the official client, sync; kopf runs sync
handlers in its thread pool). Built once per process from the kubeconfig or in-cluster."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from kubernetes import client, config

from ferry_operator.api import GROUP, VERSION

__all__ = ["Clients", "clients", "is_not_found"]


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
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
        api = client.ApiClient()
    except config.ConfigException:
        api = config.new_client_from_config()  # type: ignore[no-untyped-call]
    return Clients(
        api=api,
        core=client.CoreV1Api(api),
        apps=client.AppsV1Api(api),
        rbac=client.RbacAuthorizationV1Api(api),
        custom=client.CustomObjectsApi(api),
    )
