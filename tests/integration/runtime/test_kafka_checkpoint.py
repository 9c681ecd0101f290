"""The checkpoint a worker starts from, read from the real Kafka: after the fence (an older
worker's transaction is ended first: aborted, or its commit seen), and to the offsets topic's
end even while another task sharing that topic has a transaction open."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from tests.integration.runtime.conftest import read_topic

from ferry_runtime import checkpoint
from ferry_runtime.checkpoint import Checkpoint
from ferry_runtime.config import KafkaSink as KafkaSinkConfig
from ferry_runtime.sink.kafka import KafkaSink, transactional_id

pytestmark = [pytest.mark.kafka]


def _sink(bootstrap: str, offsets: str, task: str) -> KafkaSink:
    config = KafkaSinkConfig(bootstrap_servers=bootstrap, offsets_topic=offsets)
    return KafkaSink(config, task, exactly_once=True)


def _at(pos: int) -> Checkpoint:
    return Checkpoint(position={"file": "binlog.000001", "pos": pos}).stamped()


def _producer(bootstrap: str, task: str) -> Producer:
    """A transactional producer of ``task`` (its worker's transactional.id), initialised."""
    settings = {"bootstrap.servers": bootstrap, "transactional.id": transactional_id(task)}
    producer = Producer(settings)
    producer.init_transactions(30)
    return producer


def _open_transaction(producer: Producer, records: list[tuple[str, bytes, bytes]]) -> None:
    """Begin a transaction and send ``records`` (topic, key, value) in it; not committed."""
    producer.begin_transaction()
    for topic, key, value in records:
        producer.produce(topic, value, key)
    assert producer.flush(30) == 0


def _committed_worker(bootstrap: str, offsets: str, task: str, data: str, pos: int) -> None:
    """A worker of ``task`` that committed a checkpoint at ``pos``, then went away."""
    sink = _sink(bootstrap, offsets, task)
    sink.open()
    sink.ensure_topic(data)
    sink.produce([], _at(pos))
    sink.close()


def _zombie(bootstrap: str, offsets: str, task: str, data: str) -> Producer:
    """A task whose worker committed a checkpoint at 100, and a zombie of it whose open
    transaction holds a row and the checkpoint after it (at 200)."""
    _committed_worker(bootstrap, offsets, task, data, 100)
    zombie = _producer(bootstrap, task)
    cp = checkpoint.encode(_at(200), task)
    _open_transaction(zombie, [(data, b"k", b'{"zombie": 1}'), (offsets, task.encode(), cp)])
    return zombie


def _checkpoints(bootstrap: str, offsets: str, task: str) -> list[Any]:
    """The positions of ``task``'s committed checkpoints, in order."""
    records = read_topic(bootstrap, offsets)
    return [value["position"]["pos"] for key, value in records if key == task]


def test_an_older_workers_open_transaction_is_aborted_before_the_checkpoint_is_read(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    offsets, data, task = f"{topic_prefix}.offsets", f"{topic_prefix}.data", f"{topic_prefix}-t"
    zombie = _zombie(kafka_bootstrap, offsets, task, data)

    sink = _sink(kafka_bootstrap, offsets, task)
    began = time.monotonic()
    try:
        sink.open()
        found = sink.read_checkpoint()
    finally:
        sink.close()
    # Read after the fence: the zombie's transaction was aborted, so the read neither waits
    # for it (until its transaction timeout, or the read's own) nor sees its checkpoint.
    assert found is not None and found.position == {"file": "binlog.000001", "pos": 100}
    assert time.monotonic() - began < 10
    with pytest.raises(KafkaException) as raised:
        zombie.commit_transaction(30)
    assert raised.value.args[0].code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED)
    assert read_topic(kafka_bootstrap, data) == []
    assert _checkpoints(kafka_bootstrap, offsets, task) == [100]


class _ZombieCommitsFirst(KafkaSink):
    """A sink before whose fence the zombie commits: the last moment an older worker's commit
    can land. A checkpoint read before the fence (or beside it) misses that commit."""

    def __init__(self, config: KafkaSinkConfig, task: str, zombie: Producer) -> None:
        super().__init__(config, task, exactly_once=True)
        self.zombie = zombie

    def _fence(self, producer: Producer) -> None:
        self.zombie.commit_transaction(30)
        super()._fence(producer)


def test_an_older_workers_commit_just_before_the_fence_is_the_checkpoint_read(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    offsets, data, task = f"{topic_prefix}.offsets", f"{topic_prefix}.data", f"{topic_prefix}-t"
    zombie = _zombie(kafka_bootstrap, offsets, task, data)

    config = KafkaSinkConfig(bootstrap_servers=kafka_bootstrap, offsets_topic=offsets)
    sink = _ZombieCommitsFirst(config, task, zombie)
    try:
        sink.open()
        found = sink.read_checkpoint()
    finally:
        sink.close()
    # The zombie's rows are in the topic: the new worker must resume after them, or it would
    # deliver them again.
    assert [value for _, value in read_topic(kafka_bootstrap, data)] == [{"zombie": 1}]
    assert found is not None and found.position == {"file": "binlog.000001", "pos": 200}


def test_another_tasks_open_transaction_does_not_hide_this_tasks_last_checkpoint(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    offsets, data = f"{topic_prefix}.offsets", f"{topic_prefix}.data"
    task, other = f"{topic_prefix}-a", f"{topic_prefix}-b"
    _committed_worker(kafka_bootstrap, offsets, task, data, 100)
    # The other task's worker (same offsets topic) opens a transaction...
    neighbour = _producer(kafka_bootstrap, other)
    own = checkpoint.encode(_at(7), other)
    _open_transaction(neighbour, [(offsets, other.encode(), own)])
    # ...and this task commits a checkpoint after it: beyond the last stable offset.
    _committed_worker(kafka_bootstrap, offsets, task, data, 200)

    ended = threading.Event()

    def commit_later() -> None:
        time.sleep(1.0)
        neighbour.commit_transaction(30)
        ended.set()

    committer = threading.Thread(target=commit_later)
    committer.start()
    sink = _sink(kafka_bootstrap, offsets, task)
    try:
        sink.open()
        found = sink.read_checkpoint()
        read_after_the_commit = ended.is_set()
    finally:
        sink.close()
        committer.join(60)
    # read_committed stops at the other task's transaction: the read waited for it to end,
    # then read this task's checkpoint committed after it (not the one before, whose
    # position would deliver the rows between the two again).
    assert found is not None and found.position == {"file": "binlog.000001", "pos": 200}
    assert read_after_the_commit
    assert _checkpoints(kafka_bootstrap, offsets, task) == [100, 200]
