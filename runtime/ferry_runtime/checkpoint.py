"""The checkpoint record: where a task is, stored beside its data.

One JSON record per task (key = task id) in a compacted topic. It holds the binlog position
reached (always at a transaction boundary), the nonces of the last resetPosition and
snapshotRequest applied, the snapshot's progress: the binlog position the snapshot started
at and, per table, whether it is done, the rows delivered and the primary key of the last row
delivered (keyset pagination resumes after it; binlog changes of keys up to it pass, see
:mod:`ferry_runtime.source.watermark`); and the task's cumulative counters (events, errors,
restarts) as of the data it covers, so that status after a restart carries on from them
instead of from 0; and the last skipEvent applied (its nonce, committed with the position
past the skipped event, so a restarted worker neither skips it again nor misses it); and the
result of the last verifyRequest (its nonce, committed with any rows it repaired, so a
verification runs once per nonce and its result survives restarts); and the
last onPositionUnavailable recovery (when, the purged position, whether its snapshot finished),
counted in ``counters.resnapshots``.
Pure: (de)serialization only; the sink reads and writes it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = [
    "Checkpoint",
    "Counters",
    "ResnapshotRecord",
    "SkipRecord",
    "SnapshotState",
    "TableState",
    "VerifyRecord",
    "decode",
    "encode",
    "format_position",
]


@dataclass(frozen=True)
class TableState:
    done: bool = False
    after: list[Any] | None = None  # primary key of the last row delivered
    rows: int = 0
    # Read again (snapshotRequest): the consumer has every key already, so its changes all
    # pass and the rows restate the keys' current values.
    restate: bool = False
    # snapshotRequest.where: the SQL condition limiting the rows read again (None: all).
    where: str | None = None


@dataclass(frozen=True)
class SnapshotState:
    position: dict[str, Any]  # binlog position where the snapshot started
    tables: dict[str, TableState] = field(default_factory=dict)
    done: bool = False
    # True: ``tables`` lists every table of the snapshot from the start (chunk watermarks);
    # a table missing from it was created later and streams. False: an older worker's
    # checkpoint, which lists only the tables it had started.
    planned: bool = False

    def with_table(self, name: str, state: TableState) -> SnapshotState:
        return replace(self, tables={**self.tables, name: state})


@dataclass(frozen=True)
class Counters:
    """Totals over the task's life, committed with the data they count."""

    events: int = 0
    errors: int = 0
    restarts: int = 0
    resnapshots: int = 0  # onPositionUnavailable: resnapshot recoveries


@dataclass(frozen=True)
class ResnapshotRecord:
    """The last onPositionUnavailable: resnapshot recovery: when it started, the checkpoint
    position whose binlog was gone, and when its new snapshot finished (0: still running)."""

    time: float
    position: str  # "file:pos" of the checkpoint that could not be read
    finished: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"time": self.time, "position": self.position, "finished": self.finished}

    @staticmethod
    def from_json(data: dict[str, Any]) -> ResnapshotRecord:
        return ResnapshotRecord(
            time=float(data.get("time", 0.0)),
            position=str(data.get("position") or ""),
            finished=float(data.get("finished", 0.0)),
        )


@dataclass(frozen=True)
class SkipRecord:
    """The last skipEvent applied: what was skipped, where and when."""

    nonce: str
    position: str  # "file:pos" of the (last) row event skipped, or of the transaction's end
    gtid: str | None = None  # the skipped event's transaction, when known
    tables: tuple[str, ...] = ()
    events: int = 0  # row events skipped (1 for a {file, pos} skip)
    time: float = 0.0

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "nonce": self.nonce,
            "position": self.position,
            "tables": list(self.tables),
            "events": self.events,
            "time": self.time,
        }
        if self.gtid is not None:
            data["gtid"] = self.gtid
        return data

    @staticmethod
    def from_json(data: dict[str, Any]) -> SkipRecord:
        return SkipRecord(
            nonce=str(data["nonce"]),
            position=str(data.get("position") or ""),
            gtid=data.get("gtid"),
            tables=tuple(data.get("tables") or ()),
            events=int(data.get("events", 0)),
            time=float(data.get("time", 0.0)),
        )


@dataclass(frozen=True)
class VerifyRecord:
    """The result of the last verifyRequest (see :mod:`ferry_runtime.verify`)."""

    nonce: str
    time: float = 0.0  # when it finished
    tables: tuple[str, ...] = ()  # source tables compared
    chunks: int = 0
    rows: int = 0  # source rows compared
    mismatched: int = 0  # keys whose rows differ (not counting changes still in flight)
    unsettled: int = 0  # keys that kept changing through every re-check (not counted)
    repaired: int = 0
    sample: tuple[tuple[str, str], ...] = ()  # (table, key as JSON) of mismatched rows
    skipped: tuple[str, ...] = ()  # "table: why" for tables that could not be compared
    error: str | None = None  # the verification could not finish

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "nonce": self.nonce,
            "time": self.time,
            "tables": list(self.tables),
            "chunks": self.chunks,
            "rows": self.rows,
            "mismatched": self.mismatched,
            "unsettled": self.unsettled,
            "repaired": self.repaired,
            "sample": [list(pair) for pair in self.sample],
            "skipped": list(self.skipped),
        }
        if self.error is not None:
            data["error"] = self.error
        return data

    @staticmethod
    def from_json(data: dict[str, Any]) -> VerifyRecord:
        return VerifyRecord(
            nonce=str(data["nonce"]),
            time=float(data.get("time", 0.0)),
            tables=tuple(data.get("tables") or ()),
            chunks=int(data.get("chunks", 0)),
            rows=int(data.get("rows", 0)),
            mismatched=int(data.get("mismatched", 0)),
            unsettled=int(data.get("unsettled", 0)),
            repaired=int(data.get("repaired", 0)),
            sample=tuple((str(t), str(k)) for t, k in data.get("sample") or ()),
            skipped=tuple(data.get("skipped") or ()),
            error=data.get("error"),
        )


