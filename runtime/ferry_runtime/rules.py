"""Which tables flow, under what names, to which topic, with which key.

Pure functions over the WorkerConfig: :func:`apply` filters (include/exclude) and maps
(rename table, rename columns, drop columns) a change; :func:`topic` and :func:`key_columns`
route it. A dropped column is removed here, before any format sees the row.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ferry_runtime.config import TableMapping, WorkerConfig
from ferry_runtime.events import Change

__all__ = ["Router", "apply", "partition_value", "topic"]


_UNMAPPED = TableMapping(table="*.*")  # a selected table without a mapping (a sentinel)


def _map_row(row: dict[str, Any], mapping: TableMapping) -> dict[str, Any]:
    return {
        mapping.columns.get(name, name): value
        for name, value in row.items()
        if name not in mapping.drop
    }


def apply(config: WorkerConfig, change: Change) -> Change | None:
    """The change as it leaves the worker, or None when its table is not selected."""
    if not config.selects(change.database, change.table):
        return None
    mapping = config.mapping_for(change.database, change.table)
    if mapping is None:
        return change
    return dataclasses.replace(
        change,
        table=mapping.target or change.table,
        data=_map_row(change.data, mapping),
        old=None if change.old is None else _map_row(change.old, mapping),
        primary_key=tuple(
            mapping.columns.get(name, name)
            for name in change.primary_key
            if name not in mapping.drop
        ),
    )


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
    """apply + topic + partition_value, with the per-table decisions cached (hot path)."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self._tables: dict[tuple[str, str], TableMapping | None] = {}
        self._topics: dict[tuple[str, str], tuple[str, str | None]] = {}

    def route(self, change: Change) -> tuple[Change, str, str | None] | None:
        """(mapped change, topic, partition value), or None when the table is not selected."""
        decision = self._decision(change)
        if decision is None:
            return None
        mapped = change if decision is _UNMAPPED else apply(self.config, change)
        assert mapped is not None
        return (mapped, *self._topic(mapped))

    def route_rows(
        self, template: Change, rows: list[dict[str, Any]]
    ) -> tuple[Change, list[dict[str, Any]], str, str | None] | None:
        """:meth:`route` for many rows of one table that share everything but their data
        (a snapshot chunk): (mapped template, mapped rows, topic, partition value)."""
        decision = self._decision(template)
        if decision is None:
            return None
        if decision is _UNMAPPED:
            return (template, rows, *self._topic(template))
        mapped = apply(self.config, template)
        assert mapped is not None
        return (mapped, [_map_row(row, decision) for row in rows], *self._topic(mapped))

    def _decision(self, change: Change) -> TableMapping | None:
        """The table's mapping (:data:`_UNMAPPED` when it has none), None when the table is
        not selected."""
        key = (change.database, change.table)
        if key not in self._tables:
            selected = self.config.selects(*key)
            self._tables[key] = (self.config.mapping_for(*key) or _UNMAPPED) if selected else None
        return self._tables[key]

    def _topic(self, mapped: Change) -> tuple[str, str | None]:
        target = (mapped.database, mapped.table)
        routed = self._topics.get(target)
        if routed is None:
            routed = self._topics[target] = (
                topic(self.config, mapped),
                partition_value(self.config, mapped),
            )
        return routed
