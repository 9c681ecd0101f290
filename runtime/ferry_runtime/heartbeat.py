"""The source heartbeat (spec.heartbeat, off by default): the worker upserts its own row of a
source table at an interval, so that the binlog moves on an idle source and lag is measured
end to end instead of assumed.

Each beat stamps the row with the worker's wall time (``ts_ms``) and tells the tracker first
(:meth:`ferry_runtime.status.StatusTracker.source_heartbeat_written`); the binlog reader
recognises the row by the task id (:class:`HeartbeatRows`) and the worker reports it
delivered once the checkpoint past it is committed. Until then lag is at least the beat's
age, so a stream that stopped moving shows as lag, although the server's own (replication
protocol) heartbeat would have said "caught up". The beat's transaction also moves the
checkpoint on a source where nothing else happens. Heartbeat rows reach the sink only when
``include`` names the table exactly (:meth:`ferry_runtime.config.WorkerConfig.selects`).

The table is created when missing if the source user may (``CREATE``); otherwise the worker
stops with InsufficientPrivileges and the statements to run (:func:`setup_sql`). One table
serves many tasks: each writes the row keyed by its task id.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import pymysql

from ferry_runtime import errors
from ferry_runtime.config import WorkerConfig
from ferry_runtime.events import Change
from ferry_runtime.source import mysql
from ferry_runtime.status import StatusTracker

__all__ = ["COLUMNS", "HeartbeatRows", "Writer", "setup_sql"]

log = logging.getLogger("ferry.heartbeat")

COLUMNS = "task VARCHAR(255) NOT NULL PRIMARY KEY, ts_ms BIGINT NOT NULL"
_PRIVILEGES = {1044, 1045, 1142, 1143, 1227}
# A beat that hangs (a stalled server) must not hold the writer for ever.
STATEMENT_TIMEOUT = 30


def _quoted(table: str) -> str:
    database, name = table.split(".", 1)
    return f"`{database}`.`{name}`"


def setup_sql(table: str, user: str) -> str:
    """What an administrator runs once when the source user may not create the table."""
    database = table.split(".", 1)[0]
    return (
        f"CREATE DATABASE IF NOT EXISTS `{database}`; "
        f"CREATE TABLE IF NOT EXISTS {_quoted(table)} ({COLUMNS}); "
        f"GRANT INSERT, UPDATE ON {_quoted(table)} TO '{user}'@'%'"
    )


class HeartbeatRows:
    """Picks this task's beats out of the heartbeat table's row events (binlog reader)."""

    def __init__(self, config: WorkerConfig) -> None:
        assert config.heartbeat is not None
        database, table = config.heartbeat.table.split(".", 1)
        self.table = (database, table)
        self.task = config.task.id

    def stamp(self, event: Any) -> float | None:
        """The newest ``ts_ms`` (as epoch seconds) of this task's rows in a row event."""
        newest = None
        try:
            rows = event.rows
        except Exception:  # not ours to judge: a row we cannot read is no beat
            return None
        for row in rows:
            stamp = self._stamp(row.get("after_values", row.get("values")) or {})
            if stamp is not None:
                newest = stamp if newest is None else max(newest, stamp)
        return newest

    def stamp_of(self, changes: list[Change]) -> float | None:
        """The same, from decoded changes (when include selects the table too)."""
        stamps = [self._stamp(c.data) for c in changes if c.op != "delete"]
        return max((s for s in stamps if s is not None), default=None)

    def _stamp(self, values: dict[str, Any]) -> float | None:
        if values.get("task") == self.task and isinstance(values.get("ts_ms"), int):
            return int(values["ts_ms"]) / 1000
        return None


