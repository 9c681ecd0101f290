"""kubectl ferry with the real operator running: history, diff and rollback read the
revisions the operator actually wrote, and a rollback makes the operator go back to the
old configuration; pause through the plugin makes the operator scale the worker to 0."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from tests.integration.delivery.conftest import Ran
from tests.integration.operator.conftest import (
    Ferry,
    OperatorProcess,
    connectors,
    ferry,
    ferry_operator,
    task,
    wait_until,
)

pytestmark = [pytest.mark.kube, pytest.mark.mysql, pytest.mark.kafka]
__all__ = ["connectors", "ferry", "ferry_operator"]  # the operator suite's fixtures, used here


def config_hash(ferry: Ferry, revision: str) -> str:
    configmap = ferry.core.read_namespaced_config_map(revision, ferry.ns)
    return str(configmap.metadata.annotations["ferry.dev/config-hash"])


def current_revision(ferry: Ferry, name: str) -> str | None:
    return (ferry.get("synctasks", name).get("status") or {}).get("configRevision")


def test_history_diff_rollback_on_operator_written_revisions(
    ferry: Ferry,
    connectors: None,
    ferry_operator: OperatorProcess,
    ferry_cli: Callable[..., Ran],
) -> None:
    ferry.create("synctasks", task("orders", performance={"batchSize": 100}))
    wait_until(lambda: current_revision(ferry, "orders") == "orders-r1", 60, "orders-r1")
    first_hash = config_hash(ferry, "orders-r1")
    ferry.patch_spec("synctasks", "orders", {"performance": {"batchSize": 500}})
    wait_until(lambda: current_revision(ferry, "orders") == "orders-r2", 60, "orders-r2")

    history = ferry_cli("history", "orders")
    assert history.code == 0, history
    rows = [line.split() for line in history.out.splitlines()[1:]]
    assert [r[0] for r in rows] == ["1", "2"] and rows[1][1] == "*"
    diff = ferry_cli("diff", "orders", "1")
    assert diff.code == 0, diff
    assert "-  batchSize: 100" in diff.out and "+  batchSize: 500" in diff.out

    rolled = ferry_cli("rollback", "orders", "--to-revision", "1")
    assert rolled.code == 0, rolled
    # The operator renders the old configuration again: the current revision's hash is r1's.
    wait_until(
        lambda: (
            (rev := current_revision(ferry, "orders")) not in (None, "orders-r2")
            and config_hash(ferry, rev) == first_hash
        ),
        60,
        "the operator back on revision 1's configuration",
    )
    assert ferry.get("synctasks", "orders")["spec"]["performance"]["batchSize"] == 100
    # The revisions say what changed, and the rollback as a rollback.
    lines = ferry_cli("history", "orders").out.splitlines()
    at = lines[0].index("CHANGE-CAUSE")
    causes = [line[at:] for line in lines[1:]]
    assert causes == [
        "created",
        "performance.batchSize: 100 → 500",
        "rollback to r1",
    ], causes
    assert "nothing to do" in ferry_cli("rollback", "orders", "--to-revision", "1").out


def test_pause_and_resume_through_the_plugin_drive_the_worker(
    ferry: Ferry,
    connectors: None,
    ferry_operator: OperatorProcess,
    ferry_cli: Callable[..., Ran],
) -> None:
    ferry.create("synctasks", task("orders"))
    wait_until(lambda: ferry.deployment("orders").spec.replicas == 1, 60, "worker Deployment")
    assert ferry_cli("pause", "orders").code == 0
    wait_until(lambda: ferry.deployment("orders").spec.replicas == 0, 60, "worker scaled to 0")
    wait_until(
        lambda: ferry.get("synctasks", "orders")["status"].get("phase") == "Paused", 60, "Paused"
    )
    status = ferry_cli("status", "orders")
    assert "Phase:        Paused" in status.out and "Paused" in status.out
    assert ferry_cli("resume", "orders").code == 0
    wait_until(lambda: ferry.deployment("orders").spec.replicas == 1, 60, "worker back")


@pytest.fixture
def ferry_cli(ferry_runner: Callable[..., Ran]) -> Callable[..., Ran]:
    """The delivery suite's in-process ``kubectl ferry`` runner; here ``ferry`` is the
    operator suite's fixture."""
    return ferry_runner
