"""source/_rowtext.c: a chunk's raw fields (0xFF after a field, 0xFE after a row, 0xFD alone
for NULL) to each row's JSON and its key's JSON. Its output against the server's own JSON,
over the edge values of every kind, is checked on the real MariaDB
(tests/integration/runtime/test_snapshot_rendered.py); here, the format's rules."""

from __future__ import annotations

import json
import pickle

import pytest

from ferry_runtime.source._rowtext import Plan

NUMBER, DOUBLE, QUOTED, TEXT = 0, 1, 2, 3
LABELS = [b'{"id":', b',"d":', b',"t":', b',"x":', b',"n":']
PLAN = Plan(LABELS, bytes([NUMBER, DOUBLE, TEXT, QUOTED, NUMBER]), (0,))


def _text(*rows: tuple[bytes, ...]) -> bytes:
    return b"\xfe".join(b"\xff".join(row) for row in rows)


def test_each_kind_becomes_its_json_and_null_is_null() -> None:
    text = _text(
        (b"1", b"100", 'q"b\\c\n\t\x07 中'.encode(), b"2024-02-29 23:59:59.999", b"\xfd"),
        (b"-2", b"1e21", b"", b"-12.50", b"7"),
        (b"3", b"-0", b"\xfd", b"\xfd", b"0"),
    )
    keys, rows = PLAN.split(text)
    assert keys == [b"1", b"-2", b"3"]
    assert [json.loads(row) for row in rows] == [
        {"id": 1, "d": 100.0, "t": 'q"b\\c\n\t\x07 中', "x": "2024-02-29 23:59:59.999", "n": None},
        {"id": -2, "d": 1e21, "t": "", "x": "-12.50", "n": 7},
        {"id": 3, "d": -0.0, "t": None, "x": None, "n": 0},
    ]
    assert b'"d":100.0' in rows[0] and b'"d":-0.0' in rows[2]  # a double stays a double


def test_a_longer_key_is_a_json_array_of_its_fields() -> None:
    plan = Plan([b'{"a":', b',"b":', b',"c":'], bytes([NUMBER, TEXT, NUMBER]), (2, 0))
    keys, rows = plan.split(_text((b"1", b"x", b"9"), (b"2", b"y", b"8")))
    assert keys == [b"[9,1]", b"[8,2]"]
    assert rows == [b'{"a":1,"b":"x","c":9}', b'{"a":2,"b":"y","c":8}']


@pytest.mark.parametrize(
    "text",
    [
        _text((b"1", b"2", b"t", b"x")),  # a field short
        _text((b"1", b"2", b"t", b"x", b"5", b"6")),  # a field over
        _text((b"1", b"2", b"t\xfdu", b"x", b"5")),  # a NULL mark inside a field
        _text((b"\xfd", b"2", b"t", b"x", b"5")),  # a NULL key
        _text((b"1", b"", b"t", b"x", b"5")),  # an empty number
    ],
    ids=["short", "long", "mark-inside", "null-key", "empty-number"],
)
def test_a_text_that_is_not_rows_of_the_plans_fields_is_refused(text: bytes) -> None:
    with pytest.raises(ValueError):
        PLAN.split(text)


def test_an_empty_text_is_no_rows_and_a_plan_travels_to_reader_processes() -> None:
    assert PLAN.split(b"") == ([], [])
    copy = pickle.loads(pickle.dumps(PLAN))
    text = _text((b"1", b"2", b"t", b"x", b"5"))
    assert copy.split(text) == PLAN.split(text)
