"""The row decoders' pure pieces on hand-made bytes (the differential test against the
library and the server is tests/integration/runtime/test_row_decoder.py)."""

from __future__ import annotations

import struct
from types import SimpleNamespace
from typing import Any

import pytest

from ferry_runtime import types
from ferry_runtime.source import rows

DATE, TIME2, DATETIME2, TIMESTAMP2 = rows.DATE, rows.TIME2, rows.DATETIME2, rows.TIMESTAMP2


@pytest.mark.parametrize(
    ("hex_bytes", "precision", "scale", "expected"),
    [
        # the examples of MySQL's decimal2bin() documentation (strings/decimal.cc)
        ("810DFB38D204D2", 14, 4, "1234567890.1234"),
        ("7EF204C72DFB2D", 14, 4, "-1234567890.1234"),
        ("800000030939", 12, 2, "777.57"),
        ("80", 1, 0, "0"),
        ("89", 1, 0, "9"),
        ("76", 1, 0, "-9"),
        ("80000000", 9, 9, "0.000000000"),
        ("7FFFFFFE", 9, 9, "-0.000000001"),
        ("8000000000000000", 18, 9, "0.000000000"),
    ],
)
def test_decimal_bytes_to_exact_text(
    hex_bytes: str, precision: int, scale: int, expected: str
) -> None:
    raw = bytes.fromhex(hex_bytes)
    assert rows.decimal_reader(precision, scale)[1] == len(raw)
    assert rows.decimal_text(raw, precision, scale) == expected


def _decimal_bytes(text: str, precision: int, scale: int) -> bytes:
    """MySQL's encoding, written from its description: groups of nine digits in 4 bytes,
    leftover digits in 1-4 bytes, big-endian, sign bit flipped, inverted when negative."""
    dig2bytes = (0, 1, 1, 2, 2, 3, 3, 4, 4, 4)
    negative = text.startswith("-")
    whole, _, fraction = text.lstrip("-").partition(".")
    whole = whole.lstrip("0").rjust(precision - scale, "0") if precision > scale else ""
    fraction = fraction.ljust(scale, "0")
    out = b""
    lead = len(whole) % 9
    if lead:
        out += int(whole[:lead]).to_bytes(dig2bytes[lead], "big")
    for start in range(lead, len(whole), 9):
        out += int(whole[start : start + 9]).to_bytes(4, "big")
    for start in range(0, len(fraction), 9):
        group = fraction[start : start + 9]
        out += int(group).to_bytes(4 if len(group) == 9 else dig2bytes[len(group)], "big")
    data = bytearray(out)
    if negative:
        data = bytearray(b ^ 0xFF for b in data)
    data[0] ^= 0x80
    return bytes(data)


@pytest.mark.parametrize(
    ("text", "precision", "scale"),
    [
        ("-12345678901234567890.0123456789", 30, 10),
        ("99999999999999999999999999999999999.999999999999999999999999999999", 65, 30),
        ("-0.000000000000000000000000000001", 65, 30),
        ("123456789012", 12, 0),
        ("-1.5", 5, 2),
        ("0.12", 10, 10),
    ],
)
def test_decimal_round_trips_through_its_encoding(text: str, precision: int, scale: int) -> None:
    raw = _decimal_bytes(text, precision, scale)
    want = str(types.to_json(types.Column("d", "decimal"), text))  # exact, as the other paths
    if scale:
        whole, _, fraction = want.partition(".")
        want = f"{whole}.{fraction.ljust(scale, '0')}"
    assert rows.decimal_text(raw, precision, scale) == want


@pytest.mark.parametrize(
    ("hex_bytes", "fsp", "expected"),
    [
        ("80C8B8", 0, "12:34:56"),
        ("4B9105", 0, "-838:59:59"),
        ("800000", 0, "00:00:00"),
        ("7FFFFFFFFFFF", 6, "-00:00:00.000001"),  # the library says -00:00:00.999999
        ("7FFFFECE", 1, "-00:00:01.5"),
        ("7FFFFECE", 2, "-00:00:01.50"),
        ("80100032", 2, "01:00:00.50"),
        ("80100013 88".replace(" ", ""), 4, "01:00:00.5000"),
    ],
)
def test_time2(hex_bytes: str, fsp: int, expected: str) -> None:
    reader, size = rows.temporal_reader(TIME2, fsp)
    assert size == len(bytes.fromhex(hex_bytes))
    assert reader(bytes.fromhex(hex_bytes)) == expected


