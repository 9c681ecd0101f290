"""spec.heartbeat and spec.sink.kafka.transactionTopic through the operator on the real API
server: admission refuses bad values naming the field, the fields reach the worker config of
a new revision (and leave it again), and the example applies. What the worker does with them
is proved in tests/integration/runtime/test_heartbeat.py and test_transaction_metadata.py."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from tests.integration.operator.conftest import Ferry, OperatorProcess, task, wait_until

pytestmark = [pytest.mark.kube, pytest.mark.mysql, pytest.mark.kafka]

REPO = Path(__file__).resolve().parents[3]


def _worker_config(ferry: Ferry, revision: str) -> dict[str, Any]:
    def current() -> bool:
        status = ferry.get("synctasks", "orders").get("status") or {}
        return status.get("configRevision") == revision

    wait_until(current, 60, f"orders at {revision}")
    data = ferry.core.read_namespaced_config_map(revision, ferry.ns).data["worker.yaml"]
    loaded: dict[str, Any] = yaml.safe_load(data)
    return loaded


def test_admission_names_the_bad_field(ferry: Ferry) -> None:
    cases = [
        ({"heartbeat": {"table": "ferry_meta.*"}}, "heartbeat.table must be one database.table"),
        ({"heartbeat": {"interval": "0s"}}, "heartbeat.interval must be a duration"),
        (
            {"sink": {"connectorRef": {"name": "kafka"}, "kafka": {"transactionTopic": "a b"}}},
            "sink.kafka.transactionTopic must be a Kafka topic name",
        ),
    ]
    for spec, message in cases:
        with pytest.raises(client.ApiException) as refused:
            ferry.create("synctasks", task("bad", **spec))
        assert refused.value.status == 422 and message in str(refused.value.body), spec


def test_the_fields_reach_the_worker_config(
    ferry: Ferry, connectors: None, ferry_operator: OperatorProcess
) -> None:
    sink = {"connectorRef": {"name": "kafka"}, "kafka": {"transactionTopic": "shop.tx"}}
    created = ferry.create("synctasks", task("orders", sink=sink, heartbeat={"interval": "5s"}))
    assert "heartbeat" in created["spec"], "pruned: the API server holds CRDs without the field"
    worker = _worker_config(ferry, "orders-r1")
    assert worker["heartbeat"] == {"interval": "5s", "table": "ferry_meta.heartbeat"}
    assert worker["sink"]["kafka"]["transactionTopic"] == "shop.tx"

    # Off again: removed from the spec (a merge patch with null), gone from a new revision.
    ferry.patch_spec(
        "synctasks", "orders", {"heartbeat": None, "sink": {"kafka": {"transactionTopic": None}}}
    )
    worker = _worker_config(ferry, "orders-r2")
    assert "heartbeat" not in worker and "transactionTopic" not in worker["sink"]["kafka"]
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
        "the task gone (before the operator stops)",
    )


def test_the_example_applies(testenv: Any, ferry: Ferry) -> None:
    example = REPO / "examples" / "heartbeat-transactions"
    result = subprocess.run(
        [testenv.kubectl, "apply", "-n", ferry.ns, "--validate=strict", "-f", str(example)],
        env={**os.environ, "KUBECONFIG": str(testenv.kubeconfig)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "synctask.ferry.dev/shop-orders created" in result.stdout
    spec = ferry.get("synctasks", "shop-orders")["spec"]
    assert spec["heartbeat"] == {"interval": "10s", "table": "ferry_meta.heartbeat"}
    assert spec["sink"]["kafka"]["transactionTopic"] == "shop.transactions"
