"""Per-table row decoders: binlog row images straight to JSON values, without the library.

python-mysql-replication decodes every cell through a long per-column ``if`` chain, and
that is ~90 % of the binlog reader's time. Here a table's layout (from its TableMap event)
and one columns-present bitmap become a small Python function, generated once as source
and compiled: one straight line per column, ``struct`` reads of fixed-width runs, the
null-bitmap checks, and the JSON conversion of :mod:`ferry_runtime.types` folded in. The
library still frames the stream and parses TableMap events; this module only reads the
row bytes of Write/Update/DeleteRows events that follow the header it parsed.

The hot path is C (``_rowimage.c``): each column also gets a recipe for it (a kind, a width
and, for rare types, one of this module's Python functions), and a whole event is decoded
in one call, ~3.6x the generated Python's rows per CPU-second. The generated functions stay
the reference (a unit test compares the two on random images) and read any event C
refuses, so such an event gets exactly the values, or the error, it always got.

The values are exactly those of ``types.binlog_converter`` applied to the library's values
(a negative TIME with a fraction is read right directly, where types.py repairs the
library's value), except where the library is wrong and the snapshot (a SELECT) is right —
there the decoder gives the snapshot's value:

* an empty SET is ``[]`` (the library says NULL);
* YEAR 0000 is ``0`` (the library says 1900);
* a zero or invalid DATE/DATETIME (``0000-00-00``, ``2024-02-31`` under ALLOW_INVALID_DATES)
  is the server's text (the library says NULL); a zero TIMESTAMP is
  ``0000-00-00 00:00:00`` (the library says 1970-01-01 00:00:00);
* latin1 text is MySQL's latin1: cp1252, with the bytes 0x81, 0x8D, 0x8F, 0x90 and 0x9D
  as U+0081… (the library decodes strict cp1252 and fails the whole event on them).

:func:`table_decoder` returns None for a table it cannot decode exactly (an old-format
temporal or decimal column, MySQL binary JSON, GEOMETRY, a charset other than
utf8/utf8mb3/utf8mb4/latin1/binary, missing column names): that table stays on the
library path, whole.
"""

from __future__ import annotations

import binascii
import calendar
import codecs
import functools
import json
import struct
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import Any

from ferry_runtime import types
from ferry_runtime.source import _rowimage

__all__ = [
    "RowImage",
    "TableDecoder",
    "decimal_reader",
    "decimal_text",
    "row_body",
    "table_decoder",
    "temporal_reader",
    "temporal_text",
]

# python-mysql-replication / MySQL FIELD_TYPE codes this module decodes
TINY, SHORT, LONG, FLOAT, DOUBLE, LONGLONG, INT24 = 1, 2, 3, 4, 5, 8, 9
DATE, YEAR, VARCHAR, BIT = 10, 13, 15, 16
TIMESTAMP2, DATETIME2, TIME2 = 17, 18, 19
NEWDECIMAL, ENUM, SET, BLOB, STRING = 246, 247, 248, 252, 254

# Rows event types (v1 and v2) whose body is: rows until the end of the event.
_ROWS_EVENTS = frozenset({23, 24, 25, 30, 31, 32})
# the library's charset names → how we decode (MySQL's latin1 is cp1252 except that the five
# bytes cp1252 leaves undefined are the same-numbered control characters, as in ISO 8859-1)
_DECODE_ARGS = {"utf8": ("utf-8",), "cp1252": ("cp1252", "ferry-latin1")}
_TEXT_CODECS = {name: ", ".join(map(repr, args)) for name, args in _DECODE_ARGS.items()}


