"""Which binlog changes pass while tables are being snapshotted (the DBLog rule).

The snapshot engine reads each chunk of a keyed table in a consistent transaction of its
own, at an exact binlog position P (MariaDB gives it: ``binlog_snapshot_file/position``), so
the chunk's low and high watermarks are the same point. The binlog is streamed up to P
before the chunk is delivered, and the chunk is delivered *at* P. That gives one rule, kept
by :class:`Coverage`:

- a change to a key the snapshot has already delivered (at or before the table's last
  chunk key, or anywhere in a finished table) passes: the consumer holds that key's
  snapshot row, and this change comes after it;
- a change to a key not delivered yet is dropped: the chunk that will hold the key is
  read later, at a later position, so its row already contains the change.

So each key's first record is its snapshot row (or, for a key created after its chunk, its
insert), and every later change appears once, in order. The checkpoint holds the stream
position and each table's last delivered key, both committed with the data, so a crash at
any point resumes on the same rule. An update that moves a row across the bound (its
primary key changed) becomes a delete of the delivered key or an insert of the new one.
A table without a primary key is covered only when it is finished.

At-least-once delivery has one exception. Records delivered but not yet checkpointed when the
worker died are visible to consumers, so after such a resume a chunk beyond the checkpoint's
key may already be out there; its rows are re-read, and re-reading restates updates and
inserts, but a deleted row is simply absent from the new read. So a resumed at-least-once
snapshot (``replaying``) lets every delete pass, and an update that moves a key passes as a
delete of the old key: a consumer may see a delete of a key it never held (a no-op), never a
row that is gone at the source.

A table read again while streaming (snapshotRequest) is different: the consumer already
holds every key, so all of its changes pass, and each chunk, delivered at its P right after
the changes up to P, restates the keys' current values.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ferry_runtime.checkpoint import SnapshotState
from ferry_runtime.events import Change
from ferry_runtime.source.keys import KeyOrder

__all__ = ["Coverage"]


class Coverage:
    """The snapshot's progress as a filter over binlog changes."""

    def __init__(
        self, progress: SnapshotState, orders: dict[str, KeyOrder], replaying: bool = False
    ) -> None:
        self.progress = progress
        self.orders = orders  # keyed tables of the snapshot, by database.table
        self.replaying = replaying  # resumed at-least-once: rows past the checkpoint may be out
        self._keys = {name: order.key_names for name, order in orders.items()}

    def covered(self, name: str, row: dict[str, Any]) -> bool:
        """Whether the snapshot already delivered the key of ``row`` in table ``name``."""
        table = self.progress.tables.get(name)
        if table is None or table.done or table.restate:
            return True  # not part of this snapshot (created since), finished, or read again
        order = self.orders.get(name)
        if order is None or table.after is None:
            return False  # keyless and unfinished, or no chunk delivered yet
        return order.at_or_before([row[column] for column in self._keys[name]], table.after)

    def keep(self, changes: list[Change]) -> list[Change]:
        """The changes a consumer must see now, in order."""
        if self.progress.done:
            return changes
        kept: list[Change] = []
        for change in changes:
            new = self.covered(change.name, change.data)
            if change.op != "update" or change.old is None:
                if new or (self.replaying and change.op == "delete"):
                    kept.append(change)
                continue
            old = self.covered(change.name, change.old)
            if new and old:
                kept.append(change)
                continue
            # A moved key is gone from where it was: from a delivered key, or (replaying)
            # from one an unconfirmed delivery may have shown.
            if old or (self.replaying and self._moved(change)):
                kept.append(dataclasses.replace(change, op="delete", data=change.old, old=None))
            if new:  # moved from an unread key to a delivered one: new here
                kept.append(dataclasses.replace(change, op="insert", old=None))
        return kept

    def _moved(self, change: Change) -> bool:
        keys = self._keys.get(change.name)
        if keys is None or change.old is None:
            return False  # keyless: no key to move
        return any(change.old[column] != change.data[column] for column in keys)
