"""The operator acts on watch events, not on a poll: with the safety-net resync pushed out to
10 minutes, an idle task costs no API request, and a Deployment deleted behind the operator's
back, a worker pod that cannot pull its image, a Connector change and a worker that stops
reporting are each acted on within seconds (the last one at its heartbeat deadline)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest
from kubernetes import client
from tests.integration.operator.conftest import (
    Ferry,
    OperatorProcess,
    task,
    wait_until,
)
from tests.integration.operator.test_health import report
from tests.integration.operator.test_steady_state import at_revision, scrape, total

pytestmark = [pytest.mark.kube, pytest.mark.mysql, pytest.mark.kafka]

NOWHERE = {"worker": {"nodeSelector": {"ferry.dev/test": "nowhere"}}}  # a pod that stays Pending


def condition(ferry: Ferry, name: str, kind: str) -> dict[str, Any]:
    status = ferry.get("synctasks", name).get("status") or {}
    found = [c for c in status.get("conditions") or [] if c.get("type") == kind]
    return found[0] if found else {}


def deployment_uid(ferry: Ferry, name: str) -> str | None:
    try:
        return str(ferry.deployment(name).metadata.uid)
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise


@pytest.mark.long
def test_idle_costs_nothing_and_changes_are_acted_on_at_once(
    ferry: Ferry, connectors: None, event_operator: OperatorProcess, port: int
) -> None:
    ferry.create("synctasks", task("idle", **NOWHERE))
    wait_until(partial(at_revision, ferry, "idle", "idle-r1"), 90, "idle at r1")
    wait_until(lambda: deployment_uid(ferry, "idle"), 30, "idle's Deployment")
    wait_until(
        lambda: condition(ferry, "idle", "Stalled").get("reason") == "Unschedulable",
        60,
        "the Pending pod seen through the pod watch",
    )
    wait_until(  # kopf is done with the creation (a retry of it would be a reconcile)
        lambda: (
            "ferry.dev/last-handled-configuration"
            in (ferry.get("synctasks", "idle")["metadata"].get("annotations") or {})
        ),
        60,
        "kopf's diff-base annotation",
    )
    time.sleep(3)  # the last status write and its watch event

    # --- idle: no request at all in the window (the one below is the scrape's own LIST)
    before = scrape(port)
    time.sleep(10)
    after = scrape(port)
    requests = total(after, "ferry_operator_api_requests_total") - total(
        before, "ferry_operator_api_requests_total"
    )
    reconciles = total(after, "ferry_operator_reconciles_total") - total(
        before, "ferry_operator_reconciles_total"
    )
    assert requests - 1 == 0, event_operator.log()[-3000:]
    assert reconciles == 0

    # --- a Deployment deleted behind the operator's back comes back (the watch, not a poll)
    old = deployment_uid(ferry, "idle")
    ferry.apps.delete_namespaced_deployment("idle-worker", ferry.ns)
    deleted_at = time.monotonic()
    wait_until(lambda: deployment_uid(ferry, "idle") not in (None, old), 30, "re-created")
    assert time.monotonic() - deleted_at < 30

    # --- a worker that reports, then goes silent: Running, then Stalled at its deadline
    report(ferry, "idle", workerState="Streaming", lag={"seconds": 1.0})
    wait_until(lambda: condition(ferry, "idle", "Ready").get("status") == "True", 30, "Ready=True")
    silent_at = datetime.now(UTC)
    wait_until(lambda: condition(ferry, "idle", "Ready").get("status") == "False", 60, "noticed")
    waited = (datetime.now(UTC) - silent_at).total_seconds()
    assert 20 < waited < 50, waited  # the 30 s heartbeat deadline, not a 600 s resync
    assert condition(ferry, "idle", "Stalled").get("status") == "True"


def test_pod_trouble_and_connector_change_reach_the_task(
    ferry: Ferry, connectors: None, event_operator: OperatorProcess, kafka_bootstrap: str
) -> None:
    # The node cannot pull the default worker image: the pod's watch events carry it.
    ferry.create("synctasks", task("pulls"))
    wait_until(
        lambda: condition(ferry, "pulls", "Stalled").get("reason") == "ImagePullBackOff",
        90,
        "ImagePullBackOff from the pod watch",
    )
    pod = (ferry.get("synctasks", "pulls").get("status") or {}).get("workerPod") or {}
    assert pod.get("reason") == "ImagePullBackOff"

    # A Connector change wakes the tasks that use it: a new revision, no resync needed.
    doubled = f"{kafka_bootstrap},{kafka_bootstrap}"
    ferry.patch_spec("connectors", "kafka", {"kafka": {"bootstrapServers": doubled}})
    wait_until(partial(at_revision, ferry, "pulls", "pulls-r2"), 60, "r2 after the Connector")
    configmap: Any = ferry.core.read_namespaced_config_map("pulls-r2", ferry.ns)
    assert configmap.metadata.annotations["ferry.dev/change-cause"] == "a Connector changed"
