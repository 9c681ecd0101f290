"""The binlog reader: row events from a position, grouped into source transactions.

python-mysql-replication reads the stream; this module turns its events into
:class:`Transaction` items (the changes of one source transaction and the position *after*
its XID/COMMIT, where a resume neither repeats nor skips anything) and puts them on a bounded
queue, which gives back-pressure. DDL is a boundary of its own: it invalidates the schema
cache, and the TableMap events that follow (binlog_row_metadata=FULL) carry the new column
names. Heartbeats (sent by the server only when it has nothing newer) report the server's
position, which tells the sink when it is caught up.

Row values are decoded by :mod:`ferry_runtime.source.rows` (a generated decoder per table,
several times faster than the library's); a table it cannot decode exactly is decoded by
the library and converted by :mod:`ferry_runtime.types`, and so is any single event our
decoder rejects, so that bad data fails or dead-letters exactly as before.

A pending spec.skipEvent comes as a :class:`ferry_runtime.skip.Matcher`: the row event(s) it
names are left out before they are decoded, and their transaction carries a
:class:`ferry_runtime.skip.Skipped` so that the worker commits the skip with it.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pymysql
from pymysqlreplication import BinLogStreamReader, binlogstream
from pymysqlreplication.event import (
    HeartbeatLogEvent,
    MariadbGtidEvent,
    QueryEvent,
    RotateEvent,
    XidEvent,
)
from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent

from ferry_runtime import ddl, ddl_records, errors, heartbeat, skip, types
from ferry_runtime.config import WorkerConfig
from ferry_runtime.events import Change, Op
from ferry_runtime.source import definitions, mysql, positions, rows
from ferry_runtime.source.schema import SchemaCache

__all__ = ["BinlogReader", "Failure", "Heartbeat", "RowBudget", "Transaction"]

HEARTBEAT_SECONDS = 1.0
# On a lost connection the library silently reconnects from the last *event* it read, which
# may be inside a transaction. Let the error through instead: the worker then restarts from
# its checkpoint (a transaction boundary), counts the error and shows it in status.
binlogstream.MYSQL_EXPECTED_ERROR_CODES.clear()


@dataclass
class Transaction:
    changes: list[Change]
    position: dict[str, Any]  # resume here: after this transaction
    ts: int  # source timestamp, epoch seconds
    read_at: float = 0.0  # monotonic time its first event was read
    dead_letters: list[tuple[str, str]] = field(default_factory=list)  # (table, message)
    skipped: skip.Skipped | None = None  # a skipEvent left row events of it out
    gtid: str | None = None  # its MariaDB GTID (domain-server-sequence), when known
    heartbeat: float | None = None  # the stamp of this task's heartbeat row in it (spec.heartbeat)
    schema_change: ddl_records.SchemaChange | None = None  # DDL on a selected table


@dataclass(frozen=True)
class _TablePlan:
    converters: list[tuple[str, types.Converter]]
    primary_key: tuple[str, ...]
    decoder: rows.TableDecoder | None  # None: this table is decoded by the library


@dataclass(frozen=True)
class Heartbeat:
    position: dict[str, Any]


@dataclass(frozen=True)
class Failure:
    error: BaseException


Item = Transaction | Heartbeat | Failure


class RowBudget:
    """Bounds the rows waiting between reader and sink (the queue bounds items, and one
    source transaction can hold thousands of rows). A transaction larger than the whole
    budget still passes, alone."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._cond = threading.Condition()

    def acquire(self, rows: int, stop: threading.Event) -> bool:
        with self._cond:
            while self.used and self.used + rows > self.limit:
                if stop.is_set():
                    return False
                self._cond.wait(0.2)
            self.used += rows
            return True

    def release(self, rows: int) -> None:
        with self._cond:
            self.used -= rows
            self._cond.notify_all()


# Called with a PoisonRow; raises it (fail) or returns a dead-letter message or None (skip).
PoisonHandler = Callable[[errors.PoisonRow], str | None]

