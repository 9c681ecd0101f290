"""MySQL column values → JSON values, the same way for the binlog and the snapshot.

The binlog (python-mysql-replication) and a SELECT (PyMySQL) hand over different Python
values for the same cell: a FLOAT is widened from float32 in one and parsed from text in the
other, BIT is a '0101' string or bytes, SET is a Python set or 'a,b', BINARY(n) loses its
trailing zero bytes in the binlog. :class:`Column` says what a column holds, and
:func:`to_json` turns either form into one JSON value:

========================  ====================================================
integers (all widths)     JSON number (unsigned kept unsigned)
DECIMAL                   string, exact (``"12.50"``)
FLOAT                     number, shortest text that round-trips as float32
DOUBLE                    number
BIT(n)                    number (the bits as an unsigned integer)
DATE / YEAR               ``"2024-02-29"`` / number
TIME                      ``"-838:59:59.000000"`` (fraction to the column's fsp)
DATETIME / TIMESTAMP      ``"2024-02-29 13:14:15.123"`` (TIMESTAMP in UTC)
CHAR/VARCHAR/TEXT         string
BINARY/VARBINARY/BLOB     base64 string
ENUM                      string
SET                       list of strings in definition order
JSON                      the parsed value (MariaDB stores JSON as LONGTEXT)
NULL                      null
========================  ====================================================
"""

from __future__ import annotations

import base64
import functools
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

__all__ = [
    "Column",
    "Converter",
    "Kind",
    "binlog_converter",
    "binlog_passthrough",
    "binlog_to_json",
    "converter",
    "float32",
    "from_binlog_column",
    "from_information_schema",
    "read_passthrough",
    "to_json",
]

Kind = Literal[
    "int", "decimal", "float", "double", "bit", "date", "time", "datetime", "timestamp",
    "year", "text", "binary", "enum", "set", "json",
]  # fmt: skip

JsonValue = Any


@dataclass(frozen=True)
class Column:
    """What one column holds, as far as JSON conversion cares."""

    name: str
    kind: Kind
    fsp: int = 0  # fractional seconds digits of TIME/DATETIME/TIMESTAMP
    pad_to: int = 0  # BINARY(n): the binlog strips trailing 0x00, pad back to n bytes
    values: tuple[str, ...] = ()  # ENUM/SET members in definition order


# ---------------------------------------------------------------- column descriptions

_INFO_KINDS: dict[str, Kind] = {
    **dict.fromkeys(["tinyint", "smallint", "mediumint", "int", "integer", "bigint"], "int"),
    **dict.fromkeys(["decimal", "numeric"], "decimal"),
    "float": "float",
    **dict.fromkeys(["double", "real", "double precision"], "double"),
    "bit": "bit",
    "date": "date",
    "time": "time",
    "datetime": "datetime",
    "timestamp": "timestamp",
    "year": "year",
    **dict.fromkeys(["char", "varchar", "tinytext", "text", "mediumtext", "longtext"], "text"),
    "enum": "enum",
    "set": "set",
    "json": "json",
}


def _members(column_type: str) -> tuple[str, ...]:
    """``enum('a','b''c')`` → ('a', "b'c")."""
    inner = column_type[column_type.index("(") + 1 : column_type.rindex(")")]
    members: list[str] = []
    current: list[str] = []
    quoted = False
    index = 0
    while index < len(inner):
        char = inner[index]
        if quoted:
            if char == "'" and inner[index + 1 : index + 2] == "'":
                current.append("'")
                index += 1
            elif char == "'":
                quoted = False
                members.append("".join(current))
                current = []
            else:
                current.append(char)
        elif char == "'":
            quoted = True
        index += 1
    return tuple(members)


