"""The only part of ``kubectl ferry`` that talks to the API server.

Reads SyncTasks and their revision ConfigMaps, and writes nothing but JSON merge patches
of a SyncTask. API failures become :class:`PluginError`/:class:`NotFoundError` with a
message a person can act on.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from ferry_operator.plugin.errors import NotFoundError, PluginError

__all__ = ["GROUP", "PLURAL", "VERSION", "Kube"]

GROUP, VERSION, PLURAL = "ferry.dev", "v1alpha1", "synctasks"
FIELD_MANAGER = "kubectl-ferry"
# kubernetes.config has no type hints; the calls below are checked by the tests instead.
_config: Any = config


def _api_message(error: ApiException) -> str:
    try:
        return str(json.loads(error.body or "{}").get("message") or error.reason)
    except ValueError:
        return str(error.reason)


class Kube:
    """A SyncTask-shaped view of one cluster (kubeconfig + context)."""

    def __init__(self, kubeconfig: str | None = None, context: str | None = None) -> None:
        try:
            self.api = _config.new_client_from_config(config_file=kubeconfig, context=context)
            _, active = _config.list_kube_config_contexts(config_file=kubeconfig)
            if context:
                contexts, _ = _config.list_kube_config_contexts(config_file=kubeconfig)
                active = next(c for c in contexts if c["name"] == context)
        except (config.ConfigException, OSError, StopIteration) as error:
            raise PluginError(f"cannot load the kubeconfig: {error}") from None
        self.default_namespace: str = (active.get("context") or {}).get("namespace") or "default"
        self.objects = client.CustomObjectsApi(self.api)
        self.core = client.CoreV1Api(self.api)

    def _call(self, what: str, call: Callable[[], Any], not_found: str | None = None) -> Any:
        try:
            return call()
        except ApiException as error:
            if error.status == 404 and not_found is not None:
                details = (json.loads(error.body or "{}") or {}).get("details") or {}
                if details.get("name"):
                    raise NotFoundError(not_found) from None
                raise PluginError(
                    f"the API server does not serve {PLURAL}.{GROUP}/{VERSION}: "
                    "is the Ferry CRD installed? (kubectl get crd synctasks.ferry.dev)"
                ) from None
            raise PluginError(f"{what}: {error.status} {_api_message(error)}") from None
        except urllib3.exceptions.HTTPError as error:
            raise PluginError(f"{what}: cannot reach the API server ({error})") from None

    def get_task(self, namespace: str, name: str) -> dict[str, Any]:
        task: dict[str, Any] = self._call(
            f"get SyncTask {name}",
            lambda: self.objects.get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name
            ),
            not_found=f"SyncTask {name!r} not found in namespace {namespace!r}",
        )
        return task

    def list_tasks(self, namespace: str | None) -> list[dict[str, Any]]:
        if namespace is None:
            result = self._call(
                "list SyncTasks",
                lambda: self.objects.list_cluster_custom_object(GROUP, VERSION, PLURAL),
                not_found="",
            )
        else:
            result = self._call(
                "list SyncTasks",
                lambda: self.objects.list_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL
                ),
                not_found="",
            )
        items: list[dict[str, Any]] = result.get("items") or []
        return sorted(items, key=lambda t: (t["metadata"]["namespace"], t["metadata"]["name"]))

    def patch_task(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """A JSON merge patch of the task (callers only ever pass ``{"spec": {...}}``)."""
        task: dict[str, Any] = self._call(
            f"patch SyncTask {name}",
            lambda: self.objects.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                name,
                patch,
                field_manager=FIELD_MANAGER,
                _content_type="application/merge-patch+json",
            ),
            not_found=f"SyncTask {name!r} not found in namespace {namespace!r}",
        )
        return task

    def json_patch_task(self, namespace: str, name: str, patch: list[dict[str, Any]]) -> None:
        """A JSON patch of the task's metadata (clear-finalizers; its ``test`` op guards it)."""
        self._call(
            f"patch SyncTask {name}",
            lambda: self.objects.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                name,
                patch,
                field_manager=FIELD_MANAGER,
                _content_type="application/json-patch+json",
            ),
            not_found=f"SyncTask {name!r} not found in namespace {namespace!r}",
        )

    def revision_configmaps(self, namespace: str, task: str) -> list[dict[str, Any]]:
        """The task's ConfigMaps (label ``ferry.dev/task``), as plain dicts."""
        result = self._call(
            f"list the config revisions of {task}",
            lambda: self.core.list_namespaced_config_map(
                namespace, label_selector=f"ferry.dev/task={task}"
            ),
        )
        items: list[dict[str, Any]] = self.api.sanitize_for_serialization(result).get("items") or []
        return items
