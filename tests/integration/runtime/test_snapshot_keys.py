"""Primary keys compared as the server's index orders them (source/keys.py): the snapshot
engine decides with it whether a change's key is at or before a chunk's last key, so it
must agree with ``ORDER BY`` for every pair, under case-insensitive and accent-insensitive
collations, latin1, binary strings, DECIMAL and negative TIME."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from tests.integration.runtime.conftest import Pipeline

from ferry_runtime import config
from ferry_runtime.source import chunks, schema
from ferry_runtime.source.keys import KeyOrder

pytestmark = [pytest.mark.mysql, pytest.mark.kafka]  # the pipeline fixture holds both

WORDS = [
    "apple",
    "Banana",
    "cherry",
    "Äpfel",
    "zebra",
    "Zulu",
    "éclair",
    "eclairs",
    "_x",
    "10",
    "9",
]


@pytest.mark.parametrize(
    ("definition", "values"),
    [
        ("varchar(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci", WORDS),
        ("varchar(20) CHARACTER SET latin1 COLLATE latin1_swedish_ci", WORDS),
        ("varchar(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin", WORDS),
        ("decimal(10,2)", ["-10.50", "-9.99", "0.00", "2.50", "10.00"]),
        ("time(1)", ["-100:00:00.0", "-01:00:00.5", "00:00:00.0", "09:59:59.9", "100:00:00.0"]),
        ("varbinary(4)", ["\x00", "\x7f", "\x80", "a", "ab"]),
    ],
)
def test_key_order_matches_the_servers_order_by(
    pipeline: Pipeline, mysql_connect: Callable[..., Any], definition: str, values: list[str]
) -> None:
    sql, table = pipeline.sql, f"{pipeline.db}.k"
    sql(f"CREATE TABLE {table} (k {definition} PRIMARY KEY)")
    sql(f"INSERT INTO {table} VALUES (%s)", [(v,) for v in values], many=True)
    with mysql_connect() as conn:
        loaded = schema.load(conn, pipeline.database, "k")
        assert loaded is not None
        reader = chunks.reader_connection(config.parse(pipeline.config()).source)
        try:
            rows, _ = reader.read_chunk(loaded, None, 100)
        finally:
            reader.close()
        ordered = [[row["k"]] for row in rows]  # the server's ORDER BY, as JSON values
        order = KeyOrder(conn, loaded)
        for i, left in enumerate(ordered):
            for j, right in enumerate(ordered):
                assert order.compare(left, right) == (i > j) - (i < j), (left, right)
