"""The pipeline's unit of data: one row change, already converted to JSON values.

Not frozen: the binlog reader learns ``xid`` and ``commit`` only at the end of the source
transaction and sets them in place (cheaper than copying every change).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Change", "Op"]

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
