"""The worker's live state: one thread-safe tracker that the pipeline writes and that the
HTTP endpoints, the Prometheus metrics and the Kubernetes reporter read.

The pipeline calls the ``record_*``/``set_*`` methods; readers call :meth:`StatusTracker.view`,
which returns a plain dict whose keys are the SyncTask status fields the worker owns
(see docs/architecture.md): state, position, lag, throughput, progress, counters,
lastErrors, lastSkip, lastResnapshot, heartbeatTime.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from ferry_runtime.checkpoint import ResnapshotRecord, SkipRecord, VerifyRecord

__all__ = [
    "LATENCY_BUCKETS",
    "POSITION_DISPLAY_MAX",
    "ErrorRecord",
    "LatencyHistogram",
    "State",
    "StatusTracker",
    "TableProgress",
    "format_duration",
    "position_display",
]

State = Literal[
    "Starting", "Snapshotting", "Streaming", "Stopping", "Stopped", "Failed", "Completed"
]
MAX_ERRORS = 10
RATE_WINDOW_SECONDS = 10.0
# Heartbeat rows awaiting delivery that the lag remembers (the oldest are what count).
MAX_UNCONFIRMED_BEATS = 10_000
# Upper bounds (seconds) of the batch latency histogram; +Inf is implied.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def format_duration(seconds: float) -> str:
    """A duration as kubectl prints ages: ``0s``, ``45s``, ``12m58s``, ``3h4m``, ``2d3h``."""
    whole = max(0, int(seconds))
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m{secs}s" if secs else f"{minutes}m"
    return f"{secs}s"


POSITION_DISPLAY_MAX = 40


def position_display(position: Any) -> str | None:
    """A position as one short word for the POSITION column: ``binlog.000042:1234`` (the
    file and the offset in it), else the GTID position (MySQL's can be long: cut to
    POSITION_DISPLAY_MAX characters with ``…``); None when there is none."""
    if not isinstance(position, dict):
        return str(position) if position else None
    if position.get("file"):
        pos = position.get("pos")
        return f"{position['file']}:{'?' if pos is None else pos}"
    gtid = str(position.get("gtid") or "")
    if not gtid:
        return None
    return gtid if len(gtid) <= POSITION_DISPLAY_MAX else gtid[: POSITION_DISPLAY_MAX - 1] + "…"


def _rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class TableProgress:
    name: str  # database.table
    rows_total: int  # an estimate (information_schema) until the table is done
    rows_done: int = 0
    state: Literal["Pending", "Running", "Done", "Cancelled"] = "Pending"


@dataclass(frozen=True)
class ErrorRecord:
    time: float
    reason: str  # CamelCase, e.g. ConnectionLost, PoisonRow, PositionUnavailable
    message: str  # never holds a secret
    table: str | None = None
    position: str | None = None  # "file:pos"


@dataclass
class LatencyHistogram:
    """Cumulative-bucket histogram (Prometheus-shaped): no samples kept, constant memory."""

    bounds: tuple[float, ...] = LATENCY_BUCKETS
    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    total: float = 0.0
    count: int = 0

    def observe(self, value: float) -> None:
        index = next((i for i, bound in enumerate(self.bounds) if value <= bound), len(self.bounds))
        self.counts[index] += 1
        self.total += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, int]]:
        """``[(upper bound, observations <= bound), ..., ("+Inf", count)]``."""
        running, out = 0, []
        for bound, count in zip((*map(str, self.bounds), "+Inf"), self.counts, strict=True):
            running += count
            out.append((bound, running))
        return out


@dataclass
class StatusTracker:
    """Shared state of one worker. All methods are safe to call from any thread."""

    clock: Callable[[], float] = time.time
    state: State = "Starting"
    position: dict[str, Any] = field(default_factory=dict)  # {file, pos, gtid?, timestamp?}
    last_event_time: float | None = None  # source timestamp of the newest delivered event
    caught_up: bool = False  # True when delivered up to the server's current position
    events: int = 0
    errors: int = 0
    restarts: int = 0
    restarts_at_start: int = 0  # restarts restored from the checkpoint (earlier processes)
    snapshot_done: bool = False
    selected_tables: int | None = None  # tables include/exclude select now (None: not checked)
    retry_streak: int = 0  # consecutive failures; 0 again after restartPolicy.resetAfter
    next_retry_time: float | None = None  # wall time of the next retry, while backing off
    events_by_table_op: dict[tuple[str, str], int] = field(default_factory=dict)
    errors_by_reason: dict[str, int] = field(default_factory=dict)
    tables: dict[str, TableProgress] = field(default_factory=dict)
    last_errors: deque[ErrorRecord] = field(default_factory=lambda: deque(maxlen=MAX_ERRORS))
    snapshot_started: float | None = None
    batch_latencies: LatencyHistogram = field(default_factory=LatencyHistogram)
    last_checkpoint_time: float | None = None  # wall time of the newest committed checkpoint
    last_skip: SkipRecord | None = None  # the last skipEvent applied (kept in the checkpoint)
    # Rows events decoded by the library's slow path, by (table, reason): "unsupported" (the
    # table has a column our row decoder does not read) or "rejected" (it refused the event).
    slow_decodes: dict[tuple[str, str], int] = field(default_factory=dict)
    queue_probe: Callable[[], float] | None = None  # the reader→sink queue's fill, 0..1
    verification: VerifyRecord | None = None  # the last verifyRequest done (in the checkpoint)
    verifying: tuple[str, float] | None = None  # (nonce, start time) of the one running
    resnapshots: int = 0  # onPositionUnavailable: resnapshot recoveries (kept in the checkpoint)
    last_resnapshot: ResnapshotRecord | None = None  # the last of them (kept in the checkpoint)
    applied_revision: str | None = None  # the config revision this process runs with (live)
    _beats: dict[str, float] = field(default_factory=dict)  # component -> wall time of last beat
    # spec.heartbeat: wall times of heartbeat rows written (or tried) and not delivered yet
    _unconfirmed_beats: deque[float] = field(default_factory=deque)
    last_heartbeat_delivered: float | None = None  # wall time the newest delivered one was written
    _delivered: deque[tuple[float, int]] = field(default_factory=deque)  # (wall time, count)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _listeners: list[Callable[[State], None]] = field(default_factory=list)
    _created: float = 0.0
    _rows_at_snapshot_start: int = 0  # rows restored from a checkpoint: not this run's rate

    def __post_init__(self) -> None:
        self._created = self.clock()

    # ------------------------------------------------------------ writers (the pipeline)

    def set_state(self, state: State) -> None:
        with self._lock:
            changed = state != self.state
            self.state = state
            if state == "Snapshotting" and self.snapshot_started is None:
                self.snapshot_started = self.clock()
                self._rows_at_snapshot_start = sum(t.rows_done for t in self.tables.values())
        if changed:
            for listener in list(self._listeners):
                listener(state)

    def set_applied_revision(self, revision: str | None) -> None:
        """The worker runs with config revision ``revision`` now (at start, or applied live);
        reported at once."""
        with self._lock:
            changed = revision != self.applied_revision
            self.applied_revision = revision
        if changed:
            for listener in list(self._listeners):
                listener(self.state)

    def on_state_change(self, listener: Callable[[State], None]) -> None:
        """Call ``listener(new_state)`` on every transition (the reporter reports at once)."""
        self._listeners.append(listener)

    def record_delivered(
        self, counts: dict[tuple[str, str], int], position: dict[str, Any], event_time: float | None
    ) -> None:
        """A batch was acknowledged by the sink: ``counts[(table, op)]``, the checkpointed
        position it reached and the source timestamp of its newest event."""
        total = sum(counts.values())
        with self._lock:
            for key, count in counts.items():
                self.events_by_table_op[key] = self.events_by_table_op.get(key, 0) + count
            self.events += total
            self.position = dict(position)
            if event_time is not None:
                self.last_event_time = event_time
            now = self.clock()
            self._delivered.append((now, total))
            self.last_checkpoint_time = now

    def record_checkpoint(self, position: dict[str, Any]) -> None:
        """A checkpoint was committed without new data (e.g. a heartbeat or a skipped event)."""
        with self._lock:
            self.position = dict(position)
            self.last_checkpoint_time = self.clock()

    def source_heartbeat_written(self, at: float) -> None:
        """A heartbeat row stamped ``at`` is being written to the source (spec.heartbeat):
        until it is delivered, lag is at least its age."""
        with self._lock:
            if len(self._unconfirmed_beats) < MAX_UNCONFIRMED_BEATS:
                self._unconfirmed_beats.append(at)

    def source_heartbeat_delivered(self, at: float) -> None:
        """The heartbeat row stamped ``at`` came through the binlog and its checkpoint was
        committed: every heartbeat written up to then is delivered."""
        with self._lock:
            while self._unconfirmed_beats and self._unconfirmed_beats[0] <= at:
                self._unconfirmed_beats.popleft()
            if self.last_heartbeat_delivered is None or at > self.last_heartbeat_delivered:
                self.last_heartbeat_delivered = at

    def heartbeat(self, component: str) -> None:
        """A pipeline thread says it is alive; /healthz fails when one stops beating."""
        with self._lock:
            self._beats[component] = self.clock()

    def set_caught_up(self, caught_up: bool) -> None:
        with self._lock:
            self.caught_up = caught_up

    def start_table(self, name: str, rows_total: int) -> None:
        with self._lock:
            progress = self.tables.setdefault(name, TableProgress(name, rows_total))
            progress.rows_total = max(rows_total, progress.rows_done)
            progress.state = "Running"

    def restore(
        self,
        counters: tuple[int, int, int],
        tables: dict[str, tuple[int, bool]],
        snapshot_done: bool,
    ) -> None:
        """Carry on from a checkpoint: ``counters`` (events, errors, restarts) and, per table,
        (rows delivered, done). Idempotent, and never moves a number back: the tracker may
        already know more than the checkpoint (errors since it, an earlier run of this
        process)."""
        events, errors, restarts = counters
        with self._lock:
            self.events = max(self.events, events)
            self.errors = max(self.errors, errors)
            if restarts > self.restarts:
                self.restarts_at_start = restarts
                self.restarts = restarts
            for name, (rows, done) in tables.items():
                progress = self.tables.setdefault(name, TableProgress(name, rows))
                progress.rows_done = max(progress.rows_done, rows)
                progress.rows_total = (
                    progress.rows_done if done else max(progress.rows_total, progress.rows_done)
                )
                if done:
                    progress.state = "Done"
            self.snapshot_done = self.snapshot_done or snapshot_done

    def set_selected_tables(self, count: int) -> bool:
        """How many source tables the selection matches now; True when that changed."""
        with self._lock:
            changed = count != self.selected_tables
            self.selected_tables = count
            return changed

    def set_table_rows(self, name: str, rows: int) -> None:
        """Rows of ``name`` delivered so far (a snapshot resumed from its checkpoint)."""
        with self._lock:
            progress = self.tables[name]
            progress.rows_done = max(progress.rows_done, rows)
            progress.rows_total = max(progress.rows_total, progress.rows_done)

    def reopen_snapshot(self) -> None:
        """A new snapshot runs after a finished one (snapshotRequest, snapshotNewTables, a
        recovery): the progress is not 100% until it is done."""
        with self._lock:
            self.snapshot_done = False

    def finish_snapshot(self) -> None:
        with self._lock:
            self.snapshot_done = True

    def plan_table(self, name: str, rows_total: int) -> None:
        with self._lock:
            progress = self.tables.setdefault(name, TableProgress(name, rows_total))
            if progress.state != "Done":
                progress.rows_total = max(progress.rows_total, rows_total)

    def record_snapshot_rows(self, name: str, rows: int) -> None:
        with self._lock:
            progress = self.tables[name]
            progress.rows_done += rows
            progress.rows_total = max(progress.rows_total, progress.rows_done)

    def cancel_table(self, name: str) -> None:
        """A re-read stopped by snapshotRequest.cancel: its rows so far stand."""
        with self._lock:
            progress = self.tables.get(name)
            if progress is not None:
                progress.state = "Cancelled"
                progress.rows_total = progress.rows_done  # nothing more will be read

    def finish_table(self, name: str) -> None:
        with self._lock:
            progress = self.tables[name]
            progress.rows_total = progress.rows_done
            progress.state = "Done"

    def record_error(
        self, reason: str, message: str, table: str | None = None, position: str | None = None
    ) -> None:
        with self._lock:
            self.errors += 1
            self.errors_by_reason[reason] = self.errors_by_reason.get(reason, 0) + 1
            self.last_errors.append(ErrorRecord(self.clock(), reason, message, table, position))

    def record_skip(self, skip: SkipRecord) -> None:
        """A skipEvent was applied (committed), now or by an earlier worker."""
        with self._lock:
            self.last_skip = skip

    def verification_started(self, nonce: str, started: float | None) -> None:
        """A verifyRequest started on the worker's verification thread."""
        with self._lock:
            self.verifying = (nonce, started or self.clock())

    def record_verification(self, record: VerifyRecord) -> None:
        """A verifyRequest finished (committed), now or by an earlier worker."""
        with self._lock:
            self.verification = record
            self.verifying = None

    def record_resnapshot(self, record: ResnapshotRecord, new: bool = False) -> None:
        """The last onPositionUnavailable recovery: ``new`` when it starts now (counted),
        else restored from the checkpoint or finished."""
        with self._lock:
            if new:
                self.resnapshots += 1
            self.last_resnapshot = record

    def restore_resnapshots(self, count: int, record: ResnapshotRecord | None) -> None:
        """Carry on from a checkpoint (never moves the count back)."""
        with self._lock:
            self.resnapshots = max(self.resnapshots, count)
            if record is not None and (
                self.last_resnapshot is None or record.time >= self.last_resnapshot.time
            ):
                self.last_resnapshot = record

    def observe_batch_latency(self, seconds: float) -> None:
        """Time from a batch's first event read to the sink's acknowledgement."""
        with self._lock:
            self.batch_latencies.observe(seconds)

    def record_slow_decode(self, table: str, reason: str) -> None:
        """One rows event of ``table`` went through a slow decoder (thread-safe): the
        library's (``unsupported``, ``rejected``) or the generated Python (``python``)."""
        with self._lock:
            key = (table, reason)
            self.slow_decodes[key] = self.slow_decodes.get(key, 0) + 1

    def set_queue_probe(self, probe: Callable[[], float] | None) -> None:
        """What :meth:`queue_fill` reads: the current binlog feed's fill (None: no feed)."""
        with self._lock:
            self.queue_probe = probe

    def queue_fill(self) -> float:
        """How full the reader→sink queue is, 0 (empty, or none) to 1 (the reader waits)."""
        with self._lock:
            probe = self.queue_probe
        return min(1.0, max(0.0, probe())) if probe is not None else 0.0

    def record_restart(self) -> None:
        with self._lock:
            self.restarts += 1

    def set_retry(self, streak: int, next_retry_time: float | None) -> None:
        """The current failure streak and when the next retry starts (None: not waiting)."""
        with self._lock:
            self.retry_streak = streak
            self.next_retry_time = next_retry_time

    # ------------------------------------------------------------ readers

    def reading(self) -> threading.RLock:
        """``with tracker.reading():`` makes several reads one consistent picture."""
        return self._lock

    def stalled(self, timeout: float) -> list[str]:
        """Components whose last heartbeat is older than ``timeout`` seconds (while running)."""
        with self._lock:
            if self.state in ("Stopped", "Failed", "Completed"):
                return []
            now = self.clock()
            return sorted(name for name, beat in self._beats.items() if now - beat > timeout)

    def checkpoint_age(self) -> float | None:
        """Seconds since the newest committed checkpoint; None before the first."""
        with self._lock:
            if self.last_checkpoint_time is None:
                return None
            return max(0.0, self.clock() - self.last_checkpoint_time)

    def breakdown(self) -> dict[str, Any]:
        """Counters by table and op, and errors by reason (for /status)."""
        with self._lock:
            by_table: dict[str, dict[str, int]] = {}
            for (table, op), count in sorted(self.events_by_table_op.items()):
                by_table.setdefault(table, {})[op] = count
            return {"eventsByTable": by_table, "errorsByReason": dict(self.errors_by_reason)}

    def lag_seconds(self) -> float:
        """now - timestamp of the last delivered event; 0 when caught up. With spec.heartbeat,
        at least the age of the oldest heartbeat row written and not delivered yet (a stream
        that stopped moving shows, although no server heartbeat says so)."""
        with self._lock:
            now = self.clock()
            lag = 0.0
            if not self.caught_up and self.last_event_time is not None:
                lag = max(0.0, now - self.last_event_time)
            if self._unconfirmed_beats:
                lag = max(lag, now - self._unconfirmed_beats[0])
            return lag

    def events_per_second(self) -> float:
        with self._lock:
            now = self.clock()
            while self._delivered and self._delivered[0][0] < now - RATE_WINDOW_SECONDS:
                self._delivered.popleft()
            # Over the window, or over the tracker's life while that is shorter, so the
            # first seconds of a run do not show a tenth of the real rate.
            span = max(1.0, min(RATE_WINDOW_SECONDS, now - self._created))
            return sum(count for _, count in self._delivered) / span

    def progress(self) -> dict[str, Any]:
        with self._lock:
            done = sum(t.rows_done for t in self.tables.values())
            total = sum(t.rows_total for t in self.tables.values())
            all_done = self.snapshot_done or (
                bool(self.tables)
                and all(t.state in ("Done", "Cancelled") for t in self.tables.values())
            )
            percent = 100.0 if all_done else (min(99.9, 100.0 * done / total) if total else 0.0)
            eta = None
            copied = done - self._rows_at_snapshot_start
            if self.snapshot_started is not None and copied > 0 and not all_done:
                elapsed = self.clock() - self.snapshot_started
                remaining = max(total - done, 0) * elapsed / copied
                eta = _rfc3339(self.clock() + remaining)
            shown = f"{int(percent)}%" if self.tables or all_done else None
            return {
                "percent": round(percent, 1),
                "display": shown,
                "rowsDone": done,
                "rowsTotal": total,
                "eta": eta,
                "tables": [
                    {
                        "name": t.name,
                        "rowsDone": t.rows_done,
                        "rowsTotal": t.rows_total,
                        "state": t.state,
                    }
                    for t in self.tables.values()
                ],
            }

    def view(self) -> dict[str, Any]:
        """The worker-owned status fields, JSON-ready, plus ``state``."""
        with self._lock:
            position = dict(self.position)
            shown = position_display(position)
            if shown:
                position["display"] = shown
            return {
                "state": self.state,
                "position": position,
                "lag": {
                    "seconds": round(self.lag_seconds(), 3),
                    "display": format_duration(self.lag_seconds()),
                },
                "throughput": {"eventsPerSecond": round(self.events_per_second(), 1)},
                "progress": self.progress(),
                "counters": {
                    "events": self.events,
                    "errors": self.errors,
                    "restarts": self.restarts,
                    "restartsSinceStart": self.restarts - self.restarts_at_start,
                    "resnapshots": self.resnapshots,
                },
                "retry": {
                    "streak": self.retry_streak,
                    "nextRetryTime": (
                        None if self.next_retry_time is None else _rfc3339(self.next_retry_time)
                    ),
                },
                "lastErrors": [
                    {
                        "time": _rfc3339(e.time),
                        "reason": e.reason,
                        "message": e.message,
                        "table": e.table,
                        "position": e.position,
                    }
                    for e in reversed(self.last_errors)
                ],
                "lastSkip": _skip_view(self.last_skip),
                "verification": _verification_view(self.verification, self.verifying),
                "lastResnapshot": _resnapshot_view(self.last_resnapshot),
                "selectedTables": self.selected_tables,
                "appliedRevision": self.applied_revision,
                "heartbeatTime": _rfc3339(self.clock()),
            }


