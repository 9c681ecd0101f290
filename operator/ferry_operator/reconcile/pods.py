"""What the worker's Deployment and pods say (pure): the ``status.workerPod`` block.

The operator reads its worker pods from a watch-fed index (``cache.ferry_pods``), never by
polling, and maps what the kubelet, the scheduler and the Deployment controller report to
a reason and a message a person can act on:

===========================  ==========================================================
pod / Deployment state       reason
===========================  ==========================================================
waiting ImagePullBackOff,    ``ImagePullBackOff`` (the image, the kubelet's words)
ErrImagePull, …
waiting CrashLoopBackOff     ``CrashLoopBackOff`` (restarts, last exit code; an image
                             without the worker's command when the runtime could not
                             start it), or ``OOMKilled`` when the last exit was the
                             memory limit
terminated OOMKilled         ``OOMKilled`` (the limit; raise it)
CreateContainerConfigError   ``SecretKeyNotFound`` (the key, and the keys the Secret has),
                             ``SecretNotFound``, else ``CreateContainerConfigError``
PodScheduled=False           ``Unschedulable`` (the scheduler's message)
Deployment ReplicaFailure    ``FailedCreate`` (why the pod cannot be created: a quota, …)
Deployment progress deadline ``ProgressDeadlineExceeded``
===========================  ==========================================================

Restarts are counted over the task's life and since the operator last started the worker,
from each pod's restartCount (a new pod's restarts add to the old one's). ``restartStreak``,
the restart limit's input, counts them in a row, as the worker counts its own failures
(``status.retry.streak``): 0 again on a new start, or once the worker has run for
``restartPolicy.resetAfter`` since its pod last restarted and reports that it runs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

__all__ = [
    "IMAGE_PULL_REASONS",
    "Trouble",
    "change_view",
    "missing_secret_key",
    "newest",
    "pod_summary",
    "running_since",
    "trouble",
    "worker_pod_status",
]

IMAGE_PULL_REASONS = {"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull"}
# Reasons whose kubelet message changes while nothing does (the pull error, then "Back-off
# pulling image"): the first message stays until the reason changes.
_STEADY_MESSAGES = {"ImagePullBackOff"}
_MISSING_KEY = re.compile(r"couldn't find key (\S+) in Secret (\S+)/(\S+)")
_MISSING_SECRET = re.compile(r'secret "([^"]+)" not found')


@dataclass(frozen=True)
class Trouble:
    """Why the worker's pod does not run; ``since``: when the worker last exited, if it ran."""

    reason: str
    message: str
    since: str | None = None


