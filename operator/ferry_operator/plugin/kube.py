"""The only part of ``kubectl ferry`` that talks to the API server.

Reads SyncTasks, TaskTemplates, their revision ConfigMaps, worker Deployments, pods and pod
logs; writes nothing but JSON merge patches of a SyncTask and, for ``create``, a new SyncTask.
API failures become :class:`PluginError`/:class:`NotFoundError` with a message a person can
act on.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import urllib3
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from ferry_operator.plugin.errors import NotFoundError, PluginError

__all__ = ["GROUP", "PLURAL", "VERSION", "Kube"]

GROUP, VERSION, PLURAL = "ferry.dev", "v1alpha1", "synctasks"
TEMPLATES = "tasktemplates"
FIELD_MANAGER = "kubectl-ferry"
# kubernetes.config has no type hints; the calls below are checked by the tests instead.
_config: Any = config
_watch: Any = watch


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

    def list_tasks(
        self, namespace: str | None, selector: str | None = None
    ) -> list[dict[str, Any]]:
        """The tasks of ``namespace`` (None: every namespace), those ``selector`` matches."""
        if namespace is None:
            result = self._call(
                "list SyncTasks",
                lambda: self.objects.list_cluster_custom_object(
                    GROUP, VERSION, PLURAL, label_selector=selector or None
                ),
                not_found="",
            )
        else:
            result = self._call(
                "list SyncTasks",
                lambda: self.objects.list_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, label_selector=selector or None
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

    def get_template(self, namespace: str, name: str) -> dict[str, Any]:
        template: dict[str, Any] = self._call(
            f"get TaskTemplate {name}",
            lambda: self.objects.get_namespaced_custom_object(
                GROUP, VERSION, namespace, TEMPLATES, name
            ),
            not_found=f"TaskTemplate {name!r} not found in namespace {namespace!r}",
        )
        return template

    def create_task(self, namespace: str, body: dict[str, Any], dry_run: bool) -> dict[str, Any]:
        """Create a SyncTask; ``dry_run``: the API server checks it (admission included) and
        stores nothing."""
        name = body["metadata"]["name"]
        task: dict[str, Any] = self._call(
            f"create SyncTask {name}",
            lambda: self.objects.create_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                body,
                field_manager=FIELD_MANAGER,
                dry_run="All" if dry_run else None,
            ),
        )
        return task

    def read_deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The Deployment, or None when it does not exist."""
        apps = client.AppsV1Api(self.api)

        def read() -> Any:
            try:
                return apps.read_namespaced_deployment(name, namespace)
            except ApiException as error:
                if error.status == 404:
                    return None
                raise

        found = self._call(f"get Deployment {name}", read)
        if found is None:
            return None
        deployment: dict[str, Any] = self.api.sanitize_for_serialization(found)
        return deployment

    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        result = self._call(
            f"list pods {selector}",
            lambda: self.core.list_namespaced_pod(namespace, label_selector=selector),
        )
        items: list[dict[str, Any]] = self.api.sanitize_for_serialization(result).get("items") or []
        return items

    def pod_logs(
        self,
        namespace: str,
        pod: str,
        container: str,
        *,
        follow: bool = False,
        since_seconds: int | None = None,
        tail_lines: int | None = None,
        previous: bool = False,
    ) -> Iterator[bytes]:
        """The container's log as it arrives (with ``follow``, until the pod stops)."""
        options: dict[str, Any] = {"container": container, "follow": follow}
        if since_seconds is not None:
            options["since_seconds"] = since_seconds
        if tail_lines is not None:
            options["tail_lines"] = tail_lines
        if previous:
            options["previous"] = True
        response = self._call(
            f"logs of pod {pod}",
            lambda: self.core.read_namespaced_pod_log(
                pod, namespace, _preload_content=False, **options
            ),
        )
        try:
            yield from response.stream(4096, decode_content=True)
        except urllib3.exceptions.HTTPError as error:
            raise PluginError(f"logs of pod {pod}: the stream broke ({error})") from None
        finally:
            response.release_conn()

    def watch_task(
        self, namespace: str, name: str, resource_version: str, timeout: int
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """Changes of one task after ``resource_version``, as (ADDED|MODIFIED|DELETED|ERROR,
        object), for at most ``timeout`` seconds (the server ends the watch then)."""
        stream = _watch.Watch().stream(
            self.objects.list_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            field_selector=f"metadata.name={name}",
            resource_version=resource_version,
            timeout_seconds=max(1, timeout),
            allow_watch_bookmarks=False,
        )
        try:
            for event in stream:
                yield str(event["type"]), event["raw_object"]
        except ApiException as error:
            if error.status == 410:  # the version is too old: the caller starts again
                yield "ERROR", {"code": 410}
                return
            raise PluginError(
                f"watch SyncTask {name}: {error.status} {_api_message(error)}"
            ) from None
        except urllib3.exceptions.HTTPError as error:
            raise PluginError(
                f"watch SyncTask {name}: cannot reach the API server ({error})"
            ) from None
