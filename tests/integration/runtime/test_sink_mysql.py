"""The MySQL sink against the real MariaDB: a second database on the same server is the target,
written by a fresh user holding only the grants docs/mysql-sink.md asks for.

Snapshot + cdc under concurrent writes leaves the target equal to the source (every row,
every column, the type matrix included); tables without a primary key prove exactly-once (a
replayed batch would duplicate their rows); SIGKILLed workers resume with nothing lost or
doubled; a second worker fences the first; a killed sink connection is retried; generated
columns are left to the target; the loop guard, a missing table or column (also after DDL
mid-stream), a refused row and a wrong password each end with a clear reason.
"""

from __future__ import annotations

import random
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tests.conftest import service_missing
from tests.integration.runtime.test_types_roundtrip import COLUMNS, SQL_VALUES
from tests.support import wait_until

pytestmark = [pytest.mark.mysql]

SINK_PASSWORD_ENV = "FERRY_TEST_SINK_PASSWORD"
ITEMS = (
    "id int PRIMARY KEY, name varchar(50) NOT NULL, qty int, price decimal(12,2), "
    "note text NULL, changed datetime(6) NULL"
)
NOPK = "a int, b varchar(20), c double NULL"  # no primary key, duplicate rows on purpose
LOG = "seq bigint NOT NULL, msg varchar(100)"  # insert-only, no key: a replay duplicates


