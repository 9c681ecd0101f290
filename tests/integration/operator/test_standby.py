"""Two operator replicas sharing a kopf peering object (what the chart runs with
replicaCount > 1): only the higher-priority one acts; when it is killed, the standby takes
over after the peering lifetime and reconciles what changed meanwhile."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from tests.integration.operator.conftest import (
    REPO_ROOT,
    Ferry,
    OperatorProcess,
    task,
    wait_until,
)

pytestmark = [pytest.mark.kube, pytest.mark.mysql, pytest.mark.kafka]
PEERING = "ferry"
LIFETIME = 10  # seconds; the chart's default is 60


def _peering(testenv: Any, api: Any, namespace: str) -> None:
    """kopf's peering CRDs as the chart ships them, and the namespace's KopfPeering."""
    subprocess.run(
        [testenv.kubectl, "apply", "--server-side", "-f",
         str(REPO_ROOT / "charts/ferry/crds/kopf.dev_peerings.yaml")],
        check=True, capture_output=True,
        env={**os.environ, "KUBECONFIG": str(testenv.kubeconfig)},
    )  # fmt: skip
    custom = client.CustomObjectsApi(api)
    body = {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": PEERING}}
    deadline = time.monotonic() + 30
    while True:
        try:
            custom.create_namespaced_custom_object(
                "kopf.dev", "v1", namespace, "kopfpeerings", body
            )
            return
        except client.ApiException as error:  # the CRD may not be served yet
            if error.status != 404 or time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def _peers(api: Any, namespace: str) -> dict[str, Any]:
    found = client.CustomObjectsApi(api).get_namespaced_custom_object(
        "kopf.dev", "v1", namespace, "kopfpeerings", PEERING
    )
    return dict(found.get("status") or {})


def test_the_standby_replica_takes_over_when_the_active_one_is_killed(
    ferry: Ferry, connectors: None, testenv: Any, kube_api: Any, tmp_path: Path
) -> None:
    _peering(testenv, kube_api, ferry.ns)

    def replica(name: str, priority: int) -> OperatorProcess:
        env = {
            "FERRY_PEERING": PEERING,
            "FERRY_PRIORITY": str(priority),
            "FERRY_PEERING_LIFETIME": str(LIFETIME),
        }
        return OperatorProcess(testenv, ferry.ns, tmp_path / f"{name}.log", env)

    active, standby = replica("active", 200), replica("standby", 100)
    active.start()
    try:
        wait_until(lambda: len(_peers(kube_api, ferry.ns)) == 1, 30, "the first peer")
        standby.start()
        wait_until(lambda: len(_peers(kube_api, ferry.ns)) == 2, 30, "both peers")
        # A peering replica starts paused and resumes only when no higher priority is alive.

        ferry.create("synctasks", task("before"))
        wait_until(
            lambda: (ferry.get("synctasks", "before").get("status") or {}).get("configRevision"),
            60,
            "the active replica to reconcile",
        )
        assert "Resuming operations" not in standby.log()  # it stood by
        assert "before" not in standby.log()  # only the active replica acted

        active.kill()
        killed = time.monotonic()
        ferry.create("synctasks", task("after"))
        wait_until(lambda: "Resuming operations" in standby.log(), LIFETIME + 30, "failover")
        wait_until(
            lambda: (ferry.get("synctasks", "after").get("status") or {}).get("configRevision"),
            60,
            "the standby to reconcile the task created during the failover",
        )
        print(f"failover: the new task reconciled {time.monotonic() - killed:.1f}s after the kill")
        assert ferry.revisions("after") == ["after-r1"]
        assert ferry.revisions("before") == ["before-r1"]  # no duplicate from the takeover
    finally:
        active.stop()
        standby.stop()
