"""Pure pieces of the MySQL sink: JSON values back to SQL values, and the statements.

Changes arrive with JSON values (see :mod:`ferry_runtime.types`); each value is turned back
into what PyMySQL sends for the *target* column's kind:

=================  ==================================================
DECIMAL            ``Decimal`` (exact, also in comparisons)
BINARY/BLOB        the base64-decoded bytes
SET                ``'a,b'``
JSON               JSON text (``ensure_ascii=False``)
BIT                the integer
FLOAT              the number (compared as ``CAST(%s AS FLOAT)``)
everything else    as is (dates and times are strings; the session is UTC)
=================  ==================================================

Statements, per change (``read`` is a snapshot row):

* table with a primary key: insert/read → ``INSERT … ON DUPLICATE KEY UPDATE`` (idempotent);
  update → the same upsert, preceded by a ``DELETE`` of the old key when the key changed;
  delete → ``DELETE … WHERE key``.
* table without one: insert/read → plain ``INSERT``; update and delete match every old
  column value (NULL-safe) with ``LIMIT 1``; identical rows are interchangeable.

Generated columns of the target are never written (nor matched): the target computes them.

Many rows at once (:func:`multi_row`, :func:`key_list`): the values are written into the
statement's text by :func:`literal`, PyMySQL's escaping without its per-value layers of calls
(the sink thread's largest cost when it went through ``executemany``).
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from pymysql import converters

from ferry_runtime import types
from ferry_runtime.events import Change
from ferry_runtime.source.schema import quote

__all__ = [
    "BadValue",
    "SchemaMismatch",
    "Statement",
    "Target",
    "delete_by_key",
    "delete_keys",
    "delete_row",
    "insert",
    "key_list",
    "literal",
    "multi_row",
    "plan",
    "quote",
    "to_sql",
    "update_row",
    "upsert",
]


class SchemaMismatch(ValueError):
    """The change has a column the target table lacks."""


class BadValue(ValueError):
    """A JSON value cannot be turned into the target column's SQL value."""


@dataclass(frozen=True)
class Target:
    """A target table as information_schema describes it."""

    database: str
    table: str
    columns: tuple[types.Column, ...]
    primary_key: tuple[str, ...]
    generated: frozenset[str] = frozenset()  # computed by the target: never written

    @functools.cached_property
    def name(self) -> str:
        return f"{quote(self.database)}.{quote(self.table)}"

    @functools.cached_property
    def by_name(self) -> dict[str, types.Column]:
        return {column.name: column for column in self.columns}

    @functools.cached_property
    def shapes(self) -> dict[tuple[str, ...], _Shape]:
        """The rows' column lists seen so far (:func:`_shape`)."""
        return {}


# Kinds whose JSON value to_sql changes (every other kind's value goes as it is, unless it
# is a JSON object or array).
_CONVERTED = frozenset({"binary", "decimal", "set", "json", "bit"})
_PLAIN = frozenset({str, int, float, bool, type(None)})


@dataclass(frozen=True)
class _Shape:
    """What a row with these columns needs on this target: the columns written (generated
    ones left out, checked against the target), how to pick their values, which of them
    to_sql changes, the key columns it lacks, and the statement writing it."""

    names: tuple[str, ...]
    columns: tuple[types.Column, ...]
    pick: Callable[[dict[str, Any]], tuple[Any, ...]]
    converted: tuple[tuple[int, types.Column], ...]
    absent: tuple[str, ...]  # primary key columns the row does not have
    write: str  # upsert (plain insert without a primary key)

    def values(self, row: dict[str, Any]) -> tuple[Any, ...]:
        """:func:`to_sql` of the row's values in :attr:`names` order (the same values)."""
        values = self.pick(row)
        if not _PLAIN.issuperset(map(type, values)):  # an object, an array, bytes: each
            return tuple(map(to_sql, self.columns, values))
        if not self.converted:
            return values
        found = list(values)
        for index, column in self.converted:
            found[index] = to_sql(column, found[index])
        return tuple(found)


