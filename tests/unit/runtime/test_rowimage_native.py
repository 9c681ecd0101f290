"""The C row-image decoder (source/_rowimage.c) against the generated Python decoders it
replaces on the hot path (source/rows.py), on random row images of every column kind.

Where C decodes an image it must give exactly the Python decoders' values; where it
refuses one (a value no valid row holds, text that is not UTF-8, bytes past the event's
end) rows.py decodes the event in Python, so refusing is allowed, but only rarely on rows
a server could write."""

from __future__ import annotations

import random
import struct
from types import SimpleNamespace
from typing import Any

import pytest

from ferry_runtime import types
from ferry_runtime.source import rows


def _col(code: int, name: str, **extra: Any) -> SimpleNamespace:
    return SimpleNamespace(**{"type": code, "name": name, "unsigned": False, **extra})


COLUMNS = [
    _col(rows.TINY, "ti"),
    _col(rows.TINY, "tu", unsigned=True),
    _col(rows.SHORT, "si"),
    _col(rows.SHORT, "su", unsigned=True),
    _col(rows.INT24, "mi"),
    _col(rows.INT24, "mu", unsigned=True),
    _col(rows.LONG, "li"),
    _col(rows.LONG, "lu", unsigned=True),
    _col(rows.LONGLONG, "bi"),
    _col(rows.LONGLONG, "bu", unsigned=True),
    _col(rows.FLOAT, "fl"),
    _col(rows.DOUBLE, "db"),
    _col(rows.YEAR, "yr"),
    _col(rows.NEWDECIMAL, "d1", precision=10, decimals=2),
    _col(rows.NEWDECIMAL, "d2", precision=5, decimals=5),
    _col(rows.NEWDECIMAL, "d3", precision=65, decimals=30),
    _col(rows.NEWDECIMAL, "d4", precision=18, decimals=0),
    _col(rows.NEWDECIMAL, "d5", precision=1, decimals=0),
    _col(rows.DATE, "dt"),
    _col(rows.TIME2, "t0", fsp=0),
    _col(rows.TIME2, "t3", fsp=3),
    _col(rows.TIME2, "t5", fsp=5),
    _col(rows.DATETIME2, "w0", fsp=0),
    _col(rows.DATETIME2, "w1", fsp=1),
    _col(rows.DATETIME2, "w4", fsp=4),
    _col(rows.DATETIME2, "w6", fsp=6),
    _col(rows.TIMESTAMP2, "s0", fsp=0),
    _col(rows.TIMESTAMP2, "s3", fsp=3),
    _col(rows.TIMESTAMP2, "s6", fsp=6),
    _col(rows.ENUM, "en", size=1, enum_values=["", "x", "y"]),
    _col(rows.ENUM, "e2", size=2, enum_values=[f"v{i}" for i in range(300)]),
    _col(rows.SET, "st", size=1, set_values=["a", "b", "c"]),
    _col(rows.SET, "sm", size=3, set_values=[f"m{i}" for i in range(20)]),
    _col(rows.BIT, "b1", bytes=1),
    _col(rows.BIT, "b8", bytes=8),
    _col(rows.VARCHAR, "v1", max_length=40, character_set_name="utf8"),
    _col(rows.VARCHAR, "v2", max_length=400, character_set_name="utf8"),
    _col(rows.VARCHAR, "l1", max_length=40, character_set_name="cp1252"),
    _col(rows.STRING, "bn", max_length=6, character_set_name="binary"),
    _col(rows.VARCHAR, "vb", max_length=300, character_set_name="binary"),
    _col(rows.BLOB, "x1", length_size=1, character_set_name="utf8"),
    _col(rows.BLOB, "x3", length_size=3, character_set_name="utf8"),
    _col(rows.BLOB, "x4", length_size=4, character_set_name="binary"),
    _col(rows.BLOB, "js", length_size=4, character_set_name="utf8"),
]
KINDS = [types.from_binlog_column(c, c.name == "js") for c in COLUMNS]
DECODER = rows.table_decoder(COLUMNS, KINDS, "db.t")


