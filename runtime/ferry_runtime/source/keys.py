"""Primary keys compared the way the server's index orders them.

The snapshot reads a table in primary-key order and remembers the last key of each chunk;
a binlog change must then be told whether its key is at or before that bound. Python
compares most kinds exactly: integers, DECIMAL (as Decimal), fixed-width date and time
strings, BINARY (the base64 decoded back to bytes), ENUM by member index, BIT. Text is
compared by the server (``STRCMP`` under the column's collation), because case, accents and
trailing spaces order differently under each collation; those answers are cached.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pymysql

from ferry_runtime import errors, types
from ferry_runtime.source.schema import TableSchema

__all__ = ["KeyOrder"]


def _time_micros(value: str) -> int:
    """'-838:59:59.000001' → signed microseconds."""
    sign = -1 if value.startswith("-") else 1
    clock, _, fraction = value.lstrip("-").partition(".")
    hours, minutes, seconds = (int(part) for part in clock.split(":"))
    micros = int((fraction + "000000")[:6])
    return sign * (((hours * 60 + minutes) * 60 + seconds) * 1_000_000 + micros)


def _python_key(column: types.Column) -> Callable[[Any], Any] | None:
    """A function giving a value that Python orders as the index does; None for text."""
    kind = column.kind
    if kind in ("int", "year", "bit", "float", "double"):
        return lambda value: value
    if kind == "decimal":
        return Decimal
    if kind in ("date", "datetime", "timestamp"):
        return str  # fixed-width, zero-padded, one fsp per column: string order is time order
    if kind == "time":
        return _time_micros
    if kind == "binary":
        return base64.b64decode  # both sides padded to BINARY(n): bytes order is memcmp
    if kind == "enum":
        members = {member: index for index, member in enumerate(column.values, 1)}
        return lambda value: members.get(value, 0)
    if kind == "set":
        bits = {member: 1 << index for index, member in enumerate(column.values)}
        return lambda value: sum(bits.get(member, 0) for member in value)
    return None


class KeyOrder:
    """``at_or_before(key, bound)`` for one table's primary key (JSON values, key order)."""

    def __init__(self, conn: Any, table: TableSchema) -> None:
        self.conn = conn
        by_name = {column.name: column for column in table.columns}
        self.key_names = table.primary_key
        self._columns = [by_name[name] for name in table.primary_key]
        self._keys = [_python_key(column) for column in self._columns]
        self._collations: dict[str, tuple[str, str]] = {}
        if any(key is None for key in self._keys):
            self._collations = self._load_collations(table)
        self._cache: dict[tuple[str, str, str], int] = {}

    def _load_collations(self, table: TableSchema) -> dict[str, tuple[str, str]]:
        with self.conn.cursor() as cursor:
            cursor.execute(
                "SELECT COLUMN_NAME, CHARACTER_SET_NAME, COLLATION_NAME "
                "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
                (table.database, table.table),
            )
            return {
                str(name): (str(charset), str(collation))
                for name, charset, collation in cursor.fetchall()
                if charset is not None
            }

    def _strcmp(self, column: types.Column, left: str, right: str) -> int:
        charset, collation = self._collations.get(column.name, ("utf8mb4", "utf8mb4_bin"))
        cached = self._cache.get((column.name, left, right))
        if cached is not None:
            return cached
        # Identifiers from information_schema, not user input: safe to splice.
        typed = f"CONVERT(%s USING {charset}) COLLATE {collation}"
        try:
            with self.conn.cursor() as cursor:
                cursor.execute(f"SELECT STRCMP({typed}, {typed})", (left, right))
                row = cursor.fetchone()
        except pymysql.err.MySQLError as error:
            raise errors.from_mysql(error, "comparing primary keys") from None
        result = int(row[0]) if row and row[0] is not None else 0
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[(column.name, left, right)] = result
        return result

    def compare(self, key: list[Any] | tuple[Any, ...], bound: list[Any]) -> int:
        """-1, 0 or 1 as ``key`` sorts before, equal to or after ``bound``. NULL never
        occurs in a primary key."""
        for column, to_key, left, right in zip(self._columns, self._keys, key, bound, strict=True):
            if to_key is None:
                order = self._strcmp(column, str(left), str(right))
            else:
                a, b = to_key(left), to_key(right)
                order = (a > b) - (a < b)
            if order:
                return order
        return 0

    def at_or_before(self, key: list[Any] | tuple[Any, ...], bound: list[Any]) -> bool:
        return self.compare(key, bound) <= 0
