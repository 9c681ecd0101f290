"""Filtering, mapping, routing and the two record formats (pure)."""

from __future__ import annotations

import json
from typing import Any

import orjson

from ferry_runtime import config, formats, rules
from ferry_runtime.events import Change, RenderedRows


def make_config(**overrides: Any) -> config.WorkerConfig:
    data: dict[str, Any] = {
        "task": {"name": "t1", "namespace": "ns"},
        "source": {"host": "db", "user": "u", "passwordEnv": "PW", "serverId": 7},
        "sink": {"kafka": {"bootstrapServers": "k:9092", "topic": "cdc.{database}.{table}"}},
    }
    data.update(overrides)
    return config.parse(data)


UPDATE = Change(
    "shop", "orders", "update", {"id": 1, "total": "9.50", "secret": "x"},
    {"id": 1, "total": "7.00", "secret": "x"}, ("id",), 1700000000, "binlog.000001:420",
    xid=42, commit=True, server_id=7,
)  # fmt: skip


def test_include_and_exclude() -> None:
    cfg = make_config(include=["shop.*"], exclude=["shop.audit_*"])
    assert rules.apply(cfg, UPDATE) == UPDATE
    assert rules.apply(cfg, Change("shop", "audit_log", "insert", {})) is None
    assert rules.apply(cfg, Change("other", "orders", "insert", {})) is None


def test_mapping_renames_and_drops_before_any_format_sees_the_row() -> None:
    cfg = make_config(
        mapping=[
            {
                "table": "shop.ord*",
                "target": "sales",
                "columns": {"id": "order_id"},
                "drop": ["secret"],
            }
        ]
    )
    mapped = rules.apply(cfg, UPDATE)
    assert mapped is not None
    assert mapped.table == "sales"
    assert mapped.data == {"order_id": 1, "total": "9.50"}
    assert mapped.old == {"order_id": 1, "total": "7.00"}
    assert mapped.primary_key == ("order_id",)
    assert rules.topic(cfg, mapped) == "cdc.shop.sales"
    _, value = formats.encode(mapped, "maxwell", "ns.t1")
    assert b"secret" not in value


def test_partition_value_follows_partition_by() -> None:
    by_table = make_config(sink={"kafka": {"bootstrapServers": "k", "partitionBy": "table"}})
    by_db = make_config(sink={"kafka": {"bootstrapServers": "k", "partitionBy": "database"}})
    assert rules.partition_value(make_config(), UPDATE) is None
    assert rules.partition_value(by_table, UPDATE) == "shop.orders"
    assert rules.partition_value(by_db, UPDATE) == "shop"


def test_maxwell_record_and_key() -> None:
    key, value = formats.encode(UPDATE, "maxwell", "ns.t1")
    assert json.loads(key) == {"database": "shop", "table": "orders", "pk.id": 1}
    assert json.loads(value) == {
        "database": "shop", "table": "orders", "type": "update", "ts": 1700000000, "xid": 42,
        "commit": True, "position": "binlog.000001:420", "primary_key": [1],
        "data": {"id": 1, "total": "9.50", "secret": "x"}, "old": {"total": "7.00"},
    }  # fmt: skip


def test_debezium_envelope_and_key() -> None:
    key, value = formats.encode(UPDATE, "debezium", "ns.t1")
    record = json.loads(value)
    assert json.loads(key) == {"id": 1}
    assert record["op"] == "u"
    assert record["before"] == UPDATE.old and record["after"] == UPDATE.data
    assert record["source"]["file"] == "binlog.000001" and record["source"]["pos"] == 420
    assert record["source"]["db"] == "shop" and record["ts_ms"] == 1700000000000
    delete = formats.debezium(
        Change("shop", "orders", "delete", {"id": 2}, primary_key=("id",)), "t"
    )
    assert delete["before"] == {"id": 2} and delete["after"] is None and delete["op"] == "d"
    snap = formats.debezium(Change("shop", "orders", "read", {"id": 3}), "t")
    assert snap["op"] == "r" and snap["source"]["snapshot"] is True


def test_table_without_primary_key_is_keyed_by_table() -> None:
    change = Change("shop", "log", "insert", {"line": "x"})
    assert json.loads(formats.key(change, "maxwell")) == {"database": "shop", "table": "log"}
    assert json.loads(formats.key(change, "debezium")) == {"database": "shop", "table": "log"}
    assert "primary_key" not in formats.maxwell(change)
    assert formats.maxwell(Change("d", "t", "read", {}))["type"] == "bootstrap-insert"


def test_router_filters_and_maps_like_apply() -> None:
    cfg = make_config(
        include=["shop.*"],
        mapping=[{"table": "shop.orders", "target": "sales", "drop": ["secret"]}],
        sink={"kafka": {"bootstrapServers": "k", "topic": "x.{table}", "partitionBy": "table"}},
    )
    router = rules.Router(cfg)
    other = Change("other", "orders", "insert", {})
    unmapped = Change("shop", "items", "insert", {"id": 1})
    for _ in range(2):  # the second time from the cache
        mapped = router.map(UPDATE)
        assert mapped is not None and mapped == rules.apply(cfg, UPDATE)
        assert (mapped.table, mapped.name, mapped.source_name) == (
            "sales", "shop.sales", "shop.orders"
        )  # fmt: skip
        assert "secret" not in mapped.data
        assert (rules.topic(cfg, mapped), rules.partition_value(cfg, mapped)) == (
            "x.sales", "shop.sales"
        )  # fmt: skip
        assert router.map(other) is None
        assert router.map(unmapped) is unmapped  # a table without a mapping: as it is
        assert router.map_all([other, UPDATE, unmapped]) == [mapped, unmapped]


