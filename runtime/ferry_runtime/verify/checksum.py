"""The SQL a verification runs on both MySQL sides: pure string building.

One expression hashes a row's compared columns the same way on the source and the target:
each value is cast to its bytes (text as utf8mb4, JSON compacted, FLOAT widened to DOUBLE so
no bit hides, TIMESTAMP in the UTC session), prefixed by its length (-1 for NULL) so that no
two rows run together, then ``MD5`` over the lot. A chunk's checksum is the row count and
the ``BIT_XOR`` of the two 64-bit halves of every row's MD5: exact integer arithmetic on
both servers, independent of row order.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ferry_runtime import types
from ferry_runtime.source.schema import quote

__all__ = ["Side", "checksum_sql", "keys_sql", "range_sql", "row_hash", "rows_sql"]


@dataclass(frozen=True)
class Side:
    """One table as one server sees it: where it is and the names compared, in order."""

    database: str
    table: str
    columns: tuple[tuple[types.Column, str], ...]  # (the source's column, its name here)
    key: tuple[tuple[types.Column, str], ...]  # the primary key, the source's order
    mariadb: bool = True

    @property
    def name(self) -> str:
        return f"{quote(self.database)}.{quote(self.table)}"


def _value(column: types.Column, name: str, mariadb: bool) -> str:
    q = quote(name)
    if column.kind in ("text", "enum", "set"):
        value = f"CONVERT({q} USING utf8mb4)"
    elif column.kind == "json":  # the sink writes the parsed value back: compare it compact
        value = f"JSON_COMPACT({q})" if mariadb else f"CAST({q} AS CHAR)"
    elif column.kind == "float":
        value = f"CAST({q} AS DOUBLE)"
    else:
        value = q
    return f"CAST({value} AS BINARY)"


def row_hash(side: Side) -> str:
    """MD5 (32 hex digits) of one row's compared values."""
    parts = []
    for column, name in side.columns:
        value = _value(column, name, side.mariadb)
        parts.append(f"COALESCE(OCTET_LENGTH({value}), -1), {value}")
    return f"MD5(CONCAT_WS('|', {', '.join(parts)}))"


def sql_value(column: types.Column, value: Any) -> Any:
    """A key's JSON value back to what a WHERE clause compares correctly."""
    if column.kind == "binary" and isinstance(value, str):
        return base64.b64decode(value)
    return value


def range_sql(
    side: Side, after: Sequence[Any] | None, upto: Sequence[Any] | None
) -> tuple[str, list[Any]]:
    """``WHERE (key) > (after) AND (key) <= (upto)`` (None: unbounded on that side)."""
    key_sql = ", ".join(quote(name) for _, name in side.key)
    marks = ", ".join(["%s"] * len(side.key))
    clauses: list[str] = []
    args: list[Any] = []
    for bound, op in ((after, ">"), (upto, "<=")):
        if bound is not None:
            clauses.append(f"({key_sql}) {op} ({marks})")
            args += [sql_value(c, v) for (c, _), v in zip(side.key, bound, strict=True)]
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


def keys_sql(side: Side, keys: Sequence[Sequence[Any]]) -> tuple[str, list[Any]]:
    """``WHERE (key) IN ((...), ...)`` for the given keys."""
    key_sql = ", ".join(quote(name) for _, name in side.key)
    one = "(" + ", ".join(["%s"] * len(side.key)) + ")"
    args = [sql_value(c, v) for key in keys for (c, _), v in zip(side.key, key, strict=True)]
    return f" WHERE ({key_sql}) IN ({', '.join([one] * len(keys))})", args


def checksum_sql(side: Side, where: str) -> str:
    """COUNT and the XOR of both MD5 halves over the rows ``where`` selects."""
    halves = ", ".join(
        f"COALESCE(BIT_XOR(CAST(CONV({part}(h, 16), 16, 10) AS UNSIGNED)), 0)"
        for part in ("LEFT", "RIGHT")
    )
    return (
        f"SELECT COUNT(*), {halves} FROM (SELECT {row_hash(side)} AS h FROM {side.name}{where}) c"
    )


def rows_sql(side: Side, where: str) -> str:
    """Each row's key columns and hash."""
    keys = ", ".join(quote(name) for _, name in side.key)
    return f"SELECT {keys}, {row_hash(side)} FROM {side.name}{where}"
