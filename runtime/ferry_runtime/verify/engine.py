"""One verification: plan the tables, compare them chunk by chunk, judge the differences.

:class:`Verifier` runs on a thread of its own with its own connections (one to the source,
one to the target or a Kafka consumer). Each difference becomes a :class:`Candidate` with
the window of binlog positions between the two states compared; :meth:`Verifier._settle`
waits until the worker's stream has committed past the window, then counts a candidate as
drift only when no change of its key was delivered inside the window (see
:mod:`ferry_runtime.verify.touched`); the others are read again, a few rounds at most.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from ferry_runtime import checkpoint, errors, rules, tls, types
from ferry_runtime.config import VerifyRequest, WorkerConfig
from ferry_runtime.events import Change
from ferry_runtime.sink.mysql import CHECKPOINT_TABLE, DEFAULT_CHECKPOINT_DATABASE
from ferry_runtime.source import mysql, schema
from ferry_runtime.source.schema import TableSchema
from ferry_runtime.source.snapshot import Snapshot
from ferry_runtime.verify import checksum
from ferry_runtime.verify.touched import Position, Touched, key_id, position_of

__all__ = ["Candidate", "Outcome", "Plan", "Stopped", "Verifier", "plan_table"]

log = logging.getLogger("ferry.verify")

SAMPLE = 20  # mismatched keys kept in status
ROUNDS = 5  # re-reads of keys that changed while being compared
PAUSE = 1.0  # seconds between rounds
SETTLE_TIMEOUT = 120.0  # how long to wait for the stream to pass a chunk's position
KAFKA_TIMEOUT = 30.0


@dataclass(frozen=True)
class Plan:
    """One source table and what it is compared with."""

    source: TableSchema
    target_database: str
    target_table: str
    columns: tuple[tuple[types.Column, str], ...]  # (source column, mapped name)
    key: tuple[tuple[types.Column, str], ...]  # primary key (source column, mapped name)

    @property
    def name(self) -> str:
        return self.source.name

    def side(self, target: bool, mariadb: bool = True) -> checksum.Side:
        if target:
            return checksum.Side(
                self.target_database, self.target_table, self.columns, self.key, mariadb
            )
        same = tuple((c, c.name) for c, _ in self.columns)
        key = tuple((c, c.name) for c, _ in self.key)
        return checksum.Side(self.source.database, self.source.table, same, key, mariadb)

    def key_of(self, row: dict[str, Any], mapped: bool = False) -> list[Any]:
        return [row.get(name if mapped else c.name) for c, name in self.key]


def plan_table(
    config: WorkerConfig, source: TableSchema, target: TableSchema | None, database: str
) -> Plan | str:
    """What to compare for ``source`` (a :class:`Plan`), or why it cannot be (a sentence).
    ``target`` is the MySQL target's table (None for Kafka); ``database`` is where it is."""
    if not source.primary_key:
        return "no primary key (rows cannot be matched by key)"
    mapping = config.mapping_for(source.database, source.table)
    renames = mapping.columns if mapping else {}
    dropped = set(mapping.drop) if mapping else set()
    lost = [name for name in source.primary_key if name in dropped]
    if lost:
        return f"the mapping drops its primary key column(s) {', '.join(lost)}"
    table = (mapping.target if mapping else None) or source.table
    columns = [(c, renames.get(c.name, c.name)) for c in source.columns if c.name not in dropped]
    if target is not None:
        have = {c.name for c in target.columns}
        missing = [name for _, name in columns if name not in have]
        if missing:
            return f"the target table {database}.{table} lacks column(s) {', '.join(missing)}"
    by_name = {c.name: c for c in source.columns}
    key = tuple((by_name[name], renames.get(name, name)) for name in source.primary_key)
    return Plan(source, database, table, tuple(columns), key)


@dataclass
class Candidate:
    """A key whose rows differed between the source at ``at`` and the target."""

    table: str  # the source table
    key: list[Any]
    low: Position  # the window: changes delivered in (low, high] explain the difference
    high: Position

    @property
    def ident(self) -> bytes:
        return key_id(self.key)


@dataclass
class Outcome:
    """A finished verification: the record for status and the checkpoint, the drift found."""

    record: checkpoint.VerifyRecord
    drift: dict[str, list[list[Any]]] = field(default_factory=dict)  # source table -> keys


def _window(at: Position, low: Position, high: Position) -> tuple[Position, Position]:
    return min(at, low), max(at, high)


class Stopped(Exception):
    """The worker is stopping: the verification is abandoned (its nonce stays pending)."""