def _picker(names: tuple[str, ...]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    if len(names) == 1:
        name = names[0]
        return lambda row: (row[name],)
    return operator.itemgetter(*names)


def _shape(target: Target, row: dict[str, Any]) -> _Shape:
    """The target's :class:`_Shape` for ``row``'s columns (made once per column list);
    raises SchemaMismatch for a column the target lacks."""
    found = tuple(row)
    shape = target.shapes.get(found)
    if shape is None:
        names = tuple(name for name in found if name not in target.generated)
        _check_columns(target, names)
        columns = tuple(target.by_name[name] for name in names)
        converted = tuple((i, c) for i, c in enumerate(columns) if c.kind in _CONVERTED)
        key = target.primary_key
        absent = tuple(name for name in key if name not in row)
        write = upsert(target.name, names, key) if key else insert(target.name, names)
        shape = _Shape(names, columns, _picker(names), converted, absent, write)
        target.shapes[found] = shape
    return shape


class Statement(NamedTuple):  # a tuple: made once per row on the hot path
    sql: str
    args: tuple[Any, ...]
    batchable: bool = False  # consecutive ones with the same sql may go as one (multi_row)
    # Consecutive ones with the same ``keys`` may go as one ``keys IN (…)`` statement: a
    # DELETE by primary key, whose ``args`` are the key's values.
    keys: str | None = None


# ---------------------------------------------------------------- values


def to_sql(column: types.Column, value: Any) -> Any:
    """One JSON value → the Python value PyMySQL should send for ``column``."""
    if value is None:
        return None
    kind = column.kind
    try:
        if kind == "binary":
            return base64.b64decode(value, validate=True) if isinstance(value, str) else value
        if kind == "decimal":
            return Decimal(value) if isinstance(value, str) else value
        if kind == "set":
            return ",".join(value) if isinstance(value, list) else value
        if kind == "json" or isinstance(value, dict | list):
            return json.dumps(value, ensure_ascii=False)
        if kind == "bit":
            return int(value)
    except (binascii.Error, InvalidOperation, TypeError, ValueError) as error:
        # The value itself stays out of the message (it ends up in status and events).
        raise BadValue(f"column {column.name} ({kind}): {type(error).__name__}") from None
    return value


def _values(target: Target, row: dict[str, Any], names: tuple[str, ...]) -> tuple[Any, ...]:
    columns = target.by_name
    return tuple(to_sql(columns[name], row[name]) for name in names)


def _check_columns(target: Target, names: tuple[str, ...]) -> None:
    missing = [name for name in names if name not in target.by_name]
    if missing:
        raise SchemaMismatch(
            f"target table {target.name} has no column {', '.join(map(quote, missing))}"
        )


# ---------------------------------------------------------------- literals

# The sink's session never sets NO_BACKSLASH_ESCAPES, so strings are escaped with
# backslashes, as PyMySQL does (same table; a list translates ~3x faster than a dict).
_SPECIAL = {0: "\\0", 10: "\\n", 13: "\\r", 26: "\\Z", 34: '\\"', 39: "\\'", 92: "\\\\"}
_ESCAPES = [_SPECIAL.get(code, chr(code)) for code in range(128)]
_LITERALS: dict[type, Callable[[Any], str]] = {
    str: lambda value: "'" + value.translate(_ESCAPES) + "'",
    int: int.__repr__,
    type(None): lambda _: "NULL",
    Decimal: lambda value: format(value, "f"),
    float: converters.escape_float,  # repr with an exponent; refuses inf and nan
    bool: converters.escape_bool,
    bytes: converters.escape_bytes,  # _binary X'…'
}


def literal(value: Any) -> str:
    """``value`` (a :func:`to_sql` value) as SQL text, the same as PyMySQL sends."""
    found = _LITERALS.get(type(value))
    return found(value) if found is not None else converters.escape_item(value, "utf8mb4")


def _row(values: tuple[Any, ...]) -> str:
    """``(v1,v2,…)``: one row of a multi-row statement."""
    try:  # one lookup and one call per value: this runs for every value of every row
        return "(" + ",".join([_LITERALS[type(value)](value) for value in values]) + ")"
    except KeyError:  # a type PyMySQL knows and the table does not (datetime, a subclass)
        return "(" + ",".join(map(literal, values)) + ")"


MAX_STATEMENT = 1_024_000  # bytes: PyMySQL's executemany limit, under any max_allowed_packet


@functools.lru_cache(maxsize=1024)
def _head_tail(statement: str, width: int) -> tuple[bytes, bytes]:
    """:func:`insert`'s or :func:`upsert`'s text before and after its ``(%s, …)``."""
    head, values, tail = statement.rpartition(f" VALUES ({', '.join(['%s'] * width)})")
    assert values, statement
    return f"{head} VALUES ".encode(), tail.encode()


def multi_row(statement: str, rows: list[tuple[Any, ...]]) -> Iterator[bytes]:
    """The single-row :func:`insert` or :func:`upsert` ``statement`` for all ``rows`` (their
    values in order), as few statements as fit in :data:`MAX_STATEMENT` bytes each."""
    head, tail = _head_tail(statement, len(rows[0]))
    room = MAX_STATEMENT - len(head) - len(tail)
    part: list[bytes] = []
    size = 0
    for values in rows:
        row = _row(values).encode()
        if part and size + len(row) + 1 > room:
            yield head + b",".join(part) + tail
            part, size = [], 0
        part.append(row)
        size += len(row) + 1
    yield head + b",".join(part) + tail


def key_list(keys: list[tuple[Any, ...]]) -> str:
    """The keys' values for :func:`delete_keys`: ``(1,2)`` or ``((1,'a'),(2,'b'))``."""
    if len(keys[0]) == 1:
        return "(" + ",".join([literal(value) for (value,) in keys]) + ")"
    return "(" + ",".join(map(_row, keys)) + ")"


# ---------------------------------------------------------------- SQL text


def _placeholder(column: types.Column) -> str:
    # A FLOAT holds a float32; a double literal such as 1.1 never equals it.
    return "CAST(%s AS FLOAT)" if column.kind == "float" else "%s"


@functools.lru_cache(maxsize=1024)
def insert(table: str, names: tuple[str, ...]) -> str:
    columns = ", ".join(map(quote, names))
    return f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(names))})"


