"""The operator's steady state is cheap on the API server — read from its own /metrics
(``ferry_operator_api_requests_total``, ``ferry_operator_reconciles_total``) against the
real API server — and still repairs drift and follows Connector changes."""

from __future__ import annotations

import time
import urllib.request
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families
from tests.integration.operator.conftest import Ferry, OperatorProcess, task, wait_until

pytestmark = [pytest.mark.kube, pytest.mark.mysql, pytest.mark.kafka]

TASKS = 4
WINDOW_SECONDS = 8.0
MAX_REQUESTS_PER_RESYNC = 3.0


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("ferry_operator_")
    }


def total(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **want: str
) -> float:
    return sum(
        value
        for (sample, labels), value in samples.items()
        if sample == name and all(dict(labels).get(k) == v for k, v in want.items())
    )


@pytest.fixture
def counted_operator(
    testenv: Any, namespace: str, ferry_crds: None, tmp_path: Path, port: int
) -> Any:
    process = OperatorProcess(
        testenv, namespace, tmp_path / "operator.log", env={"FERRY_HTTP_PORT": str(port)}
    )
    process.start()
    yield process
    process.stop()


def revision_of(ferry: Ferry, name: str) -> str | None:
    status = ferry.get("synctasks", name).get("status") or {}
    return status.get("configRevision")


def at_revision(ferry: Ferry, name: str, revision: str) -> bool:
    return revision_of(ferry, name) == revision


def wait_settled(ferry: Ferry, names: list[str]) -> None:
    for name in names:
        wait_until(partial(at_revision, ferry, name, f"{name}-r1"), 90, f"{name} at r1")
        wait_until(partial(ferry.deployment, name), 30, f"{name}'s Deployment")


def test_steady_state_reads_little_and_still_repairs_drift(
    ferry: Ferry,
    connectors: None,
    counted_operator: OperatorProcess,
    port: int,
    kafka_bootstrap: str,
) -> None:
    names = [f"t{i}" for i in range(TASKS)]
    for name in names:
        ferry.create("synctasks", task(name))
    wait_settled(ferry, names)
    time.sleep(3)  # let the last status writes and their watch events pass

    # --- steady state: requests per task per resync, from the operator's own counters
    before = scrape(port)
    time.sleep(WINDOW_SECONDS)
    after = scrape(port)
    requests = total(after, "ferry_operator_api_requests_total") - total(
        before, "ferry_operator_api_requests_total"
    )
    scrapes = 1  # the second scrape LISTs the SyncTasks for the per-task series
    resyncs = total(after, "ferry_operator_reconciles_total", trigger="resync") - total(
        before, "ferry_operator_reconciles_total", trigger="resync"
    )
    assert resyncs >= TASKS * 2, f"only {resyncs} resyncs in {WINDOW_SECONDS}s"
    per_resync = (requests - scrapes) / resyncs
    owned_reads = sum(
        total(after, "ferry_operator_api_requests_total", verb="get", resource=r)
        - total(before, "ferry_operator_api_requests_total", verb="get", resource=r)
        for r in ("connectors", "tasktemplates", "deployments", "roles", "rolebindings")
    )
    print(f"{requests:.0f} requests over {resyncs:.0f} resyncs: {per_resync:.2f} per resync")
    assert per_resync <= MAX_REQUESTS_PER_RESYNC, counted_operator.log()[-3000:]
    assert owned_reads == 0

    # --- drift: a deleted Role comes back, a hand-scaled Deployment is scaled back
    victim = names[0]
    worker = f"{victim}-worker"

    def role_uid() -> str:
        role: Any = ferry.rbac.read_namespaced_role(worker, ferry.ns)
        return str(role.metadata.uid)

    old_uid = role_uid()
    ferry.rbac.delete_namespaced_role(worker, ferry.ns)
    wait_until(lambda: role_uid() != old_uid, 30, "the deleted Role re-created")
    ferry.apps.patch_namespaced_deployment_scale(worker, ferry.ns, {"spec": {"replicas": 3}})
    assert ferry.deployment(victim).spec.replicas == 3
    wait_until(lambda: ferry.deployment(victim).spec.replicas == 1, 30, "replicas back to 1")
    ferry.rbac.delete_namespaced_role_binding(worker, ferry.ns)
    wait_until(
        lambda: ferry.rbac.read_namespaced_role_binding(worker, ferry.ns),
        30,
        "the deleted RoleBinding re-created",
    )

    # --- a Connector change reaches every task's revision (one new revision each)
    doubled = f"{kafka_bootstrap},{kafka_bootstrap}"
    ferry.patch_spec("connectors", "kafka", {"kafka": {"bootstrapServers": doubled}})
    for name in names:
        wait_until(
            partial(at_revision, ferry, name, f"{name}-r2"),
            60,
            f"{name} at a new revision after the Connector change",
        )
        assert ferry.revisions(name) == [f"{name}-r1", f"{name}-r2"]
        configmap: Any = ferry.core.read_namespaced_config_map(f"{name}-r2", ferry.ns)
        assert configmap.metadata.annotations["ferry.dev/change-cause"] == "a Connector changed"
        worker_config = yaml.safe_load(configmap.data["worker.yaml"])
        assert doubled in yaml.safe_dump(worker_config)
    time.sleep(3)
    for name in names:  # and no duplicate or further revision
        assert ferry.revisions(name) == [f"{name}-r1", f"{name}-r2"]
    try:
        ferry.core.read_namespaced_config_map(f"{names[0]}-r3", ferry.ns)
        raise AssertionError("a third revision appeared")
    except client.ApiException as error:
        assert error.status == 404