class Writer:
    """Writes a beat now and then every ``heartbeat.interval`` on its own thread, until
    :meth:`stop`. :meth:`start` raises FatalError when the table cannot be had."""

    def __init__(
        self,
        config: WorkerConfig,
        tracker: StatusTracker,
        clock: Callable[[], float] = time.time,
    ) -> None:
        assert config.heartbeat is not None
        self.config = config
        self.table = config.heartbeat.table
        self.interval = config.heartbeat.interval.total_seconds()
        self.tracker = tracker
        self.clock = clock
        self._conn: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False  # the last beat failed (said once per streak)

    def start(self) -> None:
        self._conn = self._connect()
        self._ensure_table()
        # A first write proves the grant now; not counted as lag: the stream may start
        # after it (a cdc task without a checkpoint starts at the server's position).
        try:
            self.beat(track=False)
        except pymysql.err.MySQLError as error:
            raise self._unusable(error) from None
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            # A beat hung on a stalled server must not hold up a stop: the daemon thread
            # ends with its connection (closed below, or by STATEMENT_TIMEOUT).
            self._thread.join(timeout=2)
        self._close_quietly()

    def _connect(self) -> Any:
        return mysql.connect(
            self.config.source, read_timeout=STATEMENT_TIMEOUT, write_timeout=STATEMENT_TIMEOUT
        )

    def _refused(self, error: pymysql.err.MySQLError, doing: str) -> errors.FatalError:
        source = self.config.source
        return errors.FatalError(
            "InsufficientPrivileges",
            f"heartbeat.table: {source.user} may not {doing} {self.table} ({error.args[-1]}). "
            f"Run once as an administrator: {setup_sql(self.table, source.user)}; or turn "
            "spec.heartbeat off.",
        )

    def _unusable(self, error: pymysql.err.MySQLError) -> errors.WorkerError:
        """A first beat that failed: the server's trouble is retried, the table's is not."""
        secret = os.environ.get(self.config.source.password_env)
        found = errors.from_mysql(error, f"writing heartbeat.table {self.table}", secret)
        if found.reason == "ConnectionLost":
            return found
        return errors.FatalError(
            "InvalidConfig",
            f"{found.message}. heartbeat.table needs the columns ({COLUMNS}); point it at "
            "another table or fix this one.",
        )

    def _ensure_table(self) -> None:
        database, name = self.table.split(".", 1)
        with self._conn.cursor() as cur:
            cur.execute(
                "SELECT 1 FROM information_schema.tables WHERE table_schema = %s "
                "AND table_name = %s",
                (database, name),
            )
            if cur.fetchone():
                return
            try:
                cur.execute(f"CREATE DATABASE IF NOT EXISTS `{database}`")
                cur.execute(f"CREATE TABLE IF NOT EXISTS {_quoted(self.table)} ({COLUMNS})")
            except pymysql.err.MySQLError as error:
                if error.args and error.args[0] in _PRIVILEGES:
                    raise self._refused(error, "create") from None
                raise errors.from_mysql(error, f"creating heartbeat.table {self.table}") from None
            log.info("created heartbeat.table %s", self.table)

    def beat(self, track: bool = True) -> None:
        """Upsert this task's row stamped now; the stamp counts as lag until delivered."""
        stamp = int(self.clock() * 1000)  # the row's ts_ms; the tracker gets the same value
        if track:
            self.tracker.source_heartbeat_written(stamp / 1000)
        if self._conn is None:
            self._conn = self._connect()
        with self._conn.cursor() as cur:
            try:
                cur.execute(
                    f"INSERT INTO {_quoted(self.table)} (task, ts_ms) VALUES (%s, %s) "
                    "ON DUPLICATE KEY UPDATE ts_ms = VALUES(ts_ms)",
                    (self.config.task.id, stamp),
                )
            except pymysql.err.MySQLError as error:
                if error.args and error.args[0] in _PRIVILEGES:
                    raise self._refused(error, "write") from None
                raise

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except Exception as error:  # the stream notices a lost server; lag shows the rest
                if self._stop.is_set():
                    return
                self._close_quietly()
                if not self._failing:
                    secret = os.environ.get(self.config.source.password_env)
                    detail = errors.scrub(f"{type(error).__name__}: {error}", secret)
                    message = f"writing heartbeat.table {self.table} failed: {detail}"
                    log.warning("%s (lag grows until a beat is delivered)", message)
                    self.tracker.record_error("HeartbeatFailed", message, self.table)
                self._failing = True
            else:
                if self._failing:
                    log.info("heartbeat.table %s is written again", self.table)
                self._failing = False

    def _close_quietly(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