def _datetime2(year: int, month: int, day: int, h: int, m: int, s: int) -> bytes:
    ymd = (year * 13 + month) << 5 | day
    return (((ymd << 17) | (h << 12) | (m << 6) | s) + 0x8000000000).to_bytes(5, "big")


LEAP = _datetime2(2024, 2, 29, 13, 14, 15)
LAST = _datetime2(9999, 12, 31, 23, 59, 59)


@pytest.mark.parametrize(
    ("raw", "fsp", "expected"),
    [
        (LEAP, 0, "2024-02-29 13:14:15"),
        (LEAP + (1230).to_bytes(2, "big"), 3, "2024-02-29 13:14:15.123"),
        (LEAP + (1230).to_bytes(2, "big"), 4, "2024-02-29 13:14:15.1230"),
        (LEAP + (50).to_bytes(1, "big"), 1, "2024-02-29 13:14:15.5"),
        (LAST + (999999).to_bytes(3, "big"), 6, "9999-12-31 23:59:59.999999"),
        # strftime's %Y (the snapshot and library paths) does not pad years below 1000
        (_datetime2(999, 1, 1, 0, 0, 0), 0, "999-01-01 00:00:00"),
        # the zero and invalid values read as the server prints them (the library: NULL)
        (_datetime2(0, 0, 0, 0, 0, 0) + bytes(3), 6, "0000-00-00 00:00:00.000000"),
        (_datetime2(2024, 2, 31, 0, 0, 0), 0, "2024-02-31 00:00:00"),
        (_datetime2(999, 2, 31, 0, 0, 0), 0, "0999-02-31 00:00:00"),
    ],
)  # fmt: skip
def test_datetime2(raw: bytes, fsp: int, expected: str) -> None:
    assert rows.temporal_text(DATETIME2, raw, fsp) == expected
    assert rows.temporal_text(DATETIME2, raw, fsp) == expected  # and from the cache


@pytest.mark.parametrize(
    ("seconds", "fraction", "fsp", "expected"),
    [
        (1, b"", 0, "1970-01-01 00:00:01"),
        (2147483647, (999999).to_bytes(3, "big"), 6, "2038-01-19 03:14:07.999999"),
        (1709212455, (5).to_bytes(1, "big"), 2, "2024-02-29 13:14:15.05"),
        (0, b"\0\0", 3, "0000-00-00 00:00:00.000"),  # the zero TIMESTAMP (library: 1970-…)
    ],
)
def test_timestamp2_is_utc(seconds: int, fraction: bytes, fsp: int, expected: str) -> None:
    assert rows.temporal_text(TIMESTAMP2, seconds.to_bytes(4, "big") + fraction, fsp) == expected


@pytest.mark.parametrize(
    ("year", "month", "day", "expected"),
    [(2024, 2, 29, "2024-02-29"), (999, 1, 1, "0999-01-01"), (0, 0, 0, "0000-00-00")],
)
def test_date(year: int, month: int, day: int, expected: str) -> None:
    raw = (year << 9 | month << 5 | day).to_bytes(3, "little")
    assert rows.temporal_text(DATE, raw, 0) == expected


# ---------------------------------------------------------------- whole row images


def _col(code: int, name: str, **extra: Any) -> SimpleNamespace:
    return SimpleNamespace(**{"type": code, "name": name, "unsigned": False, **extra})


COLUMNS = [
    _col(rows.LONG, "id"),
    _col(rows.TINY, "u", unsigned=True),
    _col(rows.VARCHAR, "txt", max_length=400, character_set_name="utf8"),
    _col(rows.STRING, "bn", max_length=4, character_set_name="binary"),
    _col(rows.SET, "st", size=1, set_values=["a", "b", "c"]),
    _col(rows.ENUM, "en", size=1, enum_values=["", "x", "y"]),
    _col(rows.YEAR, "y"),
    _col(rows.FLOAT, "fl"),
    _col(rows.BLOB, "js", length_size=4, character_set_name="utf8"),
    _col(rows.VARCHAR, "l1", max_length=10, character_set_name="cp1252"),
]
KINDS = [types.from_binlog_column(c, c.name == "js") for c in COLUMNS]


