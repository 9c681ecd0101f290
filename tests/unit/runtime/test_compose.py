"""_compose.c: records of one shape, each assembled in one allocation (formats.encode_reads,
whose records a unit test compares with formats.encode's: test_rules_formats.py)."""

from __future__ import annotations

import pytest

from ferry_runtime._compose import compose


def test_each_row_is_its_pieces_joined_with_its_items() -> None:
    keys, rows = [b"1", b"22"], [b'{"a":1}', b"{}"]
    assert compose((b"<", 0, b"|", 1, b">"), (keys, rows)) == [b'<1|{"a":1}>', b"<22|{}>"]
    assert compose((1, 1, 0), (keys, rows)) == [b'{"a":1}{"a":1}1', b"{}{}22"]
    assert compose((b"k",), ([b"", b""],)) == [b"k", b"k"]
    assert compose((b"x", 0), ([],)) == []


@pytest.mark.parametrize(
    ("pieces", "columns", "error"),
    [
        ((0, 1), ([b"a"], [b"b", b"c"]), ValueError),  # columns of two lengths
        ((2,), ([b"a"],), ValueError),  # no such column
        ((-1,), ([b"a"],), ValueError),
        (("text",), ([b"a"],), ValueError),  # a piece neither bytes nor an index
        ((0,), (["a"],), TypeError),  # an item not bytes
    ],
)
def test_what_is_not_pieces_and_columns_of_bytes_is_refused(
    pieces: tuple[object, ...], columns: tuple[list[object], ...], error: type[Exception]
) -> None:
    with pytest.raises(error):
        compose(pieces, columns)  # type: ignore[arg-type]
