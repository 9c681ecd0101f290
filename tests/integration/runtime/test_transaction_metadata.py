"""sink.kafka.transactionTopic on the real MariaDB and Kafka: every source transaction that
delivers rows is framed by a BEGIN and an END record (its GTID, the counts per table), in
order around its rows. The data and transaction records share one single-partition topic
here, so the order is total: BEGIN, the transaction's rows, END. A transaction of an
excluded table delivers nothing and gets no frame. With format: debezium each row carries
its transaction block (id, total_order, data_collection_order)."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from tests.integration.runtime.conftest import Pipeline, read_topic

pytestmark = [pytest.mark.mysql, pytest.mark.kafka]


def _one_partition(bootstrap: str, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, num_partitions=1)]).values():
        future.result(30)


def _frames(records: list[tuple[Any, Any]]) -> list[tuple[dict[str, Any], list[Any], Any]]:
    """(BEGIN, rows, END) per transaction, checking that nothing falls outside a frame."""
    frames: list[tuple[dict[str, Any], list[Any], Any]] = []
    current: tuple[dict[str, Any], list[Any]] | None = None
    for key, value in records:
        status = value.get("status")
        if status == "BEGIN":
            assert current is None, f"BEGIN inside {current}"
            assert key == {"id": value["id"]}
            assert value["event_count"] is None and value["data_collections"] is None
            current = (value, [])
        elif status == "END":
            assert current is not None and current[0]["id"] == value["id"], value
            frames.append((current[0], current[1], value))
            current = None
        else:
            assert current is not None, f"a row outside BEGIN/END: {value}"
            current[1].append(value)
    assert current is None, "no END"
    return frames


def test_begin_and_end_frame_each_transaction_s_rows(pipeline: Pipeline) -> None:
    sql, db, name = pipeline.sql, pipeline.db, pipeline.database
    sql(f"CREATE TABLE {db}.a (id int PRIMARY KEY, v int)")
    sql(f"CREATE TABLE {db}.b (id int PRIMARY KEY, v int)")
    sql(f"CREATE TABLE {db}.skipped (id int PRIMARY KEY)")
    topic = f"{pipeline.topic_prefix}.all"
    _one_partition(pipeline.bootstrap, topic)
    config = pipeline.config(
        mode="cdc",
        exclude=[f"{name}.skipped"],
        performance={"maxBatchDelay": "2s", "batchSize": 100},  # several transactions a batch
    )
    config["sink"]["kafka"] |= {"topic": topic, "transactionTopic": topic, "format": "debezium"}
    worker = pipeline.start(config)
    pipeline.wait_streaming(worker)

    script = [
        [f"INSERT INTO {db}.a VALUES (1, 1), (2, 2)", f"INSERT INTO {db}.b VALUES (1, 1)"],
        [f"INSERT INTO {db}.skipped VALUES (1)"],  # excluded: no frame
        [f"UPDATE {db}.a SET v = 10 WHERE id = 1", f"INSERT INTO {db}.skipped VALUES (2)"],
        [f"DELETE FROM {db}.b WHERE id = 1", f"INSERT INTO {db}.a VALUES (3, 3)"],
    ]
    gtids = []
    for statements in script:
        sql("BEGIN")
        for statement in statements:
            sql(statement)
        sql("COMMIT")
        gtids.append(str(sql("SELECT @@last_gtid")[0][0]))
    pipeline.wait_until(lambda: worker.tracker.events >= 6, 60, "the six rows")
    assert worker.stop() == 0

    frames = _frames(read_topic(pipeline.bootstrap, topic))
    assert [begin["id"] for begin, _, _ in frames] == [gtids[0], gtids[2], gtids[3]]
    expected = [
        [("c", "a", 1), ("c", "a", 2), ("c", "b", 1)],
        [("u", "a", 1)],
        [("d", "b", 1), ("c", "a", 3)],
    ]
    for (begin, rows, end), wanted in zip(frames, expected, strict=True):
        seen = [(r["op"], r["source"]["table"], (r["after"] or r["before"])["id"]) for r in rows]
        assert seen == wanted
        assert end["event_count"] == len(rows)
        per_table: dict[str, int] = {}
        for row in rows:
            per_table[f"{name}.{row['source']['table']}"] = (
                per_table.get(f"{name}.{row['source']['table']}", 0) + 1
            )
        assert end["data_collections"] == [
            {"data_collection": table, "event_count": count} for table, count in per_table.items()
        ]
        assert begin["ts_ms"] == end["ts_ms"] > 0
        # The Debezium transaction block: the order in all and within each table.
        orders: dict[str, int] = {}
        for total, row in enumerate(rows, start=1):
            table = f"{name}.{row['source']['table']}"
            orders[table] = orders.get(table, 0) + 1
            assert row["transaction"] == {
                "id": begin["id"],
                "total_order": total,
                "data_collection_order": orders[table],
            }


def test_transaction_records_off_by_default(pipeline: Pipeline) -> None:
    sql, db = pipeline.sql, pipeline.db
    sql(f"CREATE TABLE {db}.a (id int PRIMARY KEY)")
    config = pipeline.config(mode="cdc")
    config["sink"]["kafka"]["format"] = "debezium"
    worker = pipeline.start(config)
    pipeline.wait_streaming(worker)
    sql(f"INSERT INTO {db}.a VALUES (1)")
    pipeline.wait_until(lambda: worker.tracker.events >= 1, 60, "the row")
    assert worker.stop() == 0
    ((_, value),) = pipeline.records("a")
    assert "transaction" not in value
