"""A recovery from a purged binlog (onPositionUnavailable: resnapshot) and a keyless table's
snapshot pass started over, as the operator tells
it, on the real API server: the test reports the worker's fields exactly as the worker's
reporter builds them (a real StatusTracker that recorded the recovery, written with
server-side apply as ``ferry-worker``; the worker's side of it runs against a real purge in
tests/integration/runtime/test_worker_source_restart.py) and checks one Warning Event
PositionUnavailableResnapshot per recovery and the Recovering condition while the new
snapshot runs and after it."""

from __future__ import annotations

import time

import pytest
import yaml
from kubernetes import client
from tests.integration.operator.conftest import (
    REPO_ROOT,
    Ferry,
    OperatorProcess,
    task,
    wait_until,
)
from tests.integration.operator.test_health import report, started

from ferry_runtime import reporter
from ferry_runtime.checkpoint import ResnapshotRecord
from ferry_runtime.status import StatusTracker

pytestmark = [pytest.mark.kube, pytest.mark.mysql, pytest.mark.kafka]


def _apply_crds(ferry: Ferry) -> None:
    """This worktree's CRDs again (the shared API server may have been given older ones)."""
    extensions = client.ApiextensionsV1Api(ferry.api)
    for path in sorted((REPO_ROOT / "crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        extensions.patch_custom_resource_definition(
            crd["metadata"]["name"], crd, field_manager="ferry-tests", force=True,
            _content_type="application/apply-patch+yaml",
        )  # fmt: skip


def _worker_report(ferry: Ferry, tracker: StatusTracker) -> None:
    fields = reporter.worker_fields(tracker.view())
    for attempt in range(5):
        try:
            report(ferry, "orders", **fields)
            return
        except client.ApiException as error:
            if "not declared in schema" not in str(error.body) or attempt == 4:
                raise
            _apply_crds(ferry)
            time.sleep(2)


def test_a_resnapshot_is_announced_once_and_shown_as_a_condition(
    ferry: Ferry, connectors: None, ferry_operator: OperatorProcess
) -> None:
    ferry.create("synctasks", task("orders", onPositionUnavailable="resnapshot"))
    started(ferry, "orders")
    tracker = StatusTracker()
    tracker.set_state("Streaming")
    _worker_report(ferry, tracker)
    wait_until(
        lambda: ferry.get("synctasks", "orders")["status"].get("phase") == "Running", 30, "Running"
    )
    assert ferry.condition("synctasks", "orders", "Recovering") == {}  # never recovered

    # The worker finds its binlog purged and snapshots anew.
    began = time.time()
    tracker.record_error("PositionUnavailable", "binlog binlog.000001 is not on the server")
    tracker.record_resnapshot(ResnapshotRecord(began, "binlog.000001:1234"), new=True)
    tracker.set_state("Snapshotting")
    _worker_report(ferry, tracker)
    recovering = wait_until(
        lambda: ferry.condition("synctasks", "orders", "Recovering"), 30, "Recovering"
    )
    assert (recovering["status"], recovering["reason"]) == ("True", "PositionUnavailableResnapshot")
    assert "binlog at binlog.000001:1234 was purged" in recovering["message"]
    (event,) = wait_until(lambda: ferry.events("PositionUnavailableResnapshot"), 30, "the Event")
    assert event.type == "Warning"
    assert "binlog.000001:1234" in event.message and "recovery 1 of this task" in event.message
    status = ferry.get("synctasks", "orders")["status"]
    assert status["counters"]["resnapshots"] == 1
    assert status["lastResnapshotAnnounced"] == status["lastResnapshot"]["time"]

    # The new snapshot finished: Recovering turns False; reports go on, no second Event.
    tracker.record_resnapshot(ResnapshotRecord(began, "binlog.000001:1234", time.time()))
    tracker.set_state("Streaming")
    _worker_report(ferry, tracker)
    wait_until(
        lambda: (
            ferry.condition("synctasks", "orders", "Recovering").get("reason") == "Resnapshotted"
        ),
        30,
        "Resnapshotted",
    )
    assert ferry.condition("synctasks", "orders", "Recovering")["status"] == "False"
    assert ferry.condition("synctasks", "orders")["status"] == "True"  # Ready
    for _ in range(3):
        time.sleep(1)
        _worker_report(ferry, tracker)
    assert len(ferry.events("PositionUnavailableResnapshot")) == 1

    # A second recovery later: announced again, counted 2.
    tracker.record_resnapshot(ResnapshotRecord(began + 5, "binlog.000007:99"), new=True)
    tracker.set_state("Snapshotting")
    _worker_report(ferry, tracker)
    wait_until(
        lambda: len(ferry.events("PositionUnavailableResnapshot")) == 2, 30, "the second Event"
    )
    messages = [e.message for e in ferry.events("PositionUnavailableResnapshot")]
    assert any("binlog.000007:99" in m and "recovery 2 of this task" in m for m in messages)
    wait_until(
        lambda: ferry.condition("synctasks", "orders", "Recovering").get("status") == "True",
        30,
        "Recovering again",
    )
    ferry.custom.delete_namespaced_custom_object(
        "ferry.dev", "v1alpha1", ferry.ns, "synctasks", "orders"
    )
    wait_until(
        lambda: (
            not ferry.custom.list_namespaced_custom_object(
                "ferry.dev", "v1alpha1", ferry.ns, "synctasks"
            )["items"]
        ),
        60,
        "the task deleted",
    )


def test_a_keyless_restart_is_announced_once(
    ferry: Ferry, connectors: None, ferry_operator: OperatorProcess
) -> None:
    ferry.create("synctasks", task("orders"))
    started(ferry, "orders")
    tracker = StatusTracker()
    tracker.set_state("Snapshotting")
    tracker.record_error(
        "KeylessSnapshotRestarted",
        "the snapshot of shop.logs, which has neither a primary key nor a unique key over NOT "
        "NULL columns, was interrupted after 500 rows and starts over in a new consistent read",
        table="shop.logs",
    )
    _worker_report(ferry, tracker)
    (event,) = wait_until(lambda: ferry.events("KeylessSnapshotRestarted"), 30, "the Event")
    assert event.type == "Warning" and "shop.logs" in event.message
    wait_until(
        lambda: ferry.get("synctasks", "orders")["status"].get("lastKeylessRestartAnnounced"),
        30,
        "lastKeylessRestartAnnounced",
    )
    for _ in range(3):  # reports go on: no second Event for the same entry
        time.sleep(1)
        _worker_report(ferry, tracker)
    assert len(ferry.events("KeylessSnapshotRestarted")) == 1
    ferry.custom.delete_namespaced_custom_object(
        "ferry.dev", "v1alpha1", ferry.ns, "synctasks", "orders"
    )
    wait_until(
        lambda: (
            not ferry.custom.list_namespaced_custom_object(
                "ferry.dev", "v1alpha1", ferry.ns, "synctasks"
            )["items"]
        ),
        60,
        "the task deleted",
    )
