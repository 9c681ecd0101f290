"""``format: avro``: Kafka records in the Confluent wire format with schemas in a registry.

Every key and value is ``0x00``, the schema's registry id (4 bytes, big-endian) and the
Avro binary encoding of the datum (fastavro). Each table (after mapping) has two schemas,
derived from its columns' types in information_schema:

- the key, record ``ferry.<db>.<table>.Key``: the primary key's columns (or the unique key
  standing in for it), required; a table without a key has ``{database, table}``, as the JSON
  formats' keys do;
- the value, record ``ferry.<db>.<table>.Envelope``, Debezium-like: ``before`` and ``after``
  (a ``Value`` record of the row, or null), ``source`` (connector, name, ts_ms, snapshot, db,
  table, server_id, file, pos, xid), ``op`` (c, u, d, r), ``ts_ms`` and ``transaction``
  (with sink.kafka.transactionTopic, else null). Every column of ``Value`` is optional (a
  union with null, default null), whether the source column is NULL-able or not: adding or
  dropping a column is then a compatible change in every direction, and a refusal by the
  registry means a column's type changed.

Types (:func:`column_type`): integers → long (BIGINT UNSIGNED and BIT(64) → decimal(20,0),
past a long's range); DECIMAL(p,s) → bytes with logical type decimal(p,s); FLOAT, DOUBLE →
double; DATE → int date; DATETIME → local-timestamp-millis (fsp ≤ 3) or -micros;
TIMESTAMP → timestamp-millis or -micros (UTC); TIME → long, signed microseconds (MySQL's
TIME is a duration from -838:59:59 to 838:59:59, outside Avro's time-of-day types); YEAR →
long; CHAR/VARCHAR/TEXT/ENUM → string; SET → array of strings; JSON → string (its text);
BINARY/VARBINARY/BLOB → bytes. A zero date ('0000-00-00') is null.

Schemas are registered under the subject strategy of sink.kafka.avro.subjectStrategy:
``topicName`` (``<topic>-key``, ``<topic>-value``) or ``recordName`` (the records' full
names). The registry is asked once per table shape: the schemas and their ids are cached by
the row's columns, and DDL on a table (:meth:`AvroEncoder.forget`) reads its types again; a
new shape registers a new version, which the registry checks against the subject's
compatibility level. A refusal stops the worker (SchemaIncompatible) before any record of
the batch is written.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import io
import os
import re
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import fastavro
import orjson
import pymysql

from ferry_runtime import errors, types
from ferry_runtime.config import WorkerConfig
from ferry_runtime.events import Change
from ferry_runtime.registry import RegistryClient

__all__ = [
    "AvroEncoder",
    "ColumnInfo",
    "column_type",
    "encoder_for",
    "envelope_schema",
    "wire",
]

_EPOCH_DATE = date(1970, 1, 1)
_EPOCH = datetime(1970, 1, 1)
_MICRO = timedelta(microseconds=1)
_OPS = {"insert": "c", "update": "u", "delete": "d", "read": "r"}
_INVALID = re.compile(r"[^A-Za-z0-9_]")

Convert = Callable[[Any], Any]


@dataclass(frozen=True)
class ColumnInfo:
    """What the Avro type of a column depends on (information_schema.COLUMNS)."""

    column: types.Column
    column_type: str  # COLUMN_TYPE: bigint(20) unsigned, bit(64), decimal(30,10)
    precision: int | None
    scale: int | None


def avro_name(name: str) -> str:
    """A valid Avro name: [A-Za-z_][A-Za-z0-9_]* (other characters become '_')."""
    cleaned = _INVALID.sub("_", name)
    return cleaned if cleaned and not cleaned[0].isdigit() else "_" + cleaned


def wire(schema_id: int, payload: bytes) -> bytes:
    """The Confluent wire format: magic byte 0, the schema id, the Avro binary."""
    return b"\x00" + struct.pack(">I", schema_id) + payload


# ---------------------------------------------------------------- values


def _date(value: Any) -> int | None:
    try:
        return (date.fromisoformat(value) - _EPOCH_DATE).days
    except ValueError:  # a zero date
        return None


def _micros(value: Any) -> int | None:
    try:
        return (datetime.fromisoformat(value) - _EPOCH) // _MICRO
    except ValueError:  # a zero datetime
        return None


def _millis(value: Any) -> int | None:
    micros = _micros(value)
    return None if micros is None else micros // 1000


def _time(value: Any) -> int:
    """``-838:59:59.000001`` → signed microseconds."""
    text = str(value)
    sign = -1 if text.startswith("-") else 1
    clock, _, fraction = text.lstrip("-").partition(".")
    hours, minutes, seconds = (int(part) for part in clock.split(":"))
    micros = int((fraction + "000000")[:6]) if fraction else 0
    return sign * (((hours * 60 + minutes) * 60 + seconds) * 1_000_000 + micros)


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _decimal(precision: int, scale: int) -> dict[str, Any]:
    return {"type": "bytes", "logicalType": "decimal", "precision": precision, "scale": scale}


def column_type(info: ColumnInfo) -> tuple[Any, Convert]:
    """The Avro type of a column and the conversion of its JSON value (types.to_json) to
    the Avro datum fastavro writes."""
    column, kind = info.column, info.column.kind
    lowered = info.column_type.lower()
    if kind == "int" and lowered.startswith("bigint") and "unsigned" in lowered:
        return _decimal(20, 0), lambda v: Decimal(int(v))
    if kind == "bit":
        width = int(re.sub(r"\D", "", lowered) or 1)
        if width >= 64:
            return _decimal(20, 0), lambda v: Decimal(int(v))
        return "long", int
    if kind in ("int", "year"):
        return "long", int
    if kind == "decimal":
        precision = info.precision or 10
        return _decimal(precision, info.scale or 0), Decimal
    if kind in ("float", "double"):
        return "double", float
    if kind == "date":
        return {"type": "int", "logicalType": "date"}, _date
    if kind == "time":
        return {"type": "long", "doc": "MySQL TIME: signed microseconds"}, _time
    if kind in ("datetime", "timestamp"):
        local = "local-" if kind == "datetime" else ""
        if column.fsp > 3:
            return {"type": "long", "logicalType": f"{local}timestamp-micros"}, _micros
        return {"type": "long", "logicalType": f"{local}timestamp-millis"}, _millis
    if kind in ("text", "enum"):
        return "string", str
    if kind == "set":
        return {"type": "array", "items": "string"}, list
    if kind == "json":
        return "string", _json
    return "bytes", base64.b64decode  # binary


def _unknown() -> tuple[Any, Convert]:
    """A column the source no longer has (dropped since the row was written): its JSON."""
    return {"type": "string", "doc": "JSON text: the column is gone from the source"}, _json


# ---------------------------------------------------------------- schemas

_SOURCE = {
    "type": "record",
    "name": "Source",
    "namespace": "ferry",
    "fields": [
        {"name": "connector", "type": "string"},
        {"name": "name", "type": "string"},
        {"name": "ts_ms", "type": "long"},
        {"name": "snapshot", "type": "boolean"},
        {"name": "db", "type": "string"},
        {"name": "table", "type": "string"},
        {"name": "server_id", "type": "long"},
        {"name": "file", "type": "string"},
        {"name": "pos", "type": "long"},
        {"name": "xid", "type": ["null", "long"], "default": None},
    ],
}
_TRANSACTION = {
    "type": "record",
    "name": "Transaction",
    "namespace": "ferry",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "total_order", "type": "long"},
        {"name": "data_collection_order", "type": "long"},
    ],
}


def namespace(database: str, table: str) -> str:
    return f"ferry.{avro_name(database)}.{avro_name(table)}"


def envelope_schema(ns: str, fields: list[tuple[str, Any]]) -> dict[str, Any]:
    """The value schema: the Envelope around a Value record of ``fields`` (name, type)."""
    value = {
        "type": "record",
        "name": "Value",
        "namespace": ns,
        "fields": [
            {"name": name, "type": ["null", kind], "default": None} for name, kind in fields
        ],
    }
    return {
        "type": "record",
        "name": "Envelope",
        "namespace": ns,
        "fields": [
            {"name": "before", "type": ["null", value], "default": None},
            {"name": "after", "type": ["null", "Value"], "default": None},
            {"name": "source", "type": _SOURCE},
            {"name": "op", "type": "string"},
            {"name": "ts_ms", "type": "long"},
            {"name": "transaction", "type": ["null", _TRANSACTION], "default": None},
        ],
    }


def key_schema(ns: str, fields: list[tuple[str, Any]]) -> dict[str, Any]:
    return {
        "type": "record",
        "name": "Key",
        "namespace": ns,
        "fields": [{"name": name, "type": kind} for name, kind in fields],
    }


@dataclass
class _Shape:
    """One table shape: its schemas' ids and how to turn a row into their datums."""

    key_id: int
    value_id: int
    key_schema: Any  # parsed
    value_schema: Any  # parsed
    row_schema: Any  # the Value record alone, parsed (the snapshot's hot path)
    fields: list[tuple[str, str, Convert]]  # (row key, Avro field name, conversion)
    key_fields: list[tuple[str, str, Convert]]  # () for a table without a key

    def row(self, data: dict[str, Any]) -> dict[str, Any]:
        return {
            name: None if (value := data.get(source)) is None else convert(value)
            for source, name, convert in self.fields
        }


