"""What every sink offers the worker: open (and fence), read the checkpoint, deliver a batch
together with its checkpoint, close.

A sink either wants formatted Kafka :class:`~ferry_runtime.sink.kafka.Record` objects or the
mapped :class:`~ferry_runtime.events.Change` objects themselves (``wants_records``); the
worker formats only for a sink that wants records. Rows the pipeline gave up on travel as
:class:`DeadLetter` items to a sink that takes changes. Every method raises
:class:`ferry_runtime.errors.WorkerError`; the worker decides whether to retry, skip or stop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ferry_runtime import errors
from ferry_runtime.checkpoint import Checkpoint

__all__ = ["DeadLetter", "PoisonHandler", "Sink"]


@dataclass(frozen=True)
class DeadLetter:
    """A row the error policy (deadLetter) set aside, with the reason."""

    table: str  # database.table at the source
    position: str  # "file:pos"
    error: str


# The worker's error policy for one row: raises (fail), returns a dead-letter message or None
# (skip).
PoisonHandler = Callable[[errors.PoisonRow], str | None]


class Sink(Protocol):
    """One task's destination; the checkpoint commits atomically with the data it covers."""

    wants_records: bool

    def open(self) -> None:
        """Connect, and fence any older worker of the same task."""

    def read_checkpoint(self) -> Checkpoint | None:
        """The last committed checkpoint of this task, or None."""

    def deliver(self, items: list[Any], state: Checkpoint) -> None:
        """Commit ``items`` and ``state`` together; return once both are durable."""

    def close(self) -> None:
        """Release connections; safe to call after a failed open."""
