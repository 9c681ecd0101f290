"""The MySQL sink: row changes and the checkpoint, committed in one target transaction.

Each batch is one transaction on the target: first ``UPDATE ferry_checkpoints … WHERE
task_id = … AND epoch = <mine>`` (which also locks the task's checkpoint row), then the
batch's statements (:mod:`ferry_runtime.sink.sql`), then ``COMMIT``. The rows and the
position become visible together or not at all, so a replayed batch never applies twice:
exactly-once without anything else. ``at-least-once`` uses the same transaction (it costs
nothing more here).

Fencing: :meth:`MySQLSink.open` increments the task's ``epoch``; an older worker's next
checkpoint update matches no row and it stops with ``Fenced``.

Where things go: a table goes to ``sink.mysql.database`` (or, unset, to the database of the
same name as the source's) under its mapped name, and must exist there with the mapped
columns (read from information_schema once per table per run). The checkpoint table lives in
``sink.mysql.database``, or in a database ``ferry`` when that is unset; both it and the
dead-letter table are created when missing.

Session: UTC (TIMESTAMP values are UTC strings), strict mode (a value the column cannot hold
is refused rather than silently cut), ``NO_AUTO_VALUE_ON_ZERO`` (an id 0 stays 0), foreign
key checks off (tables arrive in snapshot order, not in dependency order), READ COMMITTED.

Errors: lost connection, deadlock, lock wait timeout → TransientError (the worker retries
from the checkpoint); a value the target refuses → the batch is rolled back and replayed one
change at a time under a savepoint so the refused row alone goes to the error policy; a
missing table or column → FatalError ``TargetSchemaMismatch`` saying what to create.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import logging
import os
from collections import Counter
from typing import Any

import pymysql
from pymysql.constants import CLIENT

from ferry_runtime import checkpoint, errors, tls
from ferry_runtime.config import MySQLSink as MySQLSinkConfig
from ferry_runtime.config import WorkerConfig
from ferry_runtime.events import Change
from ferry_runtime.sink import evolve, sql
from ferry_runtime.sink.base import Batch, Counts, DeadLetter, PoisonHandler, Reads, counted
from ferry_runtime.source import schema

__all__ = [
    "CHECKPOINT_TABLE",
    "DEAD_LETTER_TABLE",
    "DEFAULT_CHECKPOINT_DATABASE",
    "MySQLSink",
    "classify",
    "loop_error",
]

CHECKPOINT_TABLE = "ferry_checkpoints"
DEAD_LETTER_TABLE = "ferry_dead_letters"
DEFAULT_CHECKPOINT_DATABASE = "ferry"
SESSION = (
    "SET SESSION time_zone = '+00:00', "
    "sql_mode = 'STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION', "
    "foreign_key_checks = 0"
)
log = logging.getLogger("ferry.sink.mysql")

# Server error codes. Refused: the row's values or keys do not fit the target table.
_REFUSED = {1048, 1062, 1264, 1265, 1292, 1366, 1367, 1406, 1411, 1451, 1452, 1690, 3140, 4025}
_SCHEMA = {1054, 1146}
_AUTH = {1045, 1698}
_PRIVILEGES = {1044, 1142, 1143, 1227}
_RETRY = {1205, 1213}  # lock wait timeout, deadlock
DELETE_CHUNK = 1000  # keys per DELETE … IN (…)


class _Refused(Exception):
    """The target refused a value during the fast path; replay the batch row by row."""


# ---------------------------------------------------------------- the loop guard

_LOCAL = {"localhost", "127.0.0.1", "::1"}


def _server(host: str, port: int) -> tuple[str, int]:
    host = host.lower()
    return ("localhost" if host in _LOCAL else host, port)


def _selects_database(config: WorkerConfig, database: str) -> bool:
    """Whether include/exclude may select any table of ``database``."""
    included = any(fnmatch.fnmatchcase(database, g.split(".", 1)[0]) for g in config.include)
    excluded = any(
        fnmatch.fnmatchcase(database, db) and table == "*"
        for db, table in (g.split(".", 1) for g in config.exclude)
    )
    return included and not excluded


def loop_error(config: WorkerConfig) -> str | None:
    """Why writing to this sink would feed the worker its own writes, or None."""
    sink = config.sink.mysql
    source = config.source
    if sink is None or _server(sink.host, sink.port) != _server(source.host, source.port):
        return None
    if sink.database is None:
        return (
            f"sink.mysql.database: the sink is the source server ({source.host}:{source.port}) "
            "and no database is set, so every table would be written onto itself; set "
            "sink.mysql.database to a database that include/exclude do not select."
        )
    if _selects_database(config, sink.database):
        return (
            f"sink.mysql.database: {sink.database} is on the source server "
            f"({source.host}:{source.port}) and include/exclude select its tables, so the "
            "worker would read back its own writes; pick another database or exclude "
            f"'{sink.database}.*'."
        )
    return None


# ---------------------------------------------------------------- errors


def _code(error: BaseException) -> int | None:
    return error.args[0] if error.args and isinstance(error.args[0], int) else None


def classify(
    error: BaseException, where: str, secret: str | None, user: str, tls: Any = None
) -> errors.WorkerError:
    """A PyMySQL error from the target → the worker's error (errors.from_mysql speaks of the
    source and its privileges; the sink's advice differs)."""
    code = _code(error)
    detail = errors.scrub(str(error.args[1]) if len(error.args) > 1 else str(error), secret)
    problem = errors.tls_problem(code, detail, where, tls) if tls is not None else None
    if problem is not None:
        return problem
    if code in _AUTH:
        return errors.FatalError(
            "AuthenticationFailed",
            f"{where}: the sink server refused the user or password ({detail}). Check "
            "sink.mysql.user and the Secret behind sink.mysql.passwordEnv.",
        )
    if code in _PRIVILEGES:
        return errors.FatalError(
            "InsufficientPrivileges",
            f"{where}: missing privilege ({detail}). Grant {user} SELECT, INSERT, UPDATE, "
            "DELETE and CREATE on the target database.",
        )
    if code in _SCHEMA:
        return errors.FatalError(
            "TargetSchemaMismatch",
            f"{where}: {detail}. Create or alter the target table to match the source (after "
            "mapping), then restart the worker; it resumes from its checkpoint.",
        )
    if code in _RETRY:
        return errors.TransientError("SinkBusy", f"{where}: MySQL error {code}: {detail}")
    if code is None or code >= 2000 or code in {1040, 1053, 1152, 1158, 1159, 1160, 1161}:
        return errors.TransientError("SinkUnavailable", f"{where}: {detail}")
    return errors.TransientError("SinkError", f"{where}: MySQL error {code}: {detail}")


