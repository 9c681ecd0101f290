"""Status from what the worker reports: the test writes the worker's fields the way the worker
does (server-side apply on synctasks/status as ``ferry-worker``) and checks the operator's
phase and conditions; too many restarts stop the worker until a new restartNonce; a worker
scaled up behind the operator's back is scaled back to one."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from tests.integration.operator.conftest import (
    GROUP,
    VERSION,
    Ferry,
    OperatorProcess,
    task,
    wait_until,
)

pytestmark = [pytest.mark.kube, pytest.mark.mysql, pytest.mark.kafka]


def report(ferry: Ferry, name: str, **fields: Any) -> None:
    """What ferry_runtime.reporter sends."""
    fields.setdefault("heartbeatTime", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SyncTask",
        "metadata": {"name": name, "namespace": ferry.ns},
        "status": fields,
    }
    ferry.custom.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        ferry.ns,
        "synctasks",
        name,
        body,
        field_manager="ferry-worker",
        force=True,
        _content_type="application/apply-patch+yaml",
    )


def started(ferry: Ferry, name: str) -> str:
    return wait_until(
        lambda: (ferry.get("synctasks", name).get("status") or {}).get("lastStartTime"),
        60,
        "worker started",
    )


def test_running_lagging_and_too_many_restarts(
    ferry: Ferry, connectors: None, ferry_operator: OperatorProcess
) -> None:
    spec = {"alerts": {"lagThreshold": "30s"}, "restartPolicy": {"maxRetries": 2}}
    ferry.create("synctasks", task("orders", **spec))
    first_start = started(ferry, "orders")

    report(ferry, "orders", workerState="Streaming", lag={"seconds": 1.5})
    wait_until(
        lambda: ferry.get("synctasks", "orders")["status"]["phase"] == "Running", 30, "Running"
    )
    assert ferry.condition("synctasks", "orders")["status"] == "True"
    assert ferry.condition("synctasks", "orders", "Degraded")["status"] == "False"

    report(ferry, "orders", workerState="Streaming", lag={"seconds": 95.0})
    wait_until(
        lambda: (
            ferry.condition("synctasks", "orders", "Degraded").get("reason") == "LagAboveThreshold"
        ),
        30,
        "Degraded",
    )
    assert "lag 95s is above 30s" in ferry.condition("synctasks", "orders", "Degraded")["message"]

    # Recovered errors alone (a lifetime count) do not stop it: only a streak over the limit.
    report(ferry, "orders", workerState="Streaming", lag={"seconds": 1.0}, counters={"restarts": 9})
    time.sleep(2)
    assert ferry.condition("synctasks", "orders", "Stalled").get("reason") != "TooManyRestarts"
    report(ferry, "orders", workerState="Streaming", lag={"seconds": 1.0}, retry={"streak": 3})
    wait_until(
        lambda: (
            ferry.condition("synctasks", "orders", "Stalled").get("reason") == "TooManyRestarts"
        ),
        30,
        "Stalled",
    )
    wait_until(lambda: ferry.deployment("orders").spec.replicas == 0, 30, "worker stopped")
    # The operator's words for the reported streak, or (on a node, where the worker pod
    # really runs and cannot reach the test's source) the worker's own for its streak.
    message = ferry.condition("synctasks", "orders")["message"]
    assert "more than restartPolicy.maxRetries (2)" in message
    assert "failed 3 times in a row" in message or "3 consecutive failures" in message
    # It stays stopped over resyncs: a stop is not undone by itself.
    time.sleep(3)
    assert ferry.deployment("orders").spec.replicas == 0

    # A new restartNonce starts a fresh worker; the old worker's counters no longer count.
    ferry.patch_spec("synctasks", "orders", {"restartNonce": "after-fix"})
    wait_until(lambda: ferry.deployment("orders").spec.replicas == 1, 30, "restarted")
    status = ferry.get("synctasks", "orders")["status"]
    assert status["lastStartTime"] >= first_start
    wait_until(
        lambda: ferry.condition("synctasks", "orders", "Stalled").get("status") == "False",
        30,
        "not Stalled",
    )


def test_a_scaled_up_worker_and_a_widened_role_are_put_back(
    ferry: Ferry, connectors: None, ferry_operator: OperatorProcess
) -> None:
    ferry.create("synctasks", task("orders"))
    started(ferry, "orders")
    ferry.apps.patch_namespaced_deployment_scale(
        "orders-worker", ferry.ns, {"spec": {"replicas": 3}}
    )
    wait_until(lambda: ferry.deployment("orders").spec.replicas == 1, 30, "back to one replica")

    # The worker's Role widened by hand is narrowed again.
    ferry.rbac.patch_namespaced_role(
        "orders-worker",
        ferry.ns,
        {"rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]},
    )

    def narrow() -> bool:
        rules = ferry.rbac.read_namespaced_role("orders-worker", ferry.ns).rules
        return [(r.resources, r.verbs) for r in rules] == [(["synctasks/status"], ["get", "patch"])]

    wait_until(narrow, 30, "Role put back")
