"""The operator killed (SIGKILL) while reconciling 50 tasks and started again: no duplicate
objects, every task converges. Prints how long convergence took."""

from __future__ import annotations

import time

import pytest
from tests.integration.operator.conftest import Ferry, OperatorProcess, task, wait_until

pytestmark = [pytest.mark.kube, pytest.mark.mysql, pytest.mark.kafka]
TASKS = 50


@pytest.mark.long
def test_killed_mid_reconcile_then_restarted_converges_without_duplicates(
    ferry: Ferry,
    connectors: None,
    ferry_operator: OperatorProcess,
) -> None:
    wait_until(
        lambda: all(
            ferry.condition("connectors", n).get("status") == "True" for n in ("db", "kafka")
        ),
        60,
        "connectors Ready",
    )
    started = time.monotonic()
    for number in range(TASKS):
        ferry.create("synctasks", task(f"t{number:02d}"))

    # Kill it as soon as some, not all, tasks have their revision.
    def some_done() -> bool:
        names = {cm.metadata.name for cm in ferry.core.list_namespaced_config_map(ferry.ns).items}
        done = sum(f"t{n:02d}-r1" in names for n in range(TASKS))
        return 0 < done < TASKS

    wait_until(some_done, 60, "reconciling in progress")
    ferry_operator.kill()
    ferry_operator.start()

    def converged() -> bool:
        tasks = ferry.custom.list_namespaced_custom_object(
            "ferry.dev", "v1alpha1", ferry.ns, "synctasks"
        )["items"]
        return len(tasks) == TASKS and all(
            (t.get("status") or {}).get("configRevision") == f"{t['metadata']['name']}-r1"
            and t["status"].get("phase") == "Starting"
            for t in tasks
        )

    wait_until(converged, 180, "all tasks converged")
    elapsed = time.monotonic() - started
    configmaps = sorted(
        cm.metadata.name
        for cm in ferry.core.list_namespaced_config_map(ferry.ns).items
        if cm.metadata.name.startswith("t")
    )
    # One revision and one mounted <task>-worker-config each, nothing written twice.
    assert configmaps == sorted(
        f"t{n:02d}-{kind}" for n in range(TASKS) for kind in ("r1", "worker-config")
    )
    deployments = sorted(
        d.metadata.name for d in ferry.apps.list_namespaced_deployment(ferry.ns).items
    )
    assert deployments == [f"t{n:02d}-worker" for n in range(TASKS)]
    for d in ferry.apps.list_namespaced_deployment(ferry.ns).items:
        assert d.spec.replicas == 1
    print(f"\n{TASKS} tasks converged {elapsed:.1f}s after creation (operator killed once)")
