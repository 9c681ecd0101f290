"""The pure parts of spec.verifyRequest in the worker: the SQL both sides run, what a table
is compared as after mapping, the in-flight window, the record in the checkpoint and status,
and the config's refusal of repair with a Kafka sink."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from ferry_runtime import checkpoint, config, types
from ferry_runtime.events import Change
from ferry_runtime.source.schema import TableSchema
from ferry_runtime.status import StatusTracker
from ferry_runtime.verify import checksum, engine
from ferry_runtime.verify.touched import Touched, key_id

ID, NAME = types.Column("id", "int"), types.Column("name", "text")
BLOB = types.Column("b", "binary")
SOURCE = TableSchema("shop", "items", (ID, NAME, BLOB), ("id",), frozenset(), 0)


def worker_config(**overrides: Any) -> config.WorkerConfig:
    data: dict[str, Any] = {
        "task": {"name": "t"},
        "source": {"host": "h", "user": "u", "passwordEnv": "P", "serverId": 9},
        "sink": {"mysql": {"host": "t", "user": "u", "passwordEnv": "Q"}},
        **overrides,
    }
    return config.parse(data)


def test_both_sides_hash_the_same_values_in_the_same_order() -> None:
    side = checksum.Side("d", "t", ((ID, "id"), (NAME, "label"), (BLOB, "b")), ((ID, "id"),))
    expression = checksum.row_hash(side)
    assert expression.startswith("MD5(CONCAT_WS('|', COALESCE(OCTET_LENGTH(CAST(`id` AS BINARY))")
    assert "CAST(CONVERT(`label` USING utf8mb4) AS BINARY)" in expression  # renamed, as text
    sql = checksum.checksum_sql(side, " WHERE x")
    assert sql.startswith("SELECT COUNT(*), COALESCE(BIT_XOR(CAST(CONV(LEFT(h, 16), 16, 10)")
    assert sql.endswith("FROM `d`.`t` WHERE x) c")


def test_key_ranges_and_key_lists() -> None:
    side = checksum.Side("d", "t", (), ((ID, "id"), (BLOB, "b")))
    assert checksum.range_sql(side, None, None) == ("", [])
    where, args = checksum.range_sql(side, [1, "AQI="], [5, "AA=="])
    assert where == " WHERE (`id`, `b`) > (%s, %s) AND (`id`, `b`) <= (%s, %s)"
    assert args == [1, b"\x01\x02", 5, b"\x00"]  # binary keys travel base64 in JSON
    where, args = checksum.keys_sql(side, [[1, "AA=="], [2, "AQ=="]])
    assert where == " WHERE (`id`, `b`) IN ((%s, %s), (%s, %s))"
    assert args == [1, b"\x00", 2, b"\x01"]


def test_a_table_is_compared_as_the_mapping_delivers_it() -> None:
    mapped = worker_config(
        mapping=[{"table": "shop.items", "target": "goods", "columns": {"name": "label"},
                  "drop": ["b"]}]
    )  # fmt: skip
    target = TableSchema(
        "copy", "goods", (ID, types.Column("label", "text")), ("id",), frozenset(), 0
    )
    plan = engine.plan_table(mapped, SOURCE, target, "copy")
    assert isinstance(plan, engine.Plan)
    assert (plan.target_database, plan.target_table) == ("copy", "goods")
    assert [(c.name, name) for c, name in plan.columns] == [("id", "id"), ("name", "label")]
    assert plan.key_of({"id": 4, "label": "x"}, mapped=True) == [4]
    narrow = TableSchema("copy", "goods", (ID,), ("id",), frozenset(), 0)
    assert engine.plan_table(mapped, SOURCE, narrow, "copy") == (
        "the target table copy.goods lacks column(s) label"
    )
    keyless = TableSchema("shop", "log", (ID,), (), frozenset(), 0)
    assert "no primary key" in str(engine.plan_table(mapped, keyless, None, "shop"))
    dropped = worker_config(mapping=[{"table": "shop.items", "drop": ["id"]}])
    assert "drops its primary key" in str(engine.plan_table(dropped, SOURCE, None, "shop"))


def _change(key: int, old: int | None = None) -> Change:
    data = {"id": key, "name": "x"}
    return Change("shop", "items", "update", data, None if old is None else {"id": old}, ("id",))


def test_a_key_changed_inside_the_window_is_in_flight_and_outside_it_is_not() -> None:
    touched = Touched()
    touched.record({"file": "b.1", "pos": 100}, [_change(1)])  # not started: ignored
    touched.start(["shop.items"], {"file": "b.1", "pos": 100})
    touched.record({"file": "b.1", "pos": 200}, [_change(1), _change(3, old=2)])
    touched.record({"file": "b.2", "pos": 50}, [_change(5)])
    one = key_id([1])
    assert touched.changed("shop.items", one, ("b.1", 100), ("b.1", 200))  # (low, high]
    assert not touched.changed("shop.items", one, ("b.1", 200), ("b.2", 900))
    assert touched.changed("shop.items", key_id([2]), ("b.1", 0), ("b.1", 300))  # old key too
    assert touched.changed("shop.items", key_id([5]), ("b.1", 999), ("b.2", 50))  # next file
    assert not touched.changed("shop.other", one, ("", 0), ("b.9", 0))
    touched.committed({"file": "b.2", "pos": 50})
    stop = threading.Event()
    assert touched.wait_for(("b.2", 50), 1, stop)
    assert not touched.wait_for(("b.2", 51), 0.1, stop)
    touched.stop()
    assert not touched.active and not touched.changed("shop.items", one, ("", 0), ("b.9", 0))


def test_the_result_is_kept_in_the_checkpoint_and_shown_in_status() -> None:
    record = checkpoint.VerifyRecord(
        "v1", 1_800_000_000.0, ("shop.items",), 3, 2500, 2, 1, 2, (("shop.items", "[7]"),)
    )
    state = checkpoint.Checkpoint(position={"file": "b.1", "pos": 4}, verify=record)
    assert checkpoint.decode(checkpoint.encode(state, "task")).verify == record
    tracker = StatusTracker(clock=lambda: 1_800_000_000.0)
    assert tracker.view()["verification"] is None
    tracker.verification_started("v2", 1_800_000_000.0)
    assert tracker.view()["verification"] == {
        "nonce": "v2", "state": "Running", "startTime": "2027-01-15T08:00:00Z",
    }  # fmt: skip
    tracker.record_verification(record)
    shown = tracker.view()["verification"]
    assert (shown["state"], shown["mismatchedRows"], shown["unsettledRows"]) == ("Completed", 2, 1)
    assert shown["sampleKeys"] == [{"table": "shop.items", "key": "[7]"}]
    failed = checkpoint.VerifyRecord("v3", 1.0, error="the sink is down")
    tracker.record_verification(failed)
    assert tracker.view()["verification"]["state"] == "Failed"


def test_repair_needs_a_mysql_sink() -> None:
    assert worker_config(verifyRequest={"nonce": "v", "repair": True}).verify_request
    kafka = {"kafka": {"bootstrapServers": "k:9092"}}
    with pytest.raises(config.ConfigError, match=r"verifyRequest\.repair: only a MySQL sink"):
        worker_config(sink=kafka, verifyRequest={"nonce": "v", "repair": True})
    with pytest.raises(config.ConfigError, match=r"verifyRequest\.nonce"):
        worker_config(verifyRequest={"tables": ["a.b"]})
