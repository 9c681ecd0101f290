"""Snapshot rows the server renders as JSON (``snapshot.row_json``, the Kafka snapshot's fast
path) are the same JSON values, of the same JSON types, as the reader's column-by-column
read and as the binlog's: on the real MariaDB, with the edge values of every kind it
renders, NULLs, a mapping (renamed and dropped columns), and a table it must not render."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from tests.integration.runtime.conftest import Pipeline

from ferry_runtime.config import SourceConfig
from ferry_runtime.events import RenderedRows
from ferry_runtime.source import chunks, schema
from ferry_runtime.source.schema import TableSchema
from ferry_runtime.source.snapshot import Snapshot, row_fields, row_json

pytestmark = [pytest.mark.mysql, pytest.mark.kafka]

COLUMNS = """
  ti tinyint, biu bigint unsigned, y year, de decimal(30,10), dbl double, dbl2 double,
  d date, t0 time, t6 time(6), dt0 datetime, dt3 datetime(3), dt6 datetime(6),
  ts0 timestamp null, ts6 timestamp(6) null, ch char(10), vc varchar(100),
  l1 varchar(20) CHARACTER SET latin1, tx text, en enum('small','big one')
"""
TEXT = 'quote " backslash \\ tab \t newline \n bell \x07 del \x7f u2028 \u2028 😀 中文'
VALUES = [
    (-128, 18446744073709551615, 2155, "-12345678901234567890.0123456789", 100.0, 1.1,
     "2024-02-29", "-838:59:59", "-00:00:00.000001", "1000-01-01 00:00:00",
     "2024-02-29 23:59:59.999", "9999-12-31 23:59:59.999999", "1970-01-01 00:00:01",
     "2038-01-19 03:14:07.999999", "abc", TEXT, "héllo", "x" * 3000, "big one"),
    (127, 0, 1901, "0.0000000001", 1e21, -3.40282e38, "1000-01-01", "838:59:59",
     "12:34:56.789012", "2000-01-01 12:00:00", "2000-01-01 12:00:00.100",
     "2000-01-01 12:00:00.000001", "2024-06-01 10:00:00", "2024-06-01 10:00:00.500000",
     "", "", "", "", "small"),
    *[
        (0, 1, 2000, "1.5", value, 100.0, "2000-01-01", "00:00:00", "00:00:00", None, None,
         None, None, None, "x", "y", "z", "", None)
        for value in (1e-7, 0.1, 5e-324, 1.7976931348623157e308, 3.141592653589793,
                      123456789012345678.0, -2.5, 1e15, 1e16, 0.0,
                      -0.0, 1e14, 999999999999999.0, -999999999999999.0, 1234567890123456.0)
    ],
    (None,) * 19,
]  # fmt: skip


def _seed(pipeline: Pipeline, table: str, first_id: int) -> None:
    marks = ", ".join(["%s"] * 20)
    for index, row in enumerate(VALUES):
        pipeline.sql(f"INSERT INTO {table} VALUES ({marks})", (first_id + index, *row))


def _typed(value: Any) -> Any:
    """A JSON value with its type: 100 and 100.0 differ for a typed consumer."""
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    return (type(value).__name__, value)


@contextlib.contextmanager
def _reader(
    pipeline: Pipeline, make_config: Any, name: str, names: dict[str, str], drop: list[str]
) -> Iterator[tuple[Snapshot, TableSchema, TableSchema]]:
    """A snapshot reader in a consistent transaction, the table ``name``, and the table as
    the server renders it (mapped by ``names`` and ``drop``)."""
    source = SourceConfig.model_validate(make_config()["source"])  # the test's password env
    snap = chunks.reader_connection(source)
    try:
        snap.begin()
        table = schema.load(snap.conn, pipeline.database, name)
        assert table is not None
        expression, fields = row_json(table, names, drop), row_fields(table, names, drop)
        assert expression is not None and fields is not None
        yield snap, table, dataclasses.replace(table, row_json=expression, row_fields=fields)
    finally:
        snap.close()


def test_rendered_rows_equal_the_column_by_column_read(
    pipeline: Pipeline, make_config: Any
) -> None:
    pipeline.sql("SET SESSION time_zone = '+00:00'")
    pipeline.sql(f"CREATE TABLE {pipeline.db}.r (id int PRIMARY KEY, {COLUMNS})")
    _seed(pipeline, f"{pipeline.db}.r", 1)
    with _reader(pipeline, make_config, "r", {"vc": "renamed"}, ["tx"]) as (snap, table, shown):
        rendered = snap.chunk_rows(shown, None, None)
        snap.begin()
        plain = snap.chunk_rows(table, None, None)
    assert isinstance(rendered, RenderedRows) and isinstance(plain, list)
    assert len(rendered) == len(plain) == len(VALUES)
    expected = [
        {("renamed" if k == "vc" else k): v for k, v in row.items() if k != "tx"} for row in plain
    ]
    differences = [
        (row["id"], name, got, want)
        for row, found in zip(expected, rendered.dicts(), strict=True)
        for name, want in _typed(row).items()
        if (got := _typed(found).get(name)) != want
    ]
    assert differences == []
    assert [rendered.key(i) for i in range(len(rendered))] == [[row["id"]] for row in plain]


def _selects(snap: Any) -> int:
    return int(dict(snap._execute("SHOW SESSION STATUS LIKE 'Com_select'"))["Com_select"])


@pytest.mark.parametrize("key", ["id", "grp, id"])
def test_a_chunk_with_a_known_end_comes_in_one_row_with_the_same_bytes(
    pipeline: Pipeline, make_config: Any, key: str
) -> None:
    """A chunk whose end is known comes as one GROUP_CONCAT of raw fields (row_fields: text
    with quotes, backslashes and control characters in it, NULLs, every rendered kind),
    rendered by _rowtext.c: the same key and row bytes as the server's row_json, read row by
    row; cut by group_concat_max_len, it is read row by row."""
    pipeline.sql("SET SESSION time_zone = '+00:00'")
    pipeline.sql(f"CREATE TABLE {pipeline.db}.w (id int, grp int, {COLUMNS}, PRIMARY KEY ({key}))")
    marks = ", ".join(["%s"] * 21)
    for index, row in enumerate(VALUES * 3, start=1):
        pipeline.sql(f"INSERT INTO {pipeline.db}.w VALUES ({marks})", (index, index % 3, *row))
    with _reader(pipeline, make_config, "w", {}, []) as (snap, _, rendered_table):
        ordered = snap.chunk_rows(rendered_table, None, None)  # the last chunk: row by row
        upto = ordered.key(-1) if isinstance(ordered, RenderedRows) else None
        assert isinstance(ordered, RenderedRows)
        fields = rendered_table.row_fields
        assert fields is not None
        text = f"GROUP_CONCAT({fields.sql} SEPARATOR X'fe')"
        length = len(snap._execute(f"SELECT {text} FROM {pipeline.db}.w")[0][0])
        found: list[tuple[int, Any]] = []
        # Cut after a few rows, then inside the last row (as many rows: only the cut tells).
        for cut in (None, 1000, length - 1):
            snap.begin()
            if cut is not None:
                snap._execute(f"SET SESSION group_concat_max_len = {cut}")
            before = _selects(snap)
            rows = snap.chunk_rows(rendered_table, None, upto)
            found.append((_selects(snap) - before, rows))
    assert isinstance(ordered, RenderedRows) and len(ordered) == len(VALUES) * 3
    assert [queries for queries, _ in found] == [1, 2, 2]  # one GROUP_CONCAT; row by row
    for _, rows in found:
        assert isinstance(rows, RenderedRows)
        assert sorted(zip(rows.keys, rows.data, strict=True)) == sorted(
            zip(ordered.keys, ordered.data, strict=True)
        )


def test_pages_of_one_transaction_are_rendered_in_key_order(
    pipeline: Pipeline, make_config: Any
) -> None:
    """``mode: snapshot`` reads pages after the last key in one transaction: rendered by the
    server, in key order, the same rows as the column-by-column pages."""
    pipeline.sql("SET SESSION time_zone = '+00:00'")
    pipeline.sql(f"CREATE TABLE {pipeline.db}.p (id int PRIMARY KEY, {COLUMNS})")
    for first in range(1, 100, len(VALUES)):
        _seed(pipeline, f"{pipeline.db}.p", first)
    with _reader(pipeline, make_config, "p", {}, []) as (snap, table, rendered_table):
        rendered = list(snap.chunks(rendered_table, None, 0, 7))
        plain = list(snap.chunks(table, None, 0, 7))
        snap.end()
    pages = [chunk.rows for chunk in rendered if isinstance(chunk.rows, RenderedRows)]
    assert len(pages) == len(rendered) == len(plain) > 1
    assert [(c.after, c.scanned) for c in rendered] == [(c.after, c.scanned) for c in plain]
    found = [row for page in pages for row in page.dicts()]
    assert found == [row for chunk in plain for row in chunk.rows]


def test_a_table_the_server_cannot_render_is_read_column_by_column() -> None:
    from ferry_runtime import types

    columns = (types.Column("id", "int"), types.Column("b", "binary"), types.Column("f", "float"))
    table = schema.TableSchema("db", "t", columns, ("id",), frozenset(), 0)
    assert row_json(table, {}, []) is None  # base64 is Python's
    assert row_json(table, {}, ["b"]) is None  # FLOAT's shortest float32 decimal too
    assert row_json(table, {}, ["b", "f"]) is not None  # only the rendered kinds are left
    assert row_json(table, {}, ["id"]) is None  # the key dropped
    keyless = schema.TableSchema("db", "t", columns[:1], (), frozenset(), 0)
    assert row_json(keyless, {}, []) is None


def test_snapshot_and_binlog_give_the_same_typed_values(pipeline: Pipeline) -> None:
    """End to end through the worker into Kafka: the snapshot's rendered rows (mapped) and
    the same rows inserted later through the binlog."""
    db = pipeline.db
    pipeline.sql("SET SESSION time_zone = '+00:00'")
    pipeline.sql(f"CREATE TABLE {db}.r (id int PRIMARY KEY, {COLUMNS})")
    _seed(pipeline, f"{db}.r", 1)
    mapping = [{"table": f"{pipeline.database}.r", "columns": {"vc": "renamed"}, "drop": ["tx"]}]
    worker = pipeline.run(mapping=mapping)
    pipeline.wait_streaming(worker)
    _seed(pipeline, f"{db}.r", 101)
    count = 2 * len(VALUES)
    records = pipeline.wait_until(
        lambda: (r := pipeline.records("r")) and len(r) >= count and r, 60, f"{count} records"
    )
    by_path: dict[str, dict[int, Any]] = {}
    for _, value in records:
        data = dict(value["data"])
        row = data.pop("id") % 100
        by_path.setdefault(value["type"], {})[row] = _typed(data)
    snapshot, binlog = by_path["bootstrap-insert"], by_path["insert"]
    assert len(snapshot) == len(binlog) == len(VALUES)
    differences = [
        (row, name, value, binlog[row].get(name))
        for row, values in snapshot.items()
        for name, value in values.items()
        if binlog[row].get(name) != value
    ]
    assert differences == []
    assert "renamed" in snapshot[1] and "tx" not in snapshot[1]
