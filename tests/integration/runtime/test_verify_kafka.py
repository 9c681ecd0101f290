"""spec.verifyRequest with a Kafka sink, on the real MariaDB and Kafka: the topic's latest
record per key (read_committed, from the beginning) matches the source after a clean run; a
bogus record produced to the topic (a changed row, a delete the source never made, a key the
source does not have) is found key by key, and writes during the check of a Debezium-format
topic are no drift."""

from __future__ import annotations

import threading
import time
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer
from tests.integration.runtime.conftest import Pipeline
from tests.support import wait_until

pytestmark = [pytest.mark.mysql, pytest.mark.kafka]


def _verify(pipeline: Pipeline, nonce: str, fmt: str = "maxwell") -> dict[str, Any]:
    worker = pipeline.run(
        sink=_sink(pipeline, fmt), verifyRequest={"nonce": nonce, "chunkSize": 250}
    )

    def done() -> Any:
        found = worker.tracker.view()["verification"]
        return found if found and found["nonce"] == nonce and found["state"] != "Running" else None

    try:
        wait_until(done, 60, f"verification {nonce}")
    except AssertionError:
        view = worker.tracker.view()
        raise AssertionError({k: view[k] for k in ("verification", "lag", "position")}) from None
    result: dict[str, Any] = done()
    assert worker.stop() == 0
    return result


def _sink(pipeline: Pipeline, fmt: str) -> dict[str, Any]:
    sink: dict[str, Any] = pipeline.config()["sink"]
    sink["kafka"]["format"] = fmt
    return sink


def _produce(pipeline: Pipeline, records: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    """Records written to the table's topic behind Ferry's back (not in a transaction)."""
    producer = Producer({"bootstrap.servers": pipeline.bootstrap})
    topic = f"{pipeline.topic_prefix}.{pipeline.database}.items"
    for key, value in records:
        producer.produce(topic, key=orjson.dumps(key), value=orjson.dumps(value))
    assert producer.flush(10) == 0


def _maxwell(pipeline: Pipeline, kind: str, row: dict[str, Any]) -> tuple[Any, Any]:
    key = {"database": pipeline.database, "table": "items", "pk.id": row["id"]}
    value = {
        "database": pipeline.database, "table": "items", "type": kind, "ts": 0,
        "position": "x:4", "primary_key": [row["id"]], "data": row,
    }  # fmt: skip
    return key, value


def test_a_tampered_or_missing_record_is_found_and_a_clean_run_has_none(
    pipeline: Pipeline,
) -> None:
    sql, items = pipeline.sql, f"{pipeline.db}.items"
    sql(f"CREATE TABLE {items} (id int PRIMARY KEY, name varchar(20), price decimal(8,2))")
    sql(
        f"INSERT INTO {items} VALUES (%s, %s, %s)",
        [(i, f"n{i}", f"{i}.5") for i in range(1, 1001)],
        many=True,
    )
    clean = _verify(pipeline, "clean")
    assert clean["state"] == "Completed", clean
    assert (clean["mismatchedRows"], clean["rows"], clean["chunks"]) == (0, 1000, 5)

    _produce(
        pipeline,
        [
            _maxwell(pipeline, "update", {"id": 10, "name": "bogus", "price": "10.50"}),
            _maxwell(pipeline, "delete", {"id": 600, "name": "n600", "price": "600.50"}),
            _maxwell(pipeline, "insert", {"id": 5000, "name": "ghost", "price": "1.00"}),
        ],
    )
    found = _verify(pipeline, "tampered")
    assert found["mismatchedRows"] == 3, found
    assert sorted(k["key"] for k in found["sampleKeys"]) == ["[10]", "[5000]", "[600]"]

    # The source changes while nothing is checked: the topic follows, nothing is drift.
    sql(f"UPDATE {items} SET name = 'fixed' WHERE id IN (10, 600)")
    sql(f"DELETE FROM {items} WHERE id > 990")
    sql(f"INSERT INTO {items} VALUES (5000, 'ghost', 1.00)")
    assert _verify(pipeline, "fixed")["mismatchedRows"] == 0


def test_writes_during_a_debezium_topic_check_are_no_drift(pipeline: Pipeline) -> None:
    sql, items = pipeline.sql, f"{pipeline.db}.items"
    sql(f"CREATE TABLE {items} (id int PRIMARY KEY, qty int)")
    sql(f"INSERT INTO {items} VALUES (%s, 0)", [(i,) for i in range(1, 3001)], many=True)
    done = threading.Event()
    count = [0]

    def write() -> None:
        while not done.is_set():
            n = count[0]
            sql(
                f"UPDATE {items} SET qty = qty + 1 WHERE id IN (%s, %s)",
                (1 + n % 3, 1 + (n * 613) % 3000),
            )
            if n % 5 == 0:
                sql(f"INSERT INTO {items} VALUES (%s, 0)", (3001 + n,))
            if n % 7 == 0:
                sql(f"DELETE FROM {items} WHERE id = %s", (3001 + n - 5,))
            count[0] += 1
            time.sleep(0.005)  # a busy table, not a flood the worker can't keep up with

    worker = pipeline.run(sink=_sink(pipeline, "debezium"))  # the other format
    pipeline.wait_streaming(worker)
    assert worker.stop() == 0
    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        time.sleep(1)
        found = _verify(pipeline, "busy", "debezium")
    finally:
        done.set()
        writer.join(10)
    assert count[0] > 200, count
    assert found["state"] == "Completed", found
    assert found["mismatchedRows"] == 0, found
