"""What every sink offers the worker: open (and fence), read the checkpoint, deliver a batch
together with its checkpoint, close.

The pipeline is source → rules → sink → checkpoint: the worker reads transactions from the
binlog (or chunks from the snapshot), :class:`ferry_runtime.rules.Router` selects and maps
their rows, and the sink gets a :data:`Batch` of mapped rows — :class:`Segment` per source
transaction, :class:`Reads` per snapshot chunk — with the checkpoint that covers them. What
a sink makes of them is its own business: the Kafka sink encodes records
(:mod:`ferry_runtime.sink.kafka_records`: formats, size checks, dead-letter records), the
MySQL sink plans statements. :meth:`Sink.deliver` returns how many rows it delivered per
source table and operation, and commits that count in the checkpoint's counters
(:func:`counted`): a row the sink gives up on (the error policy) is not counted.

Every method raises :class:`ferry_runtime.errors.WorkerError`; the worker decides whether to
retry, skip or stop. A row that cannot be delivered goes to the :data:`PoisonHandler` the
sink was given (the task's errorPolicy), which raises, or returns a dead-letter message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from ferry_runtime import errors
from ferry_runtime.checkpoint import Checkpoint
from ferry_runtime.events import Change, RenderedRows, Rows

if TYPE_CHECKING:
    from ferry_runtime.ddl_records import SchemaChange

__all__ = ["Batch", "Counts", "DeadLetter", "PoisonHandler", "Reads", "Segment", "Sink"]


@dataclass(frozen=True)
class DeadLetter:
    """A row the error policy (deadLetter) set aside, with the reason."""

    table: str  # database.table at the source
    position: str  # "file:pos"
    error: str


@dataclass(slots=True)
class Segment:
    """One source transaction as a sink sees it: its selected rows, mapped, in binlog order
    (or rows of no transaction: verifyRequest repairs)."""

    changes: list[Change]
    dead_letters: list[DeadLetter] = field(default_factory=list)  # rows the reader set aside
    schema_change: SchemaChange | None = None  # a DDL statement, before the rows
    gtid: str | None = None
    position: dict[str, Any] | None = None  # after the transaction's commit
    ts: int = 0  # its commit time, epoch seconds


@dataclass(slots=True)
class Reads:
    """A snapshot chunk: rows of one table read at one position, mapped. ``template`` is
    the change every row shares but its data (op ``read``)."""

    template: Change
    rows: Rows  # RenderedRows only for a sink with json_rows

    def dicts(self) -> list[dict[str, Any]]:
        """The rows as JSON values by name, however they came."""
        return self.rows.dicts() if isinstance(self.rows, RenderedRows) else self.rows


Batch = list[Segment | Reads]
# Rows delivered per (source database.table, op): what status counts.
Counts = dict[tuple[str, str], int]

# The worker's error policy for one row: raises (fail), returns a dead-letter message or None
# (skip).
PoisonHandler = Callable[[errors.PoisonRow], str | None]


def counted(state: Checkpoint, counts: Counts) -> Checkpoint:
    """``state`` with the rows of ``counts`` added to its event counter (committed with
    them)."""
    if not counts:
        return state
    events = state.counters.events + sum(counts.values())
    return replace(state, counters=replace(state.counters, events=events))


class Sink(Protocol):
    """One task's destination; the checkpoint commits atomically with the data it covers.
    ``json_rows``: the sink takes snapshot chunks as the source server's JSON rendering
    (:class:`~ferry_runtime.events.RenderedRows`, the snapshot's fast path) when it can."""

    json_rows: bool

    def open(self) -> None:
        """Connect, and fence any older worker of the same task."""

    def read_checkpoint(self) -> Checkpoint | None:
        """The last committed checkpoint of this task, or None."""

    def deliver(self, batch: Batch, state: Checkpoint) -> Counts:
        """Commit ``batch`` and ``state`` (its counters plus the rows delivered, see
        :func:`counted`) together; return once both are durable."""
        ...

    def close(self) -> None:
        """Release connections; safe to call after a failed open."""
