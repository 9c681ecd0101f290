"""A table's definition as DDL records show it (``def`` / ``old``), from information_schema.

Read by the binlog reader right after a DDL statement, when ``sink.kafka.schemaChanges`` is
set: the definition is the table's as the source has it *when the worker reads the DDL*.
A worker that reads the binlog long after the fact may see a later shape (the same limit as
the JSON-column detection in :mod:`ferry_runtime.source.schema`); the record's ``sql`` is
always the statement itself.

The neutral shape (:class:`Definition`) is turned into Maxwell's ``def`` and Debezium's
``table`` by :mod:`ferry_runtime.ddl_records`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["ColumnDef", "Definition", "read"]


@dataclass(frozen=True)
class ColumnDef:
    name: str
    data_type: str  # information_schema DATA_TYPE: int, varchar, …
    column_type: str  # COLUMN_TYPE: int(10) unsigned, varchar(20), enum('a','b')
    nullable: bool
    charset: str | None
    length: int | None  # characters (text) or precision (numbers)
    scale: int | None
    position: int
    auto_increment: bool
    generated: bool


@dataclass(frozen=True)
class Definition:
    database: str
    table: str
    charset: str | None
    primary_key: tuple[str, ...]
    columns: tuple[ColumnDef, ...]


def _column(row: tuple[Any, ...]) -> ColumnDef:
    name, data_type, column_type, nullable, charset, length, scale, position, extra, expr = row
    return ColumnDef(
        name=str(name),
        data_type=str(data_type).lower(),
        column_type=str(column_type),
        nullable=nullable == "YES",
        charset=charset,
        length=None if length is None else int(length),
        scale=None if scale is None else int(scale),
        position=int(position),
        auto_increment="auto_increment" in str(extra).lower(),
        generated=bool(expr),
    )


def read(conn: Any, database: str, table: str) -> Definition | None:
    """The table's definition now, or None when it does not exist."""
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, CHARACTER_SET_NAME, "
            "COALESCE(CHARACTER_MAXIMUM_LENGTH, NUMERIC_PRECISION), NUMERIC_SCALE, "
            "ORDINAL_POSITION, EXTRA, COALESCE(GENERATION_EXPRESSION, '') "
            "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s "
            "ORDER BY ORDINAL_POSITION",
            (database, table),
        )
        columns = tuple(_column(row) for row in cursor.fetchall())
        if not columns:
            return None
        cursor.execute(
            "SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s "
            "AND TABLE_NAME = %s AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX",
            (database, table),
        )
        primary_key = tuple(str(name) for (name,) in cursor.fetchall())
        cursor.execute(
            "SELECT c.CHARACTER_SET_NAME FROM information_schema.TABLES t "
            "JOIN information_schema.COLLATIONS c ON c.COLLATION_NAME = t.TABLE_COLLATION "
            "WHERE t.TABLE_SCHEMA = %s AND t.TABLE_NAME = %s",
            (database, table),
        )
        row = cursor.fetchone()
    return Definition(database, table, row[0] if row else None, primary_key, columns)