class Verifier:
    """Compares the source with the sink for one verifyRequest."""

    def __init__(
        self,
        config: WorkerConfig,
        request: VerifyRequest,
        touched: Touched,
        stop: threading.Event,
    ) -> None:
        self.config, self.request, self.touched, self.stop = config, request, touched, stop
        self.chunks = 0
        self.rows = 0

    # ------------------------------------------------------------ the run

    def run(self) -> Outcome:
        started = time.time()
        source = mysql.connect_reader(self.config.source)
        target: _Target = (
            _MySQLTarget(self.config) if self.config.sink.mysql else _KafkaTarget(self.config)
        )
        target.touched = self.touched
        try:
            target.open()
            plans, skipped = self._plans(source, target)
            candidates: list[Candidate] = []
            target.prepare(plans)
            snap = Snapshot(source)
            for plan in plans:
                candidates += self._scan(target, snap, plan)
            drift, unsettled = self._settle(target, snap, {p.name: p for p in plans}, candidates)
        finally:
            target.close()
            source.close()
        sample = tuple(
            (table, key_id(key).decode()) for table, keys in drift.items() for key in keys
        )[:SAMPLE]
        record = checkpoint.VerifyRecord(
            nonce=self.request.nonce,
            time=time.time(),
            tables=tuple(p.name for p in plans),
            chunks=self.chunks,
            rows=self.rows,
            mismatched=sum(len(keys) for keys in drift.values()),
            unsettled=len(unsettled),
            sample=sample,
            skipped=tuple(skipped),
        )
        log.info(
            "verifyRequest (nonce %s): %d table(s), %d chunk(s), %d row(s), %d mismatched, "
            "%d unsettled in %.1fs",
            record.nonce, len(plans), record.chunks, record.rows, record.mismatched,
            record.unsettled, time.time() - started,
        )  # fmt: skip
        return Outcome(record, drift)

    def _plans(self, source: Any, target: _Target) -> tuple[list[Plan], list[str]]:
        plans: list[Plan] = []
        skipped: list[str] = []
        for database, table in schema.list_tables(source):
            name = f"{database}.{table}"
            if not self.config.selects(database, table) or not any(
                fnmatch.fnmatchcase(name, glob) for glob in self.request.tables
            ):
                continue
            loaded = schema.load(source, database, table)
            if loaded is None:
                continue
            found = target.plan(loaded)
            if isinstance(found, str):
                skipped.append(f"{name}: {found}")
            else:
                plans.append(found)
        return plans, skipped

    def _scan(self, target: _Target, snap: Snapshot, plan: Plan) -> list[Candidate]:
        """Every chunk of one table: the keys that differ, each with its window."""
        after: list[Any] | None = None
        found: list[Candidate] = []
        first: Position | None = None
        while True:
            if self.stop.is_set():
                raise Stopped
            upto, at = snap.open_chunk(plan.source, after, self.request.chunk_size)
            position = position_of(at)
            assert position is not None
            first = first or position
            found += target.chunk(snap, plan, after, upto, position, self)  # ends it
            self.chunks += 1
            if upto is None:
                break
            after = upto
        return found + target.finish_table(plan, first or ("", 0))

    def _settle(
        self,
        target: _Target,
        snap: Snapshot,
        plans: dict[str, Plan],
        candidates: list[Candidate],
    ) -> tuple[dict[str, list[list[Any]]], list[Candidate]]:
        """Judge the candidates once the stream has passed their windows; re-read those
        whose key changed inside its window."""
        drift: dict[str, list[list[Any]]] = {}
        for round_ in range(ROUNDS):
            if not candidates:
                break
            goal = max(c.high for c in candidates)
            if not self.touched.wait_for(goal, SETTLE_TIMEOUT, self.stop):
                if self.stop.is_set():
                    raise Stopped
                log.warning("verify: the stream did not reach %s:%d in time", *goal)
                return drift, candidates
            moving = []
            for candidate in candidates:
                if self.touched.changed(
                    candidate.table, candidate.ident, candidate.low, candidate.high
                ):
                    moving.append(candidate)
                else:
                    drift.setdefault(candidate.table, []).append(candidate.key)
            candidates = moving
            if not candidates or round_ == ROUNDS - 1:
                break
            if self.stop.wait(PAUSE):
                raise Stopped
            by_table: dict[str, list[list[Any]]] = {}
            for candidate in candidates:
                by_table.setdefault(candidate.table, []).append(candidate.key)
            target.prepare(list(plans[name] for name in by_table))
            candidates = []
            for name, keys in by_table.items():
                candidates += target.recheck(snap, plans[name], keys)
        return drift, candidates