def from_information_schema(
    name: str, data_type: str, column_type: str, fsp: int | None, is_json: bool
) -> Column:
    """A Column from information_schema.COLUMNS (DATA_TYPE, COLUMN_TYPE, DATETIME_PRECISION)."""
    data_type = data_type.lower()
    if is_json:
        return Column(name, "json")
    kind: Kind = _INFO_KINDS.get(data_type, "binary")
    if kind in ("enum", "set"):
        return Column(name, kind, values=_members(column_type))
    if kind in ("time", "datetime", "timestamp"):
        return Column(name, kind, fsp=fsp or 0)
    if data_type == "binary":
        return Column(name, "binary", pad_to=int(column_type[column_type.index("(") + 1 : -1]))
    return Column(name, kind)


# python-mysql-replication FIELD_TYPE codes
_BINLOG_KINDS: dict[int, Kind] = {
    1: "int", 2: "int", 3: "int", 8: "int", 9: "int",  # TINY SHORT LONG LONGLONG INT24
    0: "decimal", 246: "decimal",  # DECIMAL NEWDECIMAL
    4: "float", 5: "double", 16: "bit",
    10: "date", 14: "date",  # DATE NEWDATE
    11: "time", 19: "time",  # TIME TIME2
    12: "datetime", 18: "datetime",  # DATETIME DATETIME2
    7: "timestamp", 17: "timestamp",  # TIMESTAMP TIMESTAMP2
    13: "year", 247: "enum", 248: "set", 245: "json",
}  # fmt: skip
_STRINGS = {15, 253, 254, 249, 250, 251, 252, 255}  # VARCHAR VAR_STRING STRING *BLOB GEOMETRY


def from_binlog_column(column: Any, is_json: bool = False) -> Column:
    """A Column from a TableMap event's column (binlog_row_metadata=FULL gives names)."""
    name = str(column.name)
    code = int(column.type)
    if is_json:
        return Column(name, "json")
    if code in _STRINGS:
        charset = getattr(column, "character_set_name", None)
        if code == 255 or charset in (None, "binary"):
            pad = int(getattr(column, "max_length", 0) or 0) if code == 254 else 0
            return Column(name, "binary", pad_to=pad)
        return Column(name, "text")
    kind = _BINLOG_KINDS.get(code)
    if kind is None:
        raise ValueError(f"column {name}: unsupported binlog column type {code}")
    if kind == "enum":
        return Column(name, kind, values=tuple(getattr(column, "enum_values", None) or ()))
    if kind == "set":
        return Column(name, kind, values=tuple(getattr(column, "set_values", None) or ()))
    return Column(name, kind, fsp=int(getattr(column, "fsp", 0) or 0))


# ---------------------------------------------------------------- values


def float32(value: float) -> float:
    """The shortest decimal that reads back as the same float32 (1.1, not 1.100000023841858)."""
    packed = struct.pack("<f", value)
    for digits in range(6, 10):
        candidate = float(f"{value:.{digits}g}")
        if struct.pack("<f", candidate) == packed:
            return candidate
    return value


def _fraction(microseconds: int, fsp: int) -> str:
    return f".{microseconds:06d}"[: fsp + 1] if fsp else ""


def _time(value: timedelta, fsp: int) -> str:
    sign = "-" if value < timedelta(0) else ""
    micros = abs(value.days * 86_400_000_000 + value.seconds * 1_000_000 + value.microseconds)
    seconds, micro = divmod(micros, 1_000_000)
    hours, rest = divmod(seconds, 3600)
    return f"{sign}{hours:02d}:{rest // 60:02d}:{rest % 60:02d}{_fraction(micro, fsp)}"


def _datetime(value: datetime, fsp: int) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") + _fraction(value.microsecond, fsp)


def _bytes(value: Any) -> bytes:
    return value.encode("utf-8", "surrogateescape") if isinstance(value, str) else bytes(value)


def _set(value: Any, members: tuple[str, ...]) -> list[str]:
    chosen = set(value.split(",")) - {""} if isinstance(value, str) else set(value)
    ordered = [m for m in members if m in chosen]
    return ordered + sorted(chosen - set(ordered))


def _json(value: Any) -> JsonValue:
    if isinstance(value, bytes | bytearray):
        value = value.decode("utf-8")
    if isinstance(value, str):
        return json.loads(value)
    return _plain(value)


