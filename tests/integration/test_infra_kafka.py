"""Smoke test: the test Kafka broker runs transactions, and read_committed hides aborted ones."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

pytestmark = pytest.mark.kafka


def create_topic(bootstrap: str, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    futures[topic].result(timeout=30)


def consume_all(bootstrap: str, topic: str, isolation: str, timeout: float = 20.0) -> list[str]:
    """Read the topic from the start until its (isolation-aware) end offset."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"smoke-{uuid.uuid4().hex}",
            "isolation.level": isolation,
            "enable.auto.commit": False,
        }
    )
    try:
        partition = TopicPartition(topic, 0, 0)
        _, end = consumer.get_watermark_offsets(partition, timeout=10)
        consumer.assign([partition])
        values: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            position = consumer.position([partition])[0].offset
            if position >= end:
                break
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error():
                raise KafkaException(message.error())
            values.append(message.value().decode())
        return values
    finally:
        consumer.close()


def test_read_committed_sees_only_committed_transactions(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    topic = f"{topic_prefix}.tx"
    create_topic(kafka_bootstrap, topic)
    producer = Producer(
        {"bootstrap.servers": kafka_bootstrap, "transactional.id": f"{topic}.producer"}
    )
    producer.init_transactions(30)

    producer.begin_transaction()
    producer.produce(topic, key=b"k", value=b"committed-1")
    producer.produce(topic, key=b"k", value=b"committed-2")
    producer.commit_transaction(30)

    producer.begin_transaction()
    producer.produce(topic, key=b"k", value=b"aborted")
    producer.flush(30)  # the aborted record really reaches the log
    producer.abort_transaction(30)

    producer.begin_transaction()
    producer.produce(topic, key=b"k", value=b"committed-3")
    producer.commit_transaction(30)

    assert consume_all(kafka_bootstrap, topic, "read_committed") == [
        "committed-1",
        "committed-2",
        "committed-3",
    ]
    # read_uncommitted proves the aborted record was written and is only hidden.
    assert "aborted" in consume_all(kafka_bootstrap, topic, "read_uncommitted")
