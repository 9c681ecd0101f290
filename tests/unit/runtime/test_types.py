"""types.to_json gives one JSON value per cell, whether it came from the binlog or a SELECT."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest

from ferry_runtime import types
from ferry_runtime.types import Column


@pytest.mark.parametrize(
    ("column", "binlog_value", "select_value", "expected"),
    [
        (Column("i", "int"), 18446744073709551615, 18446744073709551615, 18446744073709551615),
        (Column("i", "int"), -9223372036854775808, -9223372036854775808, -9223372036854775808),
        (Column("d", "decimal"), Decimal("12.500"), Decimal("12.500"), "12.500"),
        (Column("d", "decimal"), Decimal("-0.000001"), Decimal("-1E-6"), "-0.000001"),
        (Column("f", "float"), 1.100000023841858, 1.1, 1.1),
        # the snapshot selects FLOAT columns as CAST(c AS DOUBLE): MariaDB prints 6 digits
        (Column("f", "float"), 3.4028234663852886e38, 3.4028234663852886e38, 3.4028235e38),
        (Column("d", "double"), 2.2, 2.2, 2.2),
        (Column("b", "bit"), "1010000001", b"\x02\x81", 641),
        (Column("d", "date"), date(2024, 2, 29), date(2024, 2, 29), "2024-02-29"),
        (Column("y", "year"), 2024, 2024, 2024),
        (Column("t", "text"), "héllo😀", "héllo😀", "héllo😀"),
        (Column("e", "enum", values=("a", "b c")), "b c", "b c", "b c"),
        (Column("s", "set", values=("x", "y", "z")), {"z", "x"}, "x,z", ["x", "z"]),
        (Column("j", "json"), '{"a":[1,2.5]}', '{"a": [1, 2.5]}', {"a": [1, 2.5]}),
        (Column("n", "text"), None, None, None),
    ],
)
def test_binlog_and_select_values_agree(
    column: Column, binlog_value: object, select_value: object, expected: object
) -> None:
    assert types.to_json(column, binlog_value) == expected
    assert types.to_json(column, select_value) == expected


def test_time_keeps_sign_hours_over_a_day_and_the_column_fraction() -> None:
    value = timedelta(days=-35, seconds=3600, microseconds=500000)  # -838:59:59.5
    assert types.to_json(Column("t", "time", fsp=3), value) == "-838:59:59.500"
    assert types.to_json(Column("t", "time"), timedelta(hours=25, seconds=1)) == "25:00:01"


@pytest.mark.parametrize(
    ("fsp", "expected"),
    [(0, "2024-01-02 03:04:05"), (2, "2024-01-02 03:04:05.12"), (6, "2024-01-02 03:04:05.120000")],
)
def test_datetime_has_exactly_the_columns_fractional_digits(fsp: int, expected: str) -> None:
    value = datetime(2024, 1, 2, 3, 4, 5, 120000)
    assert types.to_json(Column("t", "datetime", fsp=fsp), value) == expected
    assert types.to_json(Column("t", "timestamp", fsp=fsp), value) == expected


def test_binary_is_base64_and_fixed_width_binary_gets_its_trailing_zeros_back() -> None:
    assert types.to_json(Column("b", "binary"), b"\xde\xad\xbe\xef\x00") == "3q2+7wA="
    # The binlog strips trailing 0x00 from BINARY(4); a SELECT returns all four bytes.
    assert types.to_json(Column("b", "binary", pad_to=4), b"\x01") == "AQAAAA=="
    assert types.to_json(Column("b", "binary", pad_to=4), b"\x01\x00\x00\x00") == "AQAAAA=="


def test_mysql_binary_json_with_bytes_keys_becomes_text() -> None:
    assert types.to_json(Column("j", "json"), {b"k": [b"v", 1, None]}) == {"k": ["v", 1, None]}


def test_information_schema_columns() -> None:
    enum = types.from_information_schema("e", "enum", "enum('a','it''s')", None, False)
    assert enum == Column("e", "enum", values=("a", "it's"))
    assert types.from_information_schema("b", "binary", "binary(16)", None, False).pad_to == 16
    assert (
        types.from_information_schema("v", "varbinary", "varbinary(8)", None, False).kind
        == "binary"
    )
    assert types.from_information_schema("j", "longtext", "longtext", None, True).kind == "json"
    assert types.from_information_schema("t", "datetime", "datetime(3)", 3, False).fsp == 3
    assert (
        types.from_information_schema("u", "bigint", "bigint(20) unsigned", None, False).kind
        == "int"
    )


def test_binlog_columns() -> None:
    def col(type_: int, **attrs: object) -> SimpleNamespace:
        return SimpleNamespace(name="c", type=type_, **attrs)

    assert types.from_binlog_column(col(254, character_set_name="binary", max_length=4)).pad_to == 4
    assert types.from_binlog_column(col(15, character_set_name="binary", max_length=8)).pad_to == 0
    assert types.from_binlog_column(col(252, character_set_name="utf8mb4")).kind == "text"
    assert (
        types.from_binlog_column(col(252, character_set_name="utf8mb4"), is_json=True).kind
        == "json"
    )
    assert types.from_binlog_column(col(18, fsp=6)) == Column("c", "datetime", fsp=6)
    assert types.from_binlog_column(col(248, set_values=["x", "y"])).values == ("x", "y")
    with pytest.raises(ValueError, match="unsupported"):
        types.from_binlog_column(col(999))


@pytest.mark.parametrize(
    ("decoded", "expected"),
    [
        # what python-mysql-replication 1.0.17 returns → what the column holds
        (-timedelta(microseconds=999999), "-00:00:00.000001"),
        (-timedelta(hours=12, minutes=34, seconds=56, microseconds=210988), "-12:34:56.789012"),
        (-timedelta(hours=1, microseconds=750000), "-01:00:00.250000"),
        (-timedelta(seconds=1), "-00:00:01.000000"),
        (timedelta(hours=12, microseconds=500000), "12:00:00.500000"),
    ],
)
def test_negative_fractional_time_from_the_binlog_is_corrected(
    decoded: timedelta, expected: str
) -> None:
    assert types.binlog_to_json(Column("t", "time", fsp=6), decoded) == expected
