"""On the real node (kubelet + containerd, tests/infra): what the worker's pod does shows in
the SyncTask's status. The operator runs as a local process (as in tests/integration), the
worker as a real pod from the image tests/infra built (``$FERRY_NODE_WORKER_IMAGE``); nothing
writes a pod's status but the kubelet and the scheduler.

- an image that cannot be pulled → ImagePullBackOff within a minute;
- an image without the worker's command (the plain Python base) → the container cannot start,
  CrashLoopBackOff and Stalled naming the image; the pod's restarts in a row over
  restartPolicy.maxRetries → TooManyRestarts, scaled to 0;
- a memory limit too small → OOMKilled naming the limit;
- a worker process that stopped and was started again by the kubelet: one restart in a row,
  forgotten after restartPolicy.resetAfter of running (restartsSinceStart keeps it);
- a Secret that lost its key, then a new pod → SecretKeyNotFound naming the key and the keys
  present;
- a nodeSelector no node matches → Unschedulable quoting the scheduler;
- counters and snapshot progress unchanged across a worker restart (the worker image must be
  built from this branch: the counters live in its checkpoint), and the POSITION column
  showing the reported file:offset.

Run: ``tests/infra/up`` (with the node), then
``PYTHONPATH=operator:runtime python3 -m pytest tests/e2e/test_node_status.py``. The ``node``
fixture (tests/e2e/conftest.py) rebuilds and imports the images when the source changed;
without a Ready node the tests skip locally and fail in CI, like any missing service.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from tests.e2e.node import Node
from tests.integration.operator.conftest import (
    Ferry,
    OperatorProcess,
    kafka_connector,
    mysql_connector,
    task,
    wait_until,
)

pytestmark = [
    pytest.mark.kube,
    pytest.mark.node,
    pytest.mark.mysql,
    pytest.mark.kafka,
    pytest.mark.timeout(900),
]


# The plain Python base the Ferry images are built on (tests/infra/build-images imports it;
# on kind it would have to be loaded like the Ferry images, or the test sees ErrImagePull).
PYTHON_BASE_IMAGE = "localhost/ferry-python:3.11-bookworm"

# ---------------------------------------------------------------- fixtures


@pytest.fixture
def ferry(kube_api: Any, namespace: str, ferry_crds: None) -> Ferry:
    return Ferry(kube_api, namespace)


@pytest.fixture
def operator(
    testenv: Any, namespace: str, ferry_crds: None, tmp_path: Path, node: Node
) -> Iterator[OperatorProcess]:
    """The operator watching the test's namespace, its workers on the node's image (built
    from the current source by the ``node`` fixture)."""
    image = node.values.get("FERRY_NODE_WORKER_IMAGE") or "ferry.local/ferry-worker:dev"
    process = OperatorProcess(
        testenv, namespace, tmp_path / "operator.log", env={"FERRY_WORKER_IMAGE": image}
    )
    process.start()
    yield process
    process.stop()


def pod_reachable_connectors(ferry: Ferry, testenv: Any) -> None:
    """Connectors at the addresses pods on the node use (the host on the pod network)."""
    ferry.secret("db", testenv.mysql["password"])
    db = mysql_connector("db", testenv)
    db["spec"]["mysql"]["host"] = testenv.get("FERRY_POD_HOST") or testenv.mysql["host"]
    db["spec"]["mysql"]["port"] = int(testenv.get("FERRY_POD_MYSQL_PORT") or testenv.mysql["port"])
    ferry.create("connectors", db)
    bootstrap = testenv.get("FERRY_POD_KAFKA_BOOTSTRAP") or testenv.kafka_bootstrap
    ferry.create("connectors", kafka_connector("kafka", bootstrap))


@pytest.fixture
def connectors(ferry: Ferry, testenv: Any, kafka_bootstrap: str, mysql_connect: Any) -> None:
    pod_reachable_connectors(ferry, testenv)


def status(ferry: Ferry, name: str) -> dict[str, Any]:
    return ferry.get("synctasks", name).get("status") or {}


def worker_pod(ferry: Ferry, name: str) -> dict[str, Any]:
    return status(ferry, name).get("workerPod") or {}


def wait_pod_reason(ferry: Ferry, name: str, reason: str, timeout: float) -> dict[str, Any]:
    found: dict[str, Any] = wait_until(
        lambda: worker_pod(ferry, name).get("reason") == reason and worker_pod(ferry, name),
        timeout,
        f"status.workerPod.reason {reason}",
    )
    return found


# ---------------------------------------------------------------- pod failures


def test_an_unpullable_image_is_image_pull_backoff_within_a_minute(
    ferry: Ferry, connectors: None, operator: OperatorProcess
) -> None:
    image = "ferry.local/ferry-worker:no-such-tag"
    ferry.create("synctasks", task("orders", worker={"image": image}))
    wait_until(lambda: ferry.deployment("orders"), 60, "the worker Deployment")
    pod = wait_pod_reason(ferry, "orders", "ImagePullBackOff", 60)
    assert image in pod["message"]
    ready = ferry.condition("synctasks", "orders")
    assert (ready["status"], ready["reason"]) == ("False", "ImagePullBackOff")
    assert ferry.condition("synctasks", "orders", "Stalled")["status"] == "True"
    wait_until(lambda: ferry.events("ImagePullBackOff"), 30, "a Warning Event")


@pytest.mark.long
def test_an_image_without_the_worker_is_a_crash_loop_and_stalled_then_stopped(
    ferry: Ferry, connectors: None, operator: OperatorProcess
) -> None:
    # A crash at start the worker cannot handle itself: its process never runs. The image is
    # a real one on the node (the Python base tests/infra/build-images builds the Ferry
    # images on) but has no ferry-worker command: the runtime fails to exec it (StartError,
    # exit code 128), the kubelet restarts it with back-off.
    image = PYTHON_BASE_IMAGE
    policy = {"maxRetries": 2}
    ferry.create("synctasks", task("orders", worker={"image": image}, restartPolicy=policy))
    pod = wait_pod_reason(ferry, "orders", "CrashLoopBackOff", 180)
    assert 'exec: "ferry-worker"' in pod["message"], pod
    assert f"the image {image} must be a Ferry worker image" in pod["message"]
    found = status(ferry, "orders")
    ready = ferry.condition("synctasks", "orders")
    stalled = ferry.condition("synctasks", "orders", "Stalled")
    assert (ready["status"], ready["reason"]) == ("False", "CrashLoopBackOff"), found
    assert (stalled["status"], stalled["reason"]) == ("True", "CrashLoopBackOff"), found
    assert found["phase"] == "Starting"
    assert "workerState" not in found  # the worker never ran: only the kubelet speaks
    wait_until(lambda: ferry.events("CrashLoopBackOff"), 30, "a Warning Event")
    # Its restarts in a row are capped by restartPolicy.maxRetries: over 2, it is stopped.
    wait_until(
        lambda: ferry.condition("synctasks", "orders").get("reason") == "TooManyRestarts",
        240,
        "TooManyRestarts",
    )
    found = status(ferry, "orders")
    assert found["phase"] == "Failed"
    assert found["workerPod"]["restartStreak"] >= 3
    assert (
        "times in a row, more than restartPolicy.maxRetries (2)"
        in (ferry.condition("synctasks", "orders")["message"])
    )
    wait_until(lambda: ferry.deployment("orders").spec.replicas == 0, 30, "scaled to 0")


def test_a_memory_limit_too_small_is_oom_killed(
    ferry: Ferry, connectors: None, operator: OperatorProcess
) -> None:
    resources = {"requests": {"memory": "24Mi"}, "limits": {"memory": "24Mi"}}
    ferry.create("synctasks", task("orders", worker={"resources": resources}))
    pod = wait_pod_reason(ferry, "orders", "OOMKilled", 240)
    assert "memory limit of 24Mi" in pod["message"]
    assert "spec.worker.resources.limits.memory" in pod["message"]
    assert ferry.condition("synctasks", "orders", "Stalled")["status"] == "True"
    # status.workerPod.restartCount follows the kubelet's count for the container.
    wait_until(
        lambda: (status(ferry, "orders").get("workerPod") or {}).get("restartCount", 0) >= 1,
        180,
        "status.workerPod.restartCount to count the OOM restarts",
    )


def test_a_pod_restart_is_forgotten_after_reset_after_of_running(
    ferry: Ferry, connectors: None, operator: OperatorProcess, node: Node
) -> None:
    policy = {"maxRetries": 3, "resetAfter": "20s"}
    ferry.create("synctasks", task("orders", restartPolicy=policy))
    wait_until(
        lambda: status(ferry, "orders").get("workerState") in ("Streaming", "Snapshotting"),
        180,
        "the worker runs",
    )
    pod = worker_pod(ferry, "orders")["name"]
    # The worker process ends (SIGTERM: it checkpoints and exits); the kubelet starts it again.
    node.kubectl("exec", "-n", ferry.ns, pod, "--", "sh", "-c", "kill -TERM 1")
    counted = wait_until(
        lambda: (found := worker_pod(ferry, "orders")).get("restartStreak") == 1 and found,
        120,
        "one pod restart in a row",
    )
    assert counted["restartsSinceStart"] == 1 and counted["name"] == pod

    def running_since() -> datetime | None:
        found = ferry.core.read_namespaced_pod(pod, ferry.ns).status.container_statuses[0]
        running = found.state.running
        return running.started_at if found.restart_count == 1 and running else None

    started = wait_until(running_since, 60, "the restarted container running")
    # Still counted well into resetAfter (the operator re-evaluates every resync)…
    time.sleep(max(0.0, (started + timedelta(seconds=15) - datetime.now(UTC)).total_seconds()))
    assert worker_pod(ferry, "orders")["restartStreak"] == 1
    # …and forgotten once the worker has run 20s since and reports that it runs.
    healed = wait_until(
        lambda: (found := worker_pod(ferry, "orders")).get("restartStreak") == 0 and found,
        120,
        "the streak forgotten after resetAfter",
    )
    assert (healed["restartsSinceStart"], healed["restarts"]) == (1, 1)
    assert ferry.condition("synctasks", "orders")["status"] == "True"


def test_a_secret_that_lost_its_key_names_the_key_and_the_keys_present(
    ferry: Ferry, connectors: None, operator: OperatorProcess
) -> None:
    ferry.create("synctasks", task("orders"))
    wait_until(lambda: status(ferry, "orders").get("heartbeatTime"), 180, "the worker reports")
    password = ferry.core.read_namespaced_secret("db", ferry.ns).data["password"]
    ferry.core.replace_namespaced_secret(
        "db",
        ferry.ns,
        client.V1Secret(metadata=client.V1ObjectMeta(name="db"), data={"passwd": password}),
    )
    # A new pod (an eviction, a drained node) cannot start: the key is gone.
    for pod in ferry.core.list_namespaced_pod(
        ferry.ns, label_selector="ferry.dev/task=orders"
    ).items:
        ferry.core.delete_namespaced_pod(pod.metadata.name, ferry.ns)
    pod_status = wait_pod_reason(ferry, "orders", "SecretKeyNotFound", 120)
    assert f"Secret {ferry.ns}/db has no key 'password' (it has: passwd)" in pod_status["message"]
    ready = ferry.condition("synctasks", "orders")
    assert ready["status"] == "False"
    assert "has no key 'password' (it has: passwd)" in ready["message"]


def test_a_node_selector_no_node_matches_is_unschedulable(
    ferry: Ferry, connectors: None, operator: OperatorProcess
) -> None:
    worker = {"nodeSelector": {"ferry.dev/no-such-label": "anywhere"}}
    ferry.create("synctasks", task("orders", worker=worker))
    pod = wait_pod_reason(ferry, "orders", "Unschedulable", 120)
    assert "nodes are available" in pod["message"]
    assert ferry.condition("synctasks", "orders")["reason"] == "Unschedulable"
    assert ferry.condition("synctasks", "orders", "Stalled")["status"] == "True"


# ---------------------------------------------------------------- status across a restart


def test_counters_and_progress_unchanged_across_a_worker_restart(
    ferry: Ferry, connectors: None, operator: OperatorProcess, database: str, node: Node
) -> None:
    values = ", ".join(f"({i})" for i in range(1, 301))
    node.sql(f"CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES {values}", database)
    spec = task("orders")["spec"]
    spec["source"]["include"] = [f"{database}.*"]
    ferry.create("synctasks", task("orders", source=spec["source"]))

    def snapshot_done() -> dict[str, Any] | None:
        found = status(ferry, "orders")
        done = (found.get("progress") or {}).get("percent") == 100
        streaming = found.get("workerState") == "Streaming"
        return found if done and streaming and (found.get("counters") or {}).get("events") else None

    before = wait_until(snapshot_done, 300, "the snapshot done and streaming")
    assert before["counters"]["events"] >= 300
    ferry.patch_spec("synctasks", "orders", {"restartNonce": "restart-1"})

    def restarted() -> dict[str, Any] | None:
        found = status(ferry, "orders")
        started = found.get("lastStartTime") or ""
        fresh = (found.get("heartbeatTime") or "") > started > before["lastStartTime"]
        return found if fresh and found.get("workerState") == "Streaming" else None

    after = wait_until(restarted, 300, "the restarted worker streaming")
    assert after["counters"]["events"] == before["counters"]["events"]
    assert after["counters"]["errors"] == before["counters"]["errors"]
    assert after["progress"]["percent"] == 100
    assert after["progress"]["display"] == "100%"
    assert after["progress"]["tables"] == before["progress"]["tables"]
    # The POSITION column: the checkpoint's file:offset, as the worker reported it.
    position = after["position"]
    assert position["display"] == f"{position['file']}:{position['pos']}"
    row = node.kubectl("get", "synctasks", "-n", ferry.ns, "--no-headers").split()
    assert row[0] == "orders" and row[6].startswith(f"{position['file']}:"), row
