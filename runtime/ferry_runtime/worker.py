"""The worker: snapshot, then binlog, into the sink, with the checkpoint beside the data.

:class:`Worker` sequences the steps of one run (open the sink and fence older workers, read
the checkpoint, apply a new resetPosition, snapshot what is left, stream) and is the one
place that decides "retry, skip or stop" for an error: transient errors restart the run
from the last committed checkpoint after the restart policy's backoff; fatal errors end it
with their reason. The tracker is told about delivered data only after the sink
acknowledged it. The sink is Kafka (given formatted records) or MySQL (given the mapped
changes); both satisfy :class:`ferry_runtime.sink.base.Sink`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import threading
import time
from collections import Counter
from typing import Any

from ferry_runtime import checkpoint, errors, formats, rules
from ferry_runtime.checkpoint import Checkpoint, SnapshotState, TableState
from ferry_runtime.config import WorkerConfig
from ferry_runtime.events import Change
from ferry_runtime.sink.base import DeadLetter, Sink
from ferry_runtime.sink.kafka import KafkaSink, Record
from ferry_runtime.sink.mysql import MySQLSink, loop_error
from ferry_runtime.source import binlog, mysql, schema
from ferry_runtime.source.snapshot import Snapshot
from ferry_runtime.status import StatusTracker

__all__ = ["EXIT_FAILED", "EXIT_OK", "Worker"]

EXIT_OK = 0
EXIT_FAILED = 1
log = logging.getLogger("ferry.worker")


class _Stopped(Exception):
    """stop() was called; unwind and exit cleanly."""


# While the selection matches no table, how often the worker looks again (tables may appear).
SELECTION_RECHECK_SECONDS = 30.0
# The heartbeat /healthz watches: the snapshot and delivery loops beat under this one name,
# so a finished phase never looks stuck.
PIPELINE = "pipeline"


class Worker:
    """Runs one task until stopped, completed (mode: snapshot) or failed."""

    def __init__(self, config: WorkerConfig, tracker: StatusTracker) -> None:
        self.config = config
        self.tracker = tracker
        self.task_id = config.task.id
        self.failure: errors.WorkerError | None = None
        self._stop = threading.Event()
        self._next_selection_check = 0.0
        self._streak = 0  # consecutive failures (restartPolicy.maxRetries caps it)
        self._healthy_since: float | None = None  # monotonic time of this run's first progress
        self._reset_after = config.restart_policy.reset_after.total_seconds()
        self._router = rules.Router(config)
        producer = config.sink.kafka.producer if config.sink.kafka else {}
        self._max_bytes = int(producer.get("message.max.bytes", 1_000_000)) - 512  # headers

    def stop(self) -> None:
        """Ask the worker to flush, commit its checkpoint and return (thread-safe)."""
        self._stop.set()

    # ------------------------------------------------------------ the retry loop

    def run(self) -> int:
        while True:
            self._healthy_since = None
            try:
                completed = self._guarded_run_once()
                self.tracker.set_state("Completed" if completed else "Stopped")
                return EXIT_OK
            except _Stopped:
                self.tracker.set_state("Stopped")
                return EXIT_OK
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
        except (errors.WorkerError, _Stopped):
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
        return KafkaSink(config.sink.kafka, self.task_id, config.delivery == "exactly-once")

    def _run_once(self) -> bool:
        sink = self._make_sink()
        ctl = mysql.connect(self.config.source)
        try:
            sink.open()
            state = sink.read_checkpoint() or Checkpoint()
            self._restore(state)
            self._check_selection(ctl)
            state = self._apply_reset(ctl, sink, state)
            mode = self.config.mode
            unfinished = state.snapshot is not None and not state.snapshot.done
            if mode != "cdc" and (state.position is None or unfinished):
                state = self._snapshot(sink, state)
            if mode == "snapshot":
                return True
            if state.position is None:
                start = self.config.start_position or "latest"
                state = dataclasses.replace(state, position=mysql.resolve(ctl, start))
            mysql.check_position(ctl, state.position)  # type: ignore[arg-type]
            self._stream(sink, state)
            return False
        finally:
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

    def _commit(self, state: Checkpoint, delivered: int = 0) -> Checkpoint:
        """``state`` stamped, with the counters as they are once ``delivered`` more events
        are acknowledged (they are committed with those events)."""
        with self.tracker.reading():
            counters = checkpoint.Counters(
                self.tracker.events + delivered, self.tracker.errors, self.tracker.restarts
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
        new = self._commit(
            Checkpoint(position=position, reset_nonce=reset.nonce, snapshot=snapshot)
        )
        sink.deliver([], new)
        log.info(
            "resetPosition (nonce %s) applied: reading from %s",
            reset.nonce,
            checkpoint.format_position(position),
        )
        return new

    # ------------------------------------------------------------ snapshot

    def _snapshot(self, sink: Sink, state: Checkpoint) -> Checkpoint:
        self.tracker.set_state("Snapshotting")
        conn = mysql.connect(self.config.source)
        try:
            snap = Snapshot(conn)
            position = snap.begin()
            progress = state.snapshot or SnapshotState(position=position)
            selected = [n for n in schema.list_tables(conn) if self.config.selects(*n)]
            tables = [t for t in (schema.load(conn, *n) for n in selected) if t is not None]
            for table in tables:
                done = progress.tables.get(table.name, TableState())
                self.tracker.plan_table(table.name, max(table.estimated_rows, done.rows))
            for table in tables:
                progress = self._snapshot_table(sink, snap, table, state, progress)
            snap.end()
            progress = dataclasses.replace(progress, done=True)
            state = self._commit(
                dataclasses.replace(state, position=progress.position, snapshot=progress)
            )
            sink.deliver([], state)
            self.tracker.finish_snapshot()
            return state
        finally:
            conn.close()

    def _snapshot_table(
        self,
        sink: Sink,
        snap: Snapshot,
        table: schema.TableSchema,
        state: Checkpoint,
        progress: SnapshotState,
    ) -> SnapshotState:
        done = progress.tables.get(table.name, TableState())
        self.tracker.start_table(table.name, max(table.estimated_rows, done.rows))
        if done.done:
            self.tracker.set_table_rows(table.name, done.rows)
            self.tracker.finish_table(table.name)
            return progress
        if done.rows:
            self.tracker.set_table_rows(table.name, done.rows)
        where = checkpoint.format_position(progress.position) or ""
        size = self.config.performance.snapshot_chunk_size
        for chunk in snap.chunks(table, done.after, done.rows, size):
            if self._stop.is_set():
                raise _Stopped
            self.tracker.heartbeat(PIPELINE)
            started = time.monotonic()
            changes = [
                Change(table.database, table.table, "read", row, None, table.primary_key,
                       int(time.time()), where, server_id=self.config.source.server_id)
                for row in chunk.rows
            ]  # fmt: skip
            records, counts = self._prepare(sink, changes)
            progress = progress.with_table(
                table.name, TableState(False, chunk.after, chunk.scanned)
            )
            delivered = sum(counts.values())
            sink.deliver(
                records, self._commit(dataclasses.replace(state, snapshot=progress), delivered)
            )
            self._healthy()
            self.tracker.record_snapshot_rows(table.name, len(chunk.rows))
            self.tracker.record_delivered(counts, dict(progress.position), None)
            self.tracker.observe_batch_latency(time.monotonic() - started)
        final = progress.tables.get(table.name, done)
        progress = progress.with_table(table.name, TableState(True, final.after, final.rows))
        self.tracker.finish_table(table.name)
        return progress

    # ------------------------------------------------------------ streaming

    def _stream(self, sink: Sink, state: Checkpoint) -> None:
        self.tracker.set_state("Streaming")
        # Status shows where streaming starts, before anything new is delivered.
        self.tracker.record_delivered({}, dict(state.position or {}), None)
        items: queue.Queue[binlog.Item] = queue.Queue(maxsize=self.config.performance.queue_size)
        budget = binlog.RowBudget(self.config.performance.queue_size)
        reader = binlog.BinlogReader(
            self.config, dict(state.position or {}), items, self._poison, budget
        )
        reader.start()
        try:
            self._deliver_loop(sink, state, items, budget)
        finally:
            reader.stop()

    def _deliver_loop(
        self,
        sink: Sink,
        state: Checkpoint,
        items: queue.Queue[binlog.Item],
        budget: binlog.RowBudget,
    ) -> None:
        perf = self.config.performance
        delay = perf.max_batch_delay.total_seconds()
        batch: list[binlog.Transaction] = []
        size = 0
        deadline = 0.0
        while True:
            self.tracker.heartbeat(PIPELINE)  # wakes at least twice a second
            self._recheck_selection()
            timeout = max(0.0, deadline - time.monotonic()) if batch else 0.5
            try:
                item = items.get(timeout=timeout)
            except queue.Empty:
                item = None
            if isinstance(item, binlog.Failure):
                raise item.error
            if isinstance(item, binlog.Transaction):
                budget.release(len(item.changes))
                if not batch:
                    deadline = time.monotonic() + delay
                batch.append(item)
                size += len(item.changes)
                if item.changes:
                    self.tracker.set_caught_up(False)
            stopping = self._stop.is_set()
            due = batch and (size >= perf.batch_size or time.monotonic() >= deadline or stopping)
            if due:
                state = self._deliver_batch(sink, state, batch)
                batch, size = [], 0
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
        self.tracker.record_delivered({}, dict(moved), None)
        return state

    def _deliver_batch(
        self, sink: Sink, state: Checkpoint, batch: list[binlog.Transaction]
    ) -> Checkpoint:
        changes = [change for txn in batch for change in txn.changes]
        records, counts = self._prepare(sink, changes)
        for txn in batch:
            records.extend(self._dead_letters(txn) if sink.wants_records else self._letters(txn))
        state = self._commit(
            dataclasses.replace(state, position=batch[-1].position), sum(counts.values())
        )
        sink.deliver(records, state)
        self._healthy()
        # Lag is how far behind the binlog we are: transactions of tables we skip count too
        # (a busy server never sends the idle heartbeat that sets caught-up).
        newest = max((t.ts for t in batch), default=None)
        self.tracker.record_delivered(counts, dict(batch[-1].position), newest)
        started = min(t.read_at for t in batch)
        self.tracker.observe_batch_latency(max(0.0, time.monotonic() - started))
        return state

    # ------------------------------------------------------------ records and errors

    def _prepare(
        self, sink: Sink, changes: list[Change]
    ) -> tuple[list[Any], dict[tuple[str, str], int]]:
        """What the sink takes: Kafka records, or the mapped changes themselves."""
        return self._records(changes) if sink.wants_records else self._mapped(changes)

    def _mapped(self, changes: list[Change]) -> tuple[list[Any], dict[tuple[str, str], int]]:
        mapped: list[Any] = []
        counts: Counter[tuple[str, str]] = Counter()
        for change in changes:
            routed = rules.apply(self.config, change)
            if routed is not None:
                mapped.append(routed)
                counts[(change.name, change.op)] += 1
        return mapped, dict(counts)

    def _records(self, changes: list[Change]) -> tuple[list[Record], dict[tuple[str, str], int]]:
        kafka = self.config.sink.kafka
        assert kafka is not None
        records: list[Record] = []
        counts: Counter[tuple[str, str]] = Counter()
        for change in changes:
            routed = self._router.route(change)
            if routed is None:
                continue
            mapped, topic, partition = routed
            try:
                key, value = formats.encode(mapped, kafka.format, self.task_id)
            except (TypeError, ValueError) as error:  # a value JSON cannot hold
                records.extend(self._unencodable(change, error))
                continue
            if len(key) + len(value) > self._max_bytes:  # Kafka would refuse it: poison
                records.extend(self._too_large(change, len(key) + len(value)))
                continue
            records.append(Record(topic, key, value, partition))
            counts[(change.name, change.op)] += 1
        return records, dict(counts)

    def _unencodable(self, change: Change, error: Exception) -> list[Record]:
        reason = f"a row of {change.name} cannot be encoded: {type(error).__name__}: {error}"
        return self._poison_record(change, reason)

    def _too_large(self, change: Change, size: int) -> list[Record]:
        return self._poison_record(
            change,
            f"a record of {change.name} is {size} bytes, over the producer's "
            f"message.max.bytes ({self._max_bytes})",
        )

    def _poison_record(self, change: Change, reason: str) -> list[Record]:
        """Apply the error policy to one change; return its dead letter, if any."""
        message = self._poison(errors.PoisonRow(reason, change.name, change.position))
        topic = self.config.error_policy.dead_letter_topic
        if message is None or not topic:
            return []
        letter = {"table": change.name, "position": change.position, "error": message}
        return [Record(topic, change.name.encode(), formats._dumps(letter))]

    def _letters(self, txn: binlog.Transaction) -> list[DeadLetter]:
        """Dead letters for a sink that keeps its own (MySQL: a table)."""
        position = checkpoint.format_position(txn.position) or ""
        return [DeadLetter(table, position, message) for table, message in txn.dead_letters]

    def _dead_letters(self, txn: binlog.Transaction) -> list[Record]:
        topic = self.config.error_policy.dead_letter_topic
        if not topic:
            return []
        position = checkpoint.format_position(txn.position) or ""
        return [
            Record(
                topic,
                table.encode(),
                formats._dumps({"table": table, "position": position, "error": message}),
            )
            for table, message in txn.dead_letters
        ]

    def _poison(self, error: errors.PoisonRow) -> str | None:
        """The error policy, called from the reader thread for a row it cannot convert."""
        self.tracker.record_error(error.reason, error.message, error.table, error.position)
        if self.config.error_policy.mode == "fail":
            raise errors.FatalError("PoisonRow", error.message + " (errorPolicy: fail)")
        return error.message if self.config.error_policy.mode == "deadLetter" else None