def _plain(value: Any) -> JsonValue:
    """MySQL binary JSON decodes with bytes keys and strings; make them text."""
    if isinstance(value, dict):
        return {_text(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return value


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes | bytearray) else str(value)


Converter = Callable[[Any], JsonValue]


def _identity_if(kind: type, slow: Converter) -> Converter:
    """Values that are already JSON-ready (ints, str) pass through without a dispatch."""

    def convert(value: Any) -> JsonValue:
        return value if value is None or type(value) is kind else slow(value)

    return convert


@functools.lru_cache(maxsize=4096)
def converter(column: Column) -> Converter:
    """A function converting one cell of ``column`` (cached per column: the hot path)."""

    def slow(value: Any) -> JsonValue:
        return to_json(column, value)

    if column.kind in ("int", "year"):
        return _identity_if(int, slow)
    if column.kind in ("text", "enum"):
        return _identity_if(str, slow)
    if column.kind == "double":
        return _identity_if(float, slow)
    if column.kind in ("decimal", "date", "time", "datetime", "timestamp"):
        return _identity_if(str, slow)  # the server's text (a snapshot read) is the value
    return lambda value: None if value is None else slow(value)


def read_passthrough(column: Column) -> bool:
    """Whether a value read by a SELECT (the snapshot's readers; DECIMAL and temporal types as
    the server's text) already is the JSON value: numbers, text and those texts."""
    return column.kind in (
        "int", "year", "double", "text", "enum", "decimal", "date", "time", "datetime",
        "timestamp",
    )  # fmt: skip


def binlog_passthrough(column: Column) -> bool:
    """Whether python-mysql-replication's value already is the JSON value: ints, floats and
    decoded text (the hot path skips these columns entirely)."""
    return column.kind in ("int", "year", "double", "text", "enum")


@functools.lru_cache(maxsize=4096)
def binlog_converter(column: Column) -> Converter:
    """Like :func:`converter`, for values decoded by python-mysql-replication."""
    if column.kind == "time":
        return lambda value: binlog_to_json(column, value)
    return converter(column)


def to_json(column: Column, value: Any) -> JsonValue:
    """Convert one cell, from either the binlog or a SELECT, to its JSON value."""
    if value is None:
        return None
    kind = column.kind
    if kind in ("int", "year"):
        return int(value)
    if kind == "decimal":
        return format(Decimal(value), "f")
    if kind == "float":
        return float32(float(value))
    if kind == "double":
        return float(value)
    if kind == "bit":
        if isinstance(value, str):
            return int(value, 2) if value else 0
        return int.from_bytes(_bytes(value), "big")
    if kind == "date":
        return value.isoformat() if isinstance(value, date) else str(value)
    if kind == "time":
        return _time(value, column.fsp) if isinstance(value, timedelta) else str(value)
    if kind in ("datetime", "timestamp"):
        return _datetime(value, column.fsp) if isinstance(value, datetime) else str(value)
    if kind in ("text", "enum"):
        return _text(value)
    if kind == "binary":
        raw = _bytes(value)
        if len(raw) < column.pad_to:
            raw = raw.ljust(column.pad_to, b"\0")
        return base64.b64encode(raw).decode("ascii")
    if kind == "set":
        return _set(value, column.values)
    return _json(value)


def _fix_negative_time2(value: timedelta) -> timedelta:
    """python-mysql-replication 1.0.17 decodes a negative TIME2 with a fraction as
    -(seconds + (1 - fraction)); -00:00:00.000001 comes out as -00:00:00.999999."""
    magnitude = -(value // timedelta(microseconds=1))
    seconds, fraction = divmod(magnitude, 1_000_000)
    if value >= timedelta(0) or fraction == 0:
        return value
    return -timedelta(seconds=seconds, microseconds=1_000_000 - fraction)


def binlog_to_json(column: Column, value: Any) -> JsonValue:
    """Like :func:`to_json`, for a value decoded by python-mysql-replication."""
    if column.kind == "time" and isinstance(value, timedelta):
        value = _fix_negative_time2(value)
    return to_json(column, value)