_OPS: dict[type, Op] = {
    WriteRowsEvent: "insert",
    UpdateRowsEvent: "update",
    DeleteRowsEvent: "delete",
}


class BinlogReader:
    """Reads from ``start`` into ``out`` on its own thread until :meth:`stop`."""

    def __init__(
        self,
        config: WorkerConfig,
        start: dict[str, Any],
        out: queue.Queue[Item],
        on_poison: PoisonHandler,
        budget: RowBudget | None = None,
        fast_rows: bool = True,
        skip_event: skip.Matcher | None = None,
        on_slow_decode: Callable[[str, str], None] | None = None,
    ) -> None:
        self.config = config
        self.skip = skip_event  # a pending spec.skipEvent
        self.fast_rows = fast_rows  # our per-table row decoders (False: the library's)
        self.start_position = start
        self.out = out
        self.budget = budget or RowBudget(config.performance.queue_size)
        self.on_poison = on_poison
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._plans: dict[tuple[int, str, str], _TablePlan] = {}
        self.fallback_events = 0  # rows events our decoder refused (the library decoded them)
        self.python_events = 0  # rows events the C decoder left to the Python decoders
        # Told (table, "unsupported" | "rejected") for each rows event the library decodes,
        # (table, "python") for each the Python decoders read instead of the C one.
        self.on_slow_decode = on_slow_decode
        self._selected: dict[tuple[str, str], bool] = {}
        # spec.heartbeat: this task's beats in the transaction being read
        self._beats = heartbeat.HeartbeatRows(config) if config.heartbeat else None
        self._beat: float | None = None
        self._gtid: str | None = None  # of the transaction being read
        # Table definitions read after DDL (the next DDL's "old"), with sink.kafka.schemaChanges.
        kafka = config.sink.kafka
        self._read_definitions = kafka is not None and kafka.schema_changes is not None
        self._definitions: dict[tuple[str, str], definitions.Definition] = {}
        self._charsets: dict[str, str | None] = {}  # databases' default character sets

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="binlog-reader", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _put(self, item: Item) -> bool:
        while not self._stop.is_set():
            try:
                self.out.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        settings = mysql.connection_settings(self.config.source)
        try:
            ctl = mysql.connect(self.config.source)
            try:
                gtids = mysql.gtid_position(ctl, self.start_position)
                self._stream(settings, SchemaCache(ctl), gtids)
            finally:
                ctl.close()
        except pymysql.err.MySQLError as error:
            source = self.config.source
            where = f"reading the binlog of {source.host}:{source.port}"
            failure = errors.from_mysql(error, where, settings["password"], source.tls)
            self._put(Failure(failure))
        except BaseException as error:
            self._put(Failure(error))

    def _stream(
        self,
        settings: dict[str, Any],
        schemas: SchemaCache,
        gtids: dict[int, positions.Gtid] | None,
    ) -> None:
        """``gtids``: the GTID position at the start (MariaDB), kept current per domain and
        reported with each position after a transaction; None where unknown."""
        stream = BinLogStreamReader(
            connection_settings={k: v for k, v in settings.items() if k != "charset"},
            server_id=self.config.source.server_id,
            log_file=self.start_position["file"],
            log_pos=self.start_position["pos"],
            resume_stream=True,
            is_mariadb=False,  # with a file/pos, True would ignore the position (1.0.17)
            blocking=True,
            slave_heartbeat=HEARTBEAT_SECONDS,
            only_events=[
                WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent, XidEvent, QueryEvent,
                RotateEvent, MariadbGtidEvent, HeartbeatLogEvent,
            ],
        )  # fmt: skip
        changes: list[Change] = []
        dead: list[tuple[str, str]] = []
        read_at = 0.0
        in_transaction = False
        gtid: positions.Gtid | None = None  # of the transaction being read
        matcher = self.skip
        skipping = False  # the transaction being read is a skipEvent's {gtid}
        skipped: list[tuple[str, str]] = []  # (table, position) of row events left out

        def after(position: dict[str, Any]) -> dict[str, Any]:
            """The position after a transaction; ends it."""
            nonlocal in_transaction
            in_transaction = False
            if gtids is None:
                return position
            if gtid is not None:
                gtids[gtid.domain] = gtid
            return {**position, "gtid": ",".join(str(g) for _, g in sorted(gtids.items()))}

        def left_out(end: dict[str, Any]) -> skip.Skipped | None:
            """What a skipEvent left out of the transaction ending at ``end``; resets it."""
            nonlocal skipping, skipped
            if not (skipping or skipped):
                return None
            where = skipped[-1][1] if skipped else f"{end['file']}:{end['pos']}"
            tables = tuple(dict.fromkeys(table for table, _ in skipped))
            found = skip.Skipped(where, str(gtid) if gtid else None, tables, len(skipped))
            skipping, skipped = False, []
            return found

        try:
            while not self._stop.is_set():
                event = stream.fetchone()
                if event is None:
                    continue
                position = {"file": stream.log_file, "pos": stream.log_pos}
                if isinstance(event, HeartbeatLogEvent):
                    # Between transactions only: the server sends whole transactions, but a
                    # heartbeat must never become a resume point inside one.
                    if not in_transaction:
                        self._put(Heartbeat(position))
                elif isinstance(event, MariadbGtidEvent):
                    in_transaction = True
                    gtid = positions.Gtid(event.domain_id, event.server_id, event.gtid_seq_no)
                    self._gtid = str(gtid)
                    skipping = matcher is not None and matcher.transaction(gtid)
                elif isinstance(event, WriteRowsEvent | UpdateRowsEvent | DeleteRowsEvent):
                    if skipping or (
                        matcher is not None
                        and matcher.row_event(
                            position["file"], position["pos"], _start(event, position["pos"])
                        )
                    ):  # left out undecoded: a poison row is never converted
                        where = f"{position['file']}:{position['pos']}"
                        skipped.append((f"{event.schema}.{event.table}", where))
                    else:
                        if not changes:
                            read_at = time.monotonic()
                        self._rows(event, position, schemas, changes, dead)
                elif isinstance(event, XidEvent):
                    end = after(position)
                    self._commit(
                        changes, end, event.timestamp, event.xid, dead, read_at, left_out(end)
                    )
                    changes, dead = [], []
                elif isinstance(event, QueryEvent):
                    query = event.query.strip().upper()
                    if query == "BEGIN":
                        changes, dead = [], []
                    elif query == "COMMIT":  # non-transactional engines
                        end = after(position)
                        self._commit(
                            changes, end, event.timestamp, None, dead, read_at, left_out(end)
                        )
                        changes, dead = [], []
                    else:  # DDL: its own boundary; forget what we knew of the schema
                        schema = (
                            event.schema.decode()
                            if isinstance(event.schema, bytes)
                            else event.schema
                        )
                        schemas.forget(schema or None)
                        self._plans.clear()
                        change = self._schema_change(event, schema or "", position, gtid, schemas)
                        end = after(position)
                        self._commit(
                            [], end, event.timestamp, None, [], time.monotonic(), left_out(end),
                            change,
                        )  # fmt: skip
                if matcher is not None:
                    matcher.reached(position["file"], position["pos"])
                # The library's event and its packet wrapper point at each other: without
                # the link, refcounting frees the event's bytes now, not a later GC pass.
                event.packet = None
        finally:
            stream.close()

    def _commit(
        self,
        changes: list[Change],
        position: dict[str, Any],
        ts: int,
        xid: int | None,
        dead: list[tuple[str, str]],
        read_at: float,
        skipped: skip.Skipped | None = None,
        schema_change: ddl_records.SchemaChange | None = None,
    ) -> None:
        for change in changes:
            change.xid = xid
        if changes:
            changes[-1].commit = True
        beat, gtid, self._beat, self._gtid = self._beat, self._gtid, None, None
        if self.budget.acquire(len(changes), self._stop):  # the sink releases on take
            self._put(
                Transaction(
                    changes, position, ts, read_at, dead, skipped, gtid, beat, schema_change
                )
            )

    def _schema_change(
        self,
        event: Any,
        database: str,
        position: dict[str, Any],
        gtid: positions.Gtid | None,
        schemas: SchemaCache,
    ) -> ddl_records.SchemaChange | None:
        """The DDL statement as a SchemaChange when it touches a selected table, else None;
        with sink.kafka.schemaChanges, with each table's definition before and after."""
        sql = event.query.decode() if isinstance(event.query, bytes) else str(event.query)
        statement = ddl.parse(sql, database)
        if statement is None or not any(
            self.config.selects(t.database, t.table) for t in ddl.tables(statement)
        ):
            return None
        # Definitions only for DDL records (sink.kafka.schemaChanges); evolve needs none.
        changes = self._table_changes(statement, schemas.conn) if self._read_definitions else []
        return ddl_records.SchemaChange(
            sql, database, statement, int(event.timestamp),
            f"{position['file']}:{position['pos']}", tuple(changes),
            str(gtid) if gtid is not None else None, self.config.source.server_id,
        )  # fmt: skip

    def _table_changes(self, statement: ddl.Statement, conn: Any) -> list[ddl_records.TableChange]:
        """Per table: its definition before (the one kept) and after the statement — made
        from the statement itself when the one before is known (or it is a CREATE TABLE
        with columns), else read from information_schema (see source/definitions.py)."""
        known = self._definitions
        changes: list[ddl_records.TableChange] = []

        def keep(
            table: ddl.TableName, found: definitions.Definition | None
        ) -> definitions.Definition | None:
            if found is None:
                found = definitions.read(conn, table.database, table.table)
            if found is not None:
                known[(table.database, table.table)] = found
            return found

        if isinstance(statement, ddl.CreateTable):
            table = statement.table
            new = None
            if statement.like is not None:
                like = known.get((statement.like.database, statement.like.table))
                if like is not None:
                    new = dataclasses.replace(like, database=table.database, table=table.table)
            elif statement.elements:
                new = definitions.from_create(statement, self._charset(conn, table.database))
            changes.append(ddl_records.TableChange("create", table, None, keep(table, new)))
        elif isinstance(statement, ddl.AlterTable):
            before, table = statement.table, statement.renamed_to or statement.table
            old = known.pop((before.database, before.table), None)
            new = definitions.after_alter(old, statement) if old is not None else None
            changes.append(ddl_records.TableChange("alter", table, old, keep(table, new)))
        elif isinstance(statement, ddl.RenameTable):
            for before, table in statement.pairs:
                old = known.pop((before.database, before.table), None)
                new = None
                if old is not None:  # a rename keeps the columns
                    new = dataclasses.replace(old, database=table.database, table=table.table)
                new = keep(table, new)
                if old is None and new is not None:
                    old = dataclasses.replace(new, database=before.database, table=before.table)
                changes.append(ddl_records.TableChange("alter", table, old, new))
        elif isinstance(statement, ddl.DropTable):
            for table in statement.tables:
                if self.config.selects(table.database, table.table):
                    old = known.pop((table.database, table.table), None)
                    changes.append(ddl_records.TableChange("drop", table, old, None))
        else:
            changes.append(ddl_records.TableChange("truncate", statement.table))
        return changes

    def _charset(self, conn: Any, database: str) -> str | None:
        if database not in self._charsets:
            self._charsets[database] = definitions.database_charset(conn, database)
        return self._charsets[database]

    def _plan(self, event: Any, schemas: SchemaCache) -> _TablePlan:
        """Converters and primary key of the event's table, cached until the next DDL."""
        key = (event.table_id, event.schema, event.table)
        plan = self._plans.get(key)
        if plan is None:
            info = schemas.get(event.schema, event.table)
            json_names = info.json_columns if info else frozenset()
            columns = [types.from_binlog_column(c, c.name in json_names) for c in event.columns]
            names = {c.name for c in columns}
            if info is not None and all(name in names for name in info.primary_key):
                primary_key = info.primary_key  # in key order, like the snapshot's
            else:  # the table changed since: what the binlog says
                primary_key = tuple(c.name for c in event.columns if c.is_primary)
            converters = [
                (c.name, types.binlog_converter(c))
                for c in columns
                if not types.binlog_passthrough(c)
            ]
            name = f"{event.schema}.{event.table}"
            decoder = (
                rows.table_decoder(event.columns, columns, name, self._python_decoded(name))
                if self.fast_rows
                else None
            )
            plan = self._plans[key] = _TablePlan(converters, primary_key, decoder)
        return plan

    def _rows(
        self,
        event: Any,
        position: dict[str, Any],
        schemas: SchemaCache,
        changes: list[Change],
        dead: list[tuple[str, str]],
    ) -> None:
        database, table = event.schema, event.table
        selected = self._selected.get((database, table))
        if selected is None:
            selected = self._selected[(database, table)] = self.config.selects(database, table)
        beats = self._beats
        if beats is not None and (database, table) != beats.table:
            beats = None  # not the heartbeat table (spec.heartbeat)
        if beats is not None and not selected:  # read for the stamp only
            self._note_beat(beats.stamp(event))
        if not selected:
            return
        first = len(changes)
        where = f"{position['file']}:{position['pos']}"
        op = _OPS[type(event)]
        try:
            plan = self._plan(event, schemas)
        except Exception as error:
            self._poison(f"{database}.{table}", where, error, dead)
            return
        for data, old in self._images(event, plan, op, where, dead):
            changes.append(
                Change(
                    database, table, op, data, old, plan.primary_key, event.timestamp, where,
                    server_id=self.config.source.server_id,
                )
            )  # fmt: skip
        if beats is not None:  # the heartbeat table is selected too: its rows are data as well
            self._note_beat(beats.stamp_of(changes[first:]))

    def _python_decoded(self, table: str) -> Callable[[], None]:
        def told() -> None:
            self.python_events += 1
            if self.on_slow_decode is not None:
                self.on_slow_decode(table, "python")

        return told

    def _note_beat(self, stamp: float | None) -> None:
        if stamp is not None:
            self._beat = stamp if self._beat is None else max(self._beat, stamp)

    def _images(
        self, event: Any, plan: _TablePlan, op: Op, where: str, dead: list[tuple[str, str]]
    ) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
        """The event's rows as (values, values before) JSON, by our decoder, else by the
        library and types.py; a row that cannot be converted goes to the error policy."""
        name = f"{event.schema}.{event.table}"
        if plan.decoder is not None:
            try:
                return plan.decoder.decode(event)
            except Exception:  # bad data: the library path below gives the same poison rows
                self.fallback_events += 1
                if self.on_slow_decode is not None:
                    self.on_slow_decode(name, "rejected")
        elif self.fast_rows and self.on_slow_decode is not None:
            self.on_slow_decode(name, "unsupported")
        try:
            library_rows = event.rows
        except Exception as error:
            self._poison(name, where, error, dead)
            return []
        images: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
        for row in library_rows:
            try:
                if op == "update":
                    images.append(
                        (
                            _convert(plan.converters, row["after_values"]),
                            _convert(plan.converters, row["before_values"]),
                        )
                    )
                else:
                    images.append((_convert(plan.converters, row["values"]), None))
            except Exception as error:
                self._poison(name, where, error, dead)
        return images

    def _poison(
        self, table: str, where: str, error: Exception, dead: list[tuple[str, str]]
    ) -> None:
        message = f"cannot convert a row of {table}: {type(error).__name__}: {error}"
        letter = self.on_poison(errors.PoisonRow(message, table, where))
        if letter is not None:
            dead.append((table, letter))


def _convert(
    converters: list[tuple[str, types.Converter]], values: dict[str, Any]
) -> dict[str, Any]:
    """Convert in place: the library builds a fresh dict per row image, and most columns
    (ints, floats, text) are already JSON values."""
    for name, convert in converters:
        values[name] = convert(values[name])
    return values


def _start(event: Any, end: int) -> int | None:
    """Where a row event starts: its end less its size (header and checksum included)."""
    size = getattr(getattr(event, "packet", None), "event_size", None)
    return end - size if isinstance(size, int) else None
