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
        self._tables: dict[tuple[str, str], tuple[bool, TableMapping | None]] = {}
        self._topics: dict[tuple[str, str], tuple[str, str | None]] = {}

    def route(self, change: Change) -> tuple[Change, str, str | None] | None:
        """(mapped change, topic, partition value), or None when the table is not selected."""
        key = (change.database, change.table)
        decision = self._tables.get(key)
        if decision is None:
            selected = self.config.selects(*key)
            decision = self._tables[key] = (selected, self.config.mapping_for(*key))
        selected, mapping = decision
        if not selected:
            return None
        mapped = change if mapping is None else apply(self.config, change)
        assert mapped is not None
        target = (mapped.database, mapped.table)
        routed = self._topics.get(target)
        if routed is None:
            routed = self._topics[target] = (
                topic(self.config, mapped),
                partition_value(self.config, mapped),
            )
        return mapped, routed[0], routed[1]
