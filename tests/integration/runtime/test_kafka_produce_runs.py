"""The exactly-once sink queues its records in librdkafka in runs (sink/_produce.c), against
the real broker: every record arrives once, in the order given, when the local queue fills
mid-run, topics alternate and records partitioned by a column come between; a record
librdkafka refuses fails the delivery and nothing of it is committed. Each case also runs
record by record (the path used when the C module cannot serve), with the same result."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
from tests.integration.runtime.conftest import read_topic

from ferry_runtime import errors
from ferry_runtime.checkpoint import Checkpoint
from ferry_runtime.config import KafkaSink as KafkaSinkConfig
from ferry_runtime.sink import _produce as native_module
from ferry_runtime.sink.kafka import KafkaSink
from ferry_runtime.sink.kafka_records import Record

pytestmark = [pytest.mark.kafka]


def _sink(bootstrap: str, prefix: str, native: bool, **producer: Any) -> KafkaSink:
    config = KafkaSinkConfig(
        bootstrap_servers=bootstrap,
        offsets_topic=f"{prefix}.offsets",
        producer=producer,
        topic_partitions=1,  # one partition: the order read is the order produced
    )
    sink = KafkaSink(config, f"{prefix}-task", exactly_once=True)
    sink.open()
    assert sink._native, "the C module serves confluent-kafka's Producer"
    sink._native = native
    return sink


def _record(topic: str, n: int, part: str | None = None) -> Record:
    return Record(topic, json.dumps({"n": n}).encode(), json.dumps({"n": n}).encode(), part)


def _at(pos: int) -> Checkpoint:
    return Checkpoint(position={"file": "binlog.000001", "pos": pos}).stamped()


@pytest.mark.parametrize("native", [True, False], ids=["runs", "record-by-record"])
def test_records_arrive_once_in_order_through_a_full_queue_two_topics_and_partitioned_ones(
    kafka_bootstrap: str, topic_prefix: str, native: bool
) -> None:
    a, b = f"{topic_prefix}.a", f"{topic_prefix}.b"
    records: list[Record] = []
    for n in range(3_000):  # runs of 40 records a topic; every 97th partitioned by a column
        topic = a if (n // 40) % 2 == 0 else b
        records.append(_record(topic, n, part=f"p{n}" if n % 97 == 0 else None))
    # 100 messages fill librdkafka's local queue: each run of 40 is cut and resumed.
    sink = _sink(kafka_bootstrap, topic_prefix, native, **{"queue.buffering.max.messages": 100})
    try:
        sink.produce(records[:1_500], _at(1))
        sink.produce(records[1_500:], _at(2))
    finally:
        sink.close()
    for topic in (a, b):
        got = [value["n"] for _, value in read_topic(kafka_bootstrap, topic)]
        assert got == [json.loads(r.value)["n"] for r in records if r.topic == topic]


@pytest.mark.parametrize("native", [True, False], ids=["runs", "record-by-record"])
def test_a_record_librdkafka_refuses_fails_the_delivery_and_nothing_of_it_is_committed(
    kafka_bootstrap: str, topic_prefix: str, native: bool
) -> None:
    topic = f"{topic_prefix}.a"
    big = Record(topic, b"big", b"x" * 20_000)
    sink = _sink(kafka_bootstrap, topic_prefix, native, **{"message.max.bytes": 10_000})
    try:
        sink.produce([_record(topic, 1)], _at(1))
        with pytest.raises(errors.WorkerError, match=r"(?i)too large"):
            sink.produce([_record(topic, 2), big, _record(topic, 3)], _at(2))
    finally:
        sink.close()
    assert [value["n"] for _, value in read_topic(kafka_bootstrap, topic)] == [1]


@pytest.mark.parametrize("native", [True, False], ids=["runs", "record-by-record"])
def test_a_fenced_sink_says_fenced_and_closes_without_raising_again(
    kafka_bootstrap: str, topic_prefix: str, native: bool
) -> None:
    """A newer worker of the same task fences this one while it delivers: librdkafka raises
    a fatal error in the background and then refuses every record with the bare code
    _FATAL. The delivery fails as Fenced (the fatal error behind it), which stops the
    worker, and closing the sink does not raise the fatal error again over it (that made
    Fenced a retried internal error, and the two workers fenced each other in turn)."""
    topic = f"{topic_prefix}.a"
    first = _sink(kafka_bootstrap, topic_prefix, native)
    first.produce([_record(topic, 1)], _at(1))
    second = _sink(kafka_bootstrap, topic_prefix, native)  # the same task id: the fence
    producer = first._producer
    assert producer is not None
    producer.begin_transaction()
    first._produce(producer, [_record(topic, 2)])  # its partition's add is refused: fatal
    deadline = time.monotonic() + 30
    while native_module.fatal_error(producer) is None:  # asks, serves no callback
        assert time.monotonic() < deadline, "no fatal error"
        time.sleep(0.05)
    try:
        with pytest.raises(KafkaException) as refused:
            first._produce(producer, [_record(topic, 3)])
        assert refused.value.args[0].code() == KafkaError._FATAL
        error = errors.from_kafka(KafkaSink._fatal(producer, refused.value), "delivering")
        assert (type(error), error.reason) == (errors.FatalError, "Fenced"), error
    finally:
        first.close()  # the fatal error's callback is still pending: not raised here
        second.close()
