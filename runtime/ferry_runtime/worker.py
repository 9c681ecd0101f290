"""The worker: snapshot, then binlog, into the sink, with the checkpoint beside the data.

:class:`Worker` sequences the steps of one run (open the sink and fence older workers, read
the checkpoint, apply a new resetPosition or snapshotRequest, snapshot what is left while
streaming up to each chunk's position — see :mod:`ferry_runtime.source.watermark` — then
stream; a pending skipEvent goes to the binlog reader and is committed with the position
past its event, see :mod:`ferry_runtime.skip`) and is the one place that decides "retry,
skip or stop" for an error: transient errors restart the run from the last committed
checkpoint after the restart policy's backoff; fatal errors end it with their reason
(onPositionUnavailable: resnapshot turns a purged binlog into a new snapshot). The tracker
is told about delivered data only after the sink acknowledged it.

The pipeline is source → rules → sink → checkpoint: each batch of binlog transactions (or a
snapshot chunk) goes through the one :class:`ferry_runtime.rules.Router` (select, map) and
reaches the sink as mapped rows (:mod:`ferry_runtime.sink.base`), with the checkpoint that
covers it. The worker never looks at what kind of sink it has (Kafka encodes its records in
:mod:`ferry_runtime.sink.kafka_records`, MySQL plans statements), but for
sink.mysql.schemaChanges: evolve, whose DDL runs between two batches.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import gc
import logging
import os
import queue
import threading
import time
from typing import Any

import pymysql

from ferry_runtime import (
    checkpoint,
    errors,
    heartbeat,
    live,
    progresslog,
    rules,
    runs,
    skip,
)
from ferry_runtime.checkpoint import (
    Checkpoint,
    ResnapshotRecord,
    SkipRecord,
    SnapshotState,
    TableState,
)
from ferry_runtime.config import SnapshotRequest, WorkerConfig
from ferry_runtime.events import Change, Rows
from ferry_runtime.sink import evolve
from ferry_runtime.sink.base import Batch, Counts, DeadLetter, Reads, Segment, Sink, counted
from ferry_runtime.sink.kafka import KafkaSink
from ferry_runtime.sink.kafka_records import KafkaRecords
from ferry_runtime.sink.mysql import MySQLSink, loop_error
from ferry_runtime.source import binlog, chunks, keys, mysql, schema, snapshot, watermark
from ferry_runtime.source.schema import TableSchema
from ferry_runtime.source.snapshot import Snapshot
from ferry_runtime.status import StatusTracker
from ferry_runtime.verify import coordinator as verification

__all__ = ["EXIT_FAILED", "EXIT_OK", "Worker", "tune_garbage_collector"]

EXIT_OK = 0
EXIT_FAILED = 1
log = logging.getLogger("ferry.worker")


def _selected_by(selection: dict[str, list[str]], name: str) -> bool:
    """Whether ``name`` passed a recorded include/exclude (checkpoint.selection)."""
    included = any(fnmatch.fnmatchcase(name, glob) for glob in selection.get("include") or [])
    excluded = any(fnmatch.fnmatchcase(name, glob) for glob in selection.get("exclude") or [])
    return included and not excluded


def tune_garbage_collector() -> None:
    """Collect the young generation every 10,000 allocations, not CPython's 700: a worker
    holds hundreds of thousands of in-flight rows (dicts, Changes, records) that survive the
    young collections, so the default thresholds ran a full collection over them every
    ~20,000 rows: 17 % of the exactly-once worker's CPU (docs/benchmarks.md). Few cycles are
    made per row (the binlog reader breaks the library's), so this costs no memory."""
    gc.set_threshold(10_000, 10, 10)


class _Stopped(Exception):
    """stop() was called; unwind and exit cleanly."""


class _Reload(Exception):
    """A live config change waits (reload()): unwind at a transaction boundary, with all
    delivered data checkpointed, and run on with the new config in this process."""


# While the selection matches no table, how often the worker looks again (tables may appear).
SELECTION_RECHECK_SECONDS = 30.0
# The heartbeat /healthz watches: the snapshot and delivery loops beat under this one name,
# so a finished phase never looks stuck.
PIPELINE = "pipeline"


@dataclasses.dataclass
class _Pending:
    """What a snapshot delivery gathered: the sink's parts (binlog segments and chunks, in
    order), the binlog transactions among them, and per chunk (table, its rows, the
    table's total when it was the table's last chunk)."""

    started: float  # monotonic: the delivery's latency counts from here
    parts: Batch = dataclasses.field(default_factory=list)
    transactions: list[binlog.Transaction] = dataclasses.field(default_factory=list)
    chunks: list[tuple[TableSchema, int, int | None]] = dataclasses.field(default_factory=list)


class _Feed:
    """The binlog reader's queue, with room to hold back one item for the next reader."""

    def __init__(
        self,
        reader: binlog.BinlogReader,
        items: queue.Queue[binlog.Item],
        budget: binlog.RowBudget,
    ) -> None:
        self.reader, self.items, self.budget = reader, items, budget
        self._held: binlog.Item | None = None
        # Everything before it was taken (the snapshot's drain keeps it): an idle server
        # sends nothing, so a chunk read at this very position needs no wait.
        self.reached = (str(reader.start_position["file"]), int(reader.start_position["pos"]))

    def fill(self) -> float:
        """How full the queue is: the larger of its items and its rows against their bounds
        (performance.queueSize each); 1 means the binlog reader waits for the sink."""
        items = self.items.qsize() / self.items.maxsize if self.items.maxsize else 0.0
        rows = self.budget.used / self.budget.limit if self.budget.limit else 0.0
        return min(1.0, max(items, rows))

    def take(self, timeout: float) -> binlog.Item | None:
        if self._held is not None:
            item, self._held = self._held, None
            return item
        try:
            item = self.items.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(item, binlog.Transaction):
            self.budget.release(len(item.changes))
        return item

    def hold(self, item: binlog.Item) -> None:
        self._held = item

    def close(self) -> None:
        self.reader.stop()


class Worker:
    """Runs one task until stopped, completed (mode: snapshot) or failed."""

    def __init__(self, config: WorkerConfig, tracker: StatusTracker) -> None:
        self.config = config
        self.tracker = tracker
        self.task_id = config.task.id
        self.failure: errors.WorkerError | None = None
        self._stop = threading.Event()
        self._reload_lock = threading.Lock()
        self._pending: tuple[WorkerConfig, str | None] | None = None  # reload() not applied
        self._snapshot_log = progresslog.SnapshotLog()
        self._next_selection_check = 0.0
        self._streak = 0  # consecutive failures (restartPolicy.maxRetries caps it)
        self._healthy_since: float | None = None  # monotonic time of this run's first progress
        self._reset_after = config.restart_policy.reset_after.total_seconds()
        self._router = rules.Router(config)
        self._feeds: list[_Feed] = []  # binlog readers of the current run
        self._resnapshot = False  # the checkpoint's binlog is gone: snapshot anew
        self._recovery: ResnapshotRecord | None = None  # that recovery, for its checkpoints
        self._read_position: str | None = None  # the position of the checkpoint read last
        self._skip: skip.Target | None = None  # the pending skipEvent of this run
        self._skip_said: set[str] = set()  # nonces whose state was logged by this process
        self._heartbeat: heartbeat.Writer | None = None  # spec.heartbeat, while a run streams
        self._verify = verification.Coordinator(config)  # spec.verifyRequest

    def stop(self) -> None:
        """Ask the worker to flush, commit its checkpoint and return (thread-safe)."""
        self._stop.set()

    def reload(self, config: WorkerConfig, revision: str | None) -> None:
        """Take ``config`` (the running config with new live fields, see
        :mod:`ferry_runtime.live`) at the next transaction boundary (thread-safe). A change
        of logging fields alone needs no boundary: it is recorded at once."""
        with self._reload_lock:
            base = self._pending[0] if self._pending else self.config
            if live.rules_part(base) == live.rules_part(config) and self._pending is None:
                self.config = config
                self.tracker.set_applied_revision(revision)
                log.info("revision %s applied live (logging)", revision or "?")
                return
            self._pending = (config, revision)

    def _reloading(self) -> bool:
        return self._pending is not None

    def _apply_reload(self) -> None:
        """Swap in the pending config (the run that used the old one has ended)."""
        with self._reload_lock:
            pending, self._pending = self._pending, None
        if pending is None:
            return
        config, revision = pending
        before, after = live.live_part(self.config), live.live_part(config)
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        self.config = config
        self._router = rules.Router(config)
        self.tracker.set_applied_revision(revision)
        log.info(
            "revision %s applied live at %s (changed: %s); no restart",
            revision or "?", self._where() or "the start", ", ".join(changed) or "nothing",
        )  # fmt: skip

    # ------------------------------------------------------------ the retry loop

    def run(self) -> int:
        while True:
            self._healthy_since = None
            if self._reloading():  # came while waiting to retry: start with it
                self._apply_reload()
            try:
                completed = self._guarded_run_once()
                self.tracker.set_state("Completed" if completed else "Stopped")
                return EXIT_OK
            except _Stopped:
                self.tracker.set_state("Stopped")
                return EXIT_OK
            except _Reload:
                self._apply_reload()
            except errors.TransientError as error:
                self.tracker.record_error(error.reason, error.message, position=self._where())
                delay = self._next_retry(error)
                limit = self.config.restart_policy.max_retries
                if delay is None:
                    log.error(
                        "%s; gave up after %d retries (restartPolicy.maxRetries)", error, limit
                    )
                    return self._fail(self._too_many(error))
                if limit is None:
                    log.warning(
                        "%s; retry %d in %.1fs (restartPolicy.maxRetries is unset: no limit)",
                        error, self._streak, delay,
                    )  # fmt: skip
                else:
                    log.warning(
                        "%s; retry %d of %d in %.1fs (the worker gives up if retry %d fails too; "
                        "restartPolicy.resetAfter of progress starts the count again)",
                        error, self._streak, limit, delay, limit,
                    )  # fmt: skip
                self.tracker.record_restart()
                if self._backoff(delay):
                    self.tracker.set_state("Stopped")
                    return EXIT_OK
                self.tracker.set_retry(self._streak, None)
            except errors.WorkerError as error:
                if self._resnapshot_instead(error):
                    continue
                if not error.recorded:
                    self.tracker.record_error(error.reason, error.message, position=self._where())
                return self._fail(error)

    # ------------------------------------------------------------ restart limits

    def _healthy(self) -> None:
        """The run made progress: after restartPolicy.resetAfter of it, the failure streak
        starts again at 0 (recovered errors weeks apart never add up to a limit)."""
        now = time.monotonic()
        if self._healthy_since is None:
            self._healthy_since = now
        elif self._streak and now - self._healthy_since >= self._reset_after:
            self._streak = 0
            self.tracker.set_retry(0, None)

    def _next_retry(self, error: errors.TransientError) -> float | None:
        """Count the failure into the streak; the wait before the retry (full jitter), or
        None when the streak is over restartPolicy.maxRetries."""
        policy = self.config.restart_policy
        healthy_since = self._healthy_since
        if healthy_since is not None and time.monotonic() - healthy_since >= self._reset_after:
            self._streak = 0
        self._streak += 1
        if policy.max_retries is not None and self._streak > policy.max_retries:
            return None
        delay = policy.delay(self._streak).total_seconds()
        self.tracker.set_retry(self._streak, time.time() + delay)
        return delay

    def _too_many(self, error: errors.WorkerError) -> errors.FatalError:
        policy = self.config.restart_policy
        stopped = errors.FatalError(
            "TooManyRestarts",
            f"{self._streak} consecutive failures, more than restartPolicy.maxRetries "
            f"({policy.max_retries}); the last: {error.reason}: {error.message}. Fix the cause, "
            "then set spec.restartNonce",
        )
        self.tracker.set_retry(self._streak, None)
        self.tracker.record_error(stopped.reason, stopped.message, position=self._where())
        return stopped

    def _resnapshot_instead(self, error: errors.WorkerError) -> bool:
        """onPositionUnavailable: resnapshot: a purged binlog starts a new snapshot (once in
        a row: a second PositionUnavailable before any delivery fails the task)."""
        if (
            error.reason != "PositionUnavailable"
            or self.config.on_position_unavailable != "resnapshot"
            or self.config.mode == "snapshot"
            or self._resnapshot
        ):
            return False
        where = self._read_position or self._where() or ""
        self._recovery = ResnapshotRecord(time.time(), where)
        self.tracker.record_resnapshot(self._recovery, new=True)
        message = (
            f"{error.message} Re-snapshotting (onPositionUnavailable: resnapshot): recovery "
            f"{self.tracker.resnapshots} of this task."
        )
        self.tracker.record_error(error.reason, message, position=self._where() or where)
        log.warning("%s", message)
        self._resnapshot = True
        return True

    def _backoff(self, delay: float) -> bool:
        """Wait before a retry, beating the heartbeat (waiting is not being stuck);
        True when stop() came first."""
        deadline = time.monotonic() + delay
        while (left := deadline - time.monotonic()) > 0:
            self.tracker.heartbeat(PIPELINE)
            if self._stop.wait(min(left, 5.0)):
                return True
        return self._stop.is_set()

    def _guarded_run_once(self) -> bool:
        """_run_once, with anything unforeseen treated as transient (logged in full)."""
        try:
            return self._run_once()
        except (errors.WorkerError, _Stopped, _Reload):
            raise
        except Exception as error:
            log.exception("unexpected error")
            secrets = [os.environ.get(name) for name in self.config.secret_envs()]
            detail = errors.scrub(f"{type(error).__name__}: {error}", *secrets)
            raise errors.TransientError("InternalError", detail) from error

    def _where(self) -> str | None:
        """The last delivered position, for error records."""
        return checkpoint.format_position(self.tracker.view()["position"])

    def _fail(self, error: errors.WorkerError) -> int:
        self.failure = error
        self.tracker.set_state("Failed")
        return EXIT_FAILED

    # ------------------------------------------------------------ one run

    def _make_sink(self) -> Sink:
        """The configured sink (not opened yet); refuses a MySQL sink that loops back."""
        config = self.config
        if config.sink.mysql is not None:
            problem = loop_error(config)
            if problem is not None:
                raise errors.FatalError("InvalidConfig", problem)
            dead_letters = config.error_policy.mode == "deadLetter"
            return MySQLSink(config.sink.mysql, self.task_id, self._poison, dead_letters)
        assert config.sink.kafka is not None
        records = KafkaRecords(config, self._poison)
        exactly_once = config.delivery == "exactly-once"
        return KafkaSink(config.sink.kafka, self.task_id, exactly_once, records)

    def _run_once(self) -> bool:
        sink = self._make_sink()
        ctl = mysql.connect(self.config.source)
        try:
            # Fence, then read: open() returns once older workers of this task are fenced and
            # their open transactions ended (Kafka: init_transactions), so no checkpoint can
            # be committed after the one read here; only connections are made before it.
            sink.open()
            state = sink.read_checkpoint() or Checkpoint()
            state = runs.begin(state, self.config.mode, os.environ.get(runs.RUN_ENV))
            self._read_position = checkpoint.format_position(state.position)
            self._restore(state)
            self._check_selection(ctl)
            state = self._apply_reset(ctl, sink, state)
            state = self._apply_snapshot_request(ctl, sink, state)
            state = self._apply_new_tables(ctl, sink, state)
            if self._resnapshot:  # its first chunk's checkpoint replaces the old one
                state = dataclasses.replace(
                    state, position=None, snapshot=None, resnapshot=self._recovery
                )
            self._skip = self._pending_skip(state)
            mode = self.config.mode
            if self.config.heartbeat is not None and mode != "snapshot":
                self._heartbeat = heartbeat.Writer(self.config, self.tracker)
                self._heartbeat.start()
            unfinished = state.snapshot is not None and not state.snapshot.done
            if mode == "snapshot":
                if state.position is None or unfinished:
                    self._copy(sink, state)
                return True
            fresh = self._resnapshot or (mode != "cdc" and state.position is None)
            # A cdc task's snapshot is one onPositionUnavailable started: finish it too.
            planned = state.snapshot is not None and state.snapshot.planned
            if fresh or (unfinished and (mode != "cdc" or planned)):
                self._snapshot_and_stream(sink, ctl, state)
                return False
            if state.position is None:
                start = self.config.start_position or "latest"
                state = dataclasses.replace(state, position=mysql.resolve(ctl, start))
            mysql.check_position(ctl, state.position)  # type: ignore[arg-type]
            self._stream(sink, state, self._open_feed(dict(state.position or {})))
            return False
        finally:
            if self._heartbeat is not None:
                self._heartbeat.stop()
                self._heartbeat = None
            self._verify.stop()
            while self._feeds:
                self._feeds.pop().close()
            self.tracker.set_queue_probe(None)
            ctl.close()
            sink.close()

    def _check_selection(self, conn: Any) -> None:
        """Count the source tables include/exclude select; say so once when none (a typo in
        a glob syncs nothing, silently) and once when some appear."""
        count = sum(1 for name in schema.list_tables(conn) if self.config.selects(*name))
        self._next_selection_check = time.monotonic() + SELECTION_RECHECK_SECONDS
        if not self.tracker.set_selected_tables(count):
            return
        source = self.config.source
        if count == 0:
            log.warning(
                "NoTablesSelected: include %s exclude %s matches no table on %s:%d; nothing "
                "is synced until one exists (checked again every %.0fs)",
                self.config.include, self.config.exclude, source.host, source.port,
                SELECTION_RECHECK_SECONDS,
            )  # fmt: skip
        else:
            log.info("the selection matches %d table(s) on %s:%d", count, source.host, source.port)

    def _recheck_selection(self) -> None:
        """While nothing is selected, look again every SELECTION_RECHECK_SECONDS."""
        if self.tracker.selected_tables != 0 or time.monotonic() < self._next_selection_check:
            return
        conn = mysql.connect(self.config.source)
        try:
            self._check_selection(conn)
        finally:
            conn.close()

    def _restore(self, state: Checkpoint) -> None:
        """Status carries on from the checkpoint: counters, per-table progress, a finished
        snapshot (a restart never makes it look unstarted)."""
        snapshot = state.snapshot
        tables = {
            name: (table.rows, table.done)
            for name, table in (snapshot.tables.items() if snapshot else ())
        }
        counters = state.counters
        done = snapshot is not None and snapshot.done
        self.tracker.restore((counters.events, counters.errors, counters.restarts), tables, done)
        if state.skip is not None:
            self.tracker.record_skip(state.skip)
        if state.verify is not None:
            self.tracker.record_verification(state.verify)
        self.tracker.restore_resnapshots(counters.resnapshots, state.resnapshot)

    # ------------------------------------------------------------ skipEvent

    def _pending_skip(self, state: Checkpoint) -> skip.Target | None:
        """The skipEvent still to do, unless the stream from the checkpoint cannot meet it
        (then status says so, once per nonce and process, and nothing is skipped)."""
        target = skip.pending(self.config.skip_event, state)
        if target is None or self.config.mode == "snapshot":
            return None
        first = target.nonce not in self._skip_said
        self._skip_said.add(target.nonce)
        if skip.passed(target, state.position):
            if first:
                where = checkpoint.format_position(state.position)
                self._skip_missed(target, f"the task's position {where} is past it already")
            return None
        if first:
            log.info(
                "skipEvent (nonce %s): %s will be skipped when the stream reaches it",
                target.nonce, target.describe(),
            )  # fmt: skip
        return target

    def _skip_missed(self, target: skip.Target, why: str) -> None:
        """The skipEvent's event cannot be met: nothing is skipped (called from the reader)."""
        message = (
            f"spec.skipEvent (nonce {target.nonce}) skipped nothing: {why}. A {{file, pos}} "
            "names a row event by the offset right after it, as status.lastErrors shows a "
            "poison row's position; set the position shown there with a new nonce"
        )
        log.warning("%s", message)
        self.tracker.record_error(skip.NOT_FOUND, message, position=target.where)

    def _skip_record(self, batch: list[binlog.Transaction]) -> SkipRecord | None:
        """The skip a batch carries (the reader left its event out), to commit with it."""
        target = self._skip
        found = next((txn.skipped for txn in batch if txn.skipped is not None), None)
        if target is None or found is None:
            return None
        return SkipRecord(
            target.nonce, found.position, found.gtid, found.tables, found.events, time.time()
        )

    def _commit(self, state: Checkpoint) -> Checkpoint:
        """``state`` stamped, with the counters as they are (the sink adds the rows it
        delivers with it: :func:`ferry_runtime.sink.base.counted`)."""
        with self.tracker.reading():
            counters = checkpoint.Counters(
                self.tracker.events,
                self.tracker.errors,
                self.tracker.restarts,
                self.tracker.resnapshots,
            )
        return dataclasses.replace(state, counters=counters).stamped()

    def _apply_reset(self, ctl: Any, sink: Sink, state: Checkpoint) -> Checkpoint:
        """Apply resetPosition once per nonce; record the nonce with the new position."""
        reset = self.config.reset_position
        if reset is None or reset.nonce == state.reset_nonce:
            return state
        position = mysql.resolve(ctl, reset.to)
        snapshot = state.snapshot
        if snapshot is not None and not snapshot.done:
            snapshot = dataclasses.replace(snapshot, done=True)
        # Everything else stays: the snapshotRequest and skipEvent nonces already applied.
        new = self._commit(
            dataclasses.replace(
                state, position=position, reset_nonce=reset.nonce, snapshot=snapshot
            )
        )
        sink.deliver([], new)
        log.info(
            "resetPosition (nonce %s) applied: reading from %s",
            reset.nonce,
            checkpoint.format_position(position),
        )
        return new

    def _apply_snapshot_request(self, ctl: Any, sink: Sink, state: Checkpoint) -> Checkpoint:
        """snapshotRequest, once per nonce: the requested tables start over in the snapshot
        engine while the binlog streams on from the checkpoint (their changes are dropped
        until their keys are read again). Recorded before acting: the nonce and the tables
        are committed in one checkpoint, so a crash continues the same re-snapshot."""
        request = self.config.snapshot_request
        if (
            request is None
            or request.nonce == state.snapshot_nonce
            or self.config.mode == "snapshot"
        ):
            return state
        if state.position is None:  # no snapshot yet: the first one reads every table anyway
            return dataclasses.replace(state, snapshot_nonce=request.nonce)
        running = state.snapshot if state.snapshot and not state.snapshot.done else None
        tables = dict(running.tables) if running and running.planned else {}
        if request.cancel:
            return self._cancel_rereads(sink, state, tables, request)
        for database, table in schema.list_tables(ctl):
            name = f"{database}.{table}"
            unread = name in tables and not tables[name].done and not tables[name].restate
            if unread:  # its first snapshot is still running: that one reads it
                continue
            if self.config.selects(database, table) and any(
                fnmatch.fnmatchcase(name, glob) for glob in request.tables
            ):
                tables[name] = TableState(restate=True, where=request.where)
        if request.where is not None:
            self._check_where(ctl, request.where, sorted(n for n, t in tables.items() if t.where))
        progress = SnapshotState(state.position, tables, done=not tables, planned=True)
        state = dataclasses.replace(state, snapshot=progress, snapshot_nonce=request.nonce)
        sink.deliver([], self._commit(state))
        log.info("snapshotRequest (nonce %s): reading %s again", request.nonce, sorted(tables))
        return state

    def _apply_new_tables(self, ctl: Any, sink: Sink, state: Checkpoint) -> Checkpoint:
        """Record the include/exclude globs beside the checkpoint; with snapshotNewTables, a
        table the new globs select and the recorded ones did not is snapshotted (alone, in
        the snapshot engine, while the binlog streams on from the checkpoint). Recorded
        before acting: the globs and the tables to read go in one checkpoint."""
        current = {"include": list(self.config.include), "exclude": list(self.config.exclude)}
        if state.selection == current:
            return state
        if state.position is None or self.config.mode == "snapshot":
            return dataclasses.replace(state, selection=current)  # committed with the data
        old = state.selection
        running = state.snapshot if state.snapshot and not state.snapshot.done else None
        tables = dict(running.tables) if running and running.planned else {}
        added: list[str] = []
        if old is not None and self.config.snapshot_new_tables:
            for database, table in schema.list_tables(ctl):
                name = f"{database}.{table}"
                new = self.config.selects(database, table) and not _selected_by(old, name)
                if new and name not in tables:
                    tables[name] = TableState()
                    added.append(name)
        state = dataclasses.replace(state, selection=current)
        if added:
            position = running.position if running else dict(state.position or {})
            state = dataclasses.replace(
                state, snapshot=SnapshotState(position, tables, done=False, planned=True)
            )
        sink.deliver([], self._commit(state))
        if added:
            log.info("snapshotNewTables: snapshotting the newly selected %s", added)
        elif old is not None:
            log.info(
                "the selection changed (include %s, exclude %s); newly selected tables stream "
                "from here%s", current["include"], current["exclude"],
                "" if self.config.snapshot_new_tables else " (snapshotNewTables is off)",
            )  # fmt: skip
        return state

    @staticmethod
    def _check_where(ctl: Any, where: str, names: list[str]) -> None:
        """snapshotRequest.where runs on each table it reads (``LIMIT 0``: no row is read)
        before the request is recorded; a condition the server refuses stops the task with
        InvalidConfig naming the field (a new nonce with a fixed condition applies)."""
        for name in names:
            database, table = name.split(".", 1)
            source = f"{schema.quote(database)}.{schema.quote(table)}"
            try:
                with ctl.cursor() as cursor:
                    cursor.execute(f"SELECT 1 FROM {source} WHERE ({where}) LIMIT 0")
                    cursor.fetchall()
            except pymysql.err.MySQLError as error:
                detail = error.args[1] if len(error.args) > 1 else error
                raise errors.FatalError(
                    "InvalidConfig",
                    f"spec.snapshotRequest.where {where!r} is not a condition on {name}: "
                    f"{detail}. Fix it and set a new nonce",
                ) from None

    def _cancel_rereads(
        self,
        sink: Sink,
        state: Checkpoint,
        tables: dict[str, TableState],
        request: SnapshotRequest,
    ) -> Checkpoint:
        """snapshotRequest with cancel: the matching tables being read *again* leave the
        snapshot (the consumer holds every key already, so their changes simply stream on);
        a table's first snapshot is never cancelled (its consumer would miss keys)."""
        cancelled = sorted(
            name
            for name, table in tables.items()
            if table.restate
            and not table.done
            and any(fnmatch.fnmatchcase(name, glob) for glob in request.tables)
        )
        kept = {name: table for name, table in tables.items() if name not in cancelled}
        running = state.snapshot
        if running is not None and kept != tables:
            unfinished = any(not table.done for table in kept.values())
            running = dataclasses.replace(running, tables=kept, done=not unfinished)
        state = dataclasses.replace(state, snapshot=running, snapshot_nonce=request.nonce)
        sink.deliver([], self._commit(state))
        for name in cancelled:
            self.tracker.cancel_table(name)
        if running is not None and running.done:
            self.tracker.finish_snapshot()
        log.info(
            "snapshotRequest (nonce %s): cancelled the re-read of %s",
            request.nonce,
            cancelled or "nothing (no matching table is being read again)",
        )
        return state

    # ------------------------------------------------------------ snapshot: the tables

    def _plan(self, conn: Any, state: Checkpoint) -> tuple[SnapshotState, list[TableSchema]]:
        """The tables to snapshot and the progress so far. A new snapshot lists every table
        in its checkpoint from the start, so that a table created later is never snapshotted
        on a resume (its inserts were streamed)."""
        progress = state.snapshot if state.snapshot and not state.snapshot.done else None
        if progress is not None and progress.planned:
            names = [tuple(name.split(".", 1)) for name in progress.tables]
        else:
            names = [n for n in schema.list_tables(conn) if self.config.selects(*n)]
        tables: list[TableSchema] = []
        found: dict[str, TableState] = {}
        for database, table_name in names:
            loaded = schema.load(conn, database, table_name)
            name = f"{database}.{table_name}"
            before = progress.tables.get(name, TableState()) if progress else TableState()
            # A table gone since the plan is finished: nothing of it is left to read.
            found[name] = before if loaded is not None else TableState(True, None, before.rows)
            if loaded is not None and before.where is not None and before.restate:
                loaded = dataclasses.replace(loaded, row_filter=before.where)
            if loaded is not None:
                tables.append(loaded)
                if loaded.key_index not in (None, "PRIMARY"):
                    log.info(
                        "%s has no primary key: its unique key %s (%s) stands in for it",
                        name, loaded.key_index, ", ".join(loaded.primary_key),
                    )  # fmt: skip
        if progress is None:
            progress = SnapshotState(position=mysql.server_position(conn))
        progress = dataclasses.replace(progress, tables=found, planned=True)
        for table in tables:
            done = progress.tables[table.name]
            self.tracker.plan_table(table.name, max(table.estimated_rows, done.rows))
        return progress, tables

    def _copy(self, sink: Sink, state: Checkpoint) -> None:
        """mode: snapshot: every chunk in one consistent transaction, no binlog."""
        self.tracker.set_state("Snapshotting")
        conn = self._snapshot_connection()
        try:
            snap = Snapshot(conn)
            position = snap.begin()
            progress, tables = self._plan(conn, state)
            tables = [self._rendered(table, sink) for table in tables]
            self._snapshot_log.start(sorted(n for n, t in progress.tables.items() if not t.done))
            state = dataclasses.replace(state, position=position)
            for table in tables:
                done = progress.tables[table.name]
                if self._start_table(table, done):
                    continue
                chunks = snap.chunks(table, done.after, done.rows, self._chunk_size)
                for chunk in chunks:
                    progress = progress.with_table(
                        table.name, TableState(False, chunk.after, chunk.scanned)
                    )
                    state = dataclasses.replace(state, snapshot=progress)
                    self._deliver_rows(sink, table, chunk.rows, state, position)
                progress = self._finish_table(table, progress)
            snap.end()
            progress = dataclasses.replace(progress, done=True)
            state = self._commit(dataclasses.replace(state, snapshot=progress))
            sink.deliver([], state)
            self.tracker.finish_snapshot()
            self._snapshot_log.finish()
        finally:
            conn.close()

    def _snapshot_connection(self) -> Any:
        """A connection that reads table rows (:func:`mysql.connect_reader`)."""
        return mysql.connect_reader(self.config.source)

    @property
    def _chunk_size(self) -> int:
        return self.config.performance.snapshot_chunk_size

    def _start_table(self, table: TableSchema, done: TableState) -> bool:
        """Show the table as started; True when it was finished before."""
        self.tracker.start_table(table.name, max(table.estimated_rows, done.rows))
        if done.rows:  # delivered before (the checkpoint has them): counted once
            self.tracker.set_table_rows(table.name, done.rows)
        if done.done:
            self.tracker.finish_table(table.name)
        return done.done

    def _finish_table(self, table: TableSchema, progress: SnapshotState) -> SnapshotState:
        final = progress.tables[table.name]
        self.tracker.finish_table(table.name)
        self._snapshot_log.table_done(table.name, final.rows)
        return progress.with_table(table.name, TableState(True, final.after, final.rows))

    def _deliver_rows(
        self,
        sink: Sink,
        table: TableSchema,
        rows: Rows,
        state: Checkpoint,
        position: dict[str, Any],
    ) -> None:
        """Deliver snapshot rows read at ``position`` with ``state`` (which covers them)."""
        self._still_running()
        pending = _Pending(time.monotonic(), chunks=[(table, len(rows), None)])
        reads = self._reads(table, rows, position)
        if reads is not None:
            pending.parts.append(reads)
        self._deliver_pending(sink, state, pending)

    def _still_running(self) -> None:
        """Before a snapshot delivery: stop, or reload, here (the chunks before are
        committed: a reload resumes from there)."""
        if self._stop.is_set():
            raise _Stopped
        if self._reloading():
            raise _Reload
        self.tracker.heartbeat(PIPELINE)

    def _reads(self, table: TableSchema, rows: Rows, position: dict[str, Any]) -> Reads | None:
        """Snapshot rows read at ``position`` as the sink takes them (None: not selected)."""
        template = Change(
            table.database, table.table, "read", {}, None, table.primary_key, int(time.time()),
            checkpoint.format_position(position) or "", server_id=self.config.source.server_id,
        )  # fmt: skip
        mapped = self._router.map_rows(template, rows)
        return None if mapped is None else Reads(*mapped)

    def _rows_delivered(self, table: TableSchema, rows: int) -> None:
        self.tracker.record_snapshot_rows(table.name, rows)
        with self.tracker.reading():
            shown = self.tracker.tables.get(table.name)
            done, total = (shown.rows_done, shown.rows_total) if shown else (rows, 0)
        self._snapshot_log.progress(table.name, rows, done, total)

    # ------------------------------------------------------------ snapshot: chunk watermarks

    def _snapshot_and_stream(self, sink: Sink, ctl: Any, state: Checkpoint) -> None:
        """snapshot+cdc: read each chunk at its own binlog position P, stream the binlog up
        to P (changes pass by :class:`watermark.Coverage`), deliver the chunk at P; then
        stream on. See :mod:`ferry_runtime.source.watermark`."""
        self.tracker.set_state("Snapshotting")
        conn = self._snapshot_connection()
        try:
            state, feed = self._snapshot_tables(sink, ctl, Snapshot(conn), state)
        finally:
            conn.close()
        self._stream(sink, state, feed)

    def _snapshot_tables(
        self, sink: Sink, ctl: Any, snap: Snapshot, state: Checkpoint
    ) -> tuple[Checkpoint, _Feed]:
        progress, tables = self._plan(snap.conn, state)
        if any(not table.done for table in progress.tables.values()):
            self.tracker.reopen_snapshot()
        self._snapshot_log.start(sorted(n for n, t in progress.tables.items() if not t.done))
        orders = {t.name: keys.KeyOrder(ctl, t) for t in tables if t.primary_key}
        # At least once, rows past a resumed checkpoint may already have been delivered.
        replaying = state.snapshot is not None and self.config.delivery != "exactly-once"
        coverage = watermark.Coverage(progress, orders, replaying=replaying)
        feed: _Feed | None = None
        # An older worker's checkpoint inside its snapshot has no stream position yet.
        start = state.position or (state.snapshot.position if state.snapshot else None)
        if start is not None:
            mysql.check_position(ctl, start)
            feed = self._open_feed(start)
            state = dataclasses.replace(state, position=start)
        keyed = [t for t in tables if t.primary_key]
        state, feed = self._read_keyed(sink, keyed, state, feed, coverage)
        for table in tables:
            if table.primary_key or self._start_table(table, progress.tables[table.name]):
                continue
            state, feed = self._read_keyless(sink, snap, table, state, feed, coverage)
            self.tracker.finish_table(table.name)
        if feed is None:  # nothing to read: stream from here
            start = mysql.server_position(ctl)
            feed = self._open_feed(start)
            state = dataclasses.replace(state, position=start)
        progress = dataclasses.replace(coverage.progress, done=True)
        coverage.progress = progress
        recovery = state.resnapshot
        if recovery is not None and not recovery.finished:  # the recovery's snapshot is done
            recovery = dataclasses.replace(recovery, finished=time.time())
        state = self._commit(dataclasses.replace(state, snapshot=progress, resnapshot=recovery))
        sink.deliver([], state)
        self.tracker.finish_snapshot()
        self._snapshot_log.finish()
        if recovery is not None and recovery != self.tracker.last_resnapshot:
            self.tracker.record_resnapshot(recovery)
            log.info(
                "the re-snapshot after the purged binlog at %s is finished: streaming",
                recovery.position,
            )
        self._resnapshot = False
        return state, feed

    def _read_keyed(
        self,
        sink: Sink,
        tables: list[TableSchema],
        state: Checkpoint,
        feed: _Feed | None,
        coverage: watermark.Coverage,
    ) -> tuple[Checkpoint, _Feed | None]:
        """The keyed tables' chunks, read ahead on performance.snapshotParallelism
        connections and delivered in plan order, which is ascending P (see
        :mod:`ferry_runtime.source.chunks`)."""
        tables_state = coverage.progress.tables
        todo = [t for t in tables if not tables_state[t.name].done]
        for table in tables:
            if tables_state[table.name].done:
                self._start_table(table, tables_state[table.name])  # shown as finished
        source = self.config.source
        processes = self.config.performance.snapshot_readers == "processes"
        reader = chunks.ChunkReader(
            (lambda: chunks.ReaderProcess(source))
            if processes
            else (lambda: chunks.reader_connection(source)),
            [(self._rendered(t, sink), coverage.progress.tables[t.name].after) for t in todo],
            self._chunk_size,
            self.config.performance.snapshot_parallelism,
        )
        reader.start()
        reading: str | None = None
        try:
            while not reader.done:
                if self._stop.is_set():
                    raise _Stopped
                self.tracker.heartbeat(PIPELINE)
                chunk = reader.take(0.5)
                if chunk is None:
                    continue
                group = [chunk]  # and the chunks read meanwhile: delivered together
                while (ready := reader.take(0)) is not None:
                    group.append(ready)
                for chunk in group:
                    if chunk.table.name != reading:  # a table's first chunk: shown as running
                        reading = chunk.table.name
                        self._start_table(chunk.table, coverage.progress.tables[reading])
                state, feed = self._deliver_chunks(sink, group, state, feed, coverage)
        finally:
            reader.close()
        return state, feed

    def _rendered(self, table: TableSchema, sink: Sink) -> TableSchema:
        """The table as the chunk readers read it: rendered as JSON by the server when the
        sink takes that and the server can (:func:`snapshot.row_json`), else column by
        column; a chunk read in one text comes as raw fields the worker renders
        (:func:`snapshot.row_fields`)."""
        if not sink.json_rows:
            return table
        mapping = self._router.mapping(table.database, table.table)
        expression = snapshot.row_json(table, *mapping)
        if expression is None:
            return table
        fields = snapshot.row_fields(table, *mapping)
        return dataclasses.replace(table, row_json=expression, row_fields=fields)

    def _deliver_chunks(
        self,
        sink: Sink,
        group: list[chunks.KeyedChunk],
        state: Checkpoint,
        feed: _Feed | None,
        coverage: watermark.Coverage,
    ) -> tuple[Checkpoint, _Feed]:
        """For each chunk of ``group`` (in plan order): stream the binlog up to the chunk's
        P, then the chunk at P. All of it goes in one delivery (one Kafka transaction: the
        chunks read ahead share one commit), but for binlog that needs a delivery of its
        own (a full batch, DDL to evolve, a skipped event): what came before is delivered
        first."""
        self._still_running()
        pending = _Pending(time.monotonic())
        for chunk in group:
            table, at = chunk.table, chunk.position
            if feed is None:  # the first chunk of a new snapshot: the stream starts here
                feed = self._open_feed(at)
                state = dataclasses.replace(state, position=at)
            reached = False
            while not reached:
                batch, reached = self._collect(feed, coverage, at)
                if batch and (not reached or self._own_delivery(batch)):
                    state = self._deliver_pending(sink, state, pending)
                    pending = _Pending(time.monotonic())
                    state = self._deliver_batch(sink, state, batch)
                elif batch:
                    pending.parts.extend(self._segments(batch))
                    pending.transactions.extend(batch)
                    state = dataclasses.replace(state, position=batch[-1].position)
            done = coverage.progress.tables[table.name]
            last = chunk.upto is None
            after = chunk.upto
            if last:  # the table's end: its last key, if any
                after = snapshot.last_key(chunk.rows, table) if chunk.rows else done.after
            # The chunk is its key range's state at P: from P on, those keys' changes pass.
            rows = done.rows + len(chunk.rows)
            progress = coverage.progress.with_table(
                table.name, TableState(last, after, rows, done.restate, done.where)
            )
            coverage.progress = progress
            state = dataclasses.replace(state, position=at, snapshot=progress)
            reads = self._reads(table, chunk.rows, at)
            if reads is not None:
                pending.parts.append(reads)
            pending.chunks.append((table, len(chunk.rows), rows if last else None))
        assert feed is not None  # group holds a chunk
        return self._deliver_pending(sink, state, pending), feed

    def _own_delivery(self, batch: list[binlog.Transaction]) -> bool:
        """Whether binlog transactions must be delivered on their own (DDL the MySQL sink
        evolves its tables for, a skipped event committed with them)."""
        return self._evolve_cut(batch) is not None or self._skip_record(batch) is not None

    def _deliver_pending(self, sink: Sink, state: Checkpoint, pending: _Pending) -> Checkpoint:
        """Deliver what :meth:`_deliver_chunks` gathered with ``state``, which covers it."""
        if not pending.chunks and not pending.transactions:
            return state
        state = self._commit(state)
        if self._verify.touched.active:
            for txn in pending.transactions:
                self._verify.touched.record(txn.position, txn.changes)
        counts = sink.deliver(pending.parts, state)
        self._verify.touched.committed(state.position)
        self._resnapshot = False  # the new snapshot's checkpoint is committed
        for table, rows, finished in pending.chunks:
            self._rows_delivered(table, rows)
            if finished is not None:
                self.tracker.finish_table(table.name)
                self._snapshot_log.table_done(table.name, finished)
        assert state.position is not None
        self._acknowledged(counts, state.position, pending.transactions, pending.started)
        return state

    def _read_keyless(
        self,
        sink: Sink,
        snap: Snapshot,
        table: TableSchema,
        state: Checkpoint,
        feed: _Feed | None,
        coverage: watermark.Coverage,
    ) -> tuple[Checkpoint, _Feed]:
        """A table without a key: one consistent pass at P (the stream waits at P); after a
        crash the pass restarts and skips the rows delivered (exact only if the table did
        not change in between: documented)."""
        done = coverage.progress.tables[table.name]
        if done.rows and not done.done:
            self._keyless_restarted(table, done.rows)
        at = snap.begin()
        try:
            if feed is None:
                feed = self._open_feed(at)
                state = dataclasses.replace(state, position=at)
            state = self._drain(sink, state, feed, coverage, at)
            state = dataclasses.replace(state, position=at)
            for chunk in snap.chunks(table, None, done.rows, self._chunk_size):
                progress = coverage.progress.with_table(
                    table.name, TableState(False, None, chunk.scanned, done.restate, done.where)
                )
                coverage.progress = progress
                state = dataclasses.replace(state, snapshot=progress)
                self._deliver_rows(sink, table, chunk.rows, state, at)
            # Finished at P, in the checkpoint at once: its changes after P must pass.
            final = coverage.progress.tables[table.name]
            progress = coverage.progress.with_table(
                table.name, TableState(True, None, final.rows, done.restate, done.where)
            )
            coverage.progress = progress
            state = self._commit(dataclasses.replace(state, snapshot=progress))
            sink.deliver([], state)
        finally:
            snap.end()
        return state, feed

    def _keyless_restarted(self, table: TableSchema, delivered: int) -> None:
        """A keyless table's pass was cut short (a crash, a restart): it starts over at a new
        position, skipping the rows delivered. Said clearly: the snapshot of this table is
        exact only if it did not change in between."""
        message = (
            f"the snapshot of {table.name}, which has neither a primary key nor a unique key "
            f"over NOT NULL columns, was interrupted after {delivered} rows and starts over in "
            f"a new consistent read, skipping the first {delivered} rows: if the table changed "
            "in between, rows are duplicated or missed in its snapshot (the binlog after it is "
            "exact). Give the table a primary key, or read it again with spec.snapshotRequest"
        )
        log.warning("KeylessSnapshotRestarted: %s", message)
        self.tracker.record_error("KeylessSnapshotRestarted", message, table=table.name)

    def _drain(
        self,
        sink: Sink,
        state: Checkpoint,
        feed: _Feed,
        coverage: watermark.Coverage,
        target: dict[str, Any],
    ) -> Checkpoint:
        """Deliver the binlog up to ``target`` (a transaction boundary), each change only if
        the snapshot covers its key; the first transaction past it waits in the feed."""
        while True:
            batch, reached = self._collect(feed, coverage, target)
            if batch:
                state = self._deliver_batch(sink, state, batch)
            if reached:
                return state

    def _collect(
        self, feed: _Feed, coverage: watermark.Coverage, target: dict[str, Any]
    ) -> tuple[list[binlog.Transaction], bool]:
        """The binlog's next transactions up to ``target``, their changes filtered by
        ``coverage``, up to performance.batchSize changes; and whether ``target`` was
        reached (the first transaction past it waits in the feed)."""
        goal = (target["file"], target["pos"])
        batch: list[binlog.Transaction] = []
        size = 0
        while feed.reached < goal:
            self.tracker.heartbeat(PIPELINE)
            item = feed.take(0.5)
            if isinstance(item, binlog.Failure):
                raise item.error
            if isinstance(item, binlog.Heartbeat):  # the server has nothing newer
                feed.reached = max(feed.reached, (item.position["file"], item.position["pos"]))
            elif isinstance(item, binlog.Transaction):
                end = (item.position["file"], item.position["pos"])
                if end > goal:  # begins at or after P: for after the chunk
                    feed.hold(item)
                    break
                feed.reached = end
                item.changes = coverage.keep(item.changes)
                batch.append(item)
                size += len(item.changes)
                if size >= self.config.performance.batch_size:
                    return batch, False
            elif item is None and self._stop.is_set():
                raise _Stopped
        return batch, True

    # ------------------------------------------------------------ streaming

    def _open_feed(self, start: dict[str, Any]) -> _Feed:
        """Start the binlog reader at ``start``; _run_once stops it."""
        items: queue.Queue[binlog.Item] = queue.Queue(maxsize=self.config.performance.queue_size)
        budget = binlog.RowBudget(self.config.performance.queue_size)
        matcher = skip.Matcher(self._skip, self._skip_missed) if self._skip else None
        reader = binlog.BinlogReader(
            self.config,
            dict(start),
            items,
            self._poison,
            budget,
            skip_event=matcher,
            on_slow_decode=self.tracker.record_slow_decode,
        )
        reader.start()
        self._feeds.append(_Feed(reader, items, budget))
        self.tracker.set_queue_probe(self._feeds[-1].fill)
        return self._feeds[-1]

    def _stream(self, sink: Sink, state: Checkpoint, feed: _Feed) -> None:
        self.tracker.set_state("Streaming")
        # Status shows where streaming starts, before anything new is delivered.
        self.tracker.record_delivered({}, dict(state.position or {}), None)
        self._deliver_loop(sink, state, feed)

    def _deliver_loop(self, sink: Sink, state: Checkpoint, feed: _Feed) -> None:
        perf = self.config.performance
        delay = perf.max_batch_delay.total_seconds()
        batch: list[binlog.Transaction] = []
        size = 0
        deadline = 0.0
        while True:
            self.tracker.heartbeat(PIPELINE)  # wakes at least twice a second
            self._recheck_selection()
            if not batch:
                state = self._verify_tick(sink, state)
            timeout = max(0.0, deadline - time.monotonic()) if batch else 0.5
            item = feed.take(timeout)
            if isinstance(item, binlog.Failure):
                raise item.error
            if isinstance(item, binlog.Transaction):
                if not batch:  # due maxBatchDelay after its first transaction was read (a
                    # transaction that waited in the queue while a batch was committed has
                    # used up part of its delay already)
                    deadline = (item.read_at or time.monotonic()) + delay
                batch.append(item)
                size += len(item.changes)
                if item.changes:
                    self.tracker.set_caught_up(False)
            stopping = self._stop.is_set()
            reloading = self._reloading()
            # Past the deadline, what already waits in the queue joins the batch first (up
            # to batchSize): a backlog still makes full batches.
            late = time.monotonic() >= deadline and not isinstance(item, binlog.Transaction)
            due = batch and (size >= perf.batch_size or late or stopping or reloading)
            if due:
                state = self._deliver_batch(sink, state, batch)
                batch, size = [], 0
            if reloading and not stopping:  # everything read is delivered and checkpointed
                raise _Reload
            if isinstance(item, binlog.Heartbeat) and not batch:
                # The server sends a heartbeat only when it has nothing newer, and all that
                # was read before it is delivered: caught up (events after the last commit
                # can only be non-row events such as a rotation).
                self.tracker.set_caught_up(True)
                state = self._checkpoint_idle(sink, state, item.position)
                self._healthy()
            if stopping:
                raise _Stopped

    def _checkpoint_idle(
        self, sink: Sink, state: Checkpoint, position: dict[str, Any]
    ) -> Checkpoint:
        """Caught up: move the checkpoint over the non-row events after the last transaction
        (a rotation, MariaDB's binlog checkpoint event), so that status shows the server's
        position and a restart does not read them again. One write when it moved, none
        while idle at the same place."""
        current = state.position or {}
        if current and (position["file"], position["pos"]) <= (current["file"], current["pos"]):
            return state
        moved = {**current, **position}  # the GTID position stays that of the last transaction
        state = self._commit(dataclasses.replace(state, position=moved))
        sink.deliver([], state)
        self._verify.touched.committed(moved)
        self.tracker.record_delivered({}, dict(moved), None)
        return state

    def _deliver_batch(
        self, sink: Sink, state: Checkpoint, batch: list[binlog.Transaction]
    ) -> Checkpoint:
        cut = self._evolve_cut(batch)
        if cut is not None:
            return self._deliver_evolving(sink, state, batch, cut)
        segments = self._segments(batch)
        skipped = self._skip_record(batch)
        state = dataclasses.replace(state, position=batch[-1].position)
        if skipped is not None:  # committed with the position past the skipped event
            state = dataclasses.replace(state, skip=skipped)
        state = self._commit(state)
        if self._verify.touched.active:
            for txn in batch:
                self._verify.touched.record(txn.position, txn.changes)
        counts = sink.deliver(segments, state)
        state = counted(state, counts)
        self._verify.touched.committed(state.position)
        if skipped is not None:
            self._skip = None
            self.tracker.record_skip(skipped)
            log.info(
                "skipEvent (nonce %s) applied: skipped %d row event(s) of %s at %s%s",
                skipped.nonce, skipped.events, ", ".join(skipped.tables) or "no table",
                skipped.position, f" (GTID {skipped.gtid})" if skipped.gtid else "",
            )  # fmt: skip
        self._acknowledged(counts, batch[-1].position, batch, min(t.read_at for t in batch))
        return state

    def _acknowledged(
        self,
        counts: Counts,
        position: dict[str, Any],
        transactions: list[binlog.Transaction],
        started: float,
    ) -> None:
        """The sink acknowledged a delivery up to ``position`` (begun at ``started``,
        monotonic) holding ``transactions`` of the binlog: health, lag, throughput."""
        beats = [txn.heartbeat for txn in transactions if txn.heartbeat is not None]
        if beats:  # spec.heartbeat: delivered and checkpointed
            self.tracker.source_heartbeat_delivered(max(beats))
        self._healthy()
        # Lag is how far behind the binlog we are: transactions of tables we skip count too
        # (a busy server never sends the idle heartbeat that sets caught-up).
        newest = max((t.ts for t in transactions), default=None)
        self.tracker.record_delivered(counts, dict(position), newest)
        self.tracker.observe_batch_latency(max(0.0, time.monotonic() - started))

    # ------------------------------------------------------------ schema changes

    def _segments(self, batch: list[binlog.Transaction]) -> Batch:
        """The batch as the sink takes it: per source transaction, its rows through the
        Router (selected, mapped), the rows the reader set aside, its schema change."""
        map_all = self._router.map_all
        segments: Batch = []
        for txn in batch:
            letters = []
            if txn.dead_letters:
                where = checkpoint.format_position(txn.position) or ""
                letters = [DeadLetter(table, where, message) for table, message in txn.dead_letters]
            segments.append(
                Segment(
                    map_all(txn.changes), letters, txn.schema_change, txn.gtid, txn.position,
                    txn.ts,
                )
            )  # fmt: skip
        return segments

    def _evolve_cut(self, batch: list[binlog.Transaction]) -> int | None:
        """sink.mysql.schemaChanges: evolve — where the batch's first DDL is (None: none)."""
        target = self.config.sink.mysql
        if target is None or target.schema_changes != "evolve":
            return None
        return next((i for i, txn in enumerate(batch) if txn.schema_change is not None), None)

    def _deliver_evolving(
        self, sink: Sink, state: Checkpoint, batch: list[binlog.Transaction], cut: int
    ) -> Checkpoint:
        """The rows before the DDL commit first; then the target's DDL (MySQL commits around
        DDL, so it cannot share their transaction); then the checkpoint past the source DDL
        with what follows. A crash in between replays the DDL: steps the target already has
        are skipped (sink.evolve.needed)."""
        if cut:
            state = self._deliver_batch(sink, state, batch[:cut])
        txn = batch[cut]
        change = txn.schema_change
        assert change is not None and isinstance(sink, MySQLSink)
        steps, notes = evolve.plan(self.config, change)
        for note in notes:
            log.warning("sink.mysql.schemaChanges: evolve: %s (at %s)", note, change.position)
        sink.evolve(steps, f"{change.sql!r} at {change.position}")
        rest = [dataclasses.replace(txn, schema_change=None), *batch[cut + 1 :]]
        return self._deliver_batch(sink, state, rest)

    # ------------------------------------------------------------ verifyRequest

    def _verify_tick(self, sink: Sink, state: Checkpoint) -> Checkpoint:
        """At a batch boundary: start a pending verifyRequest, or commit a finished one (its
        nonce and result, with the rows it repairs, in one sink transaction)."""
        pending = self._verify.pending(state)
        if pending is None:
            return state
        running = self._verify.started
        outcome = self._verify.poll(state)
        if outcome is None:
            if self._verify.started != running:
                self.tracker.verification_started(pending.nonce, self._verify.started)
            return state
        record = outcome.record
        batch: Batch = []
        if pending.repair and outcome.drift:  # a MySQL sink (the config refuses others)
            changes = self._router.map_all(verification.repairs(self.config, outcome.drift))
            batch = [Segment(changes)]
            record = dataclasses.replace(record, repaired=len(changes))
        state = self._commit(dataclasses.replace(state, verify=record))
        counts = sink.deliver(batch, state)
        state = counted(state, counts)
        if counts:  # the repaired rows count as delivered, like any row the sink took
            self.tracker.record_delivered(counts, dict(state.position or {}), None)
        self.tracker.record_verification(record)
        level = logging.WARNING if record.mismatched or record.error else logging.INFO
        log.log(level, "verifyRequest (nonce %s): %s", record.nonce, verification.describe(record))
        return state

    # ------------------------------------------------------------ the error policy

    def _poison(self, error: errors.PoisonRow) -> str | None:
        """The error policy, called from the reader thread for a row it cannot convert.
        errorPolicy fail: one error record, whose message says how to skip that event."""
        if self.config.error_policy.mode == "fail":
            message = f"{error.message} (errorPolicy: fail){self._skip_hint(error)}"
            self.tracker.record_error(error.reason, message, error.table, error.position)
            stop = errors.FatalError("PoisonRow", message)
            stop.recorded = True
            raise stop
        self.tracker.record_error(error.reason, error.message, error.table, error.position)
        return error.message if self.config.error_policy.mode == "deadLetter" else None

    def _skip_hint(self, error: errors.PoisonRow) -> str:
        """How to skip a poison row's binlog event (a snapshot row has none to skip)."""
        if error.snapshot or not error.position:
            return ""
        task = self.config.task
        return (
            f". To skip this one event: kubectl ferry skip {task.name} -n {task.namespace} "
            f"--position {error.position} (spec.skipEvent)"
        )
