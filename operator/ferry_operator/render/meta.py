"""Names, labels and owner references shared by every rendered object."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ferry_operator.api import GROUP, VERSION

__all__ = [
    "CHANGE_CAUSE",
    "CONFIG_HASH",
    "MANAGED_BY",
    "RESTART_NONCE",
    "REVISION",
    "SECRETS_HASH",
    "TASK_GENERATION",
    "TASK_LABEL",
    "TEMPLATE_GENERATION",
    "Owner",
    "labels",
    "revision_name",
    "worker_config_name",
    "worker_name",
]

MANAGED_BY = "ferry"
TASK_LABEL = "ferry.dev/task"
REVISION = "ferry.dev/revision"
CONFIG_HASH = "ferry.dev/config-hash"
CHANGE_CAUSE = "ferry.dev/change-cause"
RESTART_NONCE = "ferry.dev/restart-nonce"
SECRETS_HASH = "ferry.dev/secrets-hash"
RUN = "ferry.dev/run"  # the scheduled snapshot run the worker does
TASK_GENERATION = "ferry.dev/task-generation"
TEMPLATE_GENERATION = "ferry.dev/template-generation"


@dataclass(frozen=True)
class Owner:
    """The SyncTask that owns the rendered objects."""

    name: str
    namespace: str
    uid: str

    def reference(self) -> dict[str, Any]:
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "SyncTask",
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }

    def metadata(self, name: str, **extra_labels: str) -> dict[str, Any]:
        return {
            "name": name,
            "namespace": self.namespace,
            "labels": {**labels(self.name), **extra_labels},
            "ownerReferences": [self.reference()],
        }


def labels(task: str) -> dict[str, str]:
    return {"app.kubernetes.io/managed-by": MANAGED_BY, TASK_LABEL: task}


def worker_name(task: str) -> str:
    return f"{task}-worker"


def worker_config_name(task: str) -> str:
    """The mutable ConfigMap the worker pod mounts: the current config and its revision."""
    return f"{task}-worker-config"


def revision_name(task: str, number: int) -> str:
    return f"{task}-r{number}"
