"""Schema changes as the pipeline carries them, and as Kafka DDL records (pure).

The binlog reader turns a DDL statement on a selected table into a :class:`SchemaChange`
(the statement, where it is in the binlog, and per table what changed: its definition before
and after, where known). It travels in its own source transaction, so the sink sees it
between the rows before and after it.

With ``sink.kafka.schemaChanges.topic`` set, :func:`records` gives its records, in the
task's format, with the task's mapping applied (table renamed, columns renamed, dropped
columns left out of ``def``/``old``; ``sql`` is the statement as the source ran it):

* **maxwell** — one record per table, the shape of Maxwell's DDL output:
  ``{"type": "table-create|table-alter|table-drop|table-truncate", "database", "table",
  "def"?, "old"?, "sql", "ts" (ms), "position": "file:pos", "gtid"?}``; ``def`` =
  ``{"database", "table", "charset", "primary-key", "columns": [{"type", "name",
  "charset"?, "signed"?, "enum-values"?}]}``. ``table-truncate`` is Ferry's (Maxwell has no
  truncate output).
* **debezium** — one record per statement, the shape of a Debezium schema change event:
  key ``{"databaseName"}``, value ``{"source", "ts_ms", "databaseName", "schemaName":
  null, "ddl", "tableChanges": [{"type": "CREATE|ALTER|DROP", "id": "\\"db\\".\\"t\\"",
  "table": {"defaultCharsetName", "primaryKeyColumnNames", "columns": [...]}}]}`` (a
  TRUNCATE has no table change: ``tableChanges`` is empty). With ``format: avro`` the DDL
  records are these Debezium JSON records too (the rows' schemas live in the registry; a
  schema change event has no table schema of its own to register).

Keys hold the database, and records are partitioned by it, so one database's DDL stays in
order on one partition.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from ferry_runtime import ddl, formats
from ferry_runtime.config import TableMapping, WorkerConfig
from ferry_runtime.source.definitions import ColumnDef, Definition

__all__ = ["SchemaChange", "TableChange", "debezium", "maxwell", "records"]

_MAXWELL_TYPE = {
    "create": "table-create",
    "alter": "table-alter",
    "drop": "table-drop",
    "truncate": "table-truncate",
}
_NUMERIC = {
    "tinyint", "smallint", "mediumint", "int", "integer", "bigint", "decimal", "numeric",
    "float", "double", "real",
}  # fmt: skip


@dataclass(frozen=True)
class TableChange:
    kind: str  # create | alter | drop | truncate
    table: ddl.TableName  # the table's name after the statement
    old: Definition | None = None  # before, where the worker knew it
    new: Definition | None = None  # after (information_schema when read), where read


@dataclass(frozen=True)
class SchemaChange:
    sql: str
    database: str  # the session's database ("" when none)
    statement: ddl.Statement
    ts: int  # epoch seconds of the statement
    position: str  # "file:pos" after the statement
    tables: tuple[TableChange, ...]
    gtid: str | None = None
    server_id: int = 0


# ---------------------------------------------------------------- mapping


def _map_definition(definition: Definition | None, mapping: TableMapping | None) -> Any:
    if definition is None or mapping is None:
        return definition
    columns = tuple(
        replace(column, name=mapping.columns.get(column.name, column.name))
        for column in definition.columns
        if column.name not in mapping.drop
    )
    return replace(
        definition,
        table=mapping.target or definition.table,
        columns=columns,
        primary_key=tuple(
            mapping.columns.get(name, name)
            for name in definition.primary_key
            if name not in mapping.drop
        ),
    )


def _mapped(config: WorkerConfig, change: TableChange) -> TableChange:
    """The table change under the task's mapping (the new name's mapping decides)."""
    mapping = config.mapping_for(change.table.database, change.table.table)
    if mapping is None:
        return change
    old_name = change.old
    old_mapping = (
        config.mapping_for(old_name.database, old_name.table) if old_name is not None else None
    )
    return TableChange(
        change.kind,
        ddl.TableName(change.table.database, mapping.target or change.table.table),
        _map_definition(change.old, old_mapping),
        _map_definition(change.new, mapping),
    )


# ---------------------------------------------------------------- maxwell


def _members(column_type: str) -> list[str]:
    inside = column_type[column_type.find("(") + 1 : column_type.rfind(")")]
    return [m.replace("''", "'") for m in re.findall(r"'((?:[^']|'')*)'", inside)]


def _maxwell_column(column: ColumnDef) -> dict[str, Any]:
    out: dict[str, Any] = {"type": column.data_type, "name": column.name}
    if column.charset:
        out["charset"] = column.charset
    if column.data_type in _NUMERIC:
        out["signed"] = "unsigned" not in column.column_type.lower()
    if column.data_type in ("enum", "set"):
        out["enum-values"] = _members(column.column_type)
    return out


def _maxwell_def(definition: Definition) -> dict[str, Any]:
    return {
        "database": definition.database,
        "table": definition.table,
        "charset": definition.charset,
        "primary-key": list(definition.primary_key),
        "columns": [_maxwell_column(c) for c in definition.columns],
    }


def maxwell(change: SchemaChange, table: TableChange) -> dict[str, Any]:
    record: dict[str, Any] = {
        "type": _MAXWELL_TYPE[table.kind],
        "database": table.table.database,
        "table": table.table.table,
    }
    if table.new is not None:
        record["def"] = _maxwell_def(table.new)
    if table.old is not None:
        record["old"] = _maxwell_def(table.old)
    record["sql"] = change.sql
    record["ts"] = change.ts * 1000
    record["position"] = change.position
    if change.gtid:
        record["gtid"] = change.gtid
    return record


# ---------------------------------------------------------------- debezium


def _debezium_table(definition: Definition) -> dict[str, Any]:
    return {
        "defaultCharsetName": definition.charset,
        "primaryKeyColumnNames": list(definition.primary_key),
        "columns": [
            {
                "name": c.name,
                "typeName": c.data_type.upper(),
                "typeExpression": c.column_type.upper(),
                "charsetName": c.charset,
                "length": c.length,
                "scale": c.scale,
                "position": c.position,
                "optional": c.nullable,
                "autoIncremented": c.auto_increment,
                "generated": c.generated,
            }
            for c in definition.columns
        ],
    }


def debezium(change: SchemaChange, tables: list[TableChange], task: str) -> dict[str, Any]:
    file, _, pos = change.position.rpartition(":")
    database = tables[0].table.database if tables else change.database
    return {
        "source": {
            "connector": "ferry",
            "name": task,
            "ts_ms": change.ts * 1000,
            "snapshot": False,
            "db": database,
            "table": ",".join(t.table.table for t in tables) or None,
            "server_id": change.server_id,
            "file": file,
            "pos": int(pos) if pos.isdigit() else 0,
            "gtid": change.gtid,
        },
        "ts_ms": change.ts * 1000,
        "databaseName": database,
        "schemaName": None,
        "ddl": change.sql,
        "tableChanges": [
            {
                "type": t.kind.upper(),
                "id": f'"{t.table.database}"."{t.table.table}"',
                "table": _debezium_table(t.new) if t.new is not None else None,
            }
            for t in tables
            if t.kind != "truncate"
        ],
    }


# ---------------------------------------------------------------- records


def records(config: WorkerConfig, change: SchemaChange) -> list[tuple[str, bytes, bytes, str]]:
    """(topic, key, value, partition value) of the change's DDL records; none when
    ``sink.kafka.schemaChanges`` is unset."""
    kafka = config.sink.kafka
    if kafka is None or kafka.schema_changes is None or not change.tables:
        return []
    topic = kafka.schema_changes.topic
    tables = [_mapped(config, t) for t in change.tables]
    if kafka.format in ("debezium", "avro"):  # avro: DDL records stay JSON (Debezium's)
        database = tables[0].table.database
        value = debezium(change, tables, config.task.id)
        key = formats._dumps({"databaseName": database})
        return [(topic, key, formats._dumps(value), database)]
    return [
        (
            topic,
            formats._dumps({"database": t.table.database, "table": t.table.table}),
            formats._dumps(maxwell(change, t)),
            t.table.database,
        )
        for t in tables
    ]
