"""A table's definition as DDL records show it (``def`` / ``old``).

The binlog reader keeps one per table it has seen DDL for (with ``sink.kafka.schemaChanges``
set) and moves it forward with each statement, as Maxwell does: :func:`from_create` builds it
from a ``CREATE TABLE``'s own column list and :func:`after_alter` applies an ``ALTER TABLE``
to it, so the definition is the one the statement made, however far behind the source the
worker reads. Only a table the reader has no definition of yet (created before the worker
started) is :func:`read` from information_schema, as the source has it *when the worker reads
the DDL*: a worker far behind may see a later shape there (the same limit as the JSON-column
detection in :mod:`ferry_runtime.source.schema`). The record's ``sql`` is always the
statement itself.

The neutral shape (:class:`Definition`) is turned into Maxwell's ``def`` and Debezium's
``table`` by :mod:`ferry_runtime.ddl_records`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ferry_runtime import ddl

__all__ = [
    "ColumnDef",
    "Definition",
    "after_alter",
    "column",
    "database_charset",
    "from_create",
    "read",
]


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


def database_charset(conn: Any, database: str) -> str | None:
    """The database's default character set (a CREATE TABLE's columns default to it)."""
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA "
            "WHERE SCHEMA_NAME = %s",
            (database,),
        )
        row = cursor.fetchone()
    return str(row[0]) if row else None


# ---------------------------------------------------------------- from the statement

_ALIASES = {
    "integer": "int", "int1": "tinyint", "int2": "smallint", "int3": "mediumint",
    "int4": "int", "int8": "bigint", "middleint": "mediumint", "bool": "tinyint",
    "boolean": "tinyint", "dec": "decimal", "numeric": "decimal", "fixed": "decimal",
    "real": "double", "character": "char", "nchar": "char", "nvarchar": "varchar",
}  # fmt: skip
_CHARACTER = {
    "char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set", "json",
}  # fmt: skip


def _words(tokens: list[ddl.Token]) -> list[str]:
    return [t.upper for t in tokens]


def _after(words: list[str], tokens: list[ddl.Token], *sequence: str) -> str | None:
    """The value after ``sequence`` (and an optional '='), e.g. CHARACTER SET x."""
    n = len(sequence)
    for at in range(len(words) - n):
        if tuple(words[at : at + n]) == sequence:
            following = tokens[at + n :]
            if following and following[0].kind == "punct" and following[0].text == "=":
                following = following[1:]
            if following and following[0].kind in ("word", "ident", "string"):
                return following[0].value.strip("'\"").lower()
    return None


def _charset(tokens: list[ddl.Token]) -> str | None:
    words = _words(tokens)
    found = _after(words, tokens, "CHARACTER", "SET") or _after(words, tokens, "CHARSET")
    if found is None:
        collation = _after(words, tokens, "COLLATE")
        found = collation.split("_", 1)[0] if collation else None
    return found


def column(
    name: str, tokens: list[ddl.Token], position: int, table_charset: str | None
) -> tuple[ColumnDef, bool]:
    """A column from its definition's tokens (``int unsigned NOT NULL …``), and whether the
    definition makes it the primary key."""
    words = _words(tokens)
    data_type = _ALIASES.get(tokens[0].text.lower(), tokens[0].text.lower()) if tokens else ""
    args: list[str] = []
    rest = tokens[1:]
    if rest and rest[0].kind == "punct" and rest[0].text == "(":
        depth, inside = 0, []
        for at, token in enumerate(rest):
            if token.kind == "punct" and token.text in "()":
                depth += 1 if token.text == "(" else -1
                if depth == 0:
                    rest = rest[at + 1 :]
                    break
            elif depth == 1 and token.text != ",":
                inside.append(token.text)
        args = inside
    column_type = data_type + (f"({','.join(args)})" if args else "")
    for flag in ("UNSIGNED", "ZEROFILL"):
        if flag in words:
            column_type += f" {flag.lower()}"
    primary = any(words[i : i + 2] == ["PRIMARY", "KEY"] for i in range(len(words)))
    not_null = any(words[i : i + 2] == ["NOT", "NULL"] for i in range(len(words)))
    charset = _charset(tokens) if data_type in _CHARACTER else None
    numbers = [int(a) for a in args if a.isdigit()]
    return (
        ColumnDef(
            name=name,
            data_type=data_type,
            column_type=column_type,
            nullable=not (not_null or primary),
            charset=charset or (table_charset if data_type in _CHARACTER else None),
            length=numbers[0] if numbers and data_type not in ("enum", "set") else None,
            scale=numbers[1] if len(numbers) > 1 else None,
            position=position,
            auto_increment="AUTO_INCREMENT" in words,
            generated="GENERATED" in words or "AS" in words,
        ),
        primary,
    )


def _key_columns(tokens: list[ddl.Token]) -> tuple[str, ...]:
    """The columns in a key's first parentheses (prefix lengths and ASC/DESC left out)."""
    names: list[str] = []
    depth = 0
    for token in tokens:
        if token.kind == "punct" and token.text in "()":
            depth += 1 if token.text == "(" else -1
            if depth == 0 and names:
                break
        elif depth == 1 and token.name_like and token.upper not in ("ASC", "DESC"):
            names.append(token.value)
    return tuple(names)