@pytest.fixture
def target(
    database: str, admin_sql: Callable[..., Any], testenv: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A second database on the same server, and the sink's password in the environment."""
    name = f"{database}_to"
    admin_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    admin_sql("SET SESSION time_zone = '+00:00'")
    monkeypatch.setenv(SINK_PASSWORD_ENV, str(testenv.mysql["password"]))
    yield name
    admin_sql(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture
def sink_user(target: str, admin_sql: Callable[..., Any], testenv: Any) -> Iterator[str]:
    """A fresh user holding exactly the grants docs/mysql-sink.md asks for, on the target."""
    user = f"fsink_{uuid.uuid4().hex[:8]}"
    admin_sql(f"CREATE USER '{user}'@'%%' IDENTIFIED BY %s", (testenv.mysql["password"],))
    # (An unescaped _ in a grant's database name matches any character: fine for a test.)
    admin_sql(f"GRANT SELECT, INSERT, UPDATE, DELETE, CREATE ON `{target}`.* TO '{user}'@'%'")
    yield user
    admin_sql(f"DROP USER IF EXISTS '{user}'@'%'")


@pytest.fixture
def mysql_config(
    make_config: Callable[..., dict[str, Any]], testenv: Any, target: str, sink_user: str
) -> Callable[..., dict[str, Any]]:
    """make_config with sink.mysql (the fresh sink user) instead of sink.kafka."""

    def make(**overrides: Any) -> dict[str, Any]:
        sink = overrides.pop("sink", {})
        data = make_config(**overrides)
        data["sink"] = {
            "mysql": {
                "host": testenv.mysql["host"],
                "port": testenv.mysql["port"],
                "user": sink_user,
                "passwordEnv": SINK_PASSWORD_ENV,
                "database": target,
                **sink,
            }
        }
        return data

    return make


class Sink:
    """One test's source database and target database (on the same server), SQL as admin,
    and sink.mysql worker configs and in-process runs."""

    def __init__(
        self,
        source: str,
        target: str,
        sql: Callable[..., Any],
        config: Callable[..., dict[str, Any]],
        run: Callable[[dict[str, Any]], Any],
    ) -> None:
        self.source, self.target, self.sql, self.config, self.run = (
            source, target, sql, config, run,
        )  # fmt: skip

    def create(self, table: str, columns: str) -> None:
        create(self.sql, self.source, self.target, table, columns)

    def same(self, tables: list[str]) -> bool:
        return same(self.sql, self.source, self.target, tables)

    def converge(self, tables: list[str], timeout: float = 60) -> None:
        converge(self.sql, self.source, self.target, tables, timeout)

    def streaming(self, worker: Any) -> None:
        wait_until(lambda: worker.tracker.state == "Streaming", 60, "streaming")


@pytest.fixture
def sink(
    database: str,
    target: str,
    admin_sql: Callable[..., Any],
    mysql_config: Callable[..., dict[str, Any]],
    run_worker: Callable[..., Any],
) -> Sink:
    return Sink(database, target, admin_sql, mysql_config, run_worker)


def rows(sql: Callable[..., Any], database: str, table: str) -> list[tuple[Any, ...]]:
    """Every row, every column (FLOAT widened so no bit hides), in a stable order."""
    columns = sql(
        "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
        "AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
        (database, table),
    )
    select = ", ".join(
        f"CAST(`{name}` AS DOUBLE)" if kind == "float" else f"`{name}`" for name, kind in columns
    )
    return sorted(sql(f"SELECT {select} FROM `{database}`.`{table}`"), key=repr)


def same(sql: Callable[..., Any], source: str, target: str, tables: list[str]) -> bool:
    return all(rows(sql, source, t) == rows(sql, target, t) for t in tables)


def differences(sql: Callable[..., Any], source: str, target: str, tables: list[str]) -> Any:
    """Per table: (rows only in the source, rows only in the target), for failure messages."""
    out = {}
    for table in tables:
        left, right = Counter(rows(sql, source, table)), Counter(rows(sql, target, table))
        if left != right:
            out[table] = (list((left - right).items())[:5], list((right - left).items())[:5])
    return out


def converge(
    sql: Callable[..., Any], source: str, target: str, tables: list[str], timeout: float = 60
) -> None:
    """Wait until the target equals the source; on timeout, show what differs."""
    try:
        wait_until(lambda: same(sql, source, target, tables), timeout, "target == source")
    except AssertionError:
        assert differences(sql, source, target, tables) == {}
        raise


def create(sql: Callable[..., Any], source: str, target: str, table: str, columns: str) -> None:
    sql(f"CREATE TABLE `{source}`.`{table}` ({columns})")
    sql(f"CREATE TABLE `{target}`.`{table}` LIKE `{source}`.`{table}`")


class Writer(threading.Thread):
    """Random inserts, updates (also of the key), deletes on items, and, once ``everywhere``
    is set, on nopk and log too, until done."""

    def __init__(self, sql: Callable[..., Any], database: str, first_id: int) -> None:
        super().__init__(daemon=True)
        self.sql, self.db = sql, database
        self.done = threading.Event()
        self.random = random.Random(7)
        self.next_id = first_id
        self.seq = 1_000_000
        self.changes = 0
        self.everywhere = threading.Event()

    def run(self) -> None:
        db, rnd = self.db, self.random
        while not self.done.is_set():
            choice = rnd.random() if self.everywhere.is_set() else rnd.random() * 0.65
            key = rnd.randrange(1, self.next_id)
            self.seq += 1
            if choice < 0.25:
                self.sql(
                    f"INSERT INTO `{db}`.items VALUES (%s, %s, %s, %s, %s, NOW(6))",
                    (self.next_id, f"n{self.next_id}", key, f"{key}.25", "ü" * (key % 7)),
                )
                self.next_id += 1
            elif choice < 0.5:
                self.sql(
                    f"UPDATE `{db}`.items SET qty = qty + 1, price = price * 2, note = NULL, "
                    "changed = NOW(6) WHERE id = %s",
                    (key,),
                )
            elif choice < 0.55:  # the primary key changes: delete old + upsert new
                self.sql(
                    f"UPDATE IGNORE `{db}`.items SET id = %s WHERE id = %s", (self.next_id, key)
                )
                self.next_id += 1
            elif choice < 0.65:
                self.sql(f"DELETE FROM `{db}`.items WHERE id = %s", (key,))
            elif choice < 0.85:
                self.sql(f"INSERT INTO `{db}`.log VALUES (%s, %s)", (self.seq, f"event {key}"))
            elif choice < 0.95:
                self.sql(
                    f"UPDATE `{db}`.nopk SET b = %s, c = %s WHERE a = %s LIMIT 1",
                    (f"u{self.seq % 3}", key / 7, key % 50),
                )
            else:
                self.sql(f"DELETE FROM `{db}`.nopk WHERE a = %s LIMIT 1", (key % 50,))
            self.changes += 1
            time.sleep(0.002)

    def stop(self) -> None:
        self.done.set()
        self.join(30)


def seed(sql: Callable[..., Any], source: str, target: str, items: int) -> None:
    create(sql, source, target, "items", ITEMS)
    create(sql, source, target, "nopk", NOPK)
    create(sql, source, target, "log", LOG)
    sql(
        f"INSERT INTO `{source}`.items VALUES (%s, %s, %s, %s, %s, %s)",
        [(i, f"n{i}", i, f"{i}.5", None, "2024-01-01 00:00:00.5") for i in range(1, items + 1)],
        many=True,
    )
    sql(
        f"INSERT INTO `{source}`.nopk VALUES (%s, %s, %s)",
        [(i % 50, "same", None) for i in range(300)],
        many=True,
    )
    sql(f"INSERT INTO `{source}`.log VALUES (%s, %s)", [(i, "seed") for i in range(50)], many=True)


TABLES = ["items", "nopk", "log"]


def test_snapshot_and_cdc_under_load_leave_the_target_equal_to_the_source(
    sink: Sink,
) -> None:
    sql, source, target = sink.sql, sink.source, sink.target
    seed(sql, source, target, 3000)
    sink.create("matrix", f"id int PRIMARY KEY, {COLUMNS}")
    for index, values in enumerate(SQL_VALUES):
        sql(f"INSERT INTO `{source}`.matrix VALUES {values}", (index + 1,))
    writer = Writer(sql, source, 3001)
    writer.everywhere.set()  # one uninterrupted snapshot is exact for every table
    writer.start()
    worker = sink.run(sink.config())
    sink.streaming(worker)
    # The type matrix through the binlog too: inserts, a key change, deletes.
    for index, values in enumerate(SQL_VALUES):
        sql(f"INSERT INTO `{source}`.matrix VALUES {values}", (index + 101,))
    sql(f"INSERT INTO `{source}`.matrix VALUES {SQL_VALUES[0]}", (104,))
    sql(f"UPDATE `{source}`.matrix SET id = 200 WHERE id = 102")
    sql(f"DELETE FROM `{source}`.matrix WHERE id = 104")
    time.sleep(3)
    writer.stop()
    assert writer.changes > 300
    sink.converge([*TABLES, "matrix"])
    # ids 1-3 came through the snapshot, 101, 200 (was 102) and 103 through the binlog.
    assert [row[0] for row in rows(sql, target, "matrix")] == [1, 101, 103, 2, 200, 3]
    assert worker.exit_code is None and worker.tracker.state == "Streaming"
    assert worker.stop() == 0
    (stored,) = sql(
        f"SELECT checkpoint, epoch FROM `{target}`.ferry_checkpoints WHERE task_id = %s",
        (worker.worker.task_id,),
    )
    assert '"position"' in stored[0] and stored[1] == 1


def _status(worker: Any) -> str | None:
    document = worker.status()
    return None if document is None else str(document.get("state"))


@pytest.mark.long
def test_sigkilled_workers_resume_with_no_row_lost_or_doubled(
    sink: Sink,
    spawn_worker: Callable[..., Any],
) -> None:
    sql, source, target = sink.sql, sink.source, sink.target
    seed(sql, source, target, 20_000)
    config = sink.config(performance={"maxBatchDelay": "50ms", "snapshotChunkSize": 250})
    writer = Writer(sql, source, 20_001)
    writer.start()
    chooser = random.Random(3)
    killed_in: list[str] = []
    for run in range(5):
        worker = spawn_worker(config)
        # Two kills during the snapshot, while only the keyed table changes: a resumed
        # snapshot reads tables anew, exact only for tables with a primary key (see
        # docs/mysql-sink.md). Then kills while streaming, with every table changing.
        phases = ("Snapshotting", "Streaming") if run < 2 else ("Streaming",)
        state = wait_until(
            lambda w=worker, p=phases: _status(w) in p and _status(w), 120, f"worker in {phases}"
        )
        if state == "Streaming":
            writer.everywhere.set()
        time.sleep(chooser.uniform(0.2, 1.5))
        assert worker.process.poll() is None, worker.output()
        worker.process.send_signal(signal.SIGKILL)
        worker.wait()
        killed_in.append(state)
    final = spawn_worker(config)
    time.sleep(2)
    writer.stop()
    sink.converge(TABLES, 90)
    final.process.send_signal(signal.SIGTERM)
    assert final.wait(30) == 0, final.output()
    assert "Snapshotting" in killed_in and killed_in[-3:] == ["Streaming"] * 3
    assert writer.changes > 300
    # Every run opened the sink and took a new epoch: 5 killed + the final one.
    (epoch,) = sql(f"SELECT epoch FROM `{target}`.ferry_checkpoints")[0]
    assert epoch == 6


def test_a_second_worker_with_the_same_task_id_fences_the_first(
    sink: Sink,
) -> None:
    sql, source = sink.sql, sink.source
    sink.create("log", LOG)
    config = sink.config()
    first = sink.run(config)
    sink.streaming(first)
    sql(f"INSERT INTO `{source}`.log VALUES (1, 'before')")
    wait_until(lambda: sink.same(["log"]), 30, "first delivers")
    second = sink.run({**config, "source": {**config["source"], "serverId": 4242}})
    sink.streaming(second)
    sql(f"INSERT INTO `{source}`.log VALUES (2, 'after')")
    assert first.join(30) == 1
    assert first.worker.failure is not None and first.worker.failure.reason == "Fenced"
    wait_until(lambda: sink.same(["log"]), 30, "no duplicate")
    assert second.exit_code is None and second.tracker.state == "Streaming"


@pytest.mark.parametrize("into_the_source_database", [True, False])
def test_a_sink_that_would_read_its_own_writes_is_refused(
    sink: Sink,
    into_the_source_database: bool,
) -> None:
    source = sink.source
    config = sink.config()
    if into_the_source_database:  # selected by include: ["<database>.*"]
        config["sink"]["mysql"]["database"] = source
    else:  # no database: every table onto itself
        del config["sink"]["mysql"]["database"]
    worker = sink.run(config)
    assert worker.join(30) == 1
    failure = worker.worker.failure
    assert failure is not None and failure.reason == "InvalidConfig"
    assert failure.message.startswith("sink.mysql.database:")


def test_a_missing_target_table_or_column_is_named(
    sink: Sink,
) -> None:
    sql, source, target = sink.sql, sink.source, sink.target
    sql(f"CREATE TABLE `{source}`.orders (id int PRIMARY KEY, total int)")
    sql(f"INSERT INTO `{source}`.orders VALUES (1, 10)")
    worker = sink.run(sink.config())
    assert worker.join(30) == 1
    failure = worker.worker.failure
    assert failure is not None and failure.reason == "TargetSchemaMismatch"
    assert f"`{target}`.`orders`" in failure.message and "does not exist" in failure.message

    sql(f"CREATE TABLE `{target}`.orders (id int PRIMARY KEY)")
    worker = sink.run(sink.config())
    assert worker.join(30) == 1
    failure = worker.worker.failure
    assert failure is not None and failure.reason == "TargetSchemaMismatch"
    assert "no column `total`" in failure.message


def test_a_row_the_target_refuses_follows_the_error_policy(
    sink: Sink,
) -> None:
    sql, source, target = sink.sql, sink.source, sink.target
    sql(f"CREATE TABLE `{source}`.notes (id int PRIMARY KEY, body varchar(100))")
    sql(f"CREATE TABLE `{target}`.notes (id int PRIMARY KEY, body varchar(5))")
    config = sink.config(errorPolicy={"mode": "deadLetter", "deadLetterTopic": "unused"})
    worker = sink.run(config)
    sink.streaming(worker)
    sql(
        f"INSERT INTO `{source}`.notes VALUES (%s, %s)",
        [(1, "ok"), (2, "far too long for five"), (3, "fine")],
        many=True,
    )
    wait_until(lambda: len(sql(f"SELECT id FROM `{target}`.notes")) == 2, 30, "good rows")
    assert sql(f"SELECT id, body FROM `{target}`.notes ORDER BY id") == (
        (1, "ok"),
        (3, "fine"),
    )
    letters = sql(f"SELECT table_name, error FROM `{target}`.ferry_dead_letters")
    assert len(letters) == 1 and letters[0][0] == f"{source}.notes"
    assert "Data too long" in letters[0][1]
    assert worker.tracker.errors_by_reason == {"PoisonRow": 1}


def test_a_row_refused_late_in_a_large_batch_leaves_every_other_row_applied_once(
    sink: Sink,
) -> None:
    """A run of rows goes as one multi-row INSERT: a refused row near its end rolls back the
    rest and the batch is replayed row by row (the target has no key: a row applied twice
    would be there twice)."""
    sql, source, target = sink.sql, sink.source, sink.target
    sql(f"CREATE TABLE `{source}`.notes (id int PRIMARY KEY, body varchar(100))")
    sql(f"CREATE TABLE `{target}`.notes (id int NOT NULL, body varchar(5))")
    count, bad = 2500, 2100
    rows = [(n, "far too long" if n == bad else f"r{n % 1000}") for n in range(1, count + 1)]
    config = sink.config(errorPolicy={"mode": "deadLetter", "deadLetterTopic": "unused"})
    worker = sink.run(config)
    sink.streaming(worker)
    sql(f"INSERT INTO `{source}`.notes VALUES (%s, %s)", rows, many=True)  # one transaction
    wait_until(lambda: sql(f"SELECT COUNT(*) FROM `{target}`.notes")[0][0] == count - 1, 60, "rows")
    wanted = tuple(row for row in rows if row[0] != bad)
    assert sql(f"SELECT id, body FROM `{target}`.notes ORDER BY id") == wanted
    letters = sql(f"SELECT table_name, error FROM `{target}`.ferry_dead_letters")
    assert len(letters) == 1 and "Data too long" in letters[0][1]
    assert worker.tracker.errors_by_reason == {"PoisonRow": 1}


def test_a_wrong_sink_password_fails_without_showing_it(
    sink: Sink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SINK_PASSWORD_ENV, "not-the-Password-42")
    worker = sink.run(sink.config())
    assert worker.join(30) == 1
    failure = worker.worker.failure
    assert failure is not None and failure.reason == "AuthenticationFailed"
    assert "sink.mysql.passwordEnv" in failure.message
    assert "not-the-Password-42" not in failure.message


def test_ddl_mid_stream_stops_with_what_to_alter_and_resumes_after_it(
    sink: Sink,
) -> None:
    sql, source, target = sink.sql, sink.source, sink.target
    sink.create("orders", "id int PRIMARY KEY, total int")
    sql(f"INSERT INTO `{source}`.orders VALUES (1, 10)")
    config = sink.config()
    worker = sink.run(config)
    sink.streaming(worker)
    sql(f"ALTER TABLE `{source}`.orders ADD COLUMN note varchar(20) NULL")
    sql(f"INSERT INTO `{source}`.orders VALUES (2, 20, 'new column')")
    assert worker.join(30) == 1
    failure = worker.worker.failure
    assert failure is not None and failure.reason == "TargetSchemaMismatch"
    assert "no column `note`" in failure.message and "alter the target" in failure.message
    # Nothing of the refused batch was applied; after the ALTER it resumes from the checkpoint.
    assert sql(f"SELECT id FROM `{target}`.orders") == ((1,),)
    sql(f"ALTER TABLE `{target}`.orders ADD COLUMN note varchar(20) NULL")
    again = sink.run(config)
    sql(f"UPDATE `{source}`.orders SET note = 'old row' WHERE id = 1")
    sink.converge(["orders"])
    assert again.exit_code is None


def test_a_lost_sink_connection_is_retried_from_the_checkpoint(
    sink: Sink,
    sink_user: str,
) -> None:
    sql, source = sink.sql, sink.source
    sink.create("log", LOG)
    worker = sink.run(sink.config())
    sink.streaming(worker)
    for seq in range(300):
        sql(f"INSERT INTO `{source}`.log VALUES (%s, 'x')", (seq,))
        if seq in (100, 200):
            for (conn,) in sql(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = %s", (sink_user,)
            ):
                sql(f"KILL CONNECTION {int(conn)}")
    sink.converge(["log"])
    assert worker.tracker.errors_by_reason.get("SinkUnavailable", 0) >= 1
    assert worker.exit_code is None


def test_generated_columns_are_computed_by_the_target(
    sink: Sink,
) -> None:
    sql, source, target = sink.sql, sink.source, sink.target
    columns = "id int PRIMARY KEY, a int, twice int AS (a * 2) STORED, v int AS (a + 1) VIRTUAL"
    sink.create("g", columns)
    sql(f"INSERT INTO `{source}`.g (id, a) VALUES (1, 1), (2, 2)")
    worker = sink.run(sink.config())
    sink.streaming(worker)
    sql(f"INSERT INTO `{source}`.g (id, a) VALUES (3, 3)")
    sql(f"UPDATE `{source}`.g SET a = 10 WHERE id = 1")
    sql(f"DELETE FROM `{source}`.g WHERE id = 2")
    sink.converge(["g"])
    assert sql(f"SELECT id, twice, v FROM `{target}`.g ORDER BY id") == (
        (1, 20, 11),
        (3, 6, 4),
    )


def test_a_refused_row_with_error_policy_fail_stops_before_its_batch_commits(
    sink: Sink,
) -> None:
    sql, source, target = sink.sql, sink.source, sink.target
    sql(f"CREATE TABLE `{source}`.notes (id int PRIMARY KEY, n int)")
    sql(f"CREATE TABLE `{target}`.notes (id int PRIMARY KEY, n tinyint NOT NULL)")
    worker = sink.run(sink.config())
    sink.streaming(worker)
    sql(f"INSERT INTO `{source}`.notes VALUES (1, 1), (2, 1000), (3, NULL)")
    assert worker.join(30) == 1
    failure = worker.worker.failure
    assert failure is not None and failure.reason == "PoisonRow"
    assert "the target refused a row of" in failure.message and "range" in failure.message
    assert sql(f"SELECT * FROM `{target}`.notes") == ()


def test_a_sink_user_that_must_use_tls_gets_rows_over_tls(
    sink: Sink, sink_user: str, testenv: Any
) -> None:
    """The sink connection uses sink.mysql.tls: its user is REQUIRE SSL, so without TLS the
    server refuses it (tried first), with TLS verified against the test CA rows arrive."""
    ca = testenv.get("FERRY_TLS_CA_FILE")
    if not ca:
        service_missing("the secured listeners", "FERRY_TLS_CA_FILE not in the env file")
    sink.sql(f"ALTER USER '{sink_user}'@'%' REQUIRE SSL")
    sink.create("items", ITEMS)
    sink.sql(f"INSERT INTO `{sink.source}`.items (id, name) VALUES (1, 'a'), (2, 'b')")
    refused = sink.run(sink.config(restartPolicy={"maxRetries": 0}))
    assert refused.join(60) == 1
    assert refused.worker.failure is not None
    assert refused.worker.failure.reason == "AuthenticationFailed"
    worker = sink.run(sink.config(sink={"tls": {"mode": "verify-identity", "caFile": ca}}))
    sink.streaming(worker)
    sink.sql(f"INSERT INTO `{sink.source}`.items (id, name) VALUES (3, 'c')")
    sink.converge(["items"])
    assert [row[0] for row in rows(sink.sql, sink.target, "items")] == [1, 2, 3]
