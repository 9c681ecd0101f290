"""The Kubernetes reporter against the real API server and the real SyncTask CRD.

It must write only the worker's status fields (server-side apply as ``ferry-worker``), leave
the operator's fields alone, write at once on a state change, at a bounded rate otherwise,
survive API failures, and never put a secret into the status.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.support import wait_until

from ferry_runtime import reporter
from ferry_runtime.config import ReportingConfig, TaskIdentity
from ferry_runtime.status import StatusTracker

pytestmark = pytest.mark.kube

GROUP, VERSION, PLURAL = "ferry.dev", "v1alpha1", "synctasks"
SECRET = "s3cr3t-Pa55word"


class Tasks:
    """Create and read SyncTasks in one namespace, and play the operator's status writes."""

    def __init__(self, kube_api: Any, namespace: str) -> None:
        from kubernetes import client

        self.api = client.CustomObjectsApi(kube_api)
        self.namespace = namespace

    def create(self, name: str) -> None:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "SyncTask",
            "metadata": {"name": name},
            "spec": {
                "source": {"connectorRef": {"name": "db"}, "include": ["shop.*"]},
                "sink": {"connectorRef": {"name": "bus"}, "kafka": {"topic": "t.{table}"}},
            },
        }
        self.api.create_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, body)

    def get(self, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = self.api.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name
        )
        return obj

    def status(self, name: str) -> dict[str, Any]:
        return self.get(name).get("status") or {}

    def operator_writes(self, name: str, status: dict[str, Any]) -> None:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "SyncTask",
            "metadata": {"name": name},
            "status": status,
        }
        self.api.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            self.namespace,
            PLURAL,
            name,
            body,
            field_manager="ferry-operator",
            _content_type="application/apply-patch+yaml",
        )


@pytest.fixture
def tasks(kube_api: Any, namespace: str, ferry_crds: None) -> Tasks:
    return Tasks(kube_api, namespace)


@pytest.fixture
def stoppers() -> Iterator[list[reporter.Reporter]]:
    running: list[reporter.Reporter] = []
    yield running
    for item in running:
        item.stop()


def operator_status(generation: int, phase: str) -> dict[str, Any]:
    return {
        "phase": phase,
        "observedGeneration": generation,
        "configRevision": "task-r1",
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Running",
                "message": "The worker is streaming.",
                "lastTransitionTime": "2026-11-22T10:00:00Z",
            }
        ],
    }


def start(
    kube_api: Any,
    tracker: StatusTracker,
    namespace: str,
    name: str,
    interval: str,
    stoppers: list[reporter.Reporter],
) -> reporter.Reporter:
    reporting = ReportingConfig.model_validate(
        {"port": 0, "interval": interval, "kubernetes": {"namespace": namespace, "name": name}}
    )
    task = TaskIdentity(name=name, namespace=namespace)
    running = reporter.start(tracker, reporting, task, api_client=kube_api, secrets=[SECRET])
    assert running is not None
    stoppers.append(running)
    return running


def test_no_reporter_without_a_kubernetes_target() -> None:
    task = TaskIdentity(name="local")
    assert reporter.start(StatusTracker(), ReportingConfig(), task) is None


def test_state_change_is_reported_at_once_and_operator_fields_survive(
    kube_api: Any, tasks: Tasks, namespace: str, stoppers: list[reporter.Reporter]
) -> None:
    tasks.create("orders")
    tasks.operator_writes("orders", operator_status(1, "Starting"))
    tracker = StatusTracker()
    start(kube_api, tracker, namespace, "orders", "60s", stoppers)
    wait_until(lambda: tasks.status("orders").get("heartbeatTime"), 15, "the first report")

    # the interval is 60 s: only the state change can explain a write within seconds
    tracker.record_delivered(
        {("shop.orders", "insert"): 5}, {"file": "binlog.000002", "pos": 777}, None
    )
    tracker.record_error(
        "AuthenticationFailed", f"login failed for 'ferry' with password {SECRET}", "shop.orders"
    )
    changed_at = time.monotonic()
    tracker.set_state("Streaming")
    status = wait_until(
        lambda: (s := tasks.status("orders")).get("workerState") == "Streaming" and s,
        5,
        "the state change",
    )
    assert time.monotonic() - changed_at < 3
    assert status["position"] == {
        "file": "binlog.000002",
        "pos": 777,
        "display": "binlog.000002:777",
    }
    assert status["counters"] == {
        "events": 5, "errors": 1, "restarts": 0, "restartsSinceStart": 0, "resnapshots": 0,
    }  # fmt: skip
    assert status["lastErrors"][0]["reason"] == "AuthenticationFailed"
    assert "***" in status["lastErrors"][0]["message"]
    assert SECRET not in json.dumps(tasks.get("orders"))

    # the operator's fields are untouched, and each side owns its own
    assert status["phase"] == "Starting"
    assert status["configRevision"] == "task-r1"
    assert status["conditions"][0]["type"] == "Ready"
    managers = {m["manager"]: m for m in tasks.get("orders")["metadata"]["managedFields"]}
    worker_owned = json.dumps(managers["ferry-worker"]["fieldsV1"])
    operator_owned = json.dumps(managers["ferry-operator"]["fieldsV1"])
    assert '"f:position"' in worker_owned and '"f:phase"' not in worker_owned
    assert '"f:phase"' in operator_owned and '"f:position"' not in operator_owned

    # and the operator's next write leaves the worker's fields alone
    tasks.operator_writes("orders", operator_status(1, "Running"))
    status = tasks.status("orders")
    assert status["phase"] == "Running"
    assert status["position"] == {
        "file": "binlog.000002",
        "pos": 777,
        "display": "binlog.000002:777",
    }
    assert status["workerState"] == "Streaming"