class AvroEncoder:
    """Encodes mapped changes as Avro records, registering each table shape's schemas."""

    def __init__(
        self,
        config: WorkerConfig,
        registry: RegistryClient,
        connect: Callable[[], Any],
    ) -> None:
        kafka = config.sink.kafka
        assert kafka is not None
        self.config = config
        self.registry = registry
        self.strategy = kafka.avro.subject_strategy if kafka.avro else "topicName"
        self._connect = connect
        self._conn: Any = None
        self._columns: dict[tuple[str, str], dict[str, ColumnInfo]] = {}
        self._shapes: dict[tuple[str, str, str, tuple[str, ...]], _Shape] = {}

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(pymysql.err.Error):
                self._conn.close()
            self._conn = None

    def forget(self, tables: Sequence[tuple[str, str]] | None = None) -> None:
        """DDL on ``tables`` (source names; None: all): read their types again."""
        for key in list(self._columns):
            if tables is None or key in tables:
                del self._columns[key]
        for shape in list(self._shapes):
            if tables is None or (shape[0], shape[1]) in tables:
                del self._shapes[shape]

    # ------------------------------------------------------------ encoding

    def encode(
        self, source_db: str, source_table: str, change: Change, topic: str, task: str
    ) -> tuple[bytes, bytes]:
        """(key, value) of the mapped ``change`` of source table ``source_db.source_table``."""
        shape = self._shape(source_db, source_table, change, topic)
        return self._key(shape, change.data, change), self._value(shape, change, task)

    def encode_reads(
        self,
        source_db: str,
        source_table: str,
        template: Change,
        rows: Sequence[dict[str, Any]],
        topic: str,
        task: str,
    ) -> tuple[list[bytes], list[bytes]]:
        """:meth:`encode` of snapshot rows of one table read at one position: their keys
        and values, the same bytes, with the Envelope's parts that every row shares made
        once — ``before`` null, the ``after`` branch, then ``source``, ``op`` "r", ``ts_ms``
        and a null ``transaction`` — so that only the row itself goes through fastavro."""
        tail = _source_bytes(template, task) + _string("r") + _long(template.ts * 1000) + b"\x00"
        shape: _Shape | None = None
        columns: tuple[str, ...] = ()
        head = b""
        write = fastavro.schemaless_writer
        keys: list[bytes] = []
        values: list[bytes] = []
        for row in rows:
            if shape is None or tuple(row) != columns:
                columns = tuple(row)
                shape = self._shape(source_db, source_table, _with(template, row), topic)
                head = wire(shape.value_id, b"\x00\x02")  # before: null; after: the row
            out = io.BytesIO()
            out.write(head)
            write(out, shape.row_schema, shape.row(row))
            out.write(tail)
            keys.append(self._key(shape, row, template))
            values.append(out.getvalue())
        return keys, values

    def _key(self, shape: _Shape, data: dict[str, Any], change: Change) -> bytes:
        if shape.key_fields:
            datum = {
                name: convert(value) if (value := data.get(src)) is not None else None
                for src, name, convert in shape.key_fields
            }
        else:
            datum = {"database": change.database, "table": change.table}
        return _write(shape.key_id, shape.key_schema, datum)

    def _value(self, shape: _Shape, change: Change, task: str) -> bytes:
        """The Envelope's bytes, written field by field (fastavro only for the rows: picking
        a union's record branch is most of its cost); a unit test reads them back with the
        whole Envelope schema."""
        op = change.op
        before = change.old if op == "update" else change.data if op == "delete" else None
        out = io.BytesIO()
        out.write(wire(shape.value_id, b""))
        for row in (before, None if op == "delete" else change.data):
            if row is None:
                out.write(b"\x00")
            else:
                out.write(b"\x02")
                fastavro.schemaless_writer(out, shape.row_schema, shape.row(row))
        out.write(_source_bytes(change, task))
        out.write(_string(_OPS[op]) + _long(change.ts * 1000))
        block = change.extra.get("transaction")
        if block is None:
            out.write(b"\x00")
        else:
            out.write(b"\x02" + _string(str(block["id"])))
            out.write(_long(block["total_order"]) + _long(block["data_collection_order"]))
        return out.getvalue()

    # ------------------------------------------------------------ schemas

    def _shape(self, source_db: str, source_table: str, change: Change, topic: str) -> _Shape:
        cache_key = (source_db, source_table, topic, tuple(change.data))
        shape = self._shapes.get(cache_key)
        if shape is None:
            shape = self._shapes[cache_key] = self._new_shape(
                source_db, source_table, change, topic
            )
        return shape

    def _new_shape(self, source_db: str, source_table: str, change: Change, topic: str) -> _Shape:
        infos = self._table_columns(source_db, source_table)
        mapping = self.config.mapping_for(source_db, source_table)
        renamed = {new: old for old, new in mapping.columns.items()} if mapping else {}
        typed: dict[str, tuple[str, Any, Convert]] = {}
        used: set[str] = set()
        for column in change.data:
            info = infos.get(renamed.get(column, column))
            kind, convert = column_type(info) if info is not None else _unknown()
            name = avro_name(column)
            while name in used:  # two names that clean to the same one
                name += "_"
            used.add(name)
            typed[column] = (name, kind, convert)
        ns = namespace(change.database, change.table)
        fields = [(name, kind) for name, kind, _ in typed.values()]
        value = envelope_schema(ns, fields)
        if change.primary_key:
            key_columns = [(c, typed[c]) for c in change.primary_key if c in typed]
            key = key_schema(ns, [(name, kind) for _, (name, kind, _) in key_columns])
            key_fields = [(c, name, convert) for c, (name, _, convert) in key_columns]
        else:
            key = key_schema(ns, [("database", "string"), ("table", "string")])
            key_fields = []
        key_id = self.registry.register(self._subject(topic, key, "key"), _text(key))
        value_id = self.registry.register(self._subject(topic, value, "value"), _text(value))
        return _Shape(
            key_id,
            value_id,
            fastavro.parse_schema(key),
            fastavro.parse_schema(value),
            fastavro.parse_schema(copy.deepcopy(value["fields"][0]["type"][1])),
            [(column, name, convert) for column, (name, _, convert) in typed.items()],
            key_fields,
        )

    def _subject(self, topic: str, schema: dict[str, Any], part: str) -> str:
        if self.strategy == "recordName":
            return f"{schema['namespace']}.{schema['name']}"
        return f"{topic}-{part}"

    def _table_columns(self, database: str, table: str) -> dict[str, ColumnInfo]:
        key = (database, table)
        if key not in self._columns:
            try:
                self._columns[key] = self._load(database, table)
            except pymysql.err.MySQLError as error:
                self.close()
                raise errors.from_mysql(
                    error,
                    f"reading the column types of {database}.{table} for its Avro schema",
                    tls=self.config.source.tls,
                ) from None
        return self._columns[key]

    def _load(self, database: str, table: str) -> dict[str, ColumnInfo]:
        if self._conn is None:
            self._conn = self._connect()
        with self._conn.cursor() as cursor:
            cursor.execute(
                "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS "
                "WHERE CONSTRAINT_SCHEMA = %s AND TABLE_NAME = %s",
                (database, table),
            )
            json_columns = {
                m.group(1)
                for (clause,) in cursor.fetchall()
                for m in re.finditer(r"json_valid\(`([^`]+)`\)", str(clause), re.IGNORECASE)
            }
            cursor.execute(
                "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, DATETIME_PRECISION, "
                "NUMERIC_PRECISION, NUMERIC_SCALE FROM information_schema.COLUMNS "
                "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
                (database, table),
            )
            found = cursor.fetchall()
        return {
            str(name): ColumnInfo(
                types.from_information_schema(
                    str(name), str(data_type), str(column_type), fsp, name in json_columns
                ),
                str(column_type),
                None if precision is None else int(precision),
                None if scale is None else int(scale),
            )
            for name, data_type, column_type, fsp, precision, scale in found
        }


