"""The keys the worker delivers while a verification runs, and its committed position.

The delivery loop calls :meth:`Touched.record` with each batch before the sink commits it
and :meth:`Touched.committed` after; the verifier asks whether a key changed between two
binlog positions (:meth:`Touched.changed`) and waits for the stream to pass a position
(:meth:`Touched.wait_for`). Thread-safe.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from ferry_runtime.events import Change

__all__ = ["Position", "Touched", "key_id", "position_of"]

Position = tuple[str, int]  # (binlog file, offset): file names sort in binlog order


def position_of(position: dict[str, Any] | None) -> Position | None:
    return None if not position else (str(position["file"]), int(position["pos"]))


def key_id(values: Sequence[Any]) -> bytes:
    """One key's identity: its JSON values, as the pipeline's changes carry them."""
    return orjson.dumps(list(values))


class Touched:
    """Keys of delivered transactions (by source table) with the transactions' end positions."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._tables: set[str] = set()
        self._keys: dict[str, dict[bytes, list[Position]]] = {}
        self._committed: Position | None = None

    @property
    def active(self) -> bool:
        return bool(self._tables)

    def start(self, tables: Iterable[str], committed: dict[str, Any] | None) -> None:
        """Record the keys of ``tables`` from now on (call at a batch boundary)."""
        with self._lock:
            self._tables = set(tables)
            self._keys = {name: {} for name in self._tables}
            self._committed = position_of(committed)

    def stop(self) -> None:
        with self._lock:
            self._tables, self._keys = set(), {}

    def record(self, end: dict[str, Any], changes: Iterable[Change]) -> None:
        """A transaction ending at ``end`` is about to be committed to the sink."""
        if not self._tables:
            return
        at = (str(end["file"]), int(end["pos"]))
        with self._lock:
            for change in changes:
                keys = self._keys.get(change.name)
                if keys is None or not change.primary_key:
                    continue
                rows = [change.data] if change.old is None else [change.data, change.old]
                for row in rows:
                    ident = key_id([row.get(name) for name in change.primary_key])
                    keys.setdefault(ident, []).append(at)

    def committed(self, position: dict[str, Any] | None) -> None:
        """The sink committed everything up to ``position``."""
        at = position_of(position)
        if at is None:
            return
        with self._lock:
            if self._committed is None or at > self._committed:
                self._committed = at
                self._lock.notify_all()

    @property
    def position(self) -> Position | None:
        with self._lock:
            return self._committed

    def wait_for(self, target: Position, timeout: float, stop: threading.Event) -> bool:
        """Until the committed position is at or past ``target``; False on timeout or stop."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._committed is None or self._committed < target:
                left = deadline - time.monotonic()
                if left <= 0 or stop.is_set():
                    return False
                self._lock.wait(min(left, 0.5))
            return True

    def changed(self, table: str, key: bytes, low: Position, high: Position) -> bool:
        """Whether a delivered transaction ending in (low, high] changed ``key``."""
        with self._lock:
            return any(low < at <= high for at in self._keys.get(table, {}).get(key, ()))
