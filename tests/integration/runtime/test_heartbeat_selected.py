"""spec.heartbeat when source.include names the heartbeat table exactly (real MariaDB and
Kafka): its rows are then data like any other table's, the beats are still recognised (and
delivered) through the snapshot+cdc path, and a glob alone would not have selected it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.integration.runtime.conftest import Pipeline

pytestmark = [pytest.mark.mysql, pytest.mark.kafka]


@pytest.fixture
def heartbeat_table(pipeline: Pipeline, testenv: Any) -> Iterator[str]:
    """``<test db>.hb``, made by an administrator with the grant the worker needs."""
    table, user = f"{pipeline.db}.hb", testenv.mysql["user"]
    pipeline.sql(f"CREATE TABLE {table} (task VARCHAR(255) NOT NULL PRIMARY KEY, ts_ms BIGINT)")
    pipeline.sql(f"GRANT INSERT, UPDATE ON {table} TO '{user}'@'%'")
    yield f"{pipeline.database}.hb"
    pipeline.sql(f"REVOKE INSERT, UPDATE ON {table} FROM '{user}'@'%'")


def test_a_heartbeat_table_named_in_include_is_data(
    pipeline: Pipeline, heartbeat_table: str
) -> None:
    sql, db = pipeline.sql, pipeline.db
    sql(f"CREATE TABLE {db}.t (id int PRIMARY KEY)")
    sql(f"INSERT INTO {db}.t VALUES (1), (2), (3)")
    worker = pipeline.run(
        include=[f"{pipeline.database}.t", heartbeat_table],
        heartbeat={"interval": "1s", "table": heartbeat_table},
    )
    pipeline.wait_until(lambda: worker.tracker.last_heartbeat_delivered, 60, "a beat delivered")
    pipeline.wait_until(lambda: len(pipeline.records("hb")) >= 2, 60, "beats as data")
    assert worker.stop() == 0
    assert len(pipeline.records("t")) == 3
    beats = [value for _, value in pipeline.records("hb")]
    assert {value["data"]["task"] for value in beats} == {worker.worker.task_id}
    delivered = worker.tracker.last_heartbeat_delivered
    assert delivered is not None
    assert max(value["data"]["ts_ms"] for value in beats) >= delivered * 1000
