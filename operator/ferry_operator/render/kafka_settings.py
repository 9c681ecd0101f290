"""Kafka producer and topic settings: from the SyncTask's ``sink.kafka.producer`` and
``sink.kafka.topics`` and the Connector's ``kafka.offsetsTopic`` to the worker config's
``producer`` (librdkafka names), ``topic*`` and ``offsetsTopic*`` keys.

Pure. A setting left unset renders nothing, so a task that sets none renders exactly the
config it rendered before these settings existed (no new revision, no restart).
"""

from __future__ import annotations

from typing import Any

from ferry_operator.api.connector import KafkaEndpoint
from ferry_operator.api.synctask import KafkaSinkSpec
from ferry_runtime.config import parse_duration

__all__ = ["producer_settings", "worker_settings"]


def _millis(duration: str) -> int:
    return round(parse_duration(duration).total_seconds() * 1000)


def producer_settings(sink: KafkaSinkSpec) -> dict[str, str | int]:
    """spec.sink.kafka.producer as librdkafka settings (only those set)."""
    producer = sink.producer
    if producer is None:
        return {}
    out: dict[str, str | int] = {}
    if producer.compression is not None:
        out["compression.type"] = producer.compression
    if producer.linger is not None:
        out["linger.ms"] = _millis(producer.linger)
    if producer.batch_size is not None:
        out["batch.size"] = producer.batch_size
    if producer.max_message_bytes is not None:
        out["message.max.bytes"] = producer.max_message_bytes
    if producer.request_timeout is not None:
        out["request.timeout.ms"] = _millis(producer.request_timeout)
    return out


def worker_settings(endpoint: KafkaEndpoint, sink: KafkaSinkSpec) -> dict[str, Any]:
    """The worker config's Kafka keys these settings fill (camelCase, only those set)."""
    out: dict[str, Any] = {}
    producer = producer_settings(sink)
    if producer:
        out["producer"] = producer
    if sink.topics is not None:
        if sink.topics.partitions is not None:
            out["topicPartitions"] = sink.topics.partitions
        if sink.topics.replication_factor is not None:
            out["topicReplicationFactor"] = sink.topics.replication_factor
    offsets = endpoint.offsets_topic
    if offsets is not None:
        out["offsetsTopic"] = offsets.name
        if offsets.partitions is not None:
            out["offsetsTopicPartitions"] = offsets.partitions
        if offsets.replication_factor is not None:
            out["offsetsTopicReplicationFactor"] = offsets.replication_factor
    return out
