"""spec.skipEvent in the worker: whether a skip is still to do, and finding its event.

The operator renders ``skipEvent: {position, nonce}`` into the worker config. A skip is
*pending* while its nonce differs from the one committed in the checkpoint
(:attr:`ferry_runtime.checkpoint.Checkpoint.skip`). The worker then hands a :class:`Matcher`
to the binlog reader, which drops the matching row event(s) without decoding them (a poison
row is never converted) and marks their transaction with :class:`Skipped`; the worker
commits the nonce with the position after that transaction, in the same sink transaction
as the rows around it. A crash before that commit reads the event again and skips it again;
after it, nothing is skipped any more: exactly once per nonce.

Positions:

- ``{file, pos}`` names one row event by the offset right after it (mysqlbinlog's
  ``end_log_pos``), which is how Ferry reports a row's position (status.lastErrors, dead
  letters, Maxwell records). Only a row event ends there; any other position is never met.
- ``{gtid}`` (MariaDB ``domain-server-sequence``) names a transaction: all its row events
  are skipped.

A skip whose event the stream can no longer meet (its position is at or behind the
checkpoint, or the stream went past it without meeting a row event there) skips nothing:
the worker says so in status.lastErrors (reason ``SkipEventNotFound``) and streams on.
Pure, apart from the matcher's callback.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ferry_runtime.checkpoint import Checkpoint
from ferry_runtime.config import BinlogFilePosition, SkipEvent
from ferry_runtime.source.positions import Gtid, parse_gtids

__all__ = ["NOT_FOUND", "Matcher", "Skipped", "Target", "passed", "pending"]

NOT_FOUND = "SkipEventNotFound"


@dataclass(frozen=True)
class Target:
    """The event a pending skipEvent names."""

    nonce: str
    file: str | None = None
    pos: int | None = None
    gtid: Gtid | None = None

    def describe(self) -> str:
        if self.gtid is not None:
            return f"the transaction with GTID {self.gtid}"
        return f"the row event at {self.file}:{self.pos}"

    @property
    def where(self) -> str:
        """As a status position: ``file:pos`` or the GTID."""
        return str(self.gtid) if self.gtid is not None else f"{self.file}:{self.pos}"


@dataclass(frozen=True)
class Skipped:
    """What the reader left out of one transaction for a skipEvent."""

    position: str  # "file:pos" of the last row event skipped, else of the transaction's end
    gtid: str | None  # the transaction's GTID, when the source has GTIDs
    tables: tuple[str, ...]  # database.table of the row events skipped, in binlog order
    events: int  # row events skipped


def pending(skip: SkipEvent | None, state: Checkpoint) -> Target | None:
    """The skip still to do: the config's, unless the checkpoint already applied its nonce."""
    if skip is None or (state.skip is not None and state.skip.nonce == skip.nonce):
        return None
    position = skip.position
    if isinstance(position, BinlogFilePosition):
        return Target(skip.nonce, file=position.file, pos=position.pos)
    return Target(skip.nonce, gtid=parse_gtids(position.gtid)[0])


def passed(target: Target, position: dict[str, Any] | None) -> bool:
    """Whether a stream from ``position`` (a checkpoint: a transaction boundary) can no longer
    meet ``target``."""
    if not position:
        return False
    if target.gtid is not None:
        reached = [g for g in _gtids(position.get("gtid")) if g.domain == target.gtid.domain]
        return bool(reached) and reached[0].seq >= target.gtid.seq
    # A row event never ends where a transaction does: equal is passed too.
    return (str(position["file"]), int(position["pos"])) >= (target.file, target.pos)


def _gtids(text: Any) -> list[Gtid]:
    try:
        return parse_gtids(str(text)) if text else []
    except ValueError:
        return []


class Matcher:
    """Finds a target in one binlog reader's stream (used on the reader's thread only).

    The reader calls :meth:`transaction` at each GTID event, :meth:`row_event` before it
    decodes a row event, and :meth:`reached` after every event; ``on_missed(message)`` is
    called once if the stream goes past the target without meeting it."""

    def __init__(self, target: Target, on_missed: Callable[[Target, str], None]) -> None:
        self.target = target
        self.on_missed = on_missed
        self.matched = False
        self.missed = False
        self._starts_here: str | None = None  # the row event that starts at a target

    @property
    def active(self) -> bool:
        return not (self.matched or self.missed)

    def transaction(self, gtid: Gtid) -> bool:
        """A transaction starts: True when all of its row events are to be skipped."""
        target = self.target.gtid
        if target is None or not self.active or gtid.domain != target.domain:
            return False
        if gtid == target:
            self.matched = True
            return True
        if gtid.seq >= target.seq:
            self._miss(f"the stream reached GTID {gtid} without meeting {target}")
        return False

    def row_event(self, file: str, pos: int, start: int | None = None) -> bool:
        """A row event ending at ``file:pos`` (starting at ``start``): True when it is the one
        to skip. Only the end counts: one event's start is the end of the one before it."""
        if self.target.file is None or not self.active:
            return False
        if (file, pos) == (self.target.file, self.target.pos):
            self.matched = True
            return True
        if (file, start) == (self.target.file, self.target.pos):
            self._starts_here = f"{file}:{pos}"
        return False

    def reached(self, file: str, pos: int) -> None:
        """The stream is at ``file:pos`` (after an event): past a {file, pos} target unmet?"""
        target = self.target
        if target.file is None or not self.active or target.pos is None:
            return
        if (file, pos) > (target.file, target.pos):
            why = f"the stream went from before it to {file}:{pos} without a row event ending there"
            if self._starts_here is not None:
                why += (
                    f" ({target.file}:{target.pos} is where the row event ending at "
                    f"{self._starts_here} starts, mysqlbinlog's '# at'; to skip that event, "
                    f"give {self._starts_here})"
                )
            self._miss(why)

    def _miss(self, why: str) -> None:
        self.missed = True
        self.on_missed(self.target, why)
