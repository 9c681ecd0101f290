"""``sink.mysql.schemaChanges``: what a source DDL does to the target (pure).

* ``stop`` (default): nothing is applied; the first row that does not fit the target stops
  the worker with ``TargetSchemaMismatch`` (a dropped column just stops arriving).
* ``evolve``: :func:`plan` turns the statement into target statements under the task's
  mapping — ``ADD``, ``DROP``, ``RENAME``, ``CHANGE`` and ``MODIFY COLUMN`` (each its own
  ``ALTER TABLE``), ``CREATE TABLE`` (``IF NOT EXISTS``; foreign keys and keys on dropped
  columns left out), ``RENAME TABLE`` / ``ALTER … RENAME TO`` between selected tables and
  ``TRUNCATE``. Column definitions are the source statement's own text. Not applied, and
  logged: ``DROP TABLE``, index/key/constraint/option changes, renames into or out of the
  selection. A step runs only when the target still needs it (:func:`needed`: the column
  is there, or not yet), so a DDL replayed after a crash between the target's DDL and the
  checkpoint converges instead of failing.
* ``ignore``: nothing is applied; :func:`fit` leaves out of each row the columns the target
  lacks, so streaming goes on with the columns both sides have.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from ferry_runtime import ddl
from ferry_runtime.config import TableMapping, WorkerConfig
from ferry_runtime.ddl_records import SchemaChange
from ferry_runtime.events import Change
from ferry_runtime.sink.sql import Target
from ferry_runtime.source.schema import quote

__all__ = ["Step", "fit", "needed", "plan"]

StepKind = Literal[
    "create", "add", "drop", "rename", "change", "modify", "rename_table", "truncate"
]


@dataclass(frozen=True)
class Step:
    kind: StepKind
    database: str  # the target table
    table: str
    sql: str
    column: str | None = None  # add/drop/modify: the column; rename/change: the old name
    new: str | None = None  # rename/change: the new column; rename_table: the new table
    fallback: str | None = None  # change: MODIFY under the new name, when already renamed


def _names(mapping: TableMapping | None) -> tuple[dict[str, str], frozenset[str]]:
    if mapping is None:
        return {}, frozenset()
    return dict(mapping.columns), frozenset(mapping.drop)


class _Planner:
    def __init__(self, config: WorkerConfig) -> None:
        assert config.sink.mysql is not None
        self.config = config
        self.database = config.sink.mysql.database
        self.steps: list[Step] = []
        self.notes: list[str] = []

    def target(self, table: ddl.TableName) -> tuple[str, str]:
        mapping = self.config.mapping_for(table.database, table.table)
        name = (mapping.target if mapping else None) or table.table
        return self.database or table.database, name

    def name(self, table: ddl.TableName) -> str:
        database, name = self.target(table)
        return f"{quote(database)}.{quote(name)}"

    def selected(self, table: ddl.TableName) -> bool:
        return self.config.selects(table.database, table.table)

    def add(self, kind: StepKind, table: ddl.TableName, sql: str, **more: str | None) -> None:
        database, name = self.target(table)
        self.steps.append(Step(kind, database, name, sql, **more))

    # ------------------------------------------------------------ statements

    def create(self, statement: ddl.CreateTable, sql: str) -> None:
        table = statement.table
        renames, dropped = _names(self.config.mapping_for(table.database, table.table))
        if statement.like is not None:
            if renames or dropped:
                self.notes.append(f"CREATE TABLE … LIKE with a column mapping: {table.name}")
                return
            like = self.name(statement.like)
            self.add("create", table, f"CREATE TABLE IF NOT EXISTS {self.name(table)} LIKE {like}")
            return
        if not statement.elements:
            self.notes.append(f"CREATE TABLE without a column list: {table.name}")
            return
        elements = []
        for element in statement.elements:
            text = _element(sql, element, renames, dropped)
            if text is None:
                self.notes.append(f"left out of {table.name}: {element.text}")
            else:
                elements.append(text)
        options = f" {statement.options}" if statement.options else ""
        self.add(
            "create",
            table,
            f"CREATE TABLE IF NOT EXISTS {self.name(table)} ({', '.join(elements)}){options}",
        )

    def alter(self, statement: ddl.AlterTable) -> None:
        table = statement.table
        if not self.selected(table):
            self.notes.append(f"{table.name} is not selected: ALTER TABLE not applied")
            return
        renames, dropped = _names(self.config.mapping_for(table.database, table.table))
        target = self.name(table)

        def col(name: str) -> str:
            return quote(renames.get(name, name))

        def position(spec: ddl.AddColumn | ddl.ChangeColumn | ddl.ModifyColumn) -> str:
            if spec.position == "FIRST":
                return " FIRST"
            if spec.position == "AFTER" and spec.after is not None and spec.after not in dropped:
                return f" AFTER {col(spec.after)}"
            return ""

        for spec in statement.specs:
            if isinstance(spec, ddl.AddColumn):
                if spec.column in dropped:
                    continue
                self.add(
                    "add", table,
                    f"ALTER TABLE {target} ADD COLUMN {col(spec.column)} {spec.definition}"
                    f"{position(spec)}",
                    column=renames.get(spec.column, spec.column),
                )  # fmt: skip
            elif isinstance(spec, ddl.DropColumn):
                if spec.column not in dropped:
                    self.add(
                        "drop", table, f"ALTER TABLE {target} DROP COLUMN {col(spec.column)}",
                        column=renames.get(spec.column, spec.column),
                    )  # fmt: skip
            elif isinstance(spec, ddl.RenameColumn):
                if spec.old in dropped:
                    self.notes.append(
                        f"{table.name}: {spec.old} (dropped by the mapping) renamed to {spec.new}"
                    )
                    continue
                old, new = renames.get(spec.old, spec.old), renames.get(spec.new, spec.new)
                self.add(
                    "rename", table,
                    f"ALTER TABLE {target} RENAME COLUMN {quote(old)} TO {quote(new)}",
                    column=old, new=new,
                )  # fmt: skip
            elif isinstance(spec, ddl.ChangeColumn):
                if spec.old in dropped:
                    self.notes.append(f"{table.name}: CHANGE of {spec.old}, dropped by the mapping")
                    continue
                old, new = renames.get(spec.old, spec.old), renames.get(spec.new, spec.new)
                tail = f"{spec.definition}{position(spec)}"
                self.add(
                    "change", table,
                    f"ALTER TABLE {target} CHANGE COLUMN {quote(old)} {quote(new)} {tail}",
                    column=old, new=new,
                    fallback=f"ALTER TABLE {target} MODIFY COLUMN {quote(new)} {tail}",
                )  # fmt: skip
            elif isinstance(spec, ddl.ModifyColumn):
                if spec.column in dropped:
                    continue
                self.add(
                    "modify", table,
                    f"ALTER TABLE {target} MODIFY COLUMN {col(spec.column)} {spec.definition}"
                    f"{position(spec)}",
                    column=renames.get(spec.column, spec.column),
                )  # fmt: skip
            elif isinstance(spec, ddl.OtherSpec):
                self.notes.append(f"{table.name}: not applied: {spec.text}")
        renamed = statement.renamed_to
        if renamed is not None:
            self.rename(table, renamed)

    def rename(self, old: ddl.TableName, new: ddl.TableName) -> None:
        if not (self.selected(old) and self.selected(new)):
            self.notes.append(f"RENAME {old.name} TO {new.name}: into or out of the selection")
            return
        if self.name(old) == self.name(new):
            return
        _, new_name = self.target(new)
        self.add(
            "rename_table", old, f"RENAME TABLE {self.name(old)} TO {self.name(new)}", new=new_name
        )


def _element(
    sql: str, element: ddl.Element, renames: dict[str, str], dropped: frozenset[str]
) -> str | None:
    """A CREATE TABLE element under the mapping; None when it must be left out."""
    tokens = element.tokens
    if element.column is not None:
        if element.column in dropped:
            return None
        if element.column not in renames:
            return element.text
        rest = sql[tokens[1].start : tokens[-1].end] if len(tokens) > 1 else ""
        return f"{quote(renames[element.column])} {rest}".rstrip()
    words = {token.upper for token in tokens}
    if "FOREIGN" in words or "REFERENCES" in words:
        return None  # the target may not hold the parent; the sink runs without FK checks
    if any(token.name_like and token.value in dropped for token in tokens):
        return None
    out, at = [], tokens[0].start
    for token in tokens:
        if token.name_like and token.value in renames:
            out.append(sql[at : token.start] + quote(renames[token.value]))
            at = token.end
    out.append(sql[at : tokens[-1].end])
    return "".join(out)


def plan(config: WorkerConfig, change: SchemaChange) -> tuple[list[Step], list[str]]:
    """The target steps for one source DDL, and notes on what is not applied."""
    planner = _Planner(config)
    statement = change.statement
    if isinstance(statement, ddl.CreateTable):
        if planner.selected(statement.table):
            planner.create(statement, change.sql)
    elif isinstance(statement, ddl.AlterTable):
        planner.alter(statement)
    elif isinstance(statement, ddl.RenameTable):
        for old, new in statement.pairs:
            planner.rename(old, new)
    elif isinstance(statement, ddl.TruncateTable):
        if planner.selected(statement.table):
            target = planner.name(statement.table)
            planner.add("truncate", statement.table, f"TRUNCATE TABLE {target}")
    else:
        selected = [t.name for t in statement.tables if planner.selected(t)]
        planner.notes.append(f"DROP TABLE is not applied to the target: {', '.join(selected)}")
    return planner.steps, planner.notes


def needed(step: Step, columns: frozenset[str] | None, new_exists: bool = False) -> str | None:
    """The statement to run for ``step`` given the target table's columns now (None: the
    table does not exist), or None when the target is already there. ``new_exists``: for
    rename_table, whether the new name exists already."""
    if step.kind == "create":
        return step.sql
    if columns is None:
        return None
    if step.kind == "add":
        return step.sql if step.column not in columns else None
    if step.kind in ("drop", "modify"):
        return step.sql if step.column in columns else None
    if step.kind == "rename":
        return step.sql if step.column in columns and step.new not in columns else None
    if step.kind == "change":
        if step.column in columns and (step.column == step.new or step.new not in columns):
            return step.sql
        return step.fallback if step.new in columns else None
    if step.kind == "rename_table":
        return None if new_exists else step.sql
    return step.sql  # truncate


def fit(target: Target, change: Change) -> Change:
    """schemaChanges: ignore — the change with only the columns the target has."""
    known = target.by_name
    old = change.old
    if all(name in known for name in change.data) and (
        old is None or all(name in known for name in old)
    ):
        return change
    return dataclasses.replace(
        change,
        data={k: v for k, v in change.data.items() if k in known},
        old=None if old is None else {k: v for k, v in old.items() if k in known},
    )
