"""The operator against the real API server and controller manager: the objects it creates
for a SyncTask, revisions and history, re-apply = no write, lifecycle fields (paused,
resumeAt, resetPosition, restartNonce) including an operator restart, templates, and
the conditions that say why a task waits, and a worker pod the namespace refuses
(FailedCreate)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from kubernetes import client
from tests.integration.operator.conftest import (
    GROUP,
    VERSION,
    Ferry,
    OperatorProcess,
    kafka_connector,
    task,
    wait_until,
)

pytestmark = [pytest.mark.kube, pytest.mark.mysql, pytest.mark.kafka]


def wait_ready_connectors(ferry: Ferry) -> None:
    for name in ("db", "kafka"):
        wait_until(
            lambda n=name: ferry.condition("connectors", n).get("status") == "True",
            60,
            f"Connector {name} Ready",
        )


def wait_revision(ferry: Ferry, name: str, revision: str) -> dict[str, Any]:
    return wait_until(
        lambda: (
            (ferry.get("synctasks", name).get("status") or {}).get("configRevision") == revision
            and ferry.get("synctasks", name)
        ),
        60,
        f"{name} at {revision}",
    )


def test_create_renders_owned_objects_and_delete_collects_them(
    ferry: Ferry, connectors: None, ferry_operator: OperatorProcess, testenv: Any
) -> None:
    created = ferry.create("synctasks", task("orders"))
    wait_ready_connectors(ferry)
    body = wait_revision(ferry, "orders", "orders-r1")
    uid = created["metadata"]["uid"]
    status = body["status"]
    assert status["phase"] == "Starting"
    assert status["observedGeneration"] == 1
    assert "kopf" not in status  # kopf's progress and diff-base live in annotations
    # kopf stores its diff-base once the handler has succeeded, which can be a moment after
    # the resync timer recorded the revision.
    wait_until(
        lambda: (
            "ferry.dev/last-handled-configuration"
            in (ferry.get("synctasks", "orders")["metadata"].get("annotations") or {})
        ),
        30,
        "kopf's diff-base annotation",
    )
    assert "ferry.dev/finalizer" in body["metadata"]["finalizers"]
    assert {c["type"] for c in status["conditions"]} == {
        "Ready",
        "Reconciling",
        "Stalled",
        "Degraded",
    }

    configmap = ferry.core.read_namespaced_config_map("orders-r1", ferry.ns)
    assert configmap.immutable is True
    assert configmap.metadata.labels["app.kubernetes.io/managed-by"] == "ferry"
    assert configmap.metadata.labels["ferry.dev/task"] == "orders"
    assert configmap.metadata.owner_references[0].uid == uid
    assert configmap.metadata.annotations["ferry.dev/change-cause"] == "created"
    worker = yaml.safe_load(configmap.data["worker.yaml"])
    assert worker["source"]["passwordEnv"] == "FERRY_SOURCE_PASSWORD"
    assert worker["task"]["uid"] == uid
    password = testenv.mysql["password"]
    for cm in ferry.core.list_namespaced_config_map(ferry.ns).items:
        assert password not in yaml.safe_dump(cm.data or {})

    deploy = ferry.deployment("orders")
    assert deploy.spec.strategy.type == "Recreate"
    assert deploy.spec.replicas == 1
    assert deploy.metadata.owner_references[0].uid == uid
    pod = deploy.spec.template.spec
    assert pod.volumes[0].config_map.name == "orders-worker-config"
    mounted = ferry.core.read_namespaced_config_map("orders-worker-config", ferry.ns)
    assert mounted.data["revision"] == "orders-r1"
    assert mounted.data["worker.yaml"] == configmap.data["worker.yaml"]
    assert pod.security_context.run_as_non_root is True
    container = pod.containers[0]
    assert container.security_context.read_only_root_filesystem is True
    assert container.security_context.capabilities.drop == ["ALL"]
    assert container.env[0].value_from.secret_key_ref.name == "db"
    assert container.liveness_probe.http_get.path == "/healthz"
    assert container.readiness_probe.http_get.path == "/readyz"

    role = ferry.rbac.read_namespaced_role("orders-worker", ferry.ns)
    assert [(r.resources, r.resource_names, sorted(r.verbs)) for r in role.rules] == [
        (["synctasks/status"], ["orders"], ["get", "patch"])
    ]
    binding = ferry.rbac.read_namespaced_role_binding("orders-worker", ferry.ns)
    assert binding.subjects[0].name == "orders-worker"
    assert ferry.core.read_namespaced_service_account("orders-worker", ferry.ns)
    wait_until(lambda: ferry.events("RevisionCreated"), 15, "a RevisionCreated event")

    ferry.custom.delete_namespaced_custom_object(GROUP, VERSION, ferry.ns, "synctasks", "orders")
    wait_until(lambda: not ferry.revisions("orders"), 60, "revisions collected")
    wait_until(
        lambda: not ferry.apps.list_namespaced_deployment(ferry.ns).items,
        60,
        "Deployment collected",
    )


def test_config_change_new_revision_history_capped_and_reapply_writes_nothing(
    ferry: Ferry, connectors: None, ferry_operator: OperatorProcess
) -> None:
    # Paused: no worker pod, whose real life on a cluster with a node (image pulls, restarts)
    # would be status writes of its own; this test is about revisions and re-applies.
    ferry.create("synctasks", task("orders", revisionHistoryLimit=2, paused=True))
    wait_ready_connectors(ferry)
    wait_revision(ferry, "orders", "orders-r1")
    for number, include in ((2, "shop.a"), (3, "shop.b"), (4, "shop.c")):
        ferry.patch_spec("synctasks", "orders", {"source": {"include": [include]}})
        wait_revision(ferry, "orders", f"orders-r{number}")
    wait_until(lambda: ferry.revisions("orders") == ["orders-r3", "orders-r4"], 30, "history cap")
    deploy = ferry.deployment("orders")
    assert deploy.spec.template.spec.volumes[0].config_map.name == "orders-worker-config"
    mounted = ferry.core.read_namespaced_config_map("orders-worker-config", ferry.ns)
    assert mounted.data["revision"] == "orders-r4"
    cause = ferry.core.read_namespaced_config_map("orders-r4", ferry.ns).metadata.annotations
    assert cause["ferry.dev/change-cause"] == 'source.include: ["shop.b"] → ["shop.c"]'

    # The same spec again (a GitOps re-sync): nothing is written, even over several resyncs.
    def operator_times() -> list[Any]:
        fields = ferry.deployment("orders").metadata.managed_fields
        return [m.time for m in fields if m.manager == "ferry-operator"]

    # kopf's diff-base annotation for the last change is written once its handler is done:
    # under load that can come after the revision, and it is a write of the task's own.
    wait_until(
        lambda: (
            '"shop.c"'
            in ferry.get("synctasks", "orders")["metadata"]["annotations"].get(
                "ferry.dev/last-handled-configuration", ""
            )
        ),
        30,
        "kopf's diff-base for the last change",
    )
    settled = [""]  # and then no write for 2 s: the last change's reconcile is over

    def settled_for_2s() -> bool:
        version = ferry.get("synctasks", "orders")["metadata"]["resourceVersion"]
        if version != settled[0]:
            settled[0] = version
            time.sleep(2)
            return False
        return True

    wait_until(settled_for_2s, 60, "the task to stay unchanged for 2 s")
    generation, times = deploy.metadata.generation, operator_times()
    writes = ferry_operator.log().count(" applied ")
    assert writes >= 8  # the log does record applies: 4 revisions, Deployment, RBAC
    ferry.patch_spec("synctasks", "orders", {"source": {"include": ["shop.c"]}})
    task_version = ferry.get("synctasks", "orders")["metadata"]["resourceVersion"]
    time.sleep(4)  # four resync periods
    assert ferry.revisions("orders") == ["orders-r3", "orders-r4"]
    assert ferry.deployment("orders").metadata.generation == generation
    assert operator_times() == times
    assert ferry_operator.log().count(" applied ") == writes  # the applier sent nothing
    # Not even a status write: the task is unchanged since the (no-op) patch.
    assert ferry.get("synctasks", "orders")["metadata"]["resourceVersion"] == task_version


def test_paused_then_resume_at_without_writing_spec(
    ferry: Ferry, connectors: None, ferry_operator: OperatorProcess
) -> None:
    ferry.create("synctasks", task("orders", paused=True))
    wait_ready_connectors(ferry)
    wait_revision(ferry, "orders", "orders-r1")
    wait_until(
        lambda: ferry.get("synctasks", "orders")["status"]["phase"] == "Paused", 30, "Paused"
    )
    assert ferry.deployment("orders").spec.replicas == 0
    ready = ferry.condition("synctasks", "orders")
    assert (ready["status"], ready["reason"]) == ("False", "Paused")

    resume_at = (datetime.now(UTC) + timedelta(seconds=6)).replace(microsecond=0)
    stamp = resume_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    ferry.patch_spec("synctasks", "orders", {"resumeAt": stamp})
    wait_until(
        lambda: ferry.get("synctasks", "orders")["status"].get("scheduledResume") == stamp,
        30,
        "scheduledResume in status",
    )
    generation = ferry.get("synctasks", "orders")["metadata"]["generation"]
    assert ferry.deployment("orders").spec.replicas == 0
    wait_until(lambda: ferry.deployment("orders").spec.replicas == 1, 30, "resumed")
    assert datetime.now(UTC) >= resume_at
    body = ferry.get("synctasks", "orders")
    assert body["spec"]["paused"] is True and body["spec"]["resumeAt"] == stamp
    assert body["metadata"]["generation"] == generation  # the operator wrote no spec
    wait_until(
        lambda: ferry.get("synctasks", "orders")["status"]["phase"] == "Starting", 30, "Starting"
    )
    assert "scheduledResume" not in ferry.get("synctasks", "orders")["status"]
    # The event is posted after the status write, asynchronously.
    wait_until(lambda: ferry.events("Resumed"), 15, "a Resumed event")


def test_reset_and_restart_happen_once_per_nonce_even_across_operator_restart(
    ferry: Ferry, connectors: None, ferry_operator: OperatorProcess
) -> None:
    ferry.create("synctasks", task("orders"))
    wait_ready_connectors(ferry)
    wait_revision(ferry, "orders", "orders-r1")

    ferry.patch_spec(
        "synctasks", "orders", {"resetPosition": {"to": {"at": "earliest"}, "nonce": "reset-1"}}
    )
    body = wait_revision(ferry, "orders", "orders-r2")
    wait_until(
        lambda: ferry.get("synctasks", "orders")["status"].get("lastResetNonce") == "reset-1",
        30,
        "lastResetNonce",
    )
    worker = yaml.safe_load(
        ferry.core.read_namespaced_config_map("orders-r2", ferry.ns).data["worker.yaml"]
    )
    assert worker["resetPosition"] == {"to": "earliest", "nonce": "reset-1"}
    cause = ferry.core.read_namespaced_config_map("orders-r2", ferry.ns).metadata.annotations
    assert cause["ferry.dev/change-cause"] == "resetPosition (nonce reset-1)"

    ferry.patch_spec("synctasks", "orders", {"restartNonce": "restart-1"})
    wait_until(
        lambda: ferry.get("synctasks", "orders")["status"].get("lastRestartNonce") == "restart-1",
        30,
        "lastRestartNonce",
    )
    deploy = ferry.deployment("orders")
    annotations = deploy.spec.template.metadata.annotations
    assert annotations["ferry.dev/restart-nonce"] == "restart-1"
    generation = deploy.metadata.generation
    assert body["status"]["configRevision"] == "orders-r2"

    # Re-apply the same nonces, kill the operator mid-flight and start it again: nothing repeats.
    ferry.patch_spec(
        "synctasks",
        "orders",
        {
            "restartNonce": "restart-1",
            "resetPosition": {"to": {"at": "earliest"}, "nonce": "reset-1"},
        },
    )
    ferry_operator.kill()
    ferry_operator.start()
    time.sleep(6)
    assert ferry.revisions("orders") == ["orders-r1", "orders-r2"]
    assert ferry.deployment("orders").metadata.generation == generation
    assert len(ferry.events("Restarted")) == 1
    assert len(ferry.events("PositionReset")) == 1


def test_template_change_rerenders_its_tasks_and_counts_users(
    ferry: Ferry, connectors: None, ferry_operator: OperatorProcess
) -> None:
    ferry.create(
        "tasktemplates",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "TaskTemplate",
            "metadata": {"name": "defaults"},
            "spec": {
                "template": {
                    "source": {"connectorRef": {"name": "db"}},
                    "delivery": "at-least-once",
                }
            },
        },
    )
    spec = {
        "templateRef": {"name": "defaults"},
        "sink": {"connectorRef": {"name": "kafka"}, "kafka": {}},
    }
    for name in ("a", "b"):
        ferry.create(
            "synctasks",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "SyncTask",
                "metadata": {"name": name},
                "spec": spec,
            },
        )
    wait_ready_connectors(ferry)
    for name in ("a", "b"):
        wait_revision(ferry, name, f"{name}-r1")
    wait_until(
        lambda: (ferry.get("tasktemplates", "defaults").get("status") or {}).get("users") == 2,
        30,
        "users",
    )
    ferry.patch_spec("tasktemplates", "defaults", {"template": {"delivery": "exactly-once"}})
    for name in ("a", "b"):
        wait_revision(ferry, name, f"{name}-r2")
        cm = ferry.core.read_namespaced_config_map(f"{name}-r2", ferry.ns)
        assert cm.metadata.annotations["ferry.dev/change-cause"] == (
            "TaskTemplate defaults changed: delivery: at-least-once → exactly-once"
        )
        assert yaml.safe_load(cm.data["worker.yaml"])["delivery"] == "exactly-once"

    ferry.custom.delete_namespaced_custom_object(GROUP, VERSION, ferry.ns, "synctasks", "b")
    wait_until(
        lambda: (ferry.get("tasktemplates", "defaults").get("status") or {}).get("users") == 1,
        30,
        "users recounted",
    )
    ferry.custom.delete_namespaced_custom_object(
        GROUP, VERSION, ferry.ns, "tasktemplates", "defaults"
    )
    wait_until(
        lambda: ferry.condition("synctasks", "a").get("reason") == "TemplateNotFound",
        30,
        "reported",
    )
    assert "TaskTemplate 'defaults' does not exist" in ferry.condition("synctasks", "a")["message"]


def test_task_waits_for_connectors_with_a_condition_naming_them(
    ferry: Ferry, ferry_operator: OperatorProcess, kafka_bootstrap: str
) -> None:
    ferry.create("connectors", kafka_connector("kafka", kafka_bootstrap))
    ferry.create("synctasks", task("orders"))
    wait_until(
        lambda: ferry.condition("synctasks", "orders").get("reason") == "ConnectorNotFound",
        90,  # the operator's start and first reconcile, on a loaded machine
        "waits",
    )
    ready = ferry.condition("synctasks", "orders")
    assert "spec.source.connectorRef: Connector 'db' does not exist" in ready["message"]
    assert ferry.get("synctasks", "orders")["status"]["phase"] == "Pending"
    assert not ferry.revisions("orders")


def test_sink_kind_not_matching_its_connector_is_stalled(
    ferry: Ferry, connectors: None, ferry_operator: OperatorProcess
) -> None:
    bad = task("orders")
    bad["spec"]["sink"] = {"connectorRef": {"name": "db"}, "kafka": {}}
    ferry.create("synctasks", bad)
    wait_until(
        lambda: ferry.condition("synctasks", "orders", "Stalled").get("status") == "True",
        60,
        "Stalled",
    )
    ready = ferry.condition("synctasks", "orders")
    assert ready["reason"] == "ConnectorTypeMismatch"
    assert "Connector 'db' is of type mysql, this needs type kafka" in ready["message"]
    assert ferry.get("synctasks", "orders")["status"]["phase"] == "Failed"


def test_a_reconcile_that_raises_is_reconcile_error_with_an_event_logged_once(
    ferry: Ferry, connectors: None, ferry_operator: OperatorProcess
) -> None:
    # Admitted (tolerations are the pod's, unchecked by the CRD) but the API server refuses
    # the Deployment: every apply raises. The user sees why in status and an Event; the log
    # says it once. (A name over 63 characters, the label limit, is refused at admission.)
    name = "orders"
    body = task(name)
    body["spec"]["worker"] = {"tolerations": [{"key": "k", "operator": "Sometimes"}]}
    ferry.create("synctasks", body)
    wait_ready_connectors(ferry)
    ready = wait_until(
        lambda: (
            ferry.condition("synctasks", name).get("reason") == "ReconcileError"
            and ferry.condition("synctasks", name)
        ),
        60,
        "Ready=False ReconcileError",
    )
    assert ready["status"] == "False"
    assert "the API server refused a request (HTTP 422)" in ready["message"]
    assert 'Unsupported value: "Sometimes"' in ready["message"]
    events = wait_until(lambda: ferry.events("ReconcileError"), 15, "a ReconcileError event")
    assert events[0].type == "Warning"
    assert "Sometimes" in events[0].message
    # Retried with backoff (1 s, 2 s, 4 s … here): Stalled once it keeps failing.
    wait_until(
        lambda: ferry.condition("synctasks", name, "Stalled").get("status") == "True",
        30,
        "Stalled=True after repeated failures",
    )
    time.sleep(5)
    log = ferry_operator.log()
    assert log.count("reconcile failed:") == 1, log
    assert "Traceback" not in log
    assert sum(e.count or 1 for e in ferry.events("ReconcileError")) == 1


def test_a_worker_pod_the_namespace_refuses_is_failed_create_quoting_the_api_server(
    ferry: Ferry, connectors: None, ferry_operator: OperatorProcess
) -> None:
    # The real admission chain refuses the pod (LimitRanger: a container may use at most
    # 32Mi here), so the ReplicaSet controller cannot create it: ReplicaFailure/FailedCreate
    # on the ReplicaSet, then on the Deployment, which the operator watches.
    ferry.core.create_namespaced_limit_range(
        ferry.ns,
        client.V1LimitRange(
            metadata=client.V1ObjectMeta(name="small"),
            spec=client.V1LimitRangeSpec(
                limits=[client.V1LimitRangeItem(type="Container", max={"memory": "32Mi"})]
            ),
        ),
    )
    resources = {"requests": {"memory": "64Mi"}, "limits": {"memory": "64Mi"}}
    ferry.create("synctasks", task("orders", worker={"resources": resources}))
    pod = wait_until(
        lambda: (
            (found := (ferry.get("synctasks", "orders").get("status") or {}).get("workerPod"))
            and found.get("reason") == "FailedCreate"
            and found
        ),
        120,
        "status.workerPod.reason FailedCreate",
    )
    assert "the worker's pod cannot be created" in pod["message"]
    assert "maximum memory usage per Container is 32Mi, but limit is 64Mi" in pod["message"]
    assert pod["summary"] == "no worker pod exists (the Deployment has 0)"
    ready = ferry.condition("synctasks", "orders")
    assert (ready["status"], ready["reason"]) == ("False", "FailedCreate")
    stalled = ferry.condition("synctasks", "orders", "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "FailedCreate")
    ours = wait_until(
        lambda: [e for e in ferry.events("FailedCreate") if e.involved_object.kind == "SyncTask"],
        30,
        "the operator's Warning Event",
    )
    assert ours[0].type == "Warning" and "32Mi" in ours[0].message