def test_write_rate_is_bounded_even_when_the_state_flaps(
    kube_api: Any, tasks: Tasks, namespace: str, stoppers: list[reporter.Reporter]
) -> None:
    from kubernetes import watch

    tasks.create("flappy")
    tracker = StatusTracker()
    modified: list[float] = []
    window = 5.0

    def count_modifications() -> None:
        stream = watch.Watch()
        for event in stream.stream(
            tasks.api.list_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            timeout_seconds=int(window) + 2,
        ):
            if event["type"] == "MODIFIED":
                modified.append(time.monotonic())

    watcher = threading.Thread(target=count_modifications, daemon=True)
    watcher.start()
    time.sleep(0.5)  # let the watch open
    began = time.monotonic()
    running = start(kube_api, tracker, namespace, "flappy", "1s", stoppers)
    while time.monotonic() - began < window:
        tracker.set_state("Streaming" if tracker.state != "Streaming" else "Snapshotting")
        tracker.record_delivered({("shop.t", "insert"): 1}, {"file": "b.1", "pos": 4}, None)
        time.sleep(0.05)  # ~100 state changes in the window
    writes = running.writes
    watcher.join()

    in_window = [t for t in modified if t - began <= window + 0.5]
    print(f"reporter: {writes} writes, {len(in_window)} modifications in {window} s")
    # one write at start, then at most one per second (interval and min spacing are 1 s)
    assert writes <= window + 2, writes
    assert len(in_window) <= window + 2, in_window
    assert len(in_window) >= 3, "the reporter should have written about once a second"


def test_failures_are_retried_and_never_raised(
    kube_api: Any, tasks: Tasks, namespace: str, stoppers: list[reporter.Reporter]
) -> None:
    tracker = StatusTracker()
    running = start(kube_api, tracker, namespace, "late", "60s", stoppers)
    wait_until(lambda: running.failures >= 2, 15, "failed writes to a task that does not exist")
    assert running.writes == 0
    tasks.create("late")  # the retry backoff (1 s, 2 s, ...) reaches it without a state change
    wait_until(lambda: tasks.status("late").get("heartbeatTime"), 20, "a retried write")
    # counted once the PATCH returned, a moment after the status shows it
    wait_until(lambda: running.writes >= 1, 5, "the write to be counted")


def test_stop_sends_a_final_report_and_drops_fields_no_longer_sent(
    kube_api: Any, tasks: Tasks, namespace: str
) -> None:
    tasks.create("final")
    tracker = StatusTracker()
    tracker.set_state("Snapshotting")
    tracker.start_table("shop.orders", 100)
    tracker.record_snapshot_rows("shop.orders", 10)
    running = start(kube_api, tracker, namespace, "final", "60s", [])
    wait_until(lambda: tasks.status("final").get("progress", {}).get("eta"), 15, "an ETA")

    tracker.record_snapshot_rows("shop.orders", 90)
    tracker.finish_table("shop.orders")
    tracker.record_delivered({("shop.orders", "insert"): 100}, {"file": "b.9", "pos": 99}, None)
    running.stop()  # no state change, 60 s interval: only the final report writes this
    status = tasks.status("final")
    assert status["position"] == {"file": "b.9", "pos": 99, "display": "b.9:99"}
    assert status["progress"]["percent"] == 100.0
    assert "eta" not in status["progress"]  # the worker stopped sending it, so SSA removed it


