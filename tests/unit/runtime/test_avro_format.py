"""format avro, the pure parts: Avro types from column types, values from their JSON form,
the Confluent wire format, names, subjects, and the registry client's basic auth header.
The registry round trip itself is tests/integration/runtime/test_avro.py."""

from __future__ import annotations

import base64
import dataclasses
import io
import struct
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import fastavro
import pytest

from ferry_runtime import avro_format, config, types
from ferry_runtime.avro_format import ColumnInfo, avro_name, column_type
from ferry_runtime.events import Change
from ferry_runtime.registry import RegistryClient


def _info(kind: types.Kind, column_type_: str = "", fsp: int = 0, p: int = 0, s: int = 0) -> Any:
    return ColumnInfo(types.Column("c", kind, fsp=fsp), column_type_, p or None, s)


LAST = datetime(9999, 12, 31, 23, 59, 59, 999999)
Y2038 = datetime(2038, 1, 19, 3, 14, 7, 999000, UTC)


def _round_trip(kind: Any, value: Any) -> Any:
    schema = fastavro.parse_schema(
        {"type": "record", "name": "R", "fields": [{"name": "c", "type": kind}]}
    )
    out = io.BytesIO()
    fastavro.schemaless_writer(out, schema, {"c": value})
    return fastavro.schemaless_reader(io.BytesIO(out.getvalue()), schema)["c"]


@pytest.mark.parametrize(
    ("info", "json_value", "decoded"),
    [
        (_info("int", "int(11)"), -5, -5),
        (_info("int", "bigint(20) unsigned"), 18446744073709551615, Decimal(18446744073709551615)),
        (_info("bit", "bit(64)"), 2**64 - 1, Decimal(2**64 - 1)),
        (_info("bit", "bit(3)"), 5, 5),
        (_info("decimal", "decimal(30,10)", p=30, s=10), "-1.0123456789", Decimal("-1.0123456789")),
        (_info("float"), 1.1, 1.1),
        (_info("date"), "2024-02-29", date(2024, 2, 29)),
        (_info("date"), "0000-00-00", None),
        (_info("time", fsp=6), "-838:59:59.000001", -(838 * 3600 + 59 * 60 + 59) * 10**6 - 1),
        (_info("datetime"), "1000-01-01 00:00:00", datetime(1000, 1, 1)),
        (_info("datetime", fsp=6), "9999-12-31 23:59:59.999999", LAST),
        (_info("timestamp", fsp=3), "2038-01-19 03:14:07.999", Y2038),
        (_info("text"), "héllo 😀", "héllo 😀"),
        (_info("set"), ["a", "c"], ["a", "c"]),
        (_info("json"), {"a": [1, None]}, '{"a":[1,null]}'),
        (_info("binary"), base64.b64encode(b"\x00\xff").decode(), b"\x00\xff"),
    ],
)  # fmt: skip
def test_column_types_decode_to_the_source_values(info: Any, json_value: Any, decoded: Any) -> None:
    kind, convert = column_type(info)
    assert _round_trip(["null", kind], convert(json_value)) == decoded


def test_names_are_valid_avro_names() -> None:
    assert avro_name("order-items") == "order_items"
    assert avro_name("1st") == "_1st"
    assert avro_name("naïve") == "na_ve"


def test_wire_format_is_magic_byte_id_payload() -> None:
    assert avro_format.wire(258, b"xy") == b"\x00" + struct.pack(">I", 258) + b"xy"


def test_the_registry_client_sends_basic_auth() -> None:
    client = RegistryClient("http://registry:8081/", "svc", "s3cret:x")
    token = base64.b64encode(b"svc:s3cret:x").decode()
    assert client.headers["Authorization"] == f"Basic {token}"
    assert client.url == "http://registry:8081"
    assert "Authorization" not in RegistryClient("http://registry:8081").headers


def test_encoder_for_reads_the_credentials_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REG_USER", "svc")
    monkeypatch.setenv("REG_PASSWORD", "pw")
    parsed = _config(
        {"url": "http://r:1", "usernameEnv": "REG_USER", "passwordEnv": "REG_PASSWORD"}
    )
    encoder = avro_format.encoder_for(parsed)
    assert (
        encoder.registry.headers["Authorization"] == "Basic " + base64.b64encode(b"svc:pw").decode()
    )


