"""The Kafka producer and topic settings as the renderer writes them into the worker config,
and the worker config's refusal of the settings Ferry keeps fixed."""

from __future__ import annotations

from typing import Any

import pytest

from ferry_operator.api.connector import Connector
from ferry_operator.api.synctask import SyncTask
from ferry_operator.render.worker_config import config_hash, render_worker_config
from ferry_runtime import config as config_module
from ferry_runtime.sink.kafka import KafkaSink


def _render(sink_kafka: dict[str, Any], kafka: dict[str, Any] | None = None) -> Any:
    connectors = {
        "db": Connector.model_validate(
            {
                "metadata": {"name": "db", "namespace": "ns"},
                "spec": {
                    "type": "mysql",
                    "mysql": {
                        "host": "db",
                        "user": "u",
                        "passwordSecretRef": {"name": "db", "key": "password"},
                    },
                },
            }
        ),
        "k": Connector.model_validate(
            {
                "metadata": {"name": "k", "namespace": "ns"},
                "spec": {"type": "kafka", "kafka": {"bootstrapServers": "k:9092", **(kafka or {})}},
            }
        ),
    }
    task = SyncTask.model_validate(
        {
            "metadata": {"name": "t", "namespace": "ns", "uid": "u1"},
            "spec": {
                "source": {"connectorRef": {"name": "db"}},
                "sink": {"connectorRef": {"name": "k"}, "kafka": sink_kafka},
            },
        }
    )
    return render_worker_config(task, connectors)


def test_producer_fields_render_as_librdkafka_settings() -> None:
    config = _render(
        {
            "producer": {
                "compression": "zstd",
                "linger": "1.5s",
                "batchSize": 65536,
                "maxMessageBytes": 2000000,
                "requestTimeout": "45s",
            },
            "topics": {"partitions": 6, "replicationFactor": 3},
        },
        {"offsetsTopic": {"name": "ops.offsets", "partitions": 3, "replicationFactor": 2}},
    )
    kafka = config.sink.kafka
    assert kafka.producer == {
        "compression.type": "zstd",
        "linger.ms": 1500,
        "batch.size": 65536,
        "message.max.bytes": 2000000,
        "request.timeout.ms": 45000,
    }
    assert (kafka.topic_partitions, kafka.topic_replication_factor) == (6, 3)
    assert kafka.offsets_topic == "ops.offsets"
    assert (kafka.offsets_topic_partitions, kafka.offsets_topic_replication_factor) == (3, 2)
    assert "producer" not in config.to_yaml().split("sink:")[0]  # only under sink.kafka


def test_no_settings_render_the_config_as_before() -> None:
    # A task without them keeps its config hash: upgrading the operator rolls no worker.
    plain = _render({"topic": "a.{table}"})
    empty = _render({"topic": "a.{table}", "producer": {}, "topics": {}})
    assert config_hash(plain) == config_hash(empty)
    text = plain.to_yaml()
    assert "producer: {}" in text and "offsetsTopic: ferry.offsets" in text
    assert "Partitions" not in text and "ReplicationFactor" not in text


def test_new_topics_follow_the_settings() -> None:
    config = _render(
        {
            "producer": {"maxMessageBytes": 3000000},
            "topics": {"partitions": 4, "replicationFactor": 1},
        },
        {"offsetsTopic": {"name": "cp", "partitions": 2, "replicationFactor": 1}},
    )
    assert config.sink.kafka is not None
    sink = KafkaSink(config.sink.kafka, "task", exactly_once=True)
    data = sink.new_topic("d")
    assert (data.num_partitions, data.replication_factor) == (4, 1)
    assert data.config == {"max.message.bytes": "3000000"}
    offsets = sink.new_topic("cp", compacted=True)
    assert (offsets.num_partitions, offsets.replication_factor) == (2, 1)
    assert offsets.config == {"cleanup.policy": "compact"}
    default = KafkaSink(_render({}).sink.kafka, "task", exactly_once=True)  # type: ignore[arg-type]
    assert (default.new_topic("d").num_partitions, default.new_topic("d").replication_factor) == (
        -1,
        -1,
    )
    assert default.new_topic("o", compacted=True).num_partitions == 1


def test_exactly_once_settings_win_over_any_producer_setting() -> None:
    config = _render({"producer": {"compression": "lz4", "linger": "0ms"}})
    assert config.sink.kafka is not None
    settings = KafkaSink(config.sink.kafka, "task", exactly_once=True).producer_settings()
    assert settings["acks"] == "all" and settings["enable.idempotence"] is True
    assert settings["transactional.id"] == "ferry-task"
    assert (settings["compression.type"], settings["linger.ms"]) == ("lz4", 0)


@pytest.mark.parametrize("key", ["acks", "enable.idempotence", "transactional.id"])
def test_the_worker_config_refuses_fixed_producer_settings(key: str) -> None:
    data = _render({}).model_dump(mode="json", by_alias=True, exclude_none=True)
    data["sink"]["kafka"]["producer"] = {key: "x", "linger.ms": 5}
    with pytest.raises(config_module.ConfigError, match=rf"sink\.kafka: .*{key} cannot be set"):
        config_module.parse(data)