def _decoder() -> rows.TableDecoder:
    decoder = rows.table_decoder(COLUMNS, KINDS, "db.t")
    assert decoder is not None
    return decoder


def _full_row(**values: Any) -> bytes:
    text, js, l1 = "héllo😀".encode(), b'{"a": [1, 2.5]}', "€é".encode("cp1252")
    return (
        bytes(2)  # no NULLs among 10 columns
        + struct.pack("<iB", values.get("id", 7), 255)
        + struct.pack("<H", len(text)) + text
        + b"\x01" + b"\x01"  # BINARY(4): the binlog drops trailing zero bytes
        + b"\x00"  # empty SET
        + b"\x02"  # the second ENUM member
        + b"\x00"  # YEAR 0000
        + struct.pack("<f", 1.1)
        + struct.pack("<I", len(js)) + js
        + bytes([len(l1)]) + l1
    )  # fmt: skip


def test_a_full_image_of_every_kind() -> None:
    image = _decoder().image(b"\xff\x03")
    body = _full_row() + _full_row(id=8)
    first, pos = image(body, 0)
    assert first == {
        "id": 7, "u": 255, "txt": "héllo😀", "bn": "AQAAAA==", "st": [], "en": "y", "y": 0,
        "fl": 1.1, "js": {"a": [1, 2.5]}, "l1": "€é",
    }  # fmt: skip
    assert list(first) == [c.name for c in COLUMNS]  # the table's column order
    second, end = image(body, pos)
    assert second["id"] == 8
    assert end == len(body)


def test_nulls_and_absent_columns_are_none() -> None:
    # columns-present bitmap: id, txt and y only (a MINIMAL image); then txt is NULL
    image = _decoder().image(bytes([0b0100_0101, 0]))
    body = bytes([0b010]) + struct.pack("<i", -5) + bytes([24])
    values, end = image(body, 0)
    assert end == len(body)
    assert values == {
        "id": -5, "u": None, "txt": None, "bn": None, "st": None, "en": None, "y": 1924,
        "fl": None, "js": None, "l1": None,
    }  # fmt: skip


def test_decoders_are_compiled_once_per_bitmap() -> None:
    decoder = _decoder()
    assert decoder.image(b"\xff\x03") is decoder.image(b"\xff\x03")
    assert decoder.image(b"\xff\x03") is not decoder.image(b"\x01\x00")


@pytest.mark.parametrize(
    "column",
    [
        _col(12, "old_datetime"),  # pre-5.6 temporal format
        _col(0, "old_decimal"),
        _col(245, "mysql_json", length_size=4),
        _col(255, "geometry", length_size=4),
        _col(rows.VARCHAR, "ascii", max_length=10, character_set_name="ascii"),
        _col(rows.VARCHAR, "unknown_charset", max_length=10, character_set_name=None),
        _col(rows.LONG, None),  # no binlog_row_metadata=FULL: no names
        _col(rows.NEWDECIMAL, "no_precision"),  # metadata we did not expect
    ],
)
def test_tables_with_an_unsupported_column_stay_with_the_library(column: Any) -> None:
    columns = [_col(rows.LONG, "id"), column]
    kinds = [types.Column("id", "int"), types.Column("x", "binary")]
    assert rows.table_decoder(columns, kinds, "db.t") is None


def test_latin1_is_mysqls_latin1_not_strict_cp1252() -> None:
    columns = [_col(rows.VARCHAR, "l1", max_length=10, character_set_name="cp1252")]
    decoder = rows.table_decoder(columns, [types.Column("l1", "text")], "db.t")
    assert decoder is not None
    raw = b"\x80\x81\x8d\x8f\x90\x9d\xe9"
    values, _ = decoder.image(b"\x01")(b"\x00" + bytes([len(raw)]) + raw, 0)
    assert values == {"l1": "€\x81\x8d\x8f\x90\x9dé"}
