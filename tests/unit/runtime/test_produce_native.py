"""sink/_produce.c serves only a live confluent-kafka Producer, whose librdkafka handle it
checks before use; anything else is refused with a reason and the sink produces record by
record. (Delivery through it, against the broker: tests/integration/runtime/
test_kafka_produce_runs.py.)"""

from __future__ import annotations

import logging

import pytest
from confluent_kafka import Consumer, Producer

from ferry_runtime.sink import _produce as native
from ferry_runtime.sink.kafka import KafkaSink

# No broker is contacted: a client connects on its first request, and none is made.
NOWHERE = {"bootstrap.servers": "127.0.0.1:9"}


def test_a_producer_is_served() -> None:
    native.handle(Producer(NOWHERE))


@pytest.mark.parametrize("thing", ["object", "consumer"])
def test_anything_but_a_producer_is_refused(thing: str) -> None:
    other = object() if thing == "object" else Consumer({**NOWHERE, "group.id": "g"})
    with pytest.raises(TypeError, match=r"not a confluent_kafka\.Producer"):
        native.handle(other)
    with pytest.raises(TypeError):
        native.produce(other, [], 0)


def test_a_closed_producer_is_refused_and_the_sink_falls_back_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    producer = Producer(NOWHERE)
    producer.close()
    with pytest.raises(RuntimeError, match="closed"):
        native.produce(producer, [], 0)
    with caplog.at_level(logging.WARNING, "ferry.sink.kafka"):
        assert not KafkaSink._native_serves(producer)
    assert "producing record by record" in caplog.text


def test_records_must_be_record_tuples_of_bytes() -> None:
    producer = Producer(NOWHERE)
    with pytest.raises(TypeError, match="Record tuples"):
        native.produce(producer, [("topic", b"k")], 0)
    with pytest.raises(TypeError, match="bytes or None"):
        native.produce(producer, [("topic", "text key", b"v", None)], 0)
