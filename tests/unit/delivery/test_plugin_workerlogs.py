"""kubectl ferry logs: which pod it reads and what it says when there is none."""

from __future__ import annotations

from typing import Any

from ferry_operator.plugin import workerlogs


def pod(name: str, phase: str, created: str, deleting: bool = False) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "creationTimestamp": created}
    if deleting:
        metadata["deletionTimestamp"] = "2026-01-01T00:10:00Z"
    return {"metadata": metadata, "status": {"phase": phase}}


def task(**status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "orders"}, "spec": {}, "status": status}


OLD = pod("orders-worker-a", "Running", "2026-01-01T00:00:00Z")
NEW = pod("orders-worker-b", "Pending", "2026-01-01T00:05:00Z")


def test_the_pod_status_names_when_it_exists() -> None:
    assert workerlogs.pick_pod(task(workerPod={"name": "orders-worker-b"}), [OLD, NEW]) == (
        "orders-worker-b"
    )


def test_else_the_newest_running_then_the_newest() -> None:
    gone = task(workerPod={"name": "orders-worker-gone"})
    assert workerlogs.pick_pod(gone, [NEW, OLD]) == "orders-worker-a"
    later = pod("orders-worker-c", "Running", "2026-01-01T00:06:00Z", deleting=True)
    assert workerlogs.pick_pod(task(), [OLD, later]) == "orders-worker-a"
    assert workerlogs.pick_pod(task(), [NEW]) == "orders-worker-b"
    assert workerlogs.pick_pod(task(), []) is None


def test_selector_is_the_deployments_or_the_operators_labels() -> None:
    deployment = {"spec": {"selector": {"matchLabels": {"b": "2", "a": "1"}}}}
    assert workerlogs.selector("orders", deployment) == "a=1,b=2"
    assert workerlogs.selector("orders", None) == (
        "app.kubernetes.io/component=worker,ferry.dev/task=orders"
    )


def test_no_pod_messages_say_why() -> None:
    paused = {"metadata": {"name": "orders"}, "spec": {"paused": True}, "status": {}}
    assert workerlogs.no_pod_message(paused) == (
        "SyncTask 'orders' has no worker pod: it is paused (its worker is scaled to 0); "
        "`kubectl ferry resume orders`"
    )
    assert "snapshot is complete" in workerlogs.no_pod_message(task(phase="Completed"))
    failing = task(phase="Starting", workerPod={"message": "Secret 'db' not found"})
    assert workerlogs.no_pod_message(failing) == (
        "SyncTask 'orders' has no worker pod (phase Starting): Secret 'db' not found"
    )
    ready = [{"type": "Ready", "status": "False", "message": "Connector 'db' is not Ready"}]
    assert workerlogs.no_pod_message(task(phase="Pending", conditions=ready)).endswith(
        ": Connector 'db' is not Ready"
    )
    assert workerlogs.no_pod_message(task()) == (
        "SyncTask 'orders' has no worker pod (phase Pending); see `kubectl ferry status orders`"
    )
