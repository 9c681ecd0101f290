"""Admission of the Kafka producer and topic settings (spec.sink.kafka.producer and .topics,
the Connector's kafka.offsetsTopic): the API server refuses bad values naming the field,
refuses the settings Ferry keeps fixed (acks, idempotence) as unknown fields, and fills in
the offsets topic's default name."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

pytestmark = pytest.mark.kube

GROUP, VERSION = "ferry.dev", "v1alpha1"
PRODUCER = {
    "compression": "zstd",
    "linger": "20ms",
    "batchSize": 262144,
    "maxMessageBytes": 2000000,
    "requestTimeout": "45s",
}
TASK: dict[str, Any] = {
    "apiVersion": f"{GROUP}/{VERSION}",
    "kind": "SyncTask",
    "metadata": {"name": "orders"},
    "spec": {
        "source": {"connectorRef": {"name": "shop-db"}},
        "sink": {
            "connectorRef": {"name": "events"},
            "kafka": {"producer": PRODUCER, "topics": {"partitions": 6, "replicationFactor": 3}},
        },
    },
}
CONNECTOR: dict[str, Any] = {
    "apiVersion": f"{GROUP}/{VERSION}",
    "kind": "Connector",
    "metadata": {"name": "events"},
    "spec": {
        "type": "kafka",
        "kafka": {
            "bootstrapServers": "kafka:9092",
            "offsetsTopic": {"name": "ops.ferry-offsets", "partitions": 3, "replicationFactor": 3},
        },
    },
}


def _create(custom: client.CustomObjectsApi, namespace: str, obj: dict[str, Any]) -> Any:
    plural = "synctasks" if obj["kind"] == "SyncTask" else "connectors"
    return custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, plural, obj, field_validation="Strict"
    )


def _producer(**values: Any) -> dict[str, Any]:
    task = copy.deepcopy(TASK)
    task["spec"]["sink"]["kafka"]["producer"].update(values)
    return task


def _topics(**values: Any) -> dict[str, Any]:
    task = copy.deepcopy(TASK)
    task["spec"]["sink"]["kafka"]["topics"].update(values)
    return task


def _offsets(**values: Any) -> dict[str, Any]:
    connector = copy.deepcopy(CONNECTOR)
    connector["spec"]["kafka"]["offsetsTopic"].update(values)
    return connector


INVALID = [
    ("acks", _producer(acks="1"), ['unknown field "spec.sink.kafka.producer.acks"']),
    (
        "idempotence",
        _producer(enableIdempotence=False),
        ['unknown field "spec.sink.kafka.producer.enableIdempotence"'],
    ),
    (
        "compression",
        _producer(compression="brotli"),
        ["spec.sink.kafka.producer.compression", "Unsupported value"],
    ),
    ("linger", _producer(linger="soon"), ["sink.kafka.producer.linger must be a duration"]),
    ("linger-too-long", _producer(linger="1h"), ["from 0ms to 900s"]),
    (
        "request-timeout",
        _producer(requestTimeout="0s"),
        ["sink.kafka.producer.requestTimeout must be a duration greater than zero"],
    ),
    ("batch-size", _producer(batchSize=0), ["spec.sink.kafka.producer.batchSize"]),
    (
        "max-message-bytes",
        _producer(maxMessageBytes=10),
        ["spec.sink.kafka.producer.maxMessageBytes", "greater than or equal to 1000"],
    ),
    ("partitions", _topics(partitions=0), ["spec.sink.kafka.topics.partitions"]),
    (
        "replication-factor",
        _topics(replicationFactor=0),
        ["spec.sink.kafka.topics.replicationFactor"],
    ),
    (
        "offsets-topic-name",
        _offsets(name="ferry offsets"),
        ["kafka.offsetsTopic.name must be a Kafka topic name"],
    ),
    (
        "offsets-topic-replicas",
        _offsets(replicationFactor=0),
        ["spec.kafka.offsetsTopic.replicationFactor"],
    ),
]


@pytest.mark.parametrize(("case", "obj", "expected"), INVALID, ids=[c[0] for c in INVALID])
def test_bad_kafka_settings_are_refused_naming_the_field(
    custom: client.CustomObjectsApi,
    namespace: str,
    case: str,
    obj: dict[str, Any],
    expected: list[str],
) -> None:
    with pytest.raises(ApiException) as refused:
        _create(custom, namespace, obj)
    assert refused.value.status in (400, 422), refused.value
    message = json.loads(refused.value.body)["message"]
    for text in expected:
        assert text in message, f"{text!r} not in {message}"


def test_the_settings_are_accepted_and_kept(
    custom: client.CustomObjectsApi, namespace: str
) -> None:
    task = _create(custom, namespace, copy.deepcopy(TASK))
    assert task["spec"]["sink"]["kafka"]["producer"] == PRODUCER
    assert task["spec"]["sink"]["kafka"]["topics"] == {"partitions": 6, "replicationFactor": 3}
    connector = _create(custom, namespace, copy.deepcopy(CONNECTOR))
    assert connector["spec"]["kafka"]["offsetsTopic"]["name"] == "ops.ferry-offsets"


def test_the_offsets_topic_name_defaults_to_ferry_offsets(
    custom: client.CustomObjectsApi, namespace: str
) -> None:
    connector = _offsets(partitions=2)
    del connector["spec"]["kafka"]["offsetsTopic"]["name"]
    created = _create(custom, namespace, connector)
    assert created["spec"]["kafka"]["offsetsTopic"] == {
        "name": "ferry.offsets",
        "partitions": 2,
        "replicationFactor": 3,
    }