def _primary_key(tokens: list[ddl.Token]) -> tuple[str, ...] | None:
    """A PRIMARY KEY (…) element or ALTER specification's columns, else None."""
    words = _words(tokens)
    for at in range(len(words) - 1):
        if words[at : at + 2] == ["PRIMARY", "KEY"]:
            return _key_columns(tokens[at + 2 :])
    return None


def _renumber(columns: list[ColumnDef]) -> tuple[ColumnDef, ...]:
    return tuple(replace(c, position=i + 1) for i, c in enumerate(columns))


def from_create(statement: ddl.CreateTable, database_default: str | None) -> Definition | None:
    """The definition a CREATE TABLE with a column list makes (None without one)."""
    if not statement.elements:
        return None
    options = ddl.tokenize(statement.options)
    charset = _charset(options) or database_default
    columns: list[ColumnDef] = []
    primary_key: tuple[str, ...] = ()
    for element in statement.elements:
        tokens = list(element.tokens)
        if element.column is None:
            primary_key = _primary_key(tokens) or primary_key
            continue
        found, primary = column(element.column, tokens[1:], len(columns) + 1, charset)
        columns.append(found)
        if primary:
            primary_key = (element.column,)
    return Definition(
        statement.table.database, statement.table.table, charset, primary_key, tuple(columns)
    )


def _placed(
    columns: list[ColumnDef], new: ColumnDef, position: str, after: str | None
) -> list[ColumnDef]:
    if position == "FIRST":
        return [new, *columns]
    if position == "AFTER":
        at = next((i for i, c in enumerate(columns) if c.name == after), len(columns) - 1)
        return [*columns[: at + 1], new, *columns[at + 1 :]]
    return [*columns, new]


def after_alter(before: Definition, statement: ddl.AlterTable) -> Definition:
    """``before`` with the ALTER TABLE's column, key and rename changes applied."""
    columns = list(before.columns)
    primary_key = list(before.primary_key)

    def parsed(name: str, definition: str) -> tuple[ColumnDef, bool]:
        return column(name, ddl.tokenize(definition), 0, before.charset)

    table = (before.database, before.table)
    for spec in statement.specs:
        if isinstance(spec, ddl.AddColumn):
            new, primary = parsed(spec.column, spec.definition)
            columns = _placed(columns, new, spec.position, spec.after)
            primary_key = [spec.column] if primary else primary_key
        elif isinstance(spec, ddl.DropColumn):
            columns = [c for c in columns if c.name != spec.column]
            primary_key = [n for n in primary_key if n != spec.column]
        elif isinstance(spec, ddl.RenameColumn):
            columns = [replace(c, name=spec.new) if c.name == spec.old else c for c in columns]
            primary_key = [spec.new if n == spec.old else n for n in primary_key]
        elif isinstance(spec, ddl.ChangeColumn | ddl.ModifyColumn):
            old = spec.old if isinstance(spec, ddl.ChangeColumn) else spec.column
            name = spec.new if isinstance(spec, ddl.ChangeColumn) else spec.column
            new, primary = parsed(name, spec.definition)
            at = next((i for i, c in enumerate(columns) if c.name == old), len(columns))
            if spec.position:
                columns = _placed([c for c in columns if c.name != old], new, spec.position,
                                  spec.after)  # fmt: skip
            else:
                columns = [*columns[:at], new, *columns[at + 1 :]]
            primary_key = [name if n == old else n for n in primary_key]
            primary_key = [name] if primary else primary_key
        elif isinstance(spec, ddl.RenameTo):
            table = (spec.table.database, spec.table.table)
        else:
            tokens = ddl.tokenize(spec.text)
            words = _words(tokens)
            if words[:1] == ["ADD"] and (found := _primary_key(tokens)) is not None:
                primary_key = list(found)
            elif words[:3] == ["DROP", "PRIMARY", "KEY"]:
                primary_key = []
    return Definition(table[0], table[1], before.charset, tuple(primary_key), _renumber(columns))
