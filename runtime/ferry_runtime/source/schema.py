"""Table structure from information_schema: columns, primary key, JSON columns.

MariaDB stores JSON as LONGTEXT with a ``json_valid(col)`` check; only information_schema
tells those columns apart from text, so both the snapshot and the binlog ask here.
The cache is dropped for a database whenever the binlog shows DDL on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ferry_runtime import types

__all__ = ["SchemaCache", "TableSchema", "list_tables", "quote"]

_SYSTEM = ("mysql", "information_schema", "performance_schema", "sys")
_JSON_CHECK = re.compile(r"json_valid\(`([^`]+)`\)", re.IGNORECASE)


def quote(name: str) -> str:
    """A MySQL identifier in backquotes (a backquote in it doubled)."""
    return "`" + name.replace("`", "``") + "`"


@dataclass(frozen=True)
class TableSchema:
    database: str
    table: str
    columns: tuple[types.Column, ...]
    primary_key: tuple[str, ...]
    json_columns: frozenset[str]
    estimated_rows: int

    @property
    def name(self) -> str:
        return f"{self.database}.{self.table}"


def list_tables(conn: Any) -> list[tuple[str, str]]:
    """Every base table outside the system databases, sorted."""
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES "
            "WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN (%s, %s, %s, %s) "
            "ORDER BY TABLE_SCHEMA, TABLE_NAME",
            _SYSTEM,
        )
        return [(str(db), str(table)) for db, table in cursor.fetchall()]


def load(conn: Any, database: str, table: str) -> TableSchema | None:
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS "
            "WHERE CONSTRAINT_SCHEMA = %s AND TABLE_NAME = %s",
            (database, table),
        )
        json_columns = frozenset(
            m.group(1) for (clause,) in cursor.fetchall() for m in _JSON_CHECK.finditer(clause)
        )
        cursor.execute(
            "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, DATETIME_PRECISION "
            "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s "
            "ORDER BY ORDINAL_POSITION",
            (database, table),
        )
        columns = tuple(
            types.from_information_schema(
                name, data_type, column_type, precision, name in json_columns
            )
            for name, data_type, column_type, precision in cursor.fetchall()
        )
        if not columns:
            return None
        cursor.execute(
            "SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s "
            "AND TABLE_NAME = %s AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX",
            (database, table),
        )
        primary_key = tuple(str(name) for (name,) in cursor.fetchall())
        cursor.execute(
            "SELECT TABLE_ROWS FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
            (database, table),
        )
        row = cursor.fetchone()
    return TableSchema(
        database, table, columns, primary_key, json_columns, int(row[0] or 0) if row else 0
    )


class SchemaCache:
    """Table structures by (database, table), loaded on first use."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self._tables: dict[tuple[str, str], TableSchema | None] = {}

    def get(self, database: str, table: str) -> TableSchema | None:
        key = (database, table)
        if key not in self._tables:
            self._tables[key] = load(self.conn, database, table)
        return self._tables[key]

    def forget(self, database: str | None) -> None:
        """DDL happened in ``database`` (None: anywhere)."""
        for key in [k for k in self._tables if database is None or k[0] == database]:
            del self._tables[key]