def _decimal(rng: random.Random, precision: int, scale: int) -> bytes:
    """A valid binary DECIMAL (MySQL's decimal2bin) of random digits and sign."""
    digits = lambda n: rng.randrange(10**n) if n else 0  # noqa: E731
    integral, sizes = precision - scale, rows._DIG2BYTES
    parts = []
    if integral % 9:
        parts.append((digits(integral % 9), sizes[integral % 9]))
    parts += [(digits(9), 4) for _ in range(integral // 9)]
    parts += [(digits(9), 4) for _ in range(scale // 9)]
    if scale % 9:
        parts.append((digits(scale % 9), sizes[scale % 9]))
    raw = bytearray(b"".join(v.to_bytes(n, "big") for v, n in parts))
    if rng.random() < 0.5:  # negative: every byte inverted
        raw = bytearray(b ^ 0xFF for b in raw)
    raw[0] ^= 0x80
    return bytes(raw)


def _text(rng: random.Random, limit: int, charset: str) -> bytes:
    """Random text of fewer than ``limit`` bytes, cut between characters."""
    if charset == "binary":
        return rng.randbytes(rng.randrange(limit))
    alphabet = 'aé€😀\n\t"\\ ' if charset == "utf8" else "aé€ \x81"
    codec = "utf-8" if charset == "utf8" else "cp1252"
    size, chars = rng.randrange(limit), []
    while True:
        char = rng.choice(alphabet).encode(codec, "replace")
        if size < len(char):
            return b"".join(chars)
        size -= len(char)
        chars.append(char)


_FIXED = {rows.TINY: 1, rows.SHORT: 2, rows.INT24: 3, rows.LONG: 4, rows.LONGLONG: 8}
_FIXED |= {rows.FLOAT: 4, rows.DOUBLE: 8, rows.YEAR: 1}


def _value(rng: random.Random, column: SimpleNamespace) -> bytes:
    """One column's bytes as a server could write them (and, rarely, as none would)."""
    code, name = column.type, column.name
    if code == rows.NEWDECIMAL:
        if rng.random() < 0.01:  # a group out of range: no valid row holds it
            return bytes(rng.randrange(256) for _ in range(rows.decimal_reader(
                column.precision, column.decimals)[1]))  # fmt: skip
        return _decimal(rng, column.precision, column.decimals)
    if code in (rows.DATE, rows.TIME2, rows.DATETIME2, rows.TIMESTAMP2):
        size = rows.temporal_reader(code, getattr(column, "fsp", 0))[1]
        raw = bytearray(rng.randrange(256) for _ in range(size))
        if code == rows.DATETIME2:
            raw[0] = 0x80 | raw[0] & 0x7F if rng.random() < 0.99 else raw[0]
        if code == rows.TIMESTAMP2 and rng.random() < 0.1:
            raw[:4] = bytes(4)  # the zero TIMESTAMP
        if code in (rows.DATETIME2, rows.TIMESTAMP2) and column.fsp % 2:
            whole = 5 if code == rows.DATETIME2 else 4
            raw[whole:] = (int.from_bytes(raw[whole:], "big") % 100).to_bytes(size - whole, "big")
        return bytes(raw)
    if code == rows.ENUM:
        return rng.randrange(len(column.enum_values)).to_bytes(column.size, "little")
    if code == rows.SET:
        return rng.randrange(1 << len(column.set_values)).to_bytes(column.size, "little")
    if code in (rows.VARCHAR, rows.STRING, rows.BLOB):
        if code == rows.BLOB:
            width, limit = column.length_size, 300 if column.length_size > 1 else 200
        else:
            width = 2 if column.max_length > 255 else 1
            limit = column.max_length
        if name == "js":
            raw = rng.choice([b'{"a": [1, 2.5, "x"]}', b"[]", b'"t\\u00e9"', b"12", b"null"])
        else:
            raw = _text(rng, limit, column.character_set_name)
            if name == "v1" and rng.random() < 0.01:
                raw += b"\xff"  # not UTF-8
        return len(raw).to_bytes(width, "little") + raw
    size = _FIXED.get(code) or column.bytes
    if code == rows.DOUBLE and rng.random() < 0.5:
        return struct.pack("<d", rng.uniform(-1e300, 1e300))
    return bytes(rng.randrange(256) for _ in range(size))


def _image(rng: random.Random, present: list[bool]) -> bytes:
    chosen = [c for c, on in zip(COLUMNS, present, strict=True) if on]
    nulls = [rng.random() < 0.15 for _ in chosen]
    bitmap = sum(1 << i for i, null in enumerate(nulls) if null)
    head = bitmap.to_bytes((len(chosen) + 7) // 8, "little")
    values = (_value(rng, c) for c, null in zip(chosen, nulls, strict=True) if not null)
    return head + b"".join(values)


def _bitmap(present: list[bool]) -> bytes:
    bits = sum(1 << i for i, on in enumerate(present) if on)
    return bits.to_bytes((len(present) + 7) // 8, "little")


def _python(bitmap: bytes, bitmap2: bytes | None, body: bytes) -> list[Any]:
    assert DECODER is not None
    first, second = DECODER.image(bitmap), DECODER.image(bitmap2) if bitmap2 else None
    out, pos = [], 0
    while pos < len(body):
        values, pos = first(body, pos)
        if second is None:
            out.append((values, None))
        else:
            after, pos = second(body, pos)
            out.append((after, values))
    if pos != len(body):
        raise ValueError("overran")
    return out


@pytest.mark.parametrize("update", [False, True], ids=["insert", "update"])
def test_c_gives_the_python_decoders_values(update: bool) -> None:
    assert DECODER is not None and DECODER.native is not None
    rng = random.Random(20261203 + update)
    decoded = refused = 0
    for _ in range(1500):
        present = [rng.random() < 0.9 for _ in COLUMNS]
        present2 = [rng.random() < 0.9 for _ in COLUMNS] if update else None
        body = b""
        for _ in range(rng.randrange(1, 4)):
            body += _image(rng, present)
            if present2 is not None:
                body += _image(rng, present2)
        bitmap, bitmap2 = _bitmap(present), _bitmap(present2) if present2 else None
        try:
            native = DECODER.native.decode(body, bitmap, bitmap2)
        except ValueError:
            refused += 1
            continue
        decoded += 1
        # repr: NaN doubles compare unequal to themselves; key order must match too
        assert repr(native) == repr(_python(bitmap, bitmap2, body))
    assert decoded > 1000, f"C refused {refused} of {decoded + refused} events"


def test_c_refuses_what_is_not_a_row_image() -> None:
    """Truncated or padded bodies and random bytes: C raises ValueError, or agrees."""
    assert DECODER is not None and DECODER.native is not None
    rng = random.Random(7)
    present = [True] * len(COLUMNS)
    bitmap = _bitmap(present)
    agreed = 0
    for _ in range(500):
        good = _image(rng, present)
        for body in (good[: rng.randrange(len(good))], good + b"\x00", rng.randbytes(len(good))):
            try:
                native = DECODER.native.decode(body, bitmap)
            except ValueError:
                continue
            assert repr(native) == repr(_python(bitmap, None, body))
            agreed += 1
    with pytest.raises(ValueError, match="bitmap shorter"):
        DECODER.native.decode(b"", b"\xff")
    assert agreed < 500  # most of them are refused


def test_every_supported_table_gets_the_c_decoder() -> None:
    assert DECODER is not None and DECODER.native is not None
    # and a recipe C does not know is refused when the plan is built
    with pytest.raises(ValueError, match="bad recipe"):
        rows._rowimage.Plan([("x", rows._INT, 5, 0, 0, None)])


def test_an_event_c_refuses_is_read_by_the_python_decoders() -> None:
    """A DECIMAL group out of range (no server writes one): C refuses the event, the
    generated Python reads it as it always did, and the refusal is told."""
    refused: list[str] = []
    columns = [_col(rows.LONG, "id"), _col(rows.NEWDECIMAL, "d", precision=10, decimals=2)]
    kinds = [types.from_binlog_column(c) for c in columns]
    decoder = rows.table_decoder(columns, kinds, "db.t", lambda: refused.append("db.t"))
    assert decoder is not None
    good = b"\x00" + struct.pack("<i", 1) + bytes.fromhex("8000000101")  # 1.01
    bad = b"\x00" + struct.pack("<i", 2) + bytes.fromhex("ffffffff01")  # a group > 10**8
    assert decoder.decode_body(good, b"\x03") == [({"id": 1, "d": "1.01"}, None)]
    assert refused == []
    python = decoder.image(b"\x03")(bad, 0)[0]
    assert decoder.decode_body(good + bad, b"\x03") == [
        ({"id": 1, "d": "1.01"}, None),
        (python, None),
    ]
    assert refused == ["db.t"]