# ---------------------------------------------------------------- targets


class _Target:
    """What a verification compares with (the MySQL target, or Kafka topics)."""

    touched: Touched | None = None

    def open(self) -> None: ...

    def close(self) -> None: ...

    def plan(self, source: TableSchema) -> Plan | str:
        raise NotImplementedError

    def prepare(self, plans: list[Plan]) -> None:
        """Before a round (Kafka: rebuild the topics' latest state)."""

    def chunk(
        self,
        snap: Snapshot,
        plan: Plan,
        after: list[Any] | None,
        upto: list[Any] | None,
        at: Position,
        verifier: Verifier,
    ) -> list[Candidate]:
        """Compare one chunk; the source's consistent transaction (at ``at``) is open, and
        ends here."""
        raise NotImplementedError

    def finish_table(self, plan: Plan, first: Position) -> list[Candidate]:
        return []

    def recheck(self, snap: Snapshot, plan: Plan, keys: list[list[Any]]) -> list[Candidate]:
        raise NotImplementedError


def _query(conn: Any, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
    with conn.cursor() as cursor:
        cursor.execute(sql, list(args) or None)
        return list(cursor.fetchall())


def _hashes(conn: Any, side: checksum.Side, where: str, args: list[Any]) -> dict[bytes, Any]:
    """key id -> (key values, row hash) of the rows ``where`` selects."""
    convert = [types.converter(column) for column, _ in side.key]
    out: dict[bytes, Any] = {}
    for row in _query(conn, checksum.rows_sql(side, where), args):
        key = [f(v) for f, v in zip(convert, row[:-1], strict=True)]
        out[key_id(key)] = (key, row[-1])
    return out


def _differing(source: dict[bytes, Any], target: dict[bytes, Any]) -> list[list[Any]]:
    return [
        (source.get(ident) or target[ident])[0]
        for ident in source.keys() | target.keys()
        if (source.get(ident) or (None, None))[1] != (target.get(ident) or (None, None))[1]
    ]


class _MySQLTarget(_Target):
    """The MySQL sink's target: consistent reads whose checkpoint row gives their position."""

    def __init__(self, config: WorkerConfig) -> None:
        assert config.sink.mysql is not None
        self.config = config
        self.sink = config.sink.mysql
        self.conn: Any = None
        self.task_id = config.task.id
        self.mariadb = True

    def open(self) -> None:
        secret = os.environ.get(self.sink.password_env)
        try:
            self.conn = mysql.reader(
                self.sink.host, self.sink.port, self.sink.user, secret or "", self.sink.tls
            )
            _query(self.conn, "SET SESSION time_zone = '+00:00'", ())
            _query(self.conn, "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ", ())
            ((version,),) = _query(self.conn, "SELECT VERSION()", ())
            self.mariadb = "mariadb" in str(version).lower()
        except mysql.DRIVER_ERRORS as error:
            raise errors.TransientError(
                "SinkUnavailable",
                errors.scrub(f"verify: connecting to the sink: {error}", secret),
            ) from None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()

    def plan(self, source: TableSchema) -> Plan | str:
        database = self.sink.database or source.database
        mapping = self.config.mapping_for(source.database, source.table)
        table = (mapping.target if mapping else None) or source.table
        found = schema.load(self.conn, database, table)
        if found is None:
            return f"the target table {database}.{table} does not exist"
        plan = plan_table(self.config, source, found, database)
        if isinstance(plan, str):
            return plan
        generated = {
            str(name)
            for (name,) in _query(
                self.conn,
                "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
                "AND TABLE_NAME = %s AND COALESCE(GENERATION_EXPRESSION, '') <> ''",
                (database, table),
            )
        }
        columns = tuple(pair for pair in plan.columns if pair[1] not in generated)
        return Plan(plan.source, plan.target_database, plan.target_table, columns, plan.key)

    def _begin(self) -> Position:
        """A consistent read on the target; the position its rows are at."""
        _query(self.conn, "START TRANSACTION WITH CONSISTENT SNAPSHOT", ())
        home = self.sink.database or DEFAULT_CHECKPOINT_DATABASE
        rows = _query(
            self.conn,
            f"SELECT checkpoint FROM {schema.quote(home)}.{CHECKPOINT_TABLE} WHERE task_id = %s",
            (self.task_id,),
        )
        stored = checkpoint.decode(rows[0][0].encode()) if rows and rows[0][0] else None
        at = position_of(stored.position if stored else None)
        return at or ("", 0)

    def _end(self) -> None:
        _query(self.conn, "COMMIT", ())

    def chunk(
        self,
        snap: Snapshot,
        plan: Plan,
        after: list[Any] | None,
        upto: list[Any] | None,
        at: Position,
        verifier: Verifier,
    ) -> list[Candidate]:
        source, target = plan.side(False), plan.side(True, self.mariadb)
        source_where, source_args = checksum.range_sql(source, after, upto)
        target_where, target_args = checksum.range_sql(target, after, upto)
        conn = snap.conn
        try:
            (mine,) = _query(conn, checksum.checksum_sql(source, source_where), source_args)
            verifier.rows += int(mine[0])
            here = self._begin()
            try:
                sql = checksum.checksum_sql(target, target_where)
                (theirs,) = _query(self.conn, sql, target_args)
                if tuple(map(int, mine)) == tuple(map(int, theirs)):
                    return []
                left = _hashes(conn, source, source_where, source_args)
                right = _hashes(self.conn, target, target_where, target_args)
            finally:
                self._end()
        finally:
            snap.end()
        low, high = _window(at, here, here)
        return [Candidate(plan.name, key, low, high) for key in _differing(left, right)]

    def recheck(self, snap: Snapshot, plan: Plan, keys: list[list[Any]]) -> list[Candidate]:
        source, target = plan.side(False), plan.side(True, self.mariadb)
        at = position_of(snap.begin())
        assert at is not None
        try:
            left = _hashes(snap.conn, source, *checksum.keys_sql(source, keys))
        finally:
            snap.end()
        here = self._begin()
        try:
            right = _hashes(self.conn, target, *checksum.keys_sql(target, keys))
        finally:
            self._end()
        low, high = _window(at, here, here)
        return [Candidate(plan.name, key, low, high) for key in _differing(left, right)]


class _KafkaTarget(_Target):
    """The Kafka sink's topics, rebuilt into the latest row per key (read_committed)."""

    def __init__(self, config: WorkerConfig) -> None:
        assert config.sink.kafka is not None
        self.config = config
        self.kafka = config.sink.kafka
        # (database, mapped table) -> key id -> the row's data (None: deleted)
        self.state: dict[tuple[str, str], dict[bytes, dict[str, Any] | None]] = {}
        self.low: Position = ("", 0)
        self.high: Position = ("", 0)
        self.seen: dict[str, set[bytes]] = {}

    def plan(self, source: TableSchema) -> Plan | str:
        return plan_table(self.config, source, None, source.database)

    def _topic(self, plan: Plan) -> str:
        change = Change(plan.target_database, plan.target_table, "read", {})
        return rules.topic(self.config, change)

    def prepare(self, plans: list[Plan]) -> None:
        """Read the tables' topics from the beginning to their end (read_committed)."""
        assert self.touched is not None
        if self.kafka.format == "avro":  # JSON records only: say so rather than all drift
            raise NotImplementedError(
                "verifyRequest does not read format avro's records yet (the JSON formats "
                "only); nothing was compared"
            )
        self.low = self.touched.position or ("", 0)
        keys = {(p.target_database, p.target_table): p for p in plans}
        self.state = {name: {} for name in keys}
        topics = sorted({self._topic(p) for p in plans})
        consumer = Consumer(
            {
                "bootstrap.servers": self.kafka.bootstrap_servers,
                **tls.kafka_settings(self.kafka),
                "group.id": f"ferry-verify-{self.config.task.id}-{time.monotonic_ns()}",
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
            }
        )
        deadline = time.monotonic() + 10 * KAFKA_TIMEOUT
        try:
            assigned = []
            metadata = consumer.list_topics(timeout=KAFKA_TIMEOUT)
            for topic in topics:
                found = metadata.topics.get(topic)
                if found is None or found.error is not None:
                    continue
                assigned += [TopicPartition(topic, p, OFFSET_BEGINNING) for p in found.partitions]
            # The end as of now (a busy topic never stops growing): read to these offsets.
            ends: dict[tuple[str, int], int] = {}
            for tp in assigned:
                _, high = consumer.get_watermark_offsets(tp, timeout=KAFKA_TIMEOUT)
                ends[(tp.topic, tp.partition)] = high
            consumer.assign(assigned)
            pending = {name for name, high in ends.items() if high > 0}
            while pending:
                message = consumer.poll(1.0)
                if message is None:
                    at = consumer.position([TopicPartition(t, p) for t, p in pending])
                    pending -= {
                        (tp.topic, tp.partition)
                        for tp in at
                        if tp.offset >= ends[(tp.topic, tp.partition)]
                    }
                    if time.monotonic() > deadline:
                        raise errors.TransientError(
                            "SinkUnavailable", f"verify: timed out reading {', '.join(topics)}"
                        )
                    continue
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        pending.discard((message.topic(), message.partition()))
                        continue
                    raise KafkaException(error)
                name = (str(message.topic()), int(message.partition() or 0))
                if (message.offset() or 0) + 1 >= ends.get(name, 0):
                    pending.discard(name)
                self._apply(keys, message.value())
        except KafkaException as error:
            raise errors.from_kafka(error, "verify: reading the topics") from None
        finally:
            consumer.close()
        self.high = self.touched.position or ("", 0)

    def _apply(self, plans: dict[tuple[str, str], Plan], raw: bytes | None) -> None:
        """One record into the latest state (records of other tables are left out)."""
        if raw is None:
            return
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return
        if not isinstance(value, dict):
            return
        if self.kafka.format == "debezium":
            where = value.get("source") or {}
            name = (str(where.get("db")), str(where.get("table")))
            row = value.get("after")
            deleted = value.get("op") == "d"
            keyed = value.get("before") if deleted else row
        else:
            name = (str(value.get("database")), str(value.get("table")))
            row = value.get("data")
            deleted = value.get("type") == "delete"
            keyed = row
        plan = plans.get(name)
        if plan is None or not isinstance(keyed, dict):
            return
        ident = key_id(plan.key_of(keyed, mapped=True))
        self.state[name][ident] = None if deleted else row

    def _expected(self, plan: Plan, row: dict[str, Any]) -> dict[str, Any]:
        change = Change(
            plan.source.database, plan.source.table, "read", row, None, plan.source.primary_key
        )
        mapped = rules.apply(self.config, change)
        assert mapped is not None
        loaded: dict[str, Any] = orjson.loads(orjson.dumps(mapped.data))
        return loaded

    def _compare(self, plan: Plan, rows: list[dict[str, Any]], at: Position) -> list[Candidate]:
        state = self.state.get((plan.target_database, plan.target_table), {})
        seen = self.seen.setdefault(plan.name, set())
        low, high = _window(at, self.low, self.high)
        found = []
        for row in rows:
            key = plan.key_of(row)
            ident = key_id(key)
            seen.add(ident)
            if state.get(ident) != self._expected(plan, row):
                found.append(Candidate(plan.name, key, low, high))
        return found

    def chunk(
        self,
        snap: Snapshot,
        plan: Plan,
        after: list[Any] | None,
        upto: list[Any] | None,
        at: Position,
        verifier: Verifier,
    ) -> list[Candidate]:
        rows = snap.chunk_rows(plan.source, after, upto)  # ends the transaction
        assert isinstance(rows, list), "verification reads its tables column by column"
        verifier.rows += len(rows)
        return self._compare(plan, rows, at)

    def finish_table(self, plan: Plan, first: Position) -> list[Candidate]:
        """Keys the topics hold live that no chunk of the source had."""
        state = self.state.get((plan.target_database, plan.target_table), {})
        seen = self.seen.pop(plan.name, set())
        low, high = _window(first, self.low, self.high)
        high = max(high, self.touched.position or high) if self.touched else high
        found = []
        for ident, row in state.items():
            if ident not in seen and row is not None:
                key = plan.key_of(row, mapped=True)
                found.append(Candidate(plan.name, key, low, high))
        return found

    def recheck(self, snap: Snapshot, plan: Plan, keys: list[list[Any]]) -> list[Candidate]:
        at = position_of(snap.begin())
        assert at is not None
        source = plan.side(False)
        where, args = checksum.keys_sql(source, keys)
        names = ", ".join(
            f"CAST({schema.quote(c.name)} AS DOUBLE)" if c.kind == "float" else schema.quote(c.name)
            for c in plan.source.columns
        )
        try:
            raw = _query(snap.conn, f"SELECT {names} FROM {source.name}{where}", args)
        finally:
            snap.end()
        converters = [types.converter(c) for c in plan.source.columns]
        rows = [
            {c.name: f(v) for c, f, v in zip(plan.source.columns, converters, row, strict=True)}
            for row in raw
        ]
        found = self._compare(plan, rows, at)
        present = {key_id(plan.key_of(row)) for row in rows}
        state = self.state.get((plan.target_database, plan.target_table), {})
        low, high = _window(at, self.low, self.high)
        for key in keys:  # gone from the source: the topics must hold it deleted
            ident = key_id(key)
            if ident not in present and state.get(ident) is not None:
                found.append(Candidate(plan.name, key, low, high))
        self.seen.pop(plan.name, None)
        return found
