"""The operator renders the Kafka producer and topic settings into the worker's config
revision: from a SyncTask's spec.sink.kafka.producer/.topics and its Kafka Connector's
kafka.offsetsTopic, on the real API server; a change to either is a new revision."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from tests.integration.operator.conftest import Ferry, OperatorProcess, task, wait_until

pytestmark = [pytest.mark.kube, pytest.mark.mysql, pytest.mark.kafka]


def worker_config(ferry: Ferry, revision: str) -> dict[str, Any]:
    data = ferry.core.read_namespaced_config_map(revision, ferry.ns).data
    config: dict[str, Any] = yaml.safe_load(data["worker.yaml"])
    return config


def revision_of(ferry: Ferry, name: str) -> str | None:
    status = ferry.get("synctasks", name).get("status") or {}
    revision: str | None = status.get("configRevision")
    return revision


def test_the_settings_reach_the_worker_config_and_a_change_is_a_new_revision(
    ferry: Ferry, connectors: None, ferry_operator: OperatorProcess
) -> None:
    ferry.custom.patch_namespaced_custom_object(
        "ferry.dev",
        "v1alpha1",
        ferry.ns,
        "connectors",
        "kafka",
        {"spec": {"kafka": {"offsetsTopic": {"name": "ops.offsets", "replicationFactor": 1}}}},
    )
    sink = {
        "connectorRef": {"name": "kafka"},
        "kafka": {
            "producer": {"compression": "zstd", "linger": "20ms", "requestTimeout": "45s"},
            "topics": {"partitions": 6, "replicationFactor": 1},
        },
    }
    ferry.create("synctasks", task("orders", sink=sink, paused=True))
    wait_until(lambda: revision_of(ferry, "orders") == "orders-r1", 60, "orders-r1")
    kafka = worker_config(ferry, "orders-r1")["sink"]["kafka"]
    assert kafka["producer"] == {
        "compression.type": "zstd",
        "linger.ms": 20,
        "request.timeout.ms": 45000,
    }
    assert (kafka["topicPartitions"], kafka["topicReplicationFactor"]) == (6, 1)
    assert kafka["offsetsTopic"] == "ops.offsets"
    assert kafka["offsetsTopicReplicationFactor"] == 1
    assert "offsetsTopicPartitions" not in kafka  # unset: the worker's default (1)

    # A producer setting changed on the task: a new revision naming the change.
    ferry.patch_spec(
        "synctasks", "orders", {"sink": {"kafka": {"producer": {"compression": "lz4"}}}}
    )
    wait_until(lambda: revision_of(ferry, "orders") == "orders-r2", 60, "orders-r2")
    assert (
        worker_config(ferry, "orders-r2")["sink"]["kafka"]["producer"]["compression.type"] == "lz4"
    )
    cause = ferry.core.read_namespaced_config_map("orders-r2", ferry.ns).metadata.annotations
    assert "sink.kafka.producer.compression" in cause["ferry.dev/change-cause"], cause

    # The Connector's offsets topic changed: the task's next resync renders it.
    ferry.custom.patch_namespaced_custom_object(
        "ferry.dev",
        "v1alpha1",
        ferry.ns,
        "connectors",
        "kafka",
        {"spec": {"kafka": {"offsetsTopic": {"partitions": 3}}}},
    )
    wait_until(lambda: revision_of(ferry, "orders") == "orders-r3", 60, "orders-r3")
    assert worker_config(ferry, "orders-r3")["sink"]["kafka"]["offsetsTopicPartitions"] == 3
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
        "the task gone before the operator stops",
    )