def test_fast_json_encoder_writes_the_same_json_as_the_standard_one() -> None:
    value = {
        "text": 'héllo 😀 "quoted" \\ \n\t\u0001 中文',
        "ints": [0, -1, 2**63 - 1, -(2**63), 2**64 - 1],
        "floats": [1.1, -3.4028235e38, 1e-7, 0.1 + 0.2, 1.7976931348623157e308],
        "nested": {"a": [None, True, False, {"b": []}], "": {}},
        "decimal": "-12345678901234567890.0123456789",
    }

    def standard(data: object) -> bytes:
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()

    assert json.loads(formats._dumps(value)) == value == json.loads(standard(value))
    del value["floats"]  # exponents print differently (1e-7 vs 1e-07); all else is identical
    assert formats._dumps(value) == standard(value)


READS = [
    {"id": 1, "total": "9.50", "note": None, "at": "2026-12-02 10:00:00"},
    {"id": 2, "total": "-0.01", "note": "ünïcode", "at": "2026-12-02 10:00:01"},
]


def test_encode_reads_writes_the_same_records_as_encode_one_by_one() -> None:
    for primary_key in (("id",), ("id", "at"), ()):
        template = Change(
            "shop", "orders", "read", {}, None, primary_key, 1700000000, "b.000002:4", server_id=7
        )
        for fmt in ("maxwell", "debezium"):
            batch = list(zip(*formats.encode_reads(template, READS, fmt, "ns/t1"), strict=True))
            one_by_one = [
                formats.encode(Change(**{**_fields(template), "data": row}), fmt, "ns/t1")
                for row in READS
            ]
            assert batch == one_by_one, (fmt, primary_key)
            if not primary_key:
                continue  # the server renders keyed tables only
            # The server's rendering: each key as orjson writes it, and the row's JSON.
            width = len(primary_key)
            keys = [
                orjson.dumps(row[primary_key[0]] if width == 1 else [row[n] for n in primary_key])
                for row in READS
            ]
            rendered = RenderedRows(keys, [orjson.dumps(row) for row in READS], width)
            encoded = formats.encode_reads(template, rendered, fmt, "ns/t1")
            assert list(zip(*encoded, strict=True)) == one_by_one, (fmt, primary_key)


def test_router_maps_a_chunk_of_rows_like_each_row() -> None:
    cfg = make_config(
        mapping=[
            {"table": "shop.orders", "target": "o", "columns": {"total": "sum"}, "drop": ["note"]}
        ]
    )
    template = Change("shop", "orders", "read", {}, None, ("id",), 1, "b.000002:4")
    routed = rules.Router(cfg).map_rows(template, READS)
    assert routed is not None
    mapped, rows = routed
    for row, mapped_row in zip(READS, rows, strict=True):
        one = rules.Router(cfg).map(Change(**{**_fields(template), "data": row}))
        assert one == Change(**{**_fields(mapped), "data": mapped_row})
    assert rows[0] == {"id": 1, "sum": "9.50", "at": "2026-12-02 10:00:00"}
    assert mapped.source_name == "shop.orders"
    unmapped = rules.Router(make_config()).map_rows(template, READS)
    assert unmapped is not None and unmapped[1] is READS
    assert rules.Router(make_config(include=["other.*"])).map_rows(template, READS) is None


def _fields(change: Change) -> dict[str, Any]:
    return {name: getattr(change, name) for name in Change.__slots__}


def test_encode_many_writes_the_same_records_as_encode_one_by_one() -> None:
    rows = [
        UPDATE,
        Change("shop", "orders", "insert", {"id": 2, "total": "1.00"}, None, ("id",), 5, "b.1:9"),
        Change("shop", "orders", "delete", {"id": 2, "total": "1.00"}, None, ("id",), 5, "b.1:9",
               xid=3, commit=True),
        Change("shop", "lines", "insert", {"o": 1, "n": 2, "q": 'x"é'}, None, ("o", "n"), 6,
               "b.1:99"),
        Change("shop", "lines", "update", {"o": 1, "n": 2, "q": "y"}, {"o": 1, "n": 2, "q": "z"},
               ("o", "n"), 6, "b.1:99"),
        Change("shop", "log", "insert", {"msg": "keyless"}, None, (), 7, "b.2:4"),
        Change("shop", "log", "update", {"msg": "a"}, None, (), 7, "b.2:4"),  # no old image
        Change("shop", "orders", "read", {"id": 3}, None, ("id",), 8, "b.2:5", server_id=9,
               extra={"transaction": {"id": "0-1-2", "total_order": 1}}),
    ]  # fmt: skip
    for fmt in ("maxwell", "debezium"):
        expected = [formats.encode(change, fmt, "ns/t1") for change in rows]
        assert formats.encode_many(rows, fmt, "ns/t1") == expected, fmt
