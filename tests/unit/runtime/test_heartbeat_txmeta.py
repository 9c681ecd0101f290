"""spec.heartbeat and transaction metadata, the pure parts: config validation, the heartbeat
table's selection, lag from unconfirmed beats, the beat's row stamp, BEGIN/END records."""

from __future__ import annotations

import json
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from ferry_runtime import config, formats, heartbeat, txmeta
from ferry_runtime.events import Change
from ferry_runtime.status import StatusTracker


def minimal(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "task": {"name": "orders", "namespace": "shop"},
        "source": {"host": "db", "user": "repl", "passwordEnv": "SOURCE_PASSWORD", "serverId": 7},
        "sink": {"kafka": {"bootstrapServers": "kafka:9092"}},
    }
    data.update(overrides)
    return data


def test_heartbeat_is_off_by_default_and_has_defaults_when_on() -> None:
    assert config.parse(minimal()).heartbeat is None
    on = config.parse(minimal(heartbeat={})).heartbeat
    assert on is not None
    assert (on.interval, on.table) == (timedelta(seconds=10), "ferry_meta.heartbeat")
    dumped = config.parse(minimal(heartbeat={"interval": "5s"})).to_yaml()
    assert "heartbeat:\n  interval: 5s\n  table: ferry_meta.heartbeat" in dumped


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("table", "heartbeat", "is not a 'database.table' name"),
        ("table", "meta.*", "is not a 'database.table' name"),
        ("table", "me`ta.hb", "is not a 'database.table' name"),
        ("interval", "0s", "must be greater than zero"),
        ("interval", "soon", "is not a duration"),
    ],
)
def test_bad_heartbeat_fields_are_named(field: str, value: str, message: str) -> None:
    with pytest.raises(config.ConfigError) as raised:
        config.parse(minimal(heartbeat={field: value}))
    assert f"heartbeat.{field}" in str(raised.value) and message in str(raised.value)


def test_the_heartbeat_table_is_data_only_when_include_names_it() -> None:
    by_glob = config.parse(minimal(heartbeat={"table": "meta.hb"}, include=["*.*"]))
    assert not by_glob.selects("meta", "hb")
    assert by_glob.selects("meta", "other") and by_glob.is_heartbeat_table("meta", "hb")
    named = config.parse(minimal(heartbeat={"table": "meta.hb"}, include=["shop.*", "meta.hb"]))
    assert named.selects("meta", "hb")
    assert config.parse(minimal(include=["*.*"])).selects("meta", "hb")  # no heartbeat: data


def test_transaction_topic_is_off_by_default() -> None:
    kafka = config.parse(minimal()).sink.kafka
    assert kafka is not None and kafka.transaction_topic is None
    sink = {"kafka": {"bootstrapServers": "k:9092", "transactionTopic": "shop.tx"}}
    kafka = config.parse(minimal(sink=sink)).sink.kafka
    assert kafka is not None and kafka.transaction_topic == "shop.tx"


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_an_undelivered_beat_is_lag_even_when_caught_up() -> None:
    clock = Clock()
    tracker = StatusTracker(clock=clock)
    tracker.set_caught_up(True)
    tracker.source_heartbeat_written(clock.now)
    clock.now += 4
    tracker.source_heartbeat_written(clock.now)
    clock.now += 3
    assert tracker.lag_seconds() == 7.0  # the oldest beat not delivered
    tracker.source_heartbeat_delivered(clock.now - 7)
    assert tracker.lag_seconds() == 3.0
    tracker.source_heartbeat_delivered(clock.now - 3)
    assert tracker.lag_seconds() == 0.0
    assert tracker.last_heartbeat_delivered == clock.now - 3


def test_the_beat_stamp_is_this_task_s_newest_row() -> None:
    worker = config.parse(minimal(heartbeat={"table": "meta.hb"}))
    rows = heartbeat.HeartbeatRows(worker)
    assert rows.table == ("meta", "hb")
    ours = "shop.orders"
    update = {
        "before_values": {"task": ours, "ts_ms": 1},
        "after_values": {"task": ours, "ts_ms": 2500},
    }
    event = SimpleNamespace(rows=[update, {"values": {"task": "other.task", "ts_ms": 9000}}])
    assert rows.stamp(event) == 2.5
    assert rows.stamp(SimpleNamespace(rows=[{"values": {"task": "x", "ts_ms": 1}}])) is None
    changes = [Change("meta", "hb", "update", {"task": "shop.orders", "ts_ms": 4000})]
    assert rows.stamp_of(changes) == 4.0


def test_setup_sql_creates_the_table_and_grants_the_writes() -> None:
    sql = heartbeat.setup_sql("meta.hb", "repl")
    assert "CREATE TABLE IF NOT EXISTS `meta`.`hb` (task VARCHAR(255)" in sql
    assert "GRANT INSERT, UPDATE ON `meta`.`hb` TO 'repl'@'%'" in sql


def test_begin_and_end_records() -> None:
    order = txmeta.Order(txmeta.transaction_id("0-1-42", {"file": "b.1", "pos": 9}))
    key, value = txmeta.begin(order, 1_800_000_000)
    assert json.loads(key) == {"id": "0-1-42"}
    assert json.loads(value) == {
        "status": "BEGIN",
        "id": "0-1-42",
        "event_count": None,
        "data_collections": None,
        "ts_ms": 1_800_000_000_000,
    }
    assert order.block("shop.a") == {"id": "0-1-42", "total_order": 1, "data_collection_order": 1}
    for name in ("shop.a", "shop.b", "shop.a"):
        order.take(name)
    assert order.block("shop.a")["data_collection_order"] == 3
    _, value = txmeta.end(order, 1_800_000_000)
    assert json.loads(value)["event_count"] == 3
    assert json.loads(value)["data_collections"] == [
        {"data_collection": "shop.a", "event_count": 2},
        {"data_collection": "shop.b", "event_count": 1},
    ]
    assert txmeta.transaction_id(None, {"file": "b.1", "pos": 9}) == "b.1:9"


def test_the_debezium_record_carries_the_transaction_block_only_when_given() -> None:
    change = Change("shop", "a", "insert", {"id": 1}, primary_key=("id",), position="b.1:4")
    assert "transaction" not in formats.debezium(change, "task")
    change.extra["transaction"] = {"id": "0-1-42", "total_order": 1, "data_collection_order": 1}
    assert formats.debezium(change, "task")["transaction"]["id"] == "0-1-42"
    assert "transaction" not in formats.maxwell(change)
