"""Which tables flow, under what names, to which topic, with which key.

The one place rows are selected and mapped, for every sink: :class:`Router` filters
(include/exclude) and maps (rename table, rename columns, drop columns) each change, with the
per-table decisions cached (the hot path); :func:`apply` is the same for one change. A
dropped column is removed here, before any sink or format sees the row. A mapped change
keeps its source table's name in ``origin`` (status counts rows under the source's name).

:func:`topic` and :func:`partition_value` route a mapped change on Kafka
(:mod:`ferry_runtime.sink.kafka_records` caches them per table).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ferry_runtime.config import TableMapping, WorkerConfig
from ferry_runtime.events import Change, RenderedRows, Rows

__all__ = ["Router", "apply", "partition_value", "topic"]


_UNMAPPED = TableMapping(table="*.*")  # a selected table without a mapping (a sentinel)
_UNSEEN = TableMapping(table="?.?")  # not decided yet (a sentinel)


def _map_row(row: dict[str, Any], mapping: TableMapping) -> dict[str, Any]:
    return {
        mapping.columns.get(name, name): value
        for name, value in row.items()
        if name not in mapping.drop
    }


def _mapped_key(key: tuple[str, ...], mapping: TableMapping) -> tuple[str, ...]:
    return tuple(mapping.columns.get(name, name) for name in key if name not in mapping.drop)


def _mapped(change: Change, mapping: TableMapping, key: tuple[str, ...] | None = None) -> Change:
    """``key``: the mapped primary key when known (the Router's: one tuple per table, so
    the formats see one table's rows share it)."""
    return dataclasses.replace(
        change,
        table=mapping.target or change.table,
        data=_map_row(change.data, mapping),
        old=None if change.old is None else _map_row(change.old, mapping),
        primary_key=_mapped_key(change.primary_key, mapping) if key is None else key,
        origin=change.origin or change.table,
    )


def apply(config: WorkerConfig, change: Change) -> Change | None:
    """The change as it leaves the worker, or None when its table is not selected."""
    if not config.selects(change.database, change.table):
        return None
    mapping = config.mapping_for(change.database, change.table)
    return change if mapping is None else _mapped(change, mapping)


def topic(config: WorkerConfig, change: Change) -> str:
    """The topic template with {database} and {table} replaced (after mapping)."""
    assert config.sink.kafka is not None
    return config.sink.kafka.topic.replace("{database}", change.database).replace(
        "{table}", change.table
    )


def partition_value(config: WorkerConfig, change: Change) -> str | None:
    """What picks the partition when partitionBy is not the primary key (None: use the key)."""
    assert config.sink.kafka is not None
    by = config.sink.kafka.partition_by
    if by == "table":
        return change.name
    if by == "database":
        return change.database
    return None


class Router:
    """:func:`apply` for every change of the pipeline, with the per-table decisions cached."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self._tables: dict[tuple[str, str], TableMapping | None] = {}
        self._keys: dict[tuple[str, str, tuple[str, ...]], tuple[str, ...]] = {}

    def map(self, change: Change) -> Change | None:
        """The mapped change, or None when its table is not selected."""
        decision = self._decision(change.database, change.table)
        if decision is _UNMAPPED:
            return change
        return None if decision is None else self._mapped(change, decision)

    def map_all(self, changes: list[Change]) -> list[Change]:
        """:meth:`map` over ``changes``, leaving out those not selected (binlog order)."""
        tables = self._tables
        out: list[Change] = []
        append = out.append
        for change in changes:
            decision = tables.get((change.database, change.table), _UNSEEN)
            if decision is _UNSEEN:
                decision = self._decision(change.database, change.table)
            if decision is _UNMAPPED:
                append(change)
            elif decision is not None:
                append(self._mapped(change, decision))
        return out

    def map_rows(self, template: Change, rows: Rows) -> tuple[Change, Rows] | None:
        """:meth:`map` for many rows of one table that share everything but their data (a
        snapshot chunk): (mapped template, mapped rows), or None when not selected. Rows the
        server rendered were mapped by it (:meth:`mapping`)."""
        decision = self._decision(template.database, template.table)
        if decision is None:
            return None
        if decision is _UNMAPPED:
            return template, rows
        mapped = rows if isinstance(rows, RenderedRows) else [_map_row(r, decision) for r in rows]
        return self._mapped(template, decision), mapped

    def mapping(self, database: str, table: str) -> tuple[dict[str, str], list[str]]:
        """The table's column renames and dropped columns (none when it has no mapping)."""
        decision = self._decision(database, table)
        if decision is None or decision is _UNMAPPED:
            return {}, []
        return decision.columns, decision.drop

    def _mapped(self, change: Change, mapping: TableMapping) -> Change:
        found = (change.database, change.table, change.primary_key)
        key = self._keys.get(found)
        if key is None:
            key = self._keys[found] = _mapped_key(change.primary_key, mapping)
        return _mapped(change, mapping, key)

    def _decision(self, database: str, table: str) -> TableMapping | None:
        """The table's mapping (:data:`_UNMAPPED` when it has none), None when the table is
        not selected."""
        key = (database, table)
        if key not in self._tables:
            selected = self.config.selects(*key)
            self._tables[key] = (self.config.mapping_for(*key) or _UNMAPPED) if selected else None
        return self._tables[key]