# ---------------------------------------------------------------- the sink


class MySQLSink:
    """Applies mapped changes to a MySQL/MariaDB with the checkpoint in the same transaction."""

    json_rows = False  # rows become statement values: dicts

    def __init__(
        self,
        config: MySQLSinkConfig,
        task_id: str,
        on_poison: PoisonHandler,
        dead_letters: bool = False,
    ) -> None:
        self.config = config
        self.task_id = task_id
        self.on_poison = on_poison
        self.dead_letters = dead_letters
        self.where = f"the sink {config.host}:{config.port}"
        self.home = config.database or DEFAULT_CHECKPOINT_DATABASE
        self.epoch = 0
        self._conn: pymysql.connections.Connection[Any] | None = None
        self._secret: str | None = None
        self._targets: dict[tuple[str, str], sql.Target] = {}

    # ------------------------------------------------------------ lifecycle

    def open(self) -> None:
        """Connect, create the bookkeeping tables when missing, and take over the task."""
        self._secret = os.environ.get(self.config.password_env)
        if self._secret is None:
            raise errors.FatalError(
                "InvalidConfig",
                f"sink.mysql.passwordEnv: the environment variable {self.config.password_env} "
                "is not set; set it (from a Secret on Kubernetes).",
            )
        try:
            self._conn = pymysql.connect(
                host=self.config.host,
                port=self.config.port,
                user=self.config.user,
                password=self._secret,
                charset="utf8mb4",
                autocommit=False,
                connect_timeout=10,
                read_timeout=300,
                write_timeout=300,
                client_flag=CLIENT.FOUND_ROWS,  # rowcount = rows matched, not rows changed
                **tls.pymysql_args(self.config.tls),
            )
        except pymysql.err.MySQLError as error:
            raise self._error(error, f"connecting to {self.where} as {self.config.user}") from None
        with self._sql("preparing the target session") as cursor:
            cursor.execute(SESSION)
            cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
            self._ensure_tables(cursor)
            self.epoch = self._fence(cursor)
        log.info("sink %s: task %s at epoch %d", self.where, self.task_id, self.epoch)

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(pymysql.err.Error, OSError):  # already gone
                self._conn.close()
            self._conn = None

    def _ensure_tables(self, cursor: Any) -> None:
        home = sql.quote(self.home)
        if self.config.database is None:
            cursor.execute(f"CREATE DATABASE IF NOT EXISTS {home}")
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {home}.{CHECKPOINT_TABLE} ("
            "task_id VARCHAR(255) NOT NULL PRIMARY KEY, checkpoint LONGTEXT NULL, "
            "epoch BIGINT UNSIGNED NOT NULL, updated_at TIMESTAMP(6) NOT NULL "
            "DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)) ENGINE=InnoDB"
        )
        if self.dead_letters:
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {home}.{DEAD_LETTER_TABLE} ("
                "id BIGINT AUTO_INCREMENT PRIMARY KEY, task_id VARCHAR(255) NOT NULL, "
                "table_name VARCHAR(255) NOT NULL, position VARCHAR(255) NOT NULL, "
                "error TEXT NOT NULL, created_at TIMESTAMP(6) NOT NULL "
                "DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB"
            )

    def _fence(self, cursor: Any) -> int:
        """Bump this task's epoch (waits for an older worker's open batch) and return it."""
        table = f"{sql.quote(self.home)}.{CHECKPOINT_TABLE}"
        cursor.execute(
            f"INSERT INTO {table} (task_id, epoch) VALUES (%s, 1) "
            "ON DUPLICATE KEY UPDATE epoch = epoch + 1",
            (self.task_id,),
        )
        cursor.execute(f"SELECT epoch FROM {table} WHERE task_id = %s", (self.task_id,))
        (epoch,) = cursor.fetchone()
        self._commit()
        return int(epoch)

    # ------------------------------------------------------------ checkpoint

    def read_checkpoint(self) -> checkpoint.Checkpoint | None:
        table = f"{sql.quote(self.home)}.{CHECKPOINT_TABLE}"
        with self._sql("reading the checkpoint") as cursor:
            cursor.execute(f"SELECT checkpoint FROM {table} WHERE task_id = %s", (self.task_id,))
            row = cursor.fetchone()
            self._commit()
        if row is None or row[0] is None:
            return None
        return checkpoint.decode(row[0].encode("utf-8"))

    # ------------------------------------------------------------ delivery

    def deliver(self, batch: Batch, state: checkpoint.Checkpoint) -> Counts:
        """Apply the batch's changes (then its dead letters) and store ``state`` in one
        transaction. Every change counts as delivered, a refused one too (it went to the
        error policy)."""
        items: list[Change | DeadLetter] = []
        letters: list[DeadLetter] = []
        for part in batch:
            if isinstance(part, Reads):
                template = part.template
                items.extend(dataclasses.replace(template, data=row) for row in part.dicts())
            else:
                items.extend(part.changes)
                letters.extend(part.dead_letters)
        counts: Counter[tuple[str, str]] = Counter(
            (item.source_name, item.op) for item in items if isinstance(item, Change)
        )
        items.extend(letters)
        self._apply(items, counted(state, dict(counts)))
        return dict(counts)

    def _apply(self, items: list[Change | DeadLetter], state: checkpoint.Checkpoint) -> None:
        """Apply ``items`` and store ``state`` in one transaction."""
        with self._sql("delivering a batch") as cursor:
            try:
                self._begin(cursor, state)
                self._apply_fast(cursor, items)
            except _Refused:
                self._rollback()
                self._begin(cursor, state)
                self._apply_one_by_one(cursor, items)
            self._commit()

    def _begin(self, cursor: Any, state: checkpoint.Checkpoint) -> None:
        """Store the checkpoint first: it locks the task's row and proves we still own it."""
        cursor.execute(
            f"UPDATE {sql.quote(self.home)}.{CHECKPOINT_TABLE} SET checkpoint = %s "
            "WHERE task_id = %s AND epoch = %s",
            (checkpoint.encode(state, self.task_id).decode("utf-8"), self.task_id, self.epoch),
        )
        if cursor.rowcount == 0:
            raise errors.FatalError(
                "Fenced",
                f"{self.where}: another worker with the same task id took over (its epoch is "
                f"newer than {self.epoch}). Only one worker per task may run.",
            )

    def _statements(self, cursor: Any, item: Change | DeadLetter) -> list[sql.Statement]:
        if isinstance(item, DeadLetter):
            return [self._letter(item)]
        target = self._target(cursor, item)
        if self.config.schema_changes == "ignore":
            item = evolve.fit(target, item)
        try:
            return sql.plan(target, item)
        except sql.SchemaMismatch as error:
            raise errors.FatalError(
                "TargetSchemaMismatch",
                f"{self.where}: {error}. The source's schema changed and "
                f"sink.mysql.schemaChanges is {self.config.schema_changes or 'stop'}: alter the "
                "target table to match the source (after mapping), then restart the worker (it "
                "resumes from its checkpoint); or set sink.mysql.schemaChanges to evolve "
                "(apply column changes) or ignore (write the columns the target has).",
            ) from None

    def _apply_fast(self, cursor: Any, items: list[Change | DeadLetter]) -> None:
        """Every statement in order; runs of the same upsert go as one multi-row INSERT,
        runs of deletes by key from one table as one ``DELETE … WHERE key IN (…)``, their
        values written into the text (:func:`sql.multi_row`, :func:`sql.key_list`)."""
        run: list[tuple[Any, ...]] = []
        run_sql = ""
        keys: list[tuple[Any, ...]] = []
        keys_sql: str | None = None

        def flush_run() -> None:
            for statement in sql.multi_row(run_sql, run):
                cursor.execute(statement)

        def flush_keys() -> None:
            assert keys_sql is not None
            for start in range(0, len(keys), DELETE_CHUNK):
                cursor.execute(keys_sql + sql.key_list(keys[start : start + DELETE_CHUNK]))

        try:
            for item in items:
                try:
                    statements = self._statements(cursor, item)
                except sql.BadValue:
                    raise _Refused from None
                for statement in statements:
                    if keys and statement.keys != keys_sql:
                        flush_keys()
                        keys = []
                    if run and (statement.sql != run_sql or not statement.batchable):
                        flush_run()
                        run = []
                    if statement.keys is not None:
                        keys_sql = statement.keys
                        keys.append(statement.args)
                    elif statement.batchable:
                        run_sql = statement.sql
                        run.append(statement.args)
                    else:
                        cursor.execute(statement.sql, statement.args)
            if keys:
                flush_keys()
            if run:
                flush_run()
        except pymysql.err.MySQLError as error:
            if _code(error) in _REFUSED:
                raise _Refused from None
            raise

    def _apply_one_by_one(self, cursor: Any, items: list[Change | DeadLetter]) -> None:
        """Each change under a savepoint; a refused one goes to the error policy alone."""
        for item in items:
            cursor.execute("SAVEPOINT ferry_row")
            try:
                for statement in self._statements(cursor, item):
                    cursor.execute(statement.sql, statement.args)
            except (sql.BadValue, pymysql.err.MySQLError) as error:
                if isinstance(error, pymysql.err.MySQLError) and _code(error) not in _REFUSED:
                    raise
                assert isinstance(item, Change)
                cursor.execute("ROLLBACK TO SAVEPOINT ferry_row")
                detail = errors.scrub(str(error.args[-1] if error.args else error))
                reason = f"the target refused a row of {item.name}: {detail}"
                poison = errors.PoisonRow(reason, item.name, item.position, item.op == "read")
                message = self.on_poison(poison)
                if message is not None and self.dead_letters:
                    letter = self._letter(DeadLetter(item.name, item.position, message))
                    cursor.execute(letter.sql, letter.args)

    def _letter(self, letter: DeadLetter) -> sql.Statement:
        return sql.Statement(
            f"INSERT INTO {sql.quote(self.home)}.{DEAD_LETTER_TABLE} "
            "(task_id, table_name, position, error) VALUES (%s, %s, %s, %s)",
            (self.task_id, letter.table, letter.position, letter.error),
        )

    # ------------------------------------------------------------ schema changes

    def evolve(self, steps: list[evolve.Step], source: str) -> list[str]:
        """schemaChanges: evolve — run each step the target still needs (DDL commits on its
        own, so this is outside any batch: the worker commits the checkpoint past the source
        DDL right after). Returns the statements run. ``source``: the DDL and its position,
        for messages."""
        done: list[str] = []
        with self._sql("applying a schema change") as cursor:
            for step in steps:
                columns = self._columns(cursor, step.database, step.table)
                new_exists = step.kind == "rename_table" and (
                    self._columns(cursor, step.database, step.new or "") is not None
                )
                statement = evolve.needed(step, columns, new_exists)
                self._targets.pop((step.database, step.table), None)
                if step.new is not None:
                    self._targets.pop((step.database, step.new), None)
                if statement is None:
                    log.info("schema change already on the target (or no table): %s", step.sql)
                    continue
                self._still_ours(cursor)  # a fenced worker must not change the target
                try:
                    cursor.execute(statement)
                except pymysql.err.MySQLError as error:
                    raise self._evolve_error(error, statement, source) from None
                done.append(statement)
                log.info("schema change applied to the target: %s", statement)
            self._commit()
        return done

    def _still_ours(self, cursor: Any) -> None:
        """Fenced unless the task's epoch is still this worker's (DDL cannot run inside the
        checkpoint row's transaction, so it is checked right before)."""
        cursor.execute(
            f"SELECT epoch FROM {sql.quote(self.home)}.{CHECKPOINT_TABLE} WHERE task_id = %s",
            (self.task_id,),
        )
        row = cursor.fetchone()
        if row is None or int(row[0]) != self.epoch:
            raise errors.FatalError(
                "Fenced",
                f"{self.where}: another worker with the same task id took over (its epoch is "
                f"newer than {self.epoch}). Only one worker per task may run.",
            )

    def _evolve_error(
        self, error: pymysql.err.MySQLError, statement: str, source: str
    ) -> errors.WorkerError:
        found = self._error(error, f"applying a schema change ({self.where})")
        if found.reason == "InsufficientPrivileges":
            return errors.FatalError(
                found.reason,
                f"{found.message} sink.mysql.schemaChanges: evolve also needs ALTER (and DROP "
                "for TRUNCATE).",
            )
        if isinstance(found, errors.TransientError) and found.reason != "SinkError":
            return found  # connection lost, busy: retried from the checkpoint
        return errors.FatalError(
            "SchemaChangeFailed",
            f"{self.where}: the target refused {statement} (for the source's {source}): "
            f"{found.message}. Change the target by hand (the step is skipped once the target "
            "has it), or set sink.mysql.schemaChanges: ignore, then restart the worker.",
        )

    def _columns(self, cursor: Any, database: str, table: str) -> frozenset[str] | None:
        """The target table's column names, or None when it does not exist."""
        cursor.execute(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
            "AND TABLE_NAME = %s",
            (database, table),
        )
        names = frozenset(str(name) for (name,) in cursor.fetchall())
        if names:
            return names
        cursor.execute(
            "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
            (database, table),
        )
        return frozenset() if cursor.fetchone() else None

    # ------------------------------------------------------------ target tables

    def _target(self, cursor: Any, change: Change) -> sql.Target:
        database = self.config.database or change.database
        key = (database, change.table)
        found = self._targets.get(key)
        if found is None:
            table = schema.load(cursor.connection, database, change.table)
            if table is None:
                raise errors.FatalError(
                    "TargetSchemaMismatch",
                    f"{self.where}: the target table {sql.quote(database)}."
                    f"{sql.quote(change.table)} (for {change.name}) does not exist. Create it "
                    "with the source's columns after mapping (e.g. from SHOW CREATE TABLE on "
                    "the source), then restart the worker"
                    + (
                        "."
                        if self.config.schema_changes == "evolve"
                        else "; or set sink.mysql.schemaChanges: evolve to create tables the "
                        "source creates."
                    ),
                )
            cursor.execute(
                "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
                "AND TABLE_NAME = %s AND COALESCE(GENERATION_EXPRESSION, '') <> ''",
                (database, change.table),
            )
            generated = frozenset(str(name) for (name,) in cursor.fetchall())
            found = self._targets[key] = sql.Target(
                database, change.table, table.columns, table.primary_key, generated
            )
        return found

    # ------------------------------------------------------------ plumbing

    def _sql(self, what: str) -> _Guard:
        assert self._conn is not None, "open() first"
        return _Guard(self, what)

    def _error(self, error: BaseException, where: str) -> errors.WorkerError:
        return classify(error, where, self._secret, self.config.user, self.config.tls)

    def _commit(self) -> None:
        assert self._conn is not None
        self._conn.commit()

    def _rollback(self) -> None:
        if self._conn is not None:
            # The connection may be gone: then the server rolled back.
            with contextlib.suppress(pymysql.err.Error, OSError):
                self._conn.rollback()


class _Guard:
    """A cursor whose MySQL errors become WorkerErrors, rolling back on any failure."""

    def __init__(self, sink: MySQLSink, what: str) -> None:
        self.sink = sink
        self.what = what

    def __enter__(self) -> Any:
        assert self.sink._conn is not None
        self.cursor = self.sink._conn.cursor()
        return self.cursor

    def __exit__(self, kind: Any, error: BaseException | None, _tb: Any) -> None:
        with contextlib.suppress(pymysql.err.Error, OSError):  # a broken connection
            self.cursor.close()
        if error is None:
            return
        self.sink._rollback()
        if isinstance(error, pymysql.err.MySQLError):
            raise self.sink._error(error, f"{self.what} ({self.sink.where})") from None
