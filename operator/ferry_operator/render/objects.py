"""The Kubernetes objects of one SyncTask, as plain dicts ready for server-side apply:
the immutable config revision, the worker Deployment and the worker's RBAC."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

from ferry_operator.api import GROUP
from ferry_operator.api.synctask import SyncTaskSpec
from ferry_operator.render import meta
from ferry_operator.render.meta import Owner
from ferry_operator.render.worker_config import SecretEnv, SecretVolume
from ferry_runtime.config import WorkerConfig
from ferry_runtime.runs import RUN_ENV

__all__ = [
    "CONFIG_DIR",
    "DEFAULT_IMAGE",
    "REVISION_KEY",
    "WORKER_CONFIG_KEY",
    "deployment",
    "revision_configmap",
    "role",
    "role_binding",
    "scaled",
    "service_account",
    "worker_configmap",
]

DEFAULT_IMAGE = "ghcr.io/ferry-sync/ferry-worker:0.1.0"
WORKER_CONFIG_KEY = "worker.yaml"
SPEC_KEY = "spec.yaml"
REVISION_KEY = "revision"  # in the worker's ConfigMap: the revision its worker.yaml is
CONFIG_DIR = "/etc/ferry"
# Time for the worker to flush and checkpoint after SIGTERM (pause, restart, delete).
GRACE_SECONDS = 60


def revision_configmap(
    owner: Owner,
    number: int,
    config: WorkerConfig,
    spec: dict[str, Any],
    config_hash: str,
    cause: str,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """ConfigMap ``<task>-r<N>``: the worker config (no secret), the effective spec, its hash
    and the change cause (plus ``annotations``). Immutable: a new config is a new revision."""
    metadata = owner.metadata(
        meta.revision_name(owner.name, number), **{meta.REVISION: str(number)}
    )
    metadata["annotations"] = {
        **(annotations or {}),
        meta.CONFIG_HASH: config_hash,
        meta.CHANGE_CAUSE: cause,
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata,
        "immutable": True,
        "data": {
            WORKER_CONFIG_KEY: config.to_yaml(),
            SPEC_KEY: yaml.safe_dump(spec, sort_keys=True),
        },
    }


def worker_configmap(owner: Owner, config: WorkerConfig, revision: str) -> dict[str, Any]:
    """ConfigMap ``<task>-worker-config``, mounted by the worker pod (a volume, not subPath,
    so the kubelet updates it in place): the current revision's worker config and its name.
    Mutable: the worker applies a change of its live fields (ferry_runtime.live) while it
    runs; a change of any other field also changes the pod template (the restart hash), so
    a new pod starts with the new file."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": owner.metadata(meta.worker_config_name(owner.name)),
        "data": {WORKER_CONFIG_KEY: config.to_yaml(), REVISION_KEY: revision},
    }


def _container(
    spec: SyncTaskSpec,
    env: list[SecretEnv],
    image: str,
    port: int,
    secret_volumes: Sequence[SecretVolume],
) -> dict[str, Any]:
    worker = spec.worker
    container: dict[str, Any] = {
        "name": "worker",
        "image": (worker and worker.image) or image,
        "args": [
            "ferry-worker",
            "--config",
            f"{CONFIG_DIR}/{WORKER_CONFIG_KEY}",
            "--revision-file",
            f"{CONFIG_DIR}/{REVISION_KEY}",
        ],
        "env": [
            {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
            for name, secret, key in env
        ],
        "ports": [{"name": "http", "containerPort": port}],
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10},
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 5},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
            *(
                {"name": v.name, "mountPath": v.mount_path, "readOnly": True}
                for v in secret_volumes
            ),
        ],
    }
    if worker and worker.resources:
        container["resources"] = worker.resources
    return container


def deployment(
    owner: Owner,
    spec: SyncTaskSpec,
    config_hash: str,
    env: list[SecretEnv],
    *,
    replicas: int,
    image: str = DEFAULT_IMAGE,
    port: int = 8080,
    secret_volumes: Sequence[SecretVolume] = (),
    secrets_hash: str | None = None,
    run: str | None = None,
) -> dict[str, Any]:
    """Deployment ``<task>-worker``: one replica (0 when paused), Recreate, never two readers.
    It mounts ``<task>-worker-config`` (:func:`worker_configmap`); ``config_hash`` is the hash
    of the config's restart part (ferry_runtime.live.restart_hash), so that a change of live
    fields alone leaves the pod template, and the running pod, as they are. Passwords come as
    env from secretKeyRef; certificates and keys as Secret volumes. ``run``: the scheduled
    snapshot run the worker does (env FERRY_RUN, annotation ferry.dev/run)."""
    name = meta.worker_name(owner.name)
    selector = {meta.TASK_LABEL: owner.name, "app.kubernetes.io/component": "worker"}
    annotations = {meta.CONFIG_HASH: config_hash}
    if spec.restart_nonce:
        annotations[meta.RESTART_NONCE] = spec.restart_nonce
    if secrets_hash:  # of the Secrets' resourceVersions: a rotated credential rolls the pod
        annotations[meta.SECRETS_HASH] = secrets_hash
    if run:
        annotations[meta.RUN] = run
    pod_spec: dict[str, Any] = {
        "serviceAccountName": name,
        "terminationGracePeriodSeconds": GRACE_SECONDS,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65532,
            "runAsGroup": 65532,
            "fsGroup": 65532,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [_container(spec, env, image, port, secret_volumes)],
        "volumes": [
            {"name": "config", "configMap": {"name": meta.worker_config_name(owner.name)}},
            {"name": "tmp", "emptyDir": {}},
            *(
                {
                    "name": v.name,
                    "secret": {
                        "secretName": v.secret,
                        "items": [{"key": key, "path": path} for key, path in v.items],
                        "defaultMode": 0o440,
                    },
                }
                for v in secret_volumes
            ),
        ],
    }
    if run:
        pod_spec["containers"][0].setdefault("env", []).append({"name": RUN_ENV, "value": run})
    if spec.worker and spec.worker.node_selector:
        pod_spec["nodeSelector"] = spec.worker.node_selector
    if spec.worker and spec.worker.tolerations:
        pod_spec["tolerations"] = spec.worker.tolerations
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": owner.metadata(name, **{"app.kubernetes.io/component": "worker"}),
        "spec": {
            "replicas": replicas,
            "strategy": {"type": "Recreate"},
            "revisionHistoryLimit": 2,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {
                    "labels": {**meta.labels(owner.name), **selector},
                    "annotations": annotations,
                },
                "spec": pod_spec,
            },
        },
    }


def scaled(deployment: dict[str, Any], replicas: int) -> dict[str, Any]:
    """``deployment`` (from :func:`deployment`) with ``replicas`` instead (a copy)."""
    return {**deployment, "spec": {**deployment["spec"], "replicas": replicas}}


def service_account(owner: Owner) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": owner.metadata(meta.worker_name(owner.name)),
    }


def role(owner: Owner) -> dict[str, Any]:
    """get and patch on this task's status, nothing else."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": owner.metadata(meta.worker_name(owner.name)),
        "rules": [
            {
                "apiGroups": [GROUP],
                "resources": ["synctasks/status"],
                "resourceNames": [owner.name],
                "verbs": ["get", "patch"],
            }
        ],
    }


def role_binding(owner: Owner) -> dict[str, Any]:
    name = meta.worker_name(owner.name)
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": owner.metadata(name),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": owner.namespace}],
    }