@dataclass(frozen=True)
class Checkpoint:
    position: dict[str, Any] | None = None  # {file, pos}: resume the binlog here
    reset_nonce: str | None = None
    snapshot: SnapshotState | None = None
    time: float = 0.0
    counters: Counters = field(default_factory=Counters)
    snapshot_nonce: str | None = None  # of the last snapshotRequest applied
    skip: SkipRecord | None = None  # the last skipEvent applied
    verify: VerifyRecord | None = None  # the last verifyRequest done
    resnapshot: ResnapshotRecord | None = None  # the last onPositionUnavailable recovery
    # The include/exclude globs the task last ran with ({"include": [...], "exclude": [...]}):
    # a table they did not select and the new ones do is new (snapshotNewTables).
    selection: dict[str, list[str]] | None = None
    run: str | None = None  # the scheduled snapshot run (FERRY_RUN) the snapshot belongs to

    def stamped(self) -> Checkpoint:
        return replace(self, time=time.time())


def format_position(position: dict[str, Any] | None) -> str | None:
    return None if not position else f"{position['file']}:{position['pos']}"


def encode(checkpoint: Checkpoint, task_id: str) -> bytes:
    data: dict[str, Any] = {
        "task": task_id,
        "position": checkpoint.position,
        "resetNonce": checkpoint.reset_nonce,
        "time": checkpoint.time,
        "counters": {
            "events": checkpoint.counters.events,
            "errors": checkpoint.counters.errors,
            "restarts": checkpoint.counters.restarts,
        },
    }
    if checkpoint.counters.resnapshots:
        data["counters"]["resnapshots"] = checkpoint.counters.resnapshots
    if checkpoint.resnapshot is not None:
        data["resnapshot"] = checkpoint.resnapshot.to_json()
    if checkpoint.selection is not None:
        data["selection"] = checkpoint.selection
    if checkpoint.snapshot_nonce is not None:
        data["snapshotNonce"] = checkpoint.snapshot_nonce
    if checkpoint.skip is not None:
        data["skip"] = checkpoint.skip.to_json()
    if checkpoint.verify is not None:
        data["verify"] = checkpoint.verify.to_json()
    if checkpoint.run is not None:
        data["run"] = checkpoint.run
    if checkpoint.snapshot is not None:
        data["snapshot"] = {
            "position": checkpoint.snapshot.position,
            "done": checkpoint.snapshot.done,
            "planned": checkpoint.snapshot.planned,
            "tables": {
                name: {"done": t.done, "after": t.after, "rows": t.rows}
                | ({"restate": True} if t.restate else {})
                | ({"where": t.where} if t.where is not None else {})
                for name, t in checkpoint.snapshot.tables.items()
            },
        }
    return json.dumps(data, separators=(",", ":")).encode("utf-8")


def decode(raw: bytes) -> Checkpoint:
    data = json.loads(raw)
    snapshot = None
    if data.get("snapshot"):
        snap = data["snapshot"]
        snapshot = SnapshotState(
            position=snap["position"],
            done=bool(snap.get("done")),
            planned=bool(snap.get("planned")),
            tables={
                name: TableState(
                    bool(t.get("done")),
                    t.get("after"),
                    int(t.get("rows", 0)),
                    bool(t.get("restate")),
                    t.get("where"),
                )
                for name, t in snap.get("tables", {}).items()
            },
        )
    counters = data.get("counters") or {}  # absent in checkpoints of older workers
    return Checkpoint(
        position=data.get("position"),
        reset_nonce=data.get("resetNonce"),
        snapshot=snapshot,
        time=float(data.get("time", 0.0)),
        counters=Counters(
            int(counters.get("events", 0)),
            int(counters.get("errors", 0)),
            int(counters.get("restarts", 0)),
            int(counters.get("resnapshots", 0)),
        ),
        snapshot_nonce=data.get("snapshotNonce"),
        skip=SkipRecord.from_json(data["skip"]) if data.get("skip") else None,
        verify=VerifyRecord.from_json(data["verify"]) if data.get("verify") else None,
        resnapshot=(
            ResnapshotRecord.from_json(data["resnapshot"]) if data.get("resnapshot") else None
        ),
        selection=data.get("selection"),
        run=data.get("run"),
    )