@pytest.mark.mysql
@pytest.mark.kafka
def test_a_real_worker_process_reports_onto_its_synctask(
    kube_api: Any,
    tasks: Tasks,
    namespace: str,
    testenv: Any,
    database: str,
    admin_sql: Callable[..., Any],
    make_config: Callable[..., dict[str, Any]],
    tmp_path: Path,
) -> None:
    admin_sql(f"CREATE TABLE `{database}`.t (id int PRIMARY KEY, v varchar(20))")
    admin_sql(f"INSERT INTO `{database}`.t SELECT seq, 'x' FROM `{database}`.seq_1_to_5000")
    tasks.create("live")
    tasks.operator_writes("live", operator_status(1, "Running"))
    target = {"namespace": namespace, "name": "live"}
    config = make_config(reporting={"port": 0, "interval": "2s", "kubernetes": target})
    config_path = tmp_path / "worker.yaml"
    config_path.write_text(yaml.safe_dump(config))
    process = subprocess.Popen(  # `ferry-worker --config`, as the Deployment runs it
        [sys.executable, "-m", "ferry_runtime.cli", "--config", str(config_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "KUBECONFIG": testenv.kubeconfig},
    )
    try:
        _check_worker_reports(tasks, database, admin_sql, testenv, process)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _check_worker_reports(
    tasks: Tasks, database: str, admin_sql: Callable[..., Any], testenv: Any, process: Any
) -> None:
    def streaming_done() -> dict[str, Any] | None:
        status = tasks.status("live")
        done = status.get("progress", {}).get("percent") == 100.0
        return status if status.get("workerState") == "Streaming" and done else None

    status = wait_until(streaming_done, 90, "the worker to report Streaming after its snapshot")
    assert status["progress"]["tables"] == [
        {"name": f"{database}.t", "rowsDone": 5000, "rowsTotal": 5000, "state": "Done"}
    ]
    admin_sql(
        f"INSERT INTO `{database}`.t VALUES (%s, 'new')",
        [(n,) for n in range(5001, 5011)],
        many=True,
    )
    status = wait_until(
        lambda: (s := tasks.status("live")).get("counters", {}).get("events", 0) >= 5010 and s,
        30,
        "the streamed rows in the reported counters",
    )
    assert status["phase"] == "Running"  # the operator's field, untouched
    assert status["position"]["file"].startswith("binlog.")

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    final = tasks.get("live")
    assert final["status"]["workerState"] == "Stopped"  # the final report on stop
    assert testenv.mysql["password"] not in json.dumps(final)


def test_the_workers_own_role_is_enough_and_no_more(
    kube_api: Any, tasks: Tasks, namespace: str, testenv: Any, stoppers: list[reporter.Reporter]
) -> None:
    """With the ServiceAccount, Role and RoleBinding the operator renders for the worker
    (impersonated), the reporter writes its own task's status and is refused another's."""
    from kubernetes import client, config, utils

    from ferry_operator.render import meta, objects

    tasks.create("mine")
    tasks.create("other")
    uid = tasks.get("mine")["metadata"]["uid"]
    owner = meta.Owner(name="mine", namespace=namespace, uid=uid)
    for manifest in (
        objects.service_account(owner),
        objects.role(owner),
        objects.role_binding(owner),
    ):
        utils.create_from_dict(kube_api, manifest, namespace=namespace)

    worker_api = config.new_client_from_config(config_file=testenv.kubeconfig)
    account = f"system:serviceaccount:{namespace}:{meta.worker_name('mine')}"
    worker_api.set_default_header("Impersonate-User", account)
    with pytest.raises(client.ApiException) as refused:  # the impersonation is in force
        client.CustomObjectsApi(worker_api).get_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, "mine"
        )
    assert refused.value.status == 403

    tracker = StatusTracker()
    tracker.set_state("Streaming")
    reporting = ReportingConfig.model_validate(
        {"interval": "60s", "kubernetes": {"namespace": namespace, "name": "mine"}}
    )
    mine = reporter.start(tracker, reporting, TaskIdentity(name="mine"), api_client=worker_api)
    assert mine is not None
    stoppers.append(mine)
    wait_until(lambda: tasks.status("mine").get("workerState") == "Streaming", 15, "its own status")

    reporting = ReportingConfig.model_validate(
        {"interval": "60s", "kubernetes": {"namespace": namespace, "name": "other"}}
    )
    other = reporter.start(tracker, reporting, TaskIdentity(name="x"), api_client=worker_api)
    assert other is not None
    stoppers.append(other)
    wait_until(lambda: other.failures >= 1, 15, "the refused write")
    assert other.writes == 0
    assert "workerState" not in tasks.status("other")
