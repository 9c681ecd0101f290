"""The snapshot's filter over binlog changes (source/watermark.py) and the key order it
relies on (source/keys.py), for the kinds Python orders without asking the server."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from ferry_runtime import types
from ferry_runtime.checkpoint import SnapshotState, TableState
from ferry_runtime.events import Change
from ferry_runtime.source.keys import KeyOrder
from ferry_runtime.source.schema import TableSchema
from ferry_runtime.source.watermark import Coverage


def _table(name: str, *columns: types.Column, key: tuple[str, ...] = ("id",)) -> TableSchema:
    return TableSchema("db", name, columns, key, frozenset(), 0)


def _order(*columns: types.Column, key: tuple[str, ...]) -> KeyOrder:
    return KeyOrder(None, _table("t", *columns, key=key))  # no text: never asks the server


@pytest.mark.parametrize(
    ("column", "low", "high"),
    [
        (types.Column("k", "int"), 9, 10),
        (types.Column("k", "decimal"), "9.50", "10.25"),
        (types.Column("k", "date"), "2024-02-29", "2024-03-01"),
        (
            types.Column("k", "datetime", fsp=3),
            "2024-02-29 23:59:59.999",
            "2024-03-01 00:00:00.000",
        ),
        (types.Column("k", "time"), "-10:00:00", "-09:59:59"),
        (types.Column("k", "time"), "-00:00:01", "00:00:00"),
        (types.Column("k", "time"), "99:00:00", "100:00:00"),
        (types.Column("k", "enum", values=("zeta", "alpha")), "zeta", "alpha"),
        (
            types.Column("k", "binary", pad_to=2),
            base64.b64encode(b"\x7f\xff").decode(),
            base64.b64encode(b"\x80\x00").decode(),
        ),
    ],
)
def test_keys_order_as_the_index_does(column: types.Column, low: Any, high: Any) -> None:
    order = _order(column, key=("k",))
    assert order.compare([low], [high]) == -1
    assert order.compare([high], [low]) == 1
    assert order.compare([low], [low]) == 0
    assert order.at_or_before([low], [high]) and not order.at_or_before([high], [low])


def test_a_composite_key_orders_by_its_columns_in_key_order() -> None:
    order = _order(types.Column("a", "int"), types.Column("b", "int"), key=("b", "a"))
    assert order.at_or_before([1, 5], [2, 1])  # b first: 1 < 2
    assert not order.at_or_before([2, 5], [2, 1])
    assert order.at_or_before([2, 1], [2, 1])


def _change(op: str, key: int, old: int | None = None) -> Change:
    return Change(
        "db",
        "t",
        op,  # type: ignore[arg-type]
        {"id": key, "v": 1},
        None if old is None else {"id": old, "v": 0},
        ("id",),
    )


def _coverage(state: TableState, done: bool = False, replaying: bool = False) -> Coverage:
    table = _table("t", types.Column("id", "int"), types.Column("v", "int"))
    progress = SnapshotState({"file": "b.1", "pos": 4}, {"db.t": state}, done=done)
    return Coverage(progress, {"db.t": KeyOrder(None, table)}, replaying=replaying)


def test_changes_pass_only_for_keys_the_snapshot_delivered() -> None:
    coverage = _coverage(TableState(False, [10], 10))
    changes = [_change("insert", 10), _change("update", 11, 11), _change("delete", 3)]
    assert [(c.op, c.data["id"]) for c in coverage.keep(changes)] == [
        ("insert", 10),
        ("delete", 3),
    ]


def test_nothing_passes_before_the_first_chunk_and_everything_once_done() -> None:
    assert _coverage(TableState()).keep([_change("insert", 1)]) == []
    finished = _coverage(TableState(True, [10], 10))
    assert len(finished.keep([_change("insert", 99)])) == 1
    assert len(_coverage(TableState(), done=True).keep([_change("insert", 1)])) == 1


def test_tables_outside_the_snapshot_pass() -> None:
    coverage = _coverage(TableState())
    other = Change("db", "created_later", "insert", {"id": 1}, None, ("id",))
    assert coverage.keep([other]) == [other]


def test_an_update_moving_a_row_across_the_bound_becomes_a_delete_or_an_insert() -> None:
    coverage = _coverage(TableState(False, [10], 10))
    out_of_range = coverage.keep([_change("update", 20, old=5)])
    assert [(c.op, c.data["id"]) for c in out_of_range] == [("delete", 5)]
    into_range = coverage.keep([_change("update", 5, old=20)])
    assert [(c.op, c.data["id"], c.old) for c in into_range] == [("insert", 5, None)]
    assert coverage.keep([_change("update", 30, old=20)]) == []


def test_a_table_read_again_passes_every_change() -> None:
    coverage = _coverage(TableState(False, [10], 10, restate=True))
    changes = [_change("update", 11, 11), _change("delete", 99)]
    assert coverage.keep(changes) == changes


def test_a_resumed_at_least_once_snapshot_lets_deletes_of_undelivered_keys_pass() -> None:
    """Rows past the checkpoint may have been delivered before the crash: a re-read cannot
    restate a deleted row, so its delete must pass; updates still wait for the re-read."""
    coverage = _coverage(TableState(False, [10], 10), replaying=True)
    changes = [_change("delete", 20), _change("update", 21, 21), _change("insert", 22)]
    assert [(c.op, c.data["id"]) for c in coverage.keep(changes)] == [("delete", 20)]
    moved = coverage.keep([_change("update", 31, old=30)])
    assert [(c.op, c.data["id"]) for c in moved] == [("delete", 30)]
    back = coverage.keep([_change("update", 5, old=30)])
    assert [(c.op, c.data["id"]) for c in back] == [("delete", 30), ("insert", 5)]
    assert _coverage(TableState(False, [10], 10)).keep([_change("delete", 20)]) == []
