"""The type matrix: a table holding every MySQL type, read through the snapshot AND through
the real binlog, gives the same JSON both ways (and the values we expect)."""

from __future__ import annotations

from typing import Any

import pytest
from tests.integration.runtime.conftest import Pipeline

pytestmark = [pytest.mark.mysql, pytest.mark.kafka]

COLUMNS = """
  ti tinyint, tiu tinyint unsigned, si smallint, siu smallint unsigned, mi mediumint,
  miu mediumint unsigned, i int, iu int unsigned, bi bigint, biu bigint unsigned,
  de decimal(30,10), fl float, dbl double, b1 bit(1), b64 bit(64),
  d date, t0 time, t6 time(6), dt0 datetime, dt3 datetime(3), dt6 datetime(6),
  ts0 timestamp null, ts6 timestamp(6) null, y year,
  ch char(10), vc varchar(100), tx text, mt mediumtext,
  bn binary(4), vb varbinary(16), bl blob,
  en enum('small','big one'), st set('a','b','c'), js json
"""
ROWS: list[dict[str, Any]] = [
    {
        "ti": -128, "tiu": 255, "si": -32768, "siu": 65535, "mi": -8388608, "miu": 16777215,
        "i": -2147483648, "iu": 4294967295, "bi": -9223372036854775808,
        "biu": 18446744073709551615, "de": "-12345678901234567890.0123456789", "fl": 1.1,
        "dbl": 3.141592653589793, "b1": 1, "b64": 18446744073709551615, "d": "2024-02-29",
        "t0": "-838:59:59", "t6": "12:34:56.789012", "dt0": "1000-01-01 00:00:00",
        "dt3": "2024-02-29 23:59:59.999", "dt6": "9999-12-31 23:59:59.999999",
        "ts0": "1970-01-01 00:00:01", "ts6": "2038-01-19 03:14:07.999999", "y": 2155,
        "ch": "abc", "vc": "héllo wörld 😀", "tx": "emoji 🦀🚀 and 中文", "mt": "x" * 70000,
        "bn": "AQAAAA==", "vb": "AP8A/w==", "bl": "3q2+7wAA", "en": "big one", "st": ["a", "c"],
        "js": {"a": [1, 2.5, "x", None, True], "b": {"nested": "😀"}},
    },
    {
        "ti": 127, "tiu": 0, "si": 32767, "siu": 0, "mi": 8388607, "miu": 0, "i": 2147483647,
        "iu": 0, "bi": 9223372036854775807, "biu": 0, "de": "0.0000000001", "fl": -3.40282e38,
        "dbl": -1.7976931348623157e308, "b1": 0, "b64": 0, "d": "1000-01-01", "t0": "838:59:59",
        "t6": "-00:00:00.000001", "dt0": "2000-01-01 12:00:00", "dt3": "2000-01-01 12:00:00.100",
        "dt6": "2000-01-01 12:00:00.000001", "ts0": "2024-06-01 10:00:00",
        "ts6": "2024-06-01 10:00:00.500000", "y": 1901, "ch": "", "vc": "", "tx": "", "mt": "",
        "bn": "AAAAAA==", "vb": "", "bl": "", "en": "small", "st": ["b"], "js": [],
    },
]  # fmt: skip
NULLS: dict[str, Any] = dict.fromkeys(ROWS[0])
SQL_VALUES = [
    "(%s, -128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295,"
    " -9223372036854775808, 18446744073709551615, -12345678901234567890.0123456789, 1.1,"
    " 3.141592653589793, b'1', x'ffffffffffffffff', '2024-02-29', '-838:59:59',"
    " '12:34:56.789012', '1000-01-01 00:00:00', '2024-02-29 23:59:59.999',"
    " '9999-12-31 23:59:59.999999', '1970-01-01 00:00:01', '2038-01-19 03:14:07.999999', 2155,"
    " 'abc', 'héllo wörld 😀', 'emoji 🦀🚀 and 中文', REPEAT('x', 70000), x'01', x'00ff00ff',"
    " x'deadbeef0000', 'big one', 'a,c',"
    """ '{"a": [1, 2.5, "x", null, true], "b": {"nested": "😀"}}')""",
    "(%s, 127, 0, 32767, 0, 8388607, 0, 2147483647, 0, 9223372036854775807, 0, 0.0000000001,"
    " -3.40282e38, -1.7976931348623157e308, b'0', 0, '1000-01-01', '838:59:59',"
    " '-00:00:00.000001', '2000-01-01 12:00:00', '2000-01-01 12:00:00.1',"
    " '2000-01-01 12:00:00.000001', '2024-06-01 10:00:00', '2024-06-01 10:00:00.5', 1901, '', '',"
    " '', '', x'00', '', '', 'small', 'b', '[]')",
    "(%s" + ", NULL" * len(NULLS) + ")",
]


def test_every_type_reads_the_same_through_snapshot_and_binlog(pipeline: Pipeline) -> None:
    sql, db = pipeline.sql, pipeline.db
    sql("SET SESSION time_zone = '+00:00'")
    sql(f"CREATE TABLE {db}.matrix (id int PRIMARY KEY, {COLUMNS})")
    for index, values in enumerate(SQL_VALUES):
        sql(f"INSERT INTO {db}.matrix VALUES {values}", (index + 1,))
    worker = pipeline.run()
    pipeline.wait_streaming(worker)
    # The same values again, now through the binlog: inserts, then deletes of the originals.
    for index, values in enumerate(SQL_VALUES):
        sql(f"INSERT INTO {db}.matrix VALUES {values}", (index + 101,))
    sql(f"DELETE FROM {db}.matrix WHERE id < 100")
    records = pipeline.wait_until(
        lambda: (r := pipeline.records("matrix")) and len(r) >= 9 and r, 60, "9 records"
    )
    by_type: dict[str, dict[int, dict[str, Any]]] = {}
    for _, value in records:
        data = dict(value["data"])
        by_type.setdefault(value["type"], {})[data.pop("id") % 100] = data
    assert set(by_type) == {"bootstrap-insert", "insert", "delete"}
    expected = {1: ROWS[0], 2: ROWS[1], 3: NULLS}
    # snapshot path; binlog path (WriteRows); binlog path (DeleteRows, before image)
    mismatches = [
        (path, row, column, got.get(column), want)
        for path in ("bootstrap-insert", "insert", "delete")
        for row, values in expected.items()
        for column, want in values.items()
        if (got := by_type[path].get(row, {})).get(column, "<missing>") != want
    ]
    assert mismatches == []
    assert all(len(by_type[path]) == 3 for path in by_type)
