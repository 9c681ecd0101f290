"""The pipeline's unit of data: one row change, already converted to JSON values.

Not frozen: the binlog reader learns ``xid`` and ``commit`` only at the end of the source
transaction and sets them in place (cheaper than copying every change).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

__all__ = ["Change", "Op", "RenderedRows", "Rows"]

Op = Literal["insert", "update", "delete", "read"]  # read = a snapshot row


@dataclass(slots=True)
class Change:
    database: str
    table: str
    op: Op
    data: dict[str, Any]  # the row after the change (before it, for a delete)
    old: dict[str, Any] | None = None  # the full row before an update
    primary_key: tuple[str, ...] = ()  # column names; empty for a table without a key
    ts: int = 0  # source commit time, epoch seconds
    position: str = ""  # "file:pos" of the event, or of the snapshot
    xid: int | None = None
    commit: bool = False  # the last row of its source transaction
    server_id: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    origin: str = ""  # the source table's name when a mapping renamed it (rules.Router)

    @property
    def name(self) -> str:
        return f"{self.database}.{self.table}"

    @property
    def source_table(self) -> str:
        """The table's name at the source (before any mapping)."""
        return self.origin or self.table

    @property
    def source_name(self) -> str:
        """database.table at the source: what status counts rows under."""
        return f"{self.database}.{self.origin or self.table}"


@dataclass(frozen=True, slots=True)
class RenderedRows:
    """Snapshot rows the source server rendered as JSON (``source.snapshot.row_json``): each
    row's key as JSON text (the value of a one-column key, a JSON array of a longer key's
    values: the bytes ``orjson.dumps`` gives) and its JSON object with the mapped column
    names. The same JSON values as the rows the reader would make of the columns, without
    building a dict per row. In key order only when the chunk's end was not known (the
    table's last chunk: its last key is the table's)."""

    keys: list[bytes]
    data: list[bytes]
    width: int  # how many columns the key has

    def __len__(self) -> int:
        return len(self.data)

    def key(self, index: int) -> list[Any]:
        """The key of row ``index`` (its JSON values)."""
        value = orjson.loads(self.keys[index])
        return [value] if self.width == 1 else list(value)

    def dicts(self) -> list[dict[str, Any]]:
        """The rows as JSON values by name, for whatever needs them one by one."""
        return [orjson.loads(row) for row in self.data]


# A snapshot chunk's rows: JSON values by column name, or the server's rendering.
Rows = list[dict[str, Any]] | RenderedRows
