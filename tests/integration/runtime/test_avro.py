"""format: avro against the real MariaDB, Kafka and schema registry (Apicurio's
Confluent-compatible API): records decode with the schema the registry serves for their id,
the type matrix decodes to the source's values, DDL registers new versions, a schema the
registry refuses stops the worker before anything is written with it, and the record-name
subject strategy."""

from __future__ import annotations

import io
import json
import re
import struct
import time
import urllib.request
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import fastavro
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from tests.integration.runtime.conftest import Pipeline, read_topic
from tests.integration.runtime.test_types_roundtrip import COLUMNS, NULLS, ROWS, SQL_VALUES

pytestmark = [pytest.mark.mysql, pytest.mark.kafka]


USER_ENV, PASSWORD_ENV = "FERRY_TEST_REGISTRY_USER", "FERRY_TEST_REGISTRY_PASSWORD"


class Registry:
    """A reader of the registry, as a consumer uses it: schemas by id, subjects' versions."""

    def __init__(self, env: Any) -> None:
        self.url, self.headers = env.url, env.headers
        self._parsed: dict[int, Any] = {}

    def get(self, path: str) -> Any:
        request = urllib.request.Request(self.url + path, headers=self.headers)
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def put(self, path: str, body: dict[str, Any]) -> Any:
        request = urllib.request.Request(
            self.url + path,
            json.dumps(body).encode(),
            {"Content-Type": "application/vnd.schemaregistry.v1+json", **self.headers},
            method="PUT",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def decode(self, raw: bytes) -> tuple[int, Any]:
        """(schema id, datum) of a Confluent wire-format message, its schema fetched by id."""
        assert raw[0] == 0, f"magic byte {raw[0]}"
        (schema_id,) = struct.unpack(">I", raw[1:5])
        if schema_id not in self._parsed:
            text = self.get(f"/schemas/ids/{schema_id}")["schema"]
            self._parsed[schema_id] = fastavro.parse_schema(json.loads(text))
        return schema_id, fastavro.schemaless_reader(io.BytesIO(raw[5:]), self._parsed[schema_id])

    def versions(self, subject: str) -> list[int]:
        return list(self.get(f"/subjects/{subject}/versions"))

    def version_id(self, subject: str, version: int) -> int:
        return int(self.get(f"/subjects/{subject}/versions/{version}")["id"])


def raw_records(bootstrap: str, topic: str) -> list[tuple[bytes, bytes]]:
    """Every committed record of ``topic`` as raw (key, value) bytes."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"avro-reader-{time.monotonic_ns()}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        if metadata.topics[topic].error is not None:
            return []
        partitions = sorted(metadata.topics[topic].partitions)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        pending, out = set(partitions), []
        while pending:
            message = consumer.poll(15)
            assert message is not None, f"no EOF from {topic}"
            error = message.error()
            if error is not None:
                assert error.code() == KafkaError._PARTITION_EOF, error
                pending.discard(message.partition())
                continue
            out.append((message.key(), message.value()))
        return out
    finally:
        consumer.close()


@pytest.fixture
def registry(schema_registry: Any, monkeypatch: pytest.MonkeyPatch) -> Registry:
    """The registry as a consumer reads it; the workers' credentials in USER_ENV and
    PASSWORD_ENV (the operator fills them from the Connector's Secret)."""
    monkeypatch.setenv(USER_ENV, schema_registry.username)
    monkeypatch.setenv(PASSWORD_ENV, schema_registry.password)
    return Registry(schema_registry)


def avro_config(pipeline: Pipeline, registry: Registry, **avro: Any) -> dict[str, Any]:
    settings = {"url": registry.url, "usernameEnv": USER_ENV, "passwordEnv": PASSWORD_ENV}
    kafka: dict[str, Any] = {"format": "avro", "schemaRegistry": settings}
    if avro:
        kafka["avro"] = avro
    return {
        "sink": pipeline.config()["sink"] | {"kafka": pipeline.config()["sink"]["kafka"] | kafka}
    }


def decoded(pipeline: Pipeline, registry: Registry, table: str) -> list[tuple[int, Any, int, Any]]:
    """(key id, key, value id, value) of every record of ``table``'s topic."""
    topic = f"{pipeline.topic_prefix}.{pipeline.database}.{table}"
    out = []
    for key, value in raw_records(pipeline.bootstrap, topic):
        key_id, key_datum = registry.decode(key)
        value_id, value_datum = registry.decode(value)
        out.append((key_id, key_datum, value_id, value_datum))
    return out


# ---------------------------------------------------------------- the type matrix


def _micros(text: str) -> int:
    sign = -1 if text.startswith("-") else 1
    clock, _, fraction = text.lstrip("-").partition(".")
    h, m, s = (int(x) for x in clock.split(":"))
    return sign * (((h * 60 + m) * 60 + s) * 1_000_000 + int((fraction + "000000")[:6]))


EXPECTED: dict[str, Any] = {  # column → JSON value (test_types_roundtrip) → decoded Avro value
    "biu": Decimal,
    "b64": Decimal,
    "de": Decimal,
    "d": date.fromisoformat,
    "t0": _micros,
    "t6": _micros,
    "dt0": datetime.fromisoformat,
    "dt3": datetime.fromisoformat,
    "dt6": datetime.fromisoformat,
    "ts0": lambda v: datetime.fromisoformat(v).replace(tzinfo=UTC),
    "ts6": lambda v: datetime.fromisoformat(v).replace(tzinfo=UTC),
    "bn": __import__("base64").b64decode,
    "vb": __import__("base64").b64decode,
    "bl": __import__("base64").b64decode,
    "js": lambda v: json.dumps(v, separators=(",", ":"), ensure_ascii=False),
}


def expected(row: dict[str, Any]) -> dict[str, Any]:
    return {
        column: None if value is None else EXPECTED.get(column, lambda v: v)(value)
        for column, value in row.items()
    }


def test_type_matrix_round_trips_through_the_registry(
    pipeline: Pipeline, registry: Registry
) -> None:
    sql, db = pipeline.sql, pipeline.db
    sql("SET SESSION time_zone = '+00:00'")
    sql(f"CREATE TABLE {db}.matrix (id int PRIMARY KEY, {COLUMNS})")
    for index, values in enumerate(SQL_VALUES):
        sql(f"INSERT INTO {db}.matrix VALUES {values}", (index + 1,))
    worker = pipeline.run(**avro_config(pipeline, registry))
    pipeline.wait_streaming(worker)  # the snapshot's rows (op r) are delivered
    for index, values in enumerate(SQL_VALUES):  # the same through the binlog (op c, then d)
        sql(f"INSERT INTO {db}.matrix VALUES {values}", (index + 101,))
    sql(f"DELETE FROM {db}.matrix WHERE id < 100")
    records = pipeline.wait_until(
        lambda: (r := decoded(pipeline, registry, "matrix")) and len(r) >= 9 and r, 60, "9"
    )
    subject = f"{pipeline.topic_prefix}.{pipeline.database}.matrix"
    (key_id,) = {r[0] for r in records}
    (value_id,) = {r[2] for r in records}
    assert key_id == registry.version_id(f"{subject}-key", 1)
    assert value_id == registry.version_id(f"{subject}-value", 1)
    by_op: dict[str, dict[int, dict[str, Any]]] = {}
    for _, key, _, value in records:
        row = dict(value["before"] if value["op"] == "d" else value["after"])
        assert key == {"id": row["id"]}
        assert value["source"]["snapshot"] is (value["op"] == "r")
        by_op.setdefault(value["op"], {})[row.pop("id") % 100] = row
    assert set(by_op) == {"r", "c", "d"}
    want = {1: expected(ROWS[0]), 2: expected(ROWS[1]), 3: expected(NULLS)}
    mismatches = [
        (op, row, column, got.get(column, "<missing>"), value)
        for op in ("r", "c", "d")
        for row, values in want.items()
        for column, value in values.items()
        if (got := by_op[op].get(row, {})).get(column, "<missing>") != value
    ]
    assert mismatches == []
    assert all(len(rows) == 3 for rows in by_op.values())


# ---------------------------------------------------------------- evolution


def test_add_column_registers_a_new_compatible_version(
    pipeline: Pipeline, registry: Registry
) -> None:
    sql, db = pipeline.sql, pipeline.db
    sql(f"CREATE TABLE {db}.t (id int PRIMARY KEY, a varchar(10) NOT NULL)")
    sql(f"INSERT INTO {db}.t VALUES (1, 'one')")
    subject = f"{pipeline.topic_prefix}.{pipeline.database}.t-value"
    worker = pipeline.run(**avro_config(pipeline, registry))
    pipeline.wait_streaming(worker)
    registry.put(f"/config/{subject}", {"compatibility": "BACKWARD"})  # checked by the registry
    sql(f"INSERT INTO {db}.t VALUES (2, 'two')")
    sql(f"ALTER TABLE {db}.t ADD COLUMN b int NOT NULL DEFAULT 7")
    sql(f"INSERT INTO {db}.t VALUES (3, 'three', 8)")
    records = pipeline.wait_until(
        lambda: (r := decoded(pipeline, registry, "t")) and len(r) >= 3 and r, 60, "3 records"
    )
    assert registry.versions(subject) == [1, 2]
    first, second = registry.version_id(subject, 1), registry.version_id(subject, 2)
    assert first != second
    assert [(r[2], r[3]["op"], r[3]["after"]) for r in records] == [
        (first, "r", {"id": 1, "a": "one"}),
        (first, "c", {"id": 2, "a": "two"}),
        (second, "c", {"id": 3, "a": "three", "b": 8}),
    ]
    assert worker.tracker.state == "Streaming"


def test_a_schema_the_registry_refuses_stops_the_worker_and_writes_nothing(
    pipeline: Pipeline, registry: Registry
) -> None:
    sql, db = pipeline.sql, pipeline.db
    sql(f"CREATE TABLE {db}.t (id int PRIMARY KEY, a varchar(10))")
    sql(f"INSERT INTO {db}.t VALUES (1, '1')")
    subject = f"{pipeline.topic_prefix}.{pipeline.database}.t-value"
    worker = pipeline.run(**avro_config(pipeline, registry))
    pipeline.wait_streaming(worker)
    registry.put(f"/config/{subject}", {"compatibility": "BACKWARD"})
    sql(f"INSERT INTO {db}.t VALUES (2, '2')")
    pipeline.wait_until(lambda: len(decoded(pipeline, registry, "t")) == 2, 60, "2 records")
    # string → long: a reader of the new schema cannot read the old data (BACKWARD)
    sql(f"ALTER TABLE {db}.t MODIFY a bigint")
    sql(f"INSERT INTO {db}.t VALUES (3, 3)")
    assert worker.join(60) == 1
    failure = worker.worker.failure
    assert failure is not None and failure.reason == "SchemaIncompatible"
    assert subject in failure.message and "compatib" in failure.message
    errors = worker.tracker.view()["lastErrors"]
    assert errors and errors[-1]["reason"] == "SchemaIncompatible"
    assert registry.versions(subject) == [1]
    records = decoded(pipeline, registry, "t")
    assert [(r[2], r[3]["after"]["id"]) for r in records] == [
        (registry.version_id(subject, 1), 1),
        (registry.version_id(subject, 1), 2),
    ]


# ---------------------------------------------------------------- subjects


def test_record_name_strategy_registers_under_the_records_full_names(
    pipeline: Pipeline, registry: Registry
) -> None:
    sql, db = pipeline.sql, pipeline.db
    sql(f"CREATE TABLE {db}.orders (id int PRIMARY KEY, total decimal(10,2))")
    sql(f"INSERT INTO {db}.orders VALUES (1, 12.50)")
    worker = pipeline.run(**avro_config(pipeline, registry, subjectStrategy="recordName"))
    records = pipeline.wait_until(lambda: decoded(pipeline, registry, "orders"), 60, "a record")
    pipeline.wait_streaming(worker)
    namespace = "ferry." + re.sub(r"[^A-Za-z0-9_]", "_", pipeline.database) + ".orders"
    ((key_id, key, value_id, value),) = records
    assert registry.versions(f"{namespace}.Key") == [1]
    assert registry.versions(f"{namespace}.Envelope") == [1]
    assert key_id == registry.version_id(f"{namespace}.Key", 1)
    assert value_id == registry.version_id(f"{namespace}.Envelope", 1)
    assert key == {"id": 1} and value["after"] == {"id": 1, "total": Decimal("12.50")}
    topic = f"{pipeline.topic_prefix}.{pipeline.database}.orders"
    subjects = registry.get("/subjects")
    assert f"{topic}-value" not in subjects and f"{topic}-key" not in subjects


def test_wrong_registry_credentials_stop_the_worker_before_anything_is_written(
    pipeline: Pipeline, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    sql, db = pipeline.sql, pipeline.db
    sql(f"CREATE TABLE {db}.t (id int PRIMARY KEY)")
    sql(f"INSERT INTO {db}.t VALUES (1)")
    monkeypatch.setenv(PASSWORD_ENV, "not-the-password")
    worker = pipeline.run(**avro_config(pipeline, registry))
    assert worker.join(60) == 1
    failure = worker.worker.failure
    assert failure is not None and failure.reason == "SchemaRegistryAuthFailed"
    assert "kafka.schemaRegistry.secretRef" in failure.message
    assert "not-the-password" not in failure.message
    assert decoded(pipeline, registry, "t") == []


# ---------------------------------------------------------------- the other records


def test_ddl_transaction_and_dead_letter_records_stay_json_beside_avro_rows(
    pipeline: Pipeline, registry: Registry
) -> None:
    sql, db, prefix = pipeline.sql, pipeline.db, pipeline.topic_prefix
    sql(f"CREATE TABLE {db}.t (d date PRIMARY KEY, v int)")
    config = avro_config(pipeline, registry)
    config["sink"]["kafka"] |= {
        "schemaChanges": {"topic": f"{prefix}.ddl"},
        "transactionTopic": f"{prefix}.tx",
    }
    config["errorPolicy"] = {"mode": "deadLetter", "deadLetterTopic": f"{prefix}.dlq"}
    worker = pipeline.run(**config)
    pipeline.wait_streaming(worker)
    sql("SET SESSION sql_mode = ''")  # a zero date: no Avro date holds it, and it is the key
    sql("BEGIN")
    sql(f"INSERT INTO {db}.t VALUES ('2024-01-01', 1), ('2024-01-02', 2)")
    sql("COMMIT")
    sql(f"INSERT INTO {db}.t VALUES ('0000-00-00', 3)")
    sql(f"ALTER TABLE {db}.t ADD COLUMN w int")
    read = pipeline.wait_until
    ddl = read(lambda: pipeline_json(pipeline, "ddl"), 60, "the DDL record")
    letters = read(lambda: pipeline_json(pipeline, "dlq"), 60, "the dead letter")
    tx = read(lambda: (r := pipeline_json(pipeline, "tx")) and len(r) >= 2 and r, 60, "BEGIN/END")
    rows = decoded(pipeline, registry, "t")
    assert [r[3]["after"]["v"] for r in rows] == [1, 2]
    assert [r[1] for r in rows] == [{"d": date(2024, 1, 1)}, {"d": date(2024, 1, 2)}]
    blocks = [r[3]["transaction"] for r in rows]
    assert [(b["total_order"], b["data_collection_order"]) for b in blocks] == [(1, 1), (2, 2)]
    assert [v["status"] for _, v in tx] == ["BEGIN", "END"] and tx[1][1]["event_count"] == 2
    assert tx[0][1]["id"] == blocks[0]["id"] == blocks[1]["id"]
    ((_, letter),) = letters
    assert letter["table"] == f"{pipeline.database}.t" and "cannot be encoded" in letter["error"]
    ((key, value),) = ddl  # Debezium's schema change event, JSON
    assert key == {"databaseName": pipeline.database}
    assert "ADD COLUMN w" in value["ddl"] and value["tableChanges"][0]["type"] == "ALTER"
    assert worker.tracker.state == "Streaming"


def pipeline_json(pipeline: Pipeline, name: str) -> list[tuple[Any, Any]]:
    """The JSON records of topic ``<prefix>.<name>``."""
    return read_topic(pipeline.bootstrap, f"{pipeline.topic_prefix}.{name}")


def test_a_verify_request_on_avro_says_it_cannot_compare_rather_than_report_drift(
    pipeline: Pipeline, registry: Registry
) -> None:
    sql, db = pipeline.sql, pipeline.db
    sql(f"CREATE TABLE {db}.t (id int PRIMARY KEY)")
    sql(f"INSERT INTO {db}.t VALUES (1), (2)")
    config = avro_config(pipeline, registry) | {"verifyRequest": {"nonce": "v1"}}
    worker = pipeline.run(**config)

    def done() -> Any:
        found = worker.tracker.view()["verification"]
        return found if found and found["nonce"] == "v1" and found["state"] != "Running" else None

    found = pipeline.wait_until(done, 60, "the verification's outcome")
    assert found["state"] == "Failed" and "format avro" in found["message"], found
    assert not found.get("mismatchedRows")
    assert worker.tracker.state == "Streaming"
