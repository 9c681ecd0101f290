"""Which pod ``kubectl ferry logs`` reads, and what it says when there is none (pure).

The worker runs in the pods of the Deployment ``<task>-worker``: the operator records the
newest one in ``status.workerPod.name``. That pod is read when it still exists; otherwise the
newest running pod the Deployment's selector matches, else the newest of them at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ferry_operator.render import meta

__all__ = ["CONTAINER", "no_pod_message", "pick_pod", "selector"]

CONTAINER = "worker"  # the worker container's name (render.objects)


def selector(task: str, deployment: Mapping[str, Any] | None) -> str:
    """The label selector of the task's worker pods: the Deployment's own ``matchLabels``,
    or the labels the operator gives them when there is no Deployment (yet)."""
    labels = (((deployment or {}).get("spec") or {}).get("selector") or {}).get("matchLabels")
    if not labels:
        labels = {meta.TASK_LABEL: task, "app.kubernetes.io/component": "worker"}
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


def _running(pod: Mapping[str, Any]) -> bool:
    return bool((pod.get("status") or {}).get("phase") == "Running")


def pick_pod(task: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]) -> str | None:
    """The pod to read: status.workerPod.name if it is among ``pods``, else the newest
    running one, else the newest one; None without pods. Pods being deleted come last."""
    named = ((task.get("status") or {}).get("workerPod") or {}).get("name")
    names = {(p.get("metadata") or {}).get("name") for p in pods}
    if named and named in names:
        return str(named)

    def rank(pod: Mapping[str, Any]) -> tuple[bool, bool, str]:
        metadata = pod.get("metadata") or {}
        return (
            not metadata.get("deletionTimestamp"),
            _running(pod),
            str(metadata.get("creationTimestamp") or ""),
        )

    ranked = sorted(pods, key=rank, reverse=True)
    return str(ranked[0]["metadata"]["name"]) if ranked else None


def no_pod_message(task: Mapping[str, Any]) -> str:
    """Why there is no worker pod to read, in words a person can act on."""
    metadata, spec = task.get("metadata") or {}, task.get("spec") or {}
    status = task.get("status") or {}
    name = metadata.get("name", "?")
    phase = status.get("phase") or "Pending"
    where = f"SyncTask {name!r} has no worker pod"
    if spec.get("paused") or phase == "Paused":
        return f"{where}: it is paused (its worker is scaled to 0); `kubectl ferry resume {name}`"
    if phase == "Completed":
        return f"{where}: its snapshot is complete (phase Completed) and the worker has exited"
    worker = status.get("workerPod") or {}
    why = worker.get("message") or worker.get("summary")
    if why:
        return f"{where} (phase {phase}): {why}"
    ready = [c for c in status.get("conditions") or [] if c.get("type") == "Ready"]
    if ready and ready[0].get("message"):
        return f"{where} (phase {phase}): {ready[0]['message']}"
    return f"{where} (phase {phase}); see `kubectl ferry status {name}`"