def newest(pods: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The most recently created pod (the current one after a rollout)."""
    if not pods:
        return None
    return max(
        pods,
        key=lambda p: (p.get("metadata", {}).get("creationTimestamp") or "", _name(p)),
    )


def _name(pod: Mapping[str, Any]) -> str:
    return str((pod.get("metadata") or {}).get("name") or "")


def _containers(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list((pod.get("status") or {}).get("containerStatuses") or [])


def restart_count(pod: Mapping[str, Any] | None) -> int:
    return sum(int(c.get("restartCount") or 0) for c in _containers(pod or {}))


def running_since(pod: Mapping[str, Any] | None) -> datetime | None:
    """When the pod's containers last (re)started, if all of them run now."""
    containers = _containers(pod or {})
    started = [((c.get("state") or {}).get("running") or {}).get("startedAt") for c in containers]
    if not started or not all(started):
        return None
    return max(datetime.fromisoformat(str(s).replace("Z", "+00:00")) for s in started)


def _memory_limit(pod: Mapping[str, Any], container: str) -> str | None:
    for spec in (pod.get("spec") or {}).get("containers") or []:
        if spec.get("name") == container:
            limits = (spec.get("resources") or {}).get("limits") or {}
            return str(limits["memory"]) if limits.get("memory") else None
    return None


def _image(pod: Mapping[str, Any], container: Mapping[str, Any]) -> str:
    for spec in (pod.get("spec") or {}).get("containers") or []:
        if spec.get("name") == container.get("name"):
            return str(spec.get("image") or container.get("image") or "?")
    return str(container.get("image") or "?")


def missing_secret_key(pods: Sequence[Mapping[str, Any]]) -> tuple[str, str] | None:
    """(namespace, Secret name) of a key the kubelet could not find, so that observe can read
    which keys that Secret does have (names only)."""
    for pod in pods:
        for container in _containers(pod):
            waiting = (container.get("state") or {}).get("waiting") or {}
            found = _MISSING_KEY.search(str(waiting.get("message") or ""))
            if waiting.get("reason") == "CreateContainerConfigError" and found:
                return found.group(2), found.group(3)
    return None


def _oom(pod: Mapping[str, Any], container: Mapping[str, Any], restarts: int) -> Trouble:
    limit = _memory_limit(pod, str(container.get("name")))
    within = f" of {limit}" if limit else ""
    return Trouble(
        "OOMKilled",
        f"the worker ran out of its memory limit{within} and was killed ({restarts} restarts "
        f"of pod {_name(pod)}); raise spec.worker.resources.limits.memory",
    )


def _container_trouble(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    secret_keys: Mapping[str, Sequence[str]],
) -> Trouble | None:
    state = container.get("state") or {}
    waiting = state.get("waiting") or {}
    terminated = state.get("terminated") or {}
    last = (container.get("lastState") or {}).get("terminated") or {}
    restarts = int(container.get("restartCount") or 0)
    reason = waiting.get("reason")
    said = str(waiting.get("message") or "").strip()
    if reason in IMAGE_PULL_REASONS:
        return Trouble(
            "ImagePullBackOff",
            f"the node cannot pull the worker image {_image(pod, container)} ({reason}: "
            f"{said or 'no detail'}); set spec.worker.image, or the chart's worker image, to "
            "one the node can pull",
        )
    if reason == "CreateContainerConfigError":
        return _config_trouble(pod, said, secret_keys)
    exited = terminated.get("finishedAt") or last.get("finishedAt")
    if terminated.get("reason") == "OOMKilled" or (
        reason == "CrashLoopBackOff" and last.get("reason") == "OOMKilled"
    ):
        oom = _oom(pod, container, restarts)
        return Trouble(oom.reason, oom.message, exited)
    if reason == "CrashLoopBackOff" and last.get("reason") == "StartError":
        # The runtime could not even start the command: the image is not a worker image.
        said = str(last.get("message") or "").strip() or "no detail"
        return Trouble(
            "CrashLoopBackOff",
            f"the worker's container cannot start its command ({restarts} restarts, "
            f"exit code {last.get('exitCode')}: {said}); the image {_image(pod, container)} "
            "must be a Ferry worker image (with the ferry-worker command): set "
            "spec.worker.image, or the chart's worker image",
            exited,
        )
    if reason == "CrashLoopBackOff":
        code = last.get("exitCode")
        how = f"last exit code {code}" if code is not None else "it keeps exiting"
        return Trouble(
            "CrashLoopBackOff",
            f"the worker exits soon after it starts and the kubelet backs off ({restarts} "
            f"restarts, {how}); kubectl logs {_name(pod)} --previous shows why",
            exited,
        )
    if reason in ("CreateContainerError", "RunContainerError"):
        return Trouble(reason, f"the worker's container cannot start: {said or reason}")
    return None


def _config_trouble(
    pod: Mapping[str, Any], said: str, secret_keys: Mapping[str, Sequence[str]]
) -> Trouble:
    found = _MISSING_KEY.search(said)
    if found:
        key, namespace, secret = found.groups()
        present = secret_keys.get(secret)
        has = (
            f"it has: {', '.join(sorted(present))}"
            if present
            else "it has no keys"
            if present is not None
            else "its keys could not be read"
        )
        return Trouble(
            "SecretKeyNotFound",
            f"Secret {namespace}/{secret} has no key {key!r} ({has}); fix the Connector's "
            "passwordSecretRef.key (or secretRef) or add the key to the Secret",
        )
    missing = _MISSING_SECRET.search(said)
    if missing:
        return Trouble(
            "SecretNotFound",
            f"Secret {missing.group(1)} does not exist in namespace "
            f"{(pod.get('metadata') or {}).get('namespace')}; create it or fix the Connector's "
            "passwordSecretRef",
        )
    return Trouble("CreateContainerConfigError", f"the worker's container: {said}")


def _unschedulable(pod: Mapping[str, Any]) -> Trouble | None:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if (
            condition.get("type") == "PodScheduled"
            and condition.get("status") == "False"
            and condition.get("reason") == "Unschedulable"
        ):
            return Trouble(
                "Unschedulable",
                f"no node can run the worker pod {_name(pod)}: {condition.get('message')}; "
                "check spec.worker.resources, nodeSelector and tolerations",
            )
    return None


def _deployment_trouble(deployment: Mapping[str, Any] | None) -> Trouble | None:
    for condition in ((deployment or {}).get("status") or {}).get("conditions") or []:
        if condition.get("type") == "ReplicaFailure" and condition.get("status") == "True":
            return Trouble(
                str(condition.get("reason") or "FailedCreate"),
                f"the worker's pod cannot be created: {condition.get('message')}; check "
                "spec.worker.resources against the namespace's ResourceQuota and LimitRange",
            )
        if (
            condition.get("type") == "Progressing"
            and condition.get("reason") == "ProgressDeadlineExceeded"
        ):
            return Trouble(
                "ProgressDeadlineExceeded", f"the worker Deployment: {condition.get('message')}"
            )
    return None


def trouble(
    deployment: Mapping[str, Any] | None,
    pods: Sequence[Mapping[str, Any]],
    secret_keys: Mapping[str, Sequence[str]],
) -> Trouble | None:
    """Why the worker does not run, from its newest pod, else its Deployment; None when
    nothing is wrong that the pod or the Deployment can tell."""
    pod = newest(pods)
    if pod is not None:
        for container in _containers(pod):
            found = _container_trouble(pod, container, secret_keys)
            if found is not None:
                return found
        found = _unschedulable(pod)
        if found is not None:
            return found
    return _deployment_trouble(deployment)


def pod_summary(pods: Sequence[Mapping[str, Any]], deployment: Mapping[str, Any] | None) -> str:
    """Where the worker's pod is, for a message: ``pod x is Pending (not scheduled yet)``."""
    pod = newest(pods)
    if pod is None:
        replicas = ((deployment or {}).get("status") or {}).get("replicas") or 0
        return f"no worker pod exists (the Deployment has {replicas})"
    status = pod.get("status") or {}
    phase = status.get("phase") or "Pending"
    if phase == "Pending" and not (pod.get("spec") or {}).get("nodeName"):
        return f"pod {_name(pod)} is Pending, not scheduled to a node yet"
    ready = all(c.get("ready") for c in _containers(pod)) and bool(_containers(pod))
    # Phase-level only: the kubelet's waiting reasons flip (ErrImagePull ↔ ImagePullBackOff)
    # and each flip would be a status write.
    return f"pod {_name(pod)} is {phase}" + ("" if ready or phase != "Running" else ", not ready")


def worker_pod_status(
    previous: Mapping[str, Any] | None,
    deployment: Mapping[str, Any] | None,
    pods: Sequence[Mapping[str, Any]],
    secret_keys: Mapping[str, Sequence[str]],
    new_start: bool,
    *,
    reset_after: timedelta | None = None,
    worker_runs: bool = False,
    now: datetime | None = None,
) -> dict[str, Any] | None:
    """``status.workerPod``: the newest pod, restarts (total, since the last start and in a
    row, carried over from ``previous`` so a replaced pod's restarts stay counted) and the
    trouble if any. The streak starts again at 0 when ``worker_runs`` (the worker reports
    that it streams or snapshots) and the pod has run ``reset_after`` since its last restart.
    None before any pod was seen and while nothing is wrong."""
    before = dict(previous or {})
    pod = newest(pods)
    found = trouble(deployment, pods, secret_keys)
    if pod is None and found is None and not before:
        return None
    total = int(before.get("restarts") or 0)
    since = 0 if new_start else int(before.get("restartsSinceStart") or 0)
    streak = 0 if new_start else int(before.get("restartStreak", since) or 0)
    name, count = before.get("name"), int(before.get("restartCount") or 0)
    if pod is not None:
        current = restart_count(pod)
        delta = max(0, current - count) if _name(pod) == name else current
        total, since, streak = total + delta, since + delta, streak + delta
        name, count = _name(pod), current
        up = running_since(pod)
        if worker_runs and up is not None and now is not None and reset_after is not None:
            streak = 0 if now - up >= reset_after else streak
    status: dict[str, Any] = {
        "name": name,
        "phase": ((pod or {}).get("status") or {}).get("phase") if pod else None,
        "restartCount": count,
        "restarts": total,
        "restartsSinceStart": since,
        "restartStreak": streak,
        "summary": pod_summary(pods, deployment),
    }
    if found is not None:
        status["reason"], status["message"] = found.reason, found.message
        status["since"] = found.since
        if found.reason in _STEADY_MESSAGES and before.get("reason") == found.reason:
            status["message"] = before.get("message") or found.message
    return {k: v for k, v in status.items() if v is not None}


def change_view(pod: Mapping[str, Any]) -> list[Any]:
    """What of a pod can change ``status.workerPod`` or the task's verdict (pure): a watch event
    that leaves it equal wakes no reconcile. The kubelet's flip between ErrImagePull and
    ImagePullBackOff (every back-off, for as long as the image cannot be pulled) is one state."""
    status = pod.get("status") or {}
    containers = []
    for container in _containers(pod):
        state = container.get("state") or {}
        waiting = state.get("waiting") or {}
        reason = waiting.get("reason")
        pulling = reason in IMAGE_PULL_REASONS
        last = (container.get("lastState") or {}).get("terminated") or {}
        containers.append(
            [
                container.get("name"),
                container.get("restartCount"),
                container.get("ready"),
                sorted(state),
                "ImagePullBackOff" if pulling else reason,
                None if pulling else waiting.get("message"),
                (state.get("terminated") or {}).get("reason"),
                (state.get("running") or {}).get("startedAt"),
                [last.get("reason"), last.get("exitCode"), last.get("finishedAt")],
            ]
        )
    scheduled = [
        [c.get("status"), c.get("reason"), c.get("message")]
        for c in status.get("conditions") or []
        if c.get("type") == "PodScheduled"
    ]
    return [
        status.get("phase"),
        (pod.get("spec") or {}).get("nodeName"),
        scheduled,
        containers,
        (pod.get("metadata") or {}).get("deletionTimestamp"),
    ]