def _config(registry: dict[str, Any], **kafka: Any) -> config.WorkerConfig:
    return config.parse(
        {
            "task": {"name": "t", "namespace": "n"},
            "source": {"host": "db", "user": "u", "passwordEnv": "P", "serverId": 5},
            "sink": {
                "kafka": {
                    "bootstrapServers": "k:9092",
                    "format": "avro",
                    "schemaRegistry": registry,
                    **kafka,
                }
            },
        }
    )


def test_avro_needs_a_registry_in_the_config() -> None:
    with pytest.raises(config.ConfigError, match="schemaRegistry"):
        config.parse(
            {
                "task": {"name": "t", "namespace": "n"},
                "source": {"host": "db", "user": "u", "passwordEnv": "P", "serverId": 5},
                "sink": {"kafka": {"bootstrapServers": "k:9092", "format": "avro"}},
            }
        )


class _Ids(RegistryClient):
    """Hands out ids without a registry: only the bytes are under test here (the registry
    itself is tests/integration/runtime/test_avro.py's)."""

    def register(self, subject: str, schema: str) -> int:
        return 7


COLUMNS = {
    "id": ColumnInfo(types.Column("id", "int"), "int(11)", 10, 0),
    "total": ColumnInfo(types.Column("total", "decimal"), "decimal(10,2)", 10, 2),
    "at": ColumnInfo(types.Column("at", "datetime", fsp=6), "datetime(6)", None, None),
}
ROWS = [
    {"id": 1, "total": "9.50", "at": "2024-02-29 10:00:00.000001"},
    {"id": 2, "total": None, "at": None},
]


def _encoder() -> avro_format.AvroEncoder:
    encoder = avro_format.AvroEncoder(
        _config({"url": "http://r:1"}), _Ids("http://r:1"), lambda: None
    )
    encoder._columns[("shop", "orders")] = COLUMNS
    return encoder


def _reference(encoder: avro_format.AvroEncoder, change: Change, task: str) -> bytes:
    """What fastavro writes for the whole Envelope datum: the bytes must be the same."""
    shape = encoder._shape("shop", "orders", change, "shop.orders")
    op = change.op
    before = change.old if op == "update" else change.data if op == "delete" else None
    file, _, pos = change.position.rpartition(":")
    datum = {
        "before": None if before is None else shape.row(before),
        "after": None if op == "delete" else shape.row(change.data),
        "source": {
            "connector": "ferry", "name": task, "ts_ms": change.ts * 1000,
            "snapshot": op == "read", "db": change.database, "table": change.table,
            "server_id": change.server_id, "file": file, "pos": int(pos), "xid": change.xid,
        },
        "op": {"insert": "c", "update": "u", "delete": "d", "read": "r"}[op],
        "ts_ms": change.ts * 1000,
        "transaction": change.extra.get("transaction"),
    }  # fmt: skip
    out = io.BytesIO()
    out.write(avro_format.wire(shape.value_id, b""))
    fastavro.schemaless_writer(out, shape.value_schema, datum)
    return out.getvalue()


TEMPLATE = Change(
    "shop", "orders", "read", {}, primary_key=("id",), ts=1700000000,
    position="binlog.000007:1234", server_id=9,
)  # fmt: skip


def test_snapshot_rows_encode_to_the_bytes_fastavro_writes_for_the_envelope() -> None:
    encoder = _encoder()
    batch = list(
        zip(
            *encoder.encode_reads("shop", "orders", TEMPLATE, ROWS, "shop.orders", "task"),
            strict=True,
        )
    )
    changes = [dataclasses.replace(TEMPLATE, data=row) for row in ROWS]
    assert [v for _, v in batch] == [_reference(encoder, c, "task") for c in changes]
    assert batch == [encoder.encode("shop", "orders", c, "shop.orders", "task") for c in changes]
    assert batch[0][1][:5] == b"\x00\x00\x00\x00\x07"


@pytest.mark.parametrize("op", ["insert", "update", "delete"])
def test_changes_encode_to_the_bytes_fastavro_writes_for_the_envelope(op: str) -> None:
    encoder = _encoder()
    change = dataclasses.replace(
        TEMPLATE, op=op, data=ROWS[0], old=ROWS[1] | {"id": 1}, xid=77,
        extra={"transaction": {"id": "0-1-5", "total_order": 3, "data_collection_order": 2}},
    )  # fmt: skip
    _, value = encoder.encode("shop", "orders", change, "shop.orders", "task")
    assert value == _reference(encoder, change, "task")