def _with(template: Change, row: dict[str, Any]) -> Change:
    return Change(template.database, template.table, template.op, row, None, template.primary_key)


def _source_bytes(change: Change, task: str) -> bytes:
    """The ``source`` record (ferry.Source, field by field)."""
    file, _, pos = change.position.rpartition(":")
    xid = b"\x00" if change.xid is None else b"\x02" + _long(change.xid)
    return b"".join(
        (
            _string("ferry"),
            _string(task),
            _long(change.ts * 1000),
            b"\x01" if change.op == "read" else b"\x00",
            _string(change.database),
            _string(change.table),
            _long(change.server_id),
            _string(file),
            _long(int(pos) if pos.isdigit() else 0),
            xid,
        )
    )


def _text(schema: dict[str, Any]) -> str:
    return orjson.dumps(schema).decode()


def _long(value: int) -> bytes:
    """Avro's long: zig-zag, then a little-endian base-128 varint."""
    number = (value << 1) ^ (value >> 63)
    out = bytearray()
    while number & ~0x7F:
        out.append((number & 0x7F) | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)


def _string(value: str) -> bytes:
    raw = value.encode()
    return _long(len(raw)) + raw


def _write(schema_id: int, parsed: Any, datum: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    out.write(b"\x00" + struct.pack(">I", schema_id))
    fastavro.schemaless_writer(out, parsed, datum)
    return out.getvalue()


def encoder_for(config: WorkerConfig) -> AvroEncoder:
    """The encoder of a task with format avro: its registry (basic auth from the environment
    variables the config names) and a source connection for column types."""
    from ferry_runtime.source import mysql  # the source's connection settings (TLS, …)

    kafka = config.sink.kafka
    assert kafka is not None and kafka.schema_registry is not None
    settings = kafka.schema_registry
    username = os.environ.get(settings.username_env) if settings.username_env else None
    password = os.environ.get(settings.password_env) if settings.password_env else None
    client = RegistryClient(settings.url, username, password)
    return AvroEncoder(config, client, lambda: mysql.connect(config.source))
