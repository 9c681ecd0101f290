"""Table structure from information_schema: columns, key, JSON columns.

A table's key (``TableSchema.primary_key``) is its primary key; a table without one but with
a UNIQUE index over NOT NULL columns uses that index in its place (the one with the fewest
columns, then the first by name; a full-column BTREE index over stored columns: a prefix,
a hash or a virtual column does not qualify). Like a primary key it identifies each row, so
the snapshot chunks and resumes on it, the binlog places changes against it (watermark
``Coverage``, :class:`ferry_runtime.source.keys.KeyOrder`) and records are keyed by it.
``key_index`` says which index it is (``PRIMARY``, a unique index's name, or None: no key).

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
class RowFields:
    """A chunk's rows as the server's raw fields and the C plan that renders them as JSON
    (snapshot.row_fields)."""

    sql: str  # one row's fields as binary text: GROUP_CONCAT(sql SEPARATOR X'fe')
    plan: Any  # _rowtext.Plan


@dataclass(frozen=True)
class TableSchema:
    database: str
    table: str
    columns: tuple[types.Column, ...]
    primary_key: tuple[str, ...]
    json_columns: frozenset[str]
    estimated_rows: int
    key_index: str | None = None  # "PRIMARY", the unique index used in its place, or None
    # snapshotRequest.where: an SQL condition every snapshot read of the table adds (None: all)
    row_filter: str | None = None
    # The SQL expression of a row's JSON, when the snapshot has the server render it (the
    # worker sets it: snapshot.row_json); None: rows are read column by column.
    row_json: str | None = None
    # The same rows as raw fields the worker renders, for a chunk read in one text (an
    # integer key: snapshot.row_fields); None: the server's row_json only.
    row_fields: RowFields | None = None

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
        key_index: str | None = "PRIMARY" if primary_key else None
        if not primary_key:
            found = _unique_key(cursor, database, table)
            if found is not None:
                key_index, primary_key = found
        cursor.execute(
            "SELECT TABLE_ROWS FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
            (database, table),
        )
        row = cursor.fetchone()
    return TableSchema(
        database,
        table,
        columns,
        primary_key,
        json_columns,
        int(row[0] or 0) if row else 0,
        key_index,
    )


def _unique_key(cursor: Any, database: str, table: str) -> tuple[str, tuple[str, ...]] | None:
    """The UNIQUE index that stands in for a missing primary key: every column NOT NULL,
    stored, whole (no prefix), in a BTREE; the fewest columns, then the first by name."""
    cursor.execute(
        "SELECT INDEX_NAME, COLUMN_NAME, NULLABLE, SUB_PART, INDEX_TYPE "
        "FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s "
        "AND NON_UNIQUE = 0 ORDER BY INDEX_NAME, SEQ_IN_INDEX",
        (database, table),
    )
    found = cursor.fetchall()
    if not found:
        return None
    cursor.execute(
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
        "AND TABLE_NAME = %s AND UPPER(EXTRA) LIKE %s",
        (database, table, "%VIRTUAL%"),
    )
    virtual = {str(name) for (name,) in cursor.fetchall()}
    indexes: dict[str, list[str]] = {}
    unusable: set[str] = set()
    for index, column, nullable, sub_part, index_type in found:
        indexes.setdefault(str(index), [])
        if (
            column is None
            or str(nullable or "").upper() == "YES"
            or sub_part is not None
            or str(index_type or "").upper() != "BTREE"
            or str(column) in virtual
        ):
            unusable.add(str(index))
        else:
            indexes[str(index)].append(str(column))
    usable = sorted((len(cols), name) for name, cols in indexes.items() if name not in unusable)
    if not usable:
        return None
    name = usable[0][1]
    return name, tuple(indexes[name])


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
