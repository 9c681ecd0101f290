"""sink.kafka.schemaChanges on the real MariaDB and Kafka: a record for each DDL on a selected
table, in binlog order between the rows before and after it (rows and DDL records share one
topic and partition here, so the order read back is the order written), in the task's format
and under its mapping; DDL on a table outside the selection gives none. The worker reads the
binlog after the table was dropped, so ``def``/``old`` are the statements' own."""

from __future__ import annotations

from typing import Any

import pytest
from tests.integration.runtime.conftest import Pipeline, read_topic

pytestmark = [pytest.mark.mysql, pytest.mark.kafka]


def position_key(position: str) -> tuple[str, int]:
    file, _, pos = position.rpartition(":")
    return file, int(pos)


def _script(pipeline: Pipeline) -> None:
    """Rows and DDL, interleaved (``other`` is not selected)."""
    sql, db = pipeline.sql, pipeline.db
    sql(f"CREATE TABLE {db}.t (id int PRIMARY KEY, a int, secret varchar(10))")
    sql(f"INSERT INTO {db}.t VALUES (1, 10, 's')")
    sql(f"ALTER TABLE {db}.t ADD COLUMN b varchar(10) AFTER a")
    sql(f"INSERT INTO {db}.t VALUES (2, 20, 'x', 's')")
    sql(f"CREATE TABLE {db}.other (id int PRIMARY KEY)")
    sql(f"ALTER TABLE {db}.other ADD COLUMN z int")
    sql(f"ALTER TABLE {db}.t RENAME COLUMN a TO c")
    sql(f"UPDATE {db}.t SET c = 30 WHERE id = 1")
    sql(f"TRUNCATE TABLE {db}.t")
    sql(f"INSERT INTO {db}.t VALUES (3, 40, 'y', 's')")
    sql(f"DROP TABLE {db}.t")


def _run(pipeline: Pipeline, **sink: Any) -> list[dict[str, Any]]:
    topic = f"{pipeline.topic_prefix}.all"
    config = pipeline.config(
        mode="cdc",
        exclude=[f"{pipeline.database}.other"],
        mapping=[{"table": f"{pipeline.database}.t", "columns": {"b": "bee"}, "drop": ["secret"]}],
    )
    config["sink"]["kafka"].update(
        topic=topic, partitionBy="database", schemaChanges={"topic": topic}, **sink
    )
    # The worker reads the script after it ran: the table is gone from the source by then,
    # so each record's def/old must come from the statements, not from information_schema.
    file, pos = pipeline.server_position()
    _script(pipeline)
    worker = pipeline.start({**config, "startPosition": {"file": file, "pos": pos}})
    pipeline.wait_caught_up(worker, 60, "the script")
    assert worker.stop() == 0
    return [value for _, value in read_topic(pipeline.bootstrap, topic)]


def test_maxwell_ddl_records_sit_between_the_rows_in_binlog_order(pipeline: Pipeline) -> None:
    records = _run(pipeline)
    db = pipeline.database
    assert [(r["type"], r["table"]) for r in records] == [
        ("table-create", "t"),
        ("insert", "t"),
        ("table-alter", "t"),
        ("insert", "t"),
        ("table-alter", "t"),
        ("update", "t"),
        ("table-truncate", "t"),
        ("insert", "t"),
        ("table-drop", "t"),
    ]
    # Every record's binlog position is after the one before it: one order for both kinds.
    positions = [position_key(r["position"]) for r in records]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    create, _, add, insert, rename, update, truncate, _, drop = records
    assert create["sql"] == f"CREATE TABLE `{db}`.t (id int PRIMARY KEY, a int, secret varchar(10))"
    assert create["database"] == db and "old" not in create
    assert create["def"]["primary-key"] == ["id"]
    # The mapping holds in def/old as in rows: b is "bee", secret never leaves the worker.
    assert [c["name"] for c in create["def"]["columns"]] == ["id", "a"]
    assert create["def"]["columns"][0] == {"type": "int", "name": "id", "signed": True}
    assert [c["name"] for c in add["old"]["columns"]] == ["id", "a"]
    assert [c["name"] for c in add["def"]["columns"]] == ["id", "a", "bee"]
    assert add["def"]["columns"][2]["charset"] == "utf8mb4"
    assert add["sql"].endswith("ADD COLUMN b varchar(10) AFTER a")
    assert insert["data"] == {"id": 2, "a": 20, "bee": "x"}
    assert [c["name"] for c in rename["def"]["columns"]] == ["id", "c", "bee"]
    assert update["data"]["c"] == 30 and "a" not in update["data"]
    assert "def" not in truncate and truncate["sql"].startswith("TRUNCATE")
    assert [c["name"] for c in drop["old"]["columns"]] == ["id", "c", "bee"]
    assert "def" not in drop and drop["sql"].startswith("DROP TABLE")
    assert isinstance(add["ts"], int) and add["ts"] % 1000 == 0  # milliseconds, like Maxwell


def test_debezium_schema_change_events_sit_between_the_rows(pipeline: Pipeline) -> None:
    records = _run(pipeline, format="debezium")
    db = pipeline.database

    def kind(record: dict[str, Any]) -> str:
        if "ddl" in record:
            return "ddl:" + ",".join(c["type"] for c in record["tableChanges"])
        return str(record["op"])

    assert [kind(r) for r in records] == [
        "ddl:CREATE", "c", "ddl:ALTER", "c", "ddl:ALTER", "u", "ddl:", "c", "ddl:DROP",
    ]  # fmt: skip
    create, alter = records[0], records[2]
    assert create["databaseName"] == db and create["schemaName"] is None
    assert create["ddl"].startswith("CREATE TABLE")
    change = alter["tableChanges"][0]
    assert change["id"] == f'"{db}"."t"'
    assert change["table"]["primaryKeyColumnNames"] == ["id"]
    columns = change["table"]["columns"]
    assert [c["name"] for c in columns] == ["id", "a", "bee"]
    assert columns[2]["typeName"] == "VARCHAR" and columns[2]["length"] == 10
    assert columns[0]["optional"] is False and columns[2]["optional"] is True
    positions = [(r["source"]["file"], r["source"]["pos"]) for r in records]
    assert positions == sorted(positions)
