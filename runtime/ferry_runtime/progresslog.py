"""The snapshot's log lines: one when it starts, a progress line per table at most every
:data:`PROGRESS_SECONDS`, one when a table is done and a summary (rows, duration, rows/s).

The numbers travel as extra fields too (``table``, ``rows``, ``rowsTotal``, ``seconds``,
``rowsPerSecond``), so that JSON lines (spec.logFormat: json) can be queried.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["PROGRESS_SECONDS", "SnapshotLog"]

PROGRESS_SECONDS = 10.0
log = logging.getLogger("ferry.snapshot")


class SnapshotLog:
    """Counts a snapshot's rows and says how it goes, rate-limited (``clock``: monotonic)."""

    def __init__(
        self, every: float = PROGRESS_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.every, self.clock = every, clock
        self.started_at: float | None = None
        self.rows = 0
        self._tables: dict[str, int] = {}
        self._said: dict[str, float] = {}

    def start(self, tables: list[str]) -> None:
        """A snapshot (or the rest of one, after a restart) starts."""
        self.started_at, self.rows = self.clock(), 0
        self._tables, self._said = {}, {}
        log.info(
            "snapshot started: %d table(s) to read: %s",
            len(tables),
            ", ".join(tables) or "none",
            extra={"tables": len(tables)},
        )

    def progress(self, table: str, rows: int, done: int, total: int) -> bool:
        """``rows`` more rows of ``table`` delivered (``done`` of about ``total`` in all);
        True when a progress line was written."""
        if self.started_at is None:
            self.start([table])
        self.rows += rows
        self._tables[table] = self._tables.get(table, 0) + rows
        now = self.clock()
        last = self._said.get(table)
        if last is None:  # the first chunk starts the table's clock
            self._said[table] = now
            return False
        if now - last < self.every:
            return False
        self._said[table] = now
        percent = f" ({min(100.0, 100.0 * done / total):.0f}%)" if total else ""
        log.info(
            "snapshot of %s: %d of ~%d rows%s",
            table, done, total, percent,
            extra={"table": table, "rows": done, "rowsTotal": total},
        )  # fmt: skip
        return True

    def table_done(self, table: str, done: int) -> None:
        log.info("snapshot of %s done: %d rows", table, done, extra={"table": table, "rows": done})

    def finish(self) -> None:
        """The summary line: rows, duration, rows/s (of this process's part)."""
        if self.started_at is None:
            return
        seconds = max(self.clock() - self.started_at, 1e-6)
        rate = self.rows / seconds
        log.info(
            "snapshot finished: %d rows in %.1fs (%.0f rows/s)",
            self.rows, seconds, rate,
            extra={"rows": self.rows, "seconds": round(seconds, 3),
                   "rowsPerSecond": round(rate, 1)},
        )  # fmt: skip
        self.started_at = None