@functools.lru_cache(maxsize=1024)
def upsert(table: str, names: tuple[str, ...], key: tuple[str, ...]) -> str:
    """INSERT … ON DUPLICATE KEY UPDATE every non-key column (a no-op update of the first
    column when every column is part of the key)."""
    rest = [name for name in names if name not in key] or [names[0]]
    updates = ", ".join(f"{quote(name)} = VALUES({quote(name)})" for name in rest)
    return f"{insert(table, names)} ON DUPLICATE KEY UPDATE {updates}"


@functools.lru_cache(maxsize=1024)
def delete_by_key(table: str, key: tuple[str, ...]) -> str:
    where = " AND ".join(f"{quote(name)} = %s" for name in key)
    return f"DELETE FROM {table} WHERE {where}"


@functools.lru_cache(maxsize=1024)
def delete_keys(table: str, key: tuple[str, ...]) -> str:
    """The start of :func:`delete_by_key` for many keys at once: ``… WHERE k IN `` (or
    ``(k1, k2) IN ``), to be followed by the list of values (:func:`key_list`)."""
    names = quote(key[0]) if len(key) == 1 else f"({', '.join(map(quote, key))})"
    return f"DELETE FROM {table} WHERE {names} IN "


def _match(target: Target, names: tuple[str, ...]) -> str:
    columns = target.by_name
    return " AND ".join(f"{quote(n)} <=> {_placeholder(columns[n])}" for n in names)


def delete_row(target: Target, names: tuple[str, ...]) -> str:
    """DELETE one row equal to the old values in every column (no primary key)."""
    return f"DELETE FROM {target.name} WHERE {_match(target, names)} LIMIT 1"


def update_row(target: Target, new: tuple[str, ...], old: tuple[str, ...]) -> str:
    """UPDATE one row equal to the old values in every column (no primary key)."""
    sets = ", ".join(f"{quote(name)} = %s" for name in new)
    return f"UPDATE {target.name} SET {sets} WHERE {_match(target, old)} LIMIT 1"


# ---------------------------------------------------------------- one change


def _delete(target: Target, key: tuple[str, ...], values: tuple[Any, ...]) -> Statement:
    table = target.name
    return Statement(delete_by_key(table, key), values, keys=delete_keys(table, key))


def plan(target: Target, change: Change) -> list[Statement]:
    """The statements applying ``change`` (already mapped) to ``target``."""
    data = change.data
    shape = _shape(target, data)
    names = shape.names
    key = target.primary_key
    if shape.absent:
        raise SchemaMismatch(
            f"rows for {target.name} carry no value for its primary key column "
            f"{', '.join(map(quote, shape.absent))} (dropped or renamed by the mapping?)"
        )
    op = change.op
    if op == "insert" or op == "read" or (op == "update" and change.old is None):
        return [Statement(shape.write, shape.values(data), True)]
    if op == "delete":
        if not key:
            return [Statement(delete_row(target, names), _values(target, data, names))]
        return [_delete(target, key, _values(target, data, key))]
    old = change.old or {}
    old_names = _shape(target, old).names  # checked against the target too
    if not key:
        sql = update_row(target, names, old_names)
        values = _values(target, data, names) + _values(target, old, old_names)
        return [Statement(sql, values)]
    if any(old.get(name) != data.get(name) for name in key):
        return [
            _delete(target, key, _values(target, old, key)),
            Statement(shape.write, shape.values(data), True),
        ]
    return [Statement(shape.write, shape.values(data), True)]