def _latin1_gaps(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    return error.object[error.start : error.end].decode("latin-1"), error.end


codecs.register_error("ferry-latin1", _latin1_gaps)
_INT_FORMATS = {TINY: "b", SHORT: "h", LONG: "i", LONGLONG: "q"}
_UINT_BY_SIZE = {1: "B", 2: "H", 4: "I", 8: "Q"}
_DIG2BYTES = (0, 1, 1, 2, 2, 3, 3, 4, 4, 4)

RowImage = dict[str, Any]

# The C decoder's column kinds (_rowimage.c's enum) and a column's recipe for it:
# (kind, size) or (kind, size, a, b, extra), see _rowimage.c.
_INT, _UINT, _DOUBLE, _FLOAT, _YEAR, _DECIMAL, _DATE, _DATETIME, _TIMESTAMP = range(9)
_CALL, _ENUM, _SET, _BIT, _UTF8, _LATIN1, _TEXT_CALL = range(9, 16)
Native = tuple[Any, ...]
# decode(body, pos) → (values by column name, position after the image)
ImageDecoder = Callable[[bytes, int], tuple[RowImage, int]]


# ---------------------------------------------------------------- pure value decoders


Reader = Callable[[bytes], str]  # one value's bytes → its JSON text


@functools.lru_cache(maxsize=256)
def decimal_reader(precision: int, scale: int) -> tuple[Reader, int]:
    """A reader of MySQL's binary DECIMAL(precision, scale) giving its exact text
    (``-12.50``), and the value's size in bytes.

    Digits come in groups of nine per 4 bytes, the leftover leading/trailing digits in
    1-4 bytes; the value is big-endian with the sign bit flipped and every byte inverted
    when negative."""
    integral = precision - scale
    int_sizes = ([_DIG2BYTES[integral % 9]] if integral % 9 else []) + [4] * (integral // 9)
    frac_digits = [9] * (scale // 9) + ([scale % 9] if scale % 9 else [])
    frac_sizes = [_DIG2BYTES[n] for n in frac_digits]
    size = sum(int_sizes) + sum(frac_sizes)
    frac_bits = 8 * sum(frac_sizes)
    sign_bit, all_ones, frac_mask = 1 << (8 * size - 1), (1 << 8 * size) - 1, (1 << frac_bits) - 1

    def combine(name: str, sizes: list[int], digits: list[int]) -> str:
        """An expression joining base-10**digits groups (each in its own bytes, most
        significant first) of the integer ``name`` into one number."""
        if len(sizes) <= 1:
            return name
        terms, shift, scale_after = [], 8 * sum(sizes), sum(digits)
        for width, count in zip(sizes, digits, strict=True):
            shift -= 8 * width
            scale_after -= count
            terms.append(f"({name} >> {shift} & {(1 << 8 * width) - 1}) * {10**scale_after}")
        return " + ".join(terms)

    # the lead integer group counts as 9 digits: it is the most significant
    integer = combine("i", int_sizes, [9] * len(int_sizes))
    fraction = combine("f", frac_sizes, frac_digits)
    text = f'f"{{s}}{{{integer}}}.{{{fraction}:0{scale}d}}"' if scale else f'f"{{s}}{{{integer}}}"'
    source = f"""def read(raw):
    v = int.from_bytes(raw, "big") ^ {sign_bit}
    s = ""
    if v & {sign_bit}:  # the stored sign bit was 0: negative, every byte inverted
        v ^= {all_ones}
        s = "-"
    i, f = v >> {frac_bits}, v & {frac_mask}
    return {text}
"""
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<ferry decimal({precision},{scale})>", "exec"), namespace)
    read: Reader = namespace["read"]
    return read, size


def decimal_text(raw: bytes, precision: int, scale: int) -> str:
    """One binary DECIMAL value → its exact text."""
    return decimal_reader(precision, scale)[0](raw)


def _fraction_text(stored: int, fsp: int) -> str:
    """The stored fraction ((fsp+1)//2 big-endian bytes: hundredths, ten-thousandths or
    millionths) as the column's ``.123`` digits."""
    if not fsp:
        return ""
    if fsp % 2:
        stored //= 10
    return f".{stored:0{fsp}d}"


def _datetime_text(year: int, month: int, day: int) -> str:
    # A valid datetime goes through datetime.strftime on the other paths, and glibc's %Y
    # does not pad years below 1000; an invalid one is the server's (padded) text.
    if year < 1000 and _valid_date(year, month, day):
        return f"{year}-{month:02d}-{day:02d}"
    return f"{year:04d}-{month:02d}-{day:02d}"


def _valid_date(year: int, month: int, day: int) -> bool:
    return year >= 1 and 1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]


def _bounded(cache: dict[bytes, str], key: bytes, value: str) -> str:
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[key] = value
    return value


_CACHE_LIMIT = 4096
_EPOCH = date(1970, 1, 1)


def _whole_seconds(code: int, raw: bytes) -> str:
    """``YYYY-MM-DD[ HH:MM:SS]`` of a DATE, DATETIME2 or TIMESTAMP2 without its fraction."""
    if code == DATE:
        packed = int.from_bytes(raw, "little")
        return f"{packed >> 9:04d}-{(packed >> 5) & 15:02d}-{packed & 31:02d}"
    if code == DATETIME2:
        packed = int.from_bytes(raw, "big") - 0x8000000000
        ymd, hms = packed >> 17, packed & 0x1FFFF
        day = _datetime_text((ymd >> 5) // 13, (ymd >> 5) % 13, ymd & 31)
        return f"{day} {hms >> 12:02d}:{(hms >> 6) & 63:02d}:{hms & 63:02d}"
    seconds = int.from_bytes(raw, "big")
    if not seconds:  # the zero TIMESTAMP
        return "0000-00-00 00:00:00"
    days, rest = divmod(seconds, 86400)
    day = (_EPOCH + timedelta(days=days)).isoformat()
    return f"{day} {rest // 3600:02d}:{rest // 60 % 60:02d}:{rest % 60:02d}"


@functools.lru_cache(maxsize=64)
def temporal_reader(code: int, fsp: int) -> tuple[Reader, int]:
    """A reader of one DATE / TIME2 / DATETIME2 / TIMESTAMP2 value's bytes giving its JSON
    text, and the value's size. Whole seconds are cached: a stream repeats them a lot."""
    whole = {DATE: 3, TIME2: 3, DATETIME2: 5, TIMESTAMP2: 4}[code]
    size = whole + (fsp + 1) // 2
    if code == TIME2:
        return functools.partial(_time2_text, fsp=fsp), size
    cache: dict[bytes, str] = {}

    def read(raw: bytes) -> str:
        key = raw[:whole]
        text = cache.get(key)
        if text is None:
            text = _bounded(cache, key, _whole_seconds(code, key))
        if fsp:
            return text + _fraction_text(int.from_bytes(raw[whole:], "big"), fsp)
        return text

    return read, size


def temporal_text(code: int, raw: bytes, fsp: int) -> str:
    """One DATE / TIME2 / DATETIME2 / TIMESTAMP2 value's bytes → its JSON text."""
    return temporal_reader(code, fsp)[0](raw)


def _time2_text(raw: bytes, fsp: int) -> str:
    """MySQL 5.6 TIME: 3 bytes of sign/hours/minutes/seconds, offset by 0x800000, and a
    fraction that for negative values borrows from the integer part (my_time_packed_from_
    binary in the server)."""
    integer = int.from_bytes(raw[:3], "big") - 0x800000
    if fsp in (1, 2):
        frac = raw[3]
        if integer < 0 and frac:
            integer, frac = integer + 1, frac - 0x100
        packed = (integer << 24) + frac * 10000
    elif fsp in (3, 4):
        frac = int.from_bytes(raw[3:5], "big")
        if integer < 0 and frac:
            integer, frac = integer + 1, frac - 0x10000
        packed = (integer << 24) + frac * 100
    elif fsp in (5, 6):
        packed = int.from_bytes(raw[:6], "big") - 0x800000000000
    else:
        packed = integer << 24
    sign = "-" if packed < 0 else ""
    packed = abs(packed)
    hms, micro = packed >> 24, packed & 0xFFFFFF
    text = f"{sign}{(hms >> 12) & 0x3FF:02d}:{(hms >> 6) & 63:02d}:{hms & 63:02d}"
    return text + (f".{micro:06d}"[: fsp + 1] if fsp else "")


# ---------------------------------------------------------------- code generation


class _Source:
    """Accumulates a generated function's lines and the constants it refers to."""

    def __init__(self, names: dict[str, Any] | None = None) -> None:
        self.lines: list[str] = []
        self.names: dict[str, Any] = dict(names or {})
        self._keys: dict[Any, str] = {}

    def const(self, prefix: str, value: Any, key: Any = None) -> str:
        """A global name for ``value`` in the generated code (one per ``key``)."""
        key = (prefix, key) if key is not None else (prefix, id(value))
        name = self._keys.get(key)
        if name is None:
            name = self._keys[key] = f"{prefix}{len(self.names)}"
            self.names[name] = value
        return name

    def unpacker(self, fmt: str) -> str:
        return self.const("U", struct.Struct("<" + fmt).unpack_from, key=fmt)

    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)


class _Col:
    """One column's decoding recipe: either a fixed-width struct read with an optional
    post-conversion, or a snippet that reads at ``p`` and advances it."""

    def __init__(
        self,
        name: str,
        fmt: str = "",
        post: str = "{}",
        fixed: Callable[[_Source, str], str] | None = None,
        size: int = 0,
        variable: Callable[[_Source, str, int], list[str]] | None = None,
        native: Native | None = None,
    ) -> None:
        self.name = name
        self.fmt = fmt  # one struct format character (little-endian)
        self.post = post  # expression around the raw value, "{}" = the value
        self.fixed = fixed  # (src, offset expression) → value expression, `size` bytes
        self.size = size
        self.variable = variable  # (src, target, indent) → lines reading and advancing p
        self.native = native  # the same column for the C decoder (_rowimage.Plan)


def _text_reader(length_size: int, convert: Callable[[str], str]) -> Callable[..., list[str]]:
    """A length-prefixed string: ``convert("d[a:b]")`` gives the value expression."""

    def lines(src: _Source, target: str, indent: int) -> list[str]:
        if length_size == 1:
            head = "n_ = d[p]"
        elif length_size == 2:
            head = "n_ = d[p] | d[p + 1] << 8"
        else:
            head = f"n_ = int.from_bytes(d[p:p + {length_size}], 'little')"
        chunk = f"d[p + {length_size}:p + {length_size} + n_]"
        return [head, f"{target} = {convert(chunk)}", f"p += {length_size} + n_"]

    return lines


def _column(column: Any, kind: types.Column, src: _Source) -> _Col | None:
    """The recipe for one TableMap column, or None if this module cannot decode it."""
    code, name = int(column.type), str(column.name)
    unsigned = bool(getattr(column, "unsigned", False))
    if code in _INT_FORMATS:
        fmt = _INT_FORMATS[code]
        size = struct.calcsize(fmt)
        return _Col(
            name, fmt=fmt.upper() if unsigned else fmt, native=(_UINT if unsigned else _INT, size)
        )
    if code == INT24:
        signed = "False" if unsigned else "True"
        return _Col(
            name, size=3, fixed=lambda s, o: f"int.from_bytes(d[{o}:{o} + 3], 'little', "
            f"signed={signed})", native=(_UINT if unsigned else _INT, 3)
        )  # fmt: skip
    if code == FLOAT:
        post = src.const("F", types.float32) + "({})"
        return _Col(name, fmt="f", post=post, native=(_FLOAT, 4, 0, 0, types.float32))
    if code == DOUBLE:
        return _Col(name, fmt="d", native=(_DOUBLE, 8))
    if code == YEAR:
        return _Col(name, fmt="B", post="({0} + 1900 if {0} else 0)", native=(_YEAR, 1))
    if code == NEWDECIMAL:
        precision, scale = int(column.precision), int(column.decimals)
        reader, size = decimal_reader(precision, scale)
        fn = src.const("D", reader)
        return _Col(
            name, size=size, fixed=lambda s, o: f"{fn}(d[{o}:{o} + {size}])",
            native=(_DECIMAL, size, precision, scale)
        )  # fmt: skip
    if code == BIT:
        size = int(column.bytes)
        return _Col(
            name, size=size, fixed=lambda s, o: f"int.from_bytes(d[{o}:{o} + {size}], 'big')",
            native=(_BIT, size)
        )  # fmt: skip
    if code in (DATE, TIME2, DATETIME2, TIMESTAMP2):
        fsp = int(getattr(column, "fsp", 0) or 0)
        reader, size = temporal_reader(code, fsp)
        fn = src.const("T", reader)
        native_kind = {DATE: _DATE, DATETIME2: _DATETIME, TIMESTAMP2: _TIMESTAMP}.get(code, _CALL)
        return _Col(
            name, size=size, fixed=lambda s, o: f"{fn}(d[{o}:{o} + {size}])",
            native=(native_kind, size, fsp, 0, reader if native_kind == _CALL else None)
        )  # fmt: skip
    if code == ENUM:
        values = tuple(column.enum_values or ())
        size = int(column.size)
        if size not in (1, 2) or not values:
            return None
        post = f"{src.const('E', values)}[{{}}]"
        return _Col(name, fmt=_UINT_BY_SIZE[size], post=post, native=(_ENUM, size, 0, 0, values))
    if code == SET:
        members = tuple(column.set_values or ())
        size = int(column.size)
        if not members:
            return None
        chosen = _set_reader(members)
        fn = src.const("S", chosen)
        native = (_SET, size, 0, 0, chosen)
        if size not in _UINT_BY_SIZE:  # 17-24 members: 3 bytes
            return _Col(
                name, size=size, fixed=lambda s, o: f"{fn}(int.from_bytes(d[{o}:{o} + {size}], "
                "'little'))", native=native
            )  # fmt: skip
        return _Col(name, fmt=_UINT_BY_SIZE[size], post=f"{fn}({{}})", native=native)
    if code in (VARCHAR, STRING, BLOB):
        return _string_column(column, kind, src)
    return None


def _string_column(column: Any, kind: types.Column, src: _Source) -> _Col | None:
    """CHAR/VARCHAR/TEXT (utf8, latin1), BINARY/VARBINARY/BLOB, and MariaDB's JSON (a
    LONGTEXT that information_schema calls JSON)."""
    code, name = int(column.type), str(column.name)
    if code == BLOB:
        length_size = int(column.length_size)
    else:
        length_size = 2 if int(column.max_length) > 255 else 1
    charset = getattr(column, "character_set_name", None)
    if kind.kind == "binary" and charset == "binary":
        b64, pad = src.const("B", binascii.b2a_base64), kind.pad_to

        def encoded(chunk: str) -> str:
            padded = f"{chunk}.ljust({pad}, b'\\0')" if pad else chunk
            return f"{b64}({padded}, newline=False).decode()"

        def base64(raw: bytes) -> str:
            return binascii.b2a_base64(raw.ljust(pad, b"\0"), newline=False).decode()

        native = (_TEXT_CALL, length_size, 0, 0, base64)
        return _Col(name, variable=_text_reader(length_size, encoded), native=native)
    codec = _TEXT_CODECS.get(charset or "")
    if codec is None:
        return None
    if kind.kind == "json":
        loads = src.const("J", json.loads)
        decode_args = _DECODE_ARGS[charset or ""]

        def document(raw: bytes) -> Any:
            return json.loads(raw.decode(*decode_args))

        return _Col(
            name, variable=_text_reader(length_size, lambda c: f"{loads}({c}.decode({codec}))"),
            native=(_TEXT_CALL, length_size, 0, 0, document)
        )  # fmt: skip
    if kind.kind != "text":
        return None
    text = (_UTF8 if charset == "utf8" else _LATIN1, length_size)
    return _Col(
        name, variable=_text_reader(length_size, lambda c: f"{c}.decode({codec})"), native=text
    )


def _set_reader(members: tuple[str, ...]) -> Callable[[int], list[str]]:
    cache: dict[int, tuple[str, ...]] = {}

    def chosen(mask: int) -> list[str]:
        found = cache.get(mask)
        if found is None:
            found = tuple(m for i, m in enumerate(members) if mask >> i & 1)
            if len(cache) < 4096:
                cache[mask] = found
        return list(found)  # a fresh list per cell: nobody shares a mutable value

    return chosen


def _image_source(
    recipes: Sequence[_Col], present: Sequence[bool], names: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """Source of ``image(d, p)`` for one columns-present bitmap: a null-free fast path
    with merged struct reads at static offsets, and a general path with null checks."""
    src = _Source(names)
    chosen = [r for r, on in zip(recipes, present, strict=True) if on]
    null_bytes = (len(chosen) + 7) // 8
    src.emit(0, "def image(d, p):")
    if null_bytes == 1:
        src.emit(1, "nulls = d[p]")
    elif null_bytes == 2:
        src.emit(1, "nulls = d[p] | d[p + 1] << 8")
    elif null_bytes:
        src.emit(1, f"nulls = int.from_bytes(d[p:p + {null_bytes}], 'little')")
    src.emit(1, f"p += {null_bytes}")
    targets = [f"v{i}" for i in range(len(chosen))]
    if chosen:
        src.emit(1, "if not nulls:")
        _fast_path(src, chosen, targets, 2)
        src.emit(1, "else:")
        for bit, (recipe, target) in enumerate(zip(chosen, targets, strict=True)):
            src.emit(2, f"if nulls & {1 << bit}:")
            src.emit(3, f"{target} = None")
            src.emit(2, "else:")
            _read_one(src, recipe, target, 3)
    by_name = dict(zip((r.name for r in chosen), targets, strict=True))
    items = ", ".join(f"{r.name!r}: {by_name.get(r.name, 'None')}" for r in recipes)
    src.emit(1, f"return {{{items}}}, p")
    return "\n".join(src.lines) + "\n", src.names


def _read_one(src: _Source, recipe: _Col, target: str, indent: int) -> None:
    if recipe.fmt:
        src.emit(indent, f"{target} = {src.unpacker(recipe.fmt)}(d, p)[0]")
        if recipe.post != "{}":
            src.emit(indent, f"{target} = {recipe.post.format(target)}")
        src.emit(indent, f"p += {struct.calcsize('<' + recipe.fmt)}")
    elif recipe.fixed is not None:
        src.emit(indent, f"{target} = {recipe.fixed(src, 'p')}")
        src.emit(indent, f"p += {recipe.size}")
    else:
        assert recipe.variable is not None
        for line in recipe.variable(src, target, indent):
            src.emit(indent, line)


def _fast_path(src: _Source, chosen: Sequence[_Col], targets: Sequence[str], indent: int) -> None:
    """No NULL in this image: runs of struct columns in one unpack_from, fixed-width
    columns at static offsets, ``p`` moved only around variable-length ones."""
    offset = 0
    run: list[tuple[_Col, str]] = []

    def at(extra: int) -> str:
        return f"p + {extra}" if extra else "p"

    def flush() -> None:
        nonlocal offset
        if not run:
            return
        fmt = "".join(r.fmt for r, _ in run)
        unpack = src.unpacker(fmt)
        raw = [t if r.post == "{}" else f"r{t[1:]}" for r, t in run]
        src.emit(indent, f"{', '.join(raw)}{',' if len(raw) == 1 else ''} = "
                         f"{unpack}(d, {at(offset)})")  # fmt: skip
        for (recipe, target), name in zip(run, raw, strict=True):
            if recipe.post != "{}":
                src.emit(indent, f"{target} = {recipe.post.format(name)}")
        offset += struct.calcsize("<" + fmt)
        run.clear()

    for recipe, target in zip(chosen, targets, strict=True):
        if recipe.fmt:
            run.append((recipe, target))
            continue
        flush()
        if recipe.fixed is not None:
            src.emit(indent, f"{target} = {recipe.fixed(src, at(offset))}")
            offset += recipe.size
        else:
            assert recipe.variable is not None
            if offset:
                src.emit(indent, f"p += {offset}")
                offset = 0
            for line in recipe.variable(src, target, indent):
                src.emit(indent, line)
    flush()
    if offset:
        src.emit(indent, f"p += {offset}")
    if not chosen:
        src.emit(indent, "pass")


# ---------------------------------------------------------------- tables and events


def row_body(event: Any) -> bytes:
    """The bytes of a rows event after the header and columns-present bitmaps that the
    library parsed: the row images, up to (not including) the checksum."""
    wrapper = event.packet
    if getattr(wrapper, "_BinLogPacketWrapper__data_buffer", b""):
        raise ValueError("the library left unread bytes behind")
    packet = wrapper.packet
    start = packet._position
    end = start + event.event_size - wrapper.read_bytes
    if end > len(packet._data):
        raise ValueError("rows event shorter than its size")
    return bytes(packet._data[start:end])


_IMAGE_LIMIT = 256


class TableDecoder:
    """Decodes the rows events of one table (one TableMap): compiles one image decoder per
    columns-present bitmap on first sight."""

    def __init__(
        self,
        recipes: list[_Col],
        names: dict[str, Any],
        table: str,
        on_refused: Callable[[], None] | None = None,
    ) -> None:
        self.recipes = recipes
        self.names = names  # the constants the recipes refer to
        self.table = table
        self._images: dict[bytes, ImageDecoder] = {}
        self.native = _native_plan(recipes)
        self.on_refused = on_refused  # told of each event the C decoder leaves to Python

    def image(self, bitmap: bytes) -> ImageDecoder:
        decoder = self._images.get(bitmap)
        if decoder is None:
            if len(self._images) >= _IMAGE_LIMIT:  # MINIMAL updates: a bitmap per column set
                self._images.clear()
            present = [bool(bitmap[i // 8] >> (i % 8) & 1) for i in range(len(self.recipes))]
            source, names = _image_source(self.recipes, present, self.names)
            namespace: dict[str, Any] = dict(names)
            exec(compile(source, f"<ferry rows {self.table}>", "exec"), namespace)
            decoder = self._images[bitmap] = namespace["image"]
        return decoder

    def decode(self, event: Any) -> list[tuple[RowImage, RowImage | None]]:
        """Every row of ``event`` as (values, before-values of an update or None)."""
        if event.event_type not in _ROWS_EVENTS:
            raise ValueError(f"unsupported rows event type {event.event_type}")
        if event.number_of_columns != len(self.recipes):
            raise ValueError("rows event and table map disagree on the column count")
        after = getattr(event, "columns_present_bitmap2", None)  # an update: before, after
        return self.decode_body(row_body(event), event.columns_present_bitmap, after)

    def decode_body(
        self, body: bytes, bitmap: bytes, bitmap2: bytes | None = None
    ) -> list[tuple[RowImage, RowImage | None]]:
        """The rows of a rows event's body (:func:`row_body`) whose columns-present bitmaps
        are ``bitmap`` and, for an update's after-images, ``bitmap2``."""
        if self.native is not None:
            try:
                rows: list[tuple[RowImage, RowImage | None]]
                rows = self.native.decode(body, bitmap, bitmap2)
                return rows
            except Exception:  # the Python decoders below tell exactly what is wrong
                if self.on_refused is not None:
                    self.on_refused()
        end, pos = len(body), 0
        out: list[tuple[RowImage, RowImage | None]] = []
        if bitmap2 is not None:
            before, after = self.image(bitmap), self.image(bitmap2)
            while pos < end:
                old, pos = before(body, pos)
                new, pos = after(body, pos)
                out.append((new, old))
        else:
            image = self.image(bitmap)
            while pos < end:
                values, pos = image(body, pos)
                out.append((values, None))
        if pos != end:
            raise ValueError(f"row images overran the event by {pos - end} bytes")
        return out


def _native_plan(recipes: Sequence[_Col]) -> _rowimage.Plan | None:
    """The C decoder of a table (every column has a native recipe), or None."""
    specs = []
    for recipe in recipes:
        if recipe.native is None:
            return None
        kind, size, a, b, extra = (*recipe.native, 0, 0, None)[:5]
        specs.append((recipe.name, kind, size, a, b, extra))
    return _rowimage.Plan(specs)


def table_decoder(
    columns: Sequence[Any],
    kinds: Sequence[types.Column],
    table: str,
    on_refused: Callable[[], None] | None = None,
) -> TableDecoder | None:
    """A decoder for a table whose TableMap columns are ``columns`` (with ``kinds`` from
    :func:`types.from_binlog_column`), or None when some column needs the library."""
    src = _Source()
    recipes: list[_Col] = []
    for column, kind in zip(columns, kinds, strict=True):
        try:
            recipe = _column(column, kind, src) if column.name else None
        except (AttributeError, KeyError, TypeError, ValueError):  # metadata we do not know
            recipe = None
        if recipe is None:
            return None
        recipes.append(recipe)
    return TableDecoder(recipes, src.names, table, on_refused)
