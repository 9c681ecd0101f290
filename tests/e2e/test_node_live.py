"""Hot reload on the real node: the example task runs as a pod; a patch of source.include,
performance.batchSize and logLevel is a new revision that the same pod applies (its uid and
restart count stay, status.appliedRevision reaches the new revision, DEBUG lines appear in its
log, a table no longer included stops, no change of order_counters is lost or doubled); then a
sink change rolls the pod, exactly once still. About 3 min, most of it the kubelet's
ConfigMap sync period."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from tests.e2e.node import (
    Node,
    Writer,
    example_manifests,
    installed_chart,
    read_topic,
    wait_for,
)
from tests.e2e.test_node import TASK, Release, assert_exactly_once, seed_shop

pytestmark = [pytest.mark.kube, pytest.mark.node, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def release(node: Node, ferry_crds: None) -> Iterator[Release]:
    """The chart, after this tree's CRDs are applied (helm install leaves an existing CRD as
    it is, and the new fields must not be pruned)."""
    suffix = uuid.uuid4().hex[:6]
    namespace = f"e2e-live-{suffix}"
    seed_shop(node)
    node.kubectl("create", "namespace", namespace)
    installed_at = time.monotonic()
    try:
        with installed_chart(node, suffix, namespace) as system:
            yield Release(node, system, namespace, f"e2e.{suffix}", installed_at)
    finally:
        node.kubectl("delete", "namespace", namespace, "--wait=false")


def _pod(release: Release) -> dict[str, Any]:
    found: dict[str, Any] = wait_for("a Ready worker pod", release.worker_pod)
    return found


def _restarts(pod: dict[str, Any]) -> int:
    return sum(c.get("restartCount", 0) for c in pod["status"].get("containerStatuses") or [])


def _status(release: Release) -> dict[str, Any]:
    status: dict[str, Any] = release.task().get("status") or {}  # type: ignore[assignment]
    return status


@pytest.mark.long
def test_live_changes_keep_the_pod_and_a_sink_change_rolls_it(release: Release) -> None:
    node = release.node
    password = node.values["FERRY_MYSQL_PASSWORD"]
    release.kubectl(
        "apply", "-f", "-", stdin=example_manifests(node, release.topic_prefix, password)
    )
    release.kubectl(
        "wait", "--for=condition=Ready", f"synctask/{TASK}", "--timeout=300s", timeout=320
    )
    pod = _pod(release)
    uid, restarts = pod["metadata"]["uid"], _restarts(pod)
    wait_for(
        "the worker to report r1", lambda: _status(release).get("appliedRevision") == f"{TASK}-r1"
    )
    customers = release.topic("customers")

    def customer_ids() -> set[int]:
        group = f"e2e-live-{time.time_ns()}"
        return {r["data"]["id"] for r in read_topic(node.kafka_bootstrap, customers, group)}

    wait_for("the customers snapshot", lambda: 1 in customer_ids())
    with Writer(node, "shop", first_new_id=1000):
        time.sleep(3)
        release.kubectl(
            "patch", "synctask", TASK, "--type", "merge", "-p",
            '{"spec": {"source": {"include": ["shop.order_*"]},'
            ' "performance": {"batchSize": 50}, "logLevel": "DEBUG"}}',
        )  # fmt: skip
        wait_for("revision r2", lambda: _status(release).get("configRevision") == f"{TASK}-r2")
        # The kubelet updates the mounted ConfigMap within its sync period (~1 min).
        wait_for(
            "the worker to apply r2 live",
            lambda: _status(release).get("appliedRevision") == f"{TASK}-r2",
            timeout=150,
        )
        node.sql("INSERT INTO shop.customers VALUES (2, 'Grace', '5500000000000004')")
        time.sleep(3)
    same = _pod(release)
    assert same["metadata"]["uid"] == uid, "the worker pod was replaced"
    assert _restarts(same) == restarts, "the worker container restarted"
    logs = release.kubectl("logs", same["metadata"]["name"])
    # The snapshot's own lines: its start, and the summary with rows, duration and rate.
    assert "snapshot started: 3 table(s) to read" in logs
    assert re.search(r"snapshot finished: \d+ rows in [\d.]+s \(\d+ rows/s\)", logs), logs[:3000]
    assert f"revision {TASK}-r2 applied live" in logs
    switched = logs.index(f"log level DEBUG, format text (revision {TASK}-r2)")
    assert " DEBUG " in logs[switched:], "no DEBUG line after logLevel: DEBUG"
    assert " DEBUG " not in logs[:switched], "DEBUG lines before the change"
    assert_exactly_once(release)
    assert 2 not in customer_ids(), "shop.customers is no longer included"

    # A sink setting is not live: a new pod, still exactly once.
    with Writer(node, "shop", first_new_id=5000):
        time.sleep(2)
        release.kubectl(
            "patch", "synctask", TASK, "--type", "merge", "-p",
            '{"spec": {"sink": {"kafka": {"producer": {"linger": "30ms"}}}}}',
        )  # fmt: skip
        rolled = wait_for(
            "a new worker pod",
            lambda: (p := release.worker_pod()) and p["metadata"]["uid"] != uid and p,
            timeout=180,
        )
        time.sleep(3)
    assert rolled["metadata"]["uid"] != uid
    wait_for(
        "the new pod to report r3",
        lambda: _status(release).get("appliedRevision") == f"{TASK}-r3",
    )
    assert_exactly_once(release)