def _skip_view(skip: SkipRecord | None) -> dict[str, Any] | None:
    if skip is None:
        return None
    return {
        "nonce": skip.nonce,
        "position": skip.position,
        "gtid": skip.gtid,
        "table": ", ".join(skip.tables) or None,
        "events": skip.events,
        "time": _rfc3339(skip.time),
    }


def _verification_view(
    record: VerifyRecord | None, running: tuple[str, float] | None
) -> dict[str, Any] | None:
    """status.verification: the one running, else the last result."""
    if running is not None:
        return {"nonce": running[0], "state": "Running", "startTime": _rfc3339(running[1])}
    if record is None:
        return None
    return {
        "nonce": record.nonce,
        "state": "Failed" if record.error else "Completed",
        "time": _rfc3339(record.time),
        "tables": list(record.tables),
        "chunks": record.chunks,
        "rows": record.rows,
        "mismatchedRows": record.mismatched,
        "unsettledRows": record.unsettled,
        "repairedRows": record.repaired,
        "sampleKeys": [{"table": table, "key": key} for table, key in record.sample],
        "skippedTables": list(record.skipped),
        "message": record.error,
    }


def _resnapshot_view(record: ResnapshotRecord | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return {
        "time": _rfc3339(record.time),
        "position": record.position,
        "finishedTime": _rfc3339(record.finished) if record.finished else None,
    }
