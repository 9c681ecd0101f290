"""sink.mysql.schemaChanges on the real MariaDB (the target is a second database on the same
server): ``evolve`` follows ADD, DROP, RENAME, CHANGE and MODIFY COLUMN, CREATE TABLE,
TRUNCATE and RENAME TABLE, under the task's mapping, and the target then equals the source
(rows and column types); a step the target already has is skipped (what a crash between the
target's DDL and the checkpoint leaves), and a fenced worker changes nothing; ``stop`` (the
default) stops at the first row that does not fit, with a message naming the field;
``ignore`` leaves the target alone and keeps streaming the columns it has."""

# The fixtures of test_sink_mysql are imported by name, and tests take them as parameters.
# ruff: noqa: F811

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from tests.integration.runtime.test_sink_mysql import (  # noqa: F401 (fixtures)
    Sink,
    mysql_config,
    rows,
    sink,
    sink_user,
    target,
)
from tests.support import wait_until

pytestmark = [pytest.mark.mysql]


@pytest.fixture
def evolving(sink: Sink, sink_user: str, admin_sql: Callable[..., Any]) -> Sink:
    """The sink user with the grants evolve adds: ALTER, and DROP (for TRUNCATE)."""
    admin_sql(f"GRANT ALTER, DROP ON `{sink.target}`.* TO '{sink_user}'@'%'")
    return sink


def _columns(sql: Callable[..., Any], database: str, table: str) -> list[tuple[str, str]]:
    return list(
        sql(
            "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS WHERE "
            "TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
            (database, table),
        )
    )


def _same_shape(sink: Sink, table: str) -> bool:
    return _columns(sink.sql, sink.source, table) == _columns(sink.sql, sink.target, table)


def test_evolve_follows_column_changes_and_new_tables(evolving: Sink) -> None:
    sink = evolving
    sql, src, dst = sink.sql, f"`{evolving.source}`", f"`{evolving.target}`"
    sink.create("t", "id int PRIMARY KEY, a int, b varchar(10)")
    sql(f"INSERT INTO {src}.t VALUES (1, 10, 'one'), (2, 20, 'two')")
    sql(f"CREATE TABLE {src}.m (id int PRIMARY KEY, a int, secret varchar(10))")
    sql(f"CREATE TABLE {dst}.m2 (id int PRIMARY KEY, aa int)")  # mapping: m → m2, a → aa
    mapping: dict[str, Any] = {"table": f"{sink.source}.m", "target": "m2", "columns": {"a": "aa"}}
    mapping["drop"] = ["secret"]
    config = sink.config(sink={"schemaChanges": "evolve"}, mapping=[mapping])
    worker = sink.run(config)
    sink.streaming(worker)

    sql(f"ALTER TABLE {src}.t ADD COLUMN c int NOT NULL DEFAULT 7 AFTER a")
    sql(f"INSERT INTO {src}.t VALUES (3, 30, 8, 'three')")
    sql(f"ALTER TABLE {src}.t DROP COLUMN b")
    sql(f"UPDATE {src}.t SET c = 9 WHERE id = 1")
    sql(f"ALTER TABLE {src}.t RENAME COLUMN a TO a2, ADD INDEX ix_c (c)")  # the index: not applied
    sql(f"INSERT INTO {src}.t VALUES (4, 40, 10)")
    sql(f"ALTER TABLE {src}.t CHANGE a2 a3 bigint NULL, MODIFY c varchar(20) NOT NULL")
    sql(f"UPDATE {src}.t SET a3 = 5000000000, c = 'text' WHERE id = 2")
    sql(f"CREATE TABLE {src}.n (id int PRIMARY KEY, v json, KEY kv (id))")
    sql(f"INSERT INTO {src}.n VALUES (1, '{{\"k\": [1, 2]}}')")
    sql(f"INSERT INTO {src}.m VALUES (1, 1, 's')")
    sql(f"ALTER TABLE {src}.m RENAME COLUMN a TO a_new, ADD COLUMN x int, DROP COLUMN secret")
    sql(f"INSERT INTO {src}.m VALUES (2, 2, 22)")
    sql(f"CREATE TABLE {src}.gone (id int PRIMARY KEY)")
    sql(f"INSERT INTO {src}.gone VALUES (1), (2)")
    sql(f"TRUNCATE TABLE {src}.gone")
    sql(f"INSERT INTO {src}.gone VALUES (3)")
    sql(f"CREATE TABLE {src}.old_name (id int PRIMARY KEY)")
    sql(f"RENAME TABLE {src}.old_name TO {src}.new_name")
    sql(f"INSERT INTO {src}.new_name VALUES (4)")

    wait_until(lambda: _columns(sql, sink.target, "new_name"), 45, "the new tables on the target")
    sink.converge(["t", "n", "gone", "new_name"], 45)
    assert not _columns(sql, sink.target, "old_name")  # renamed, not copied
    wait_until(lambda: _same_shape(sink, "t") and _same_shape(sink, "n"), 30, "same columns")
    assert [name for name, _ in _columns(sql, sink.target, "t")] == ["id", "a3", "c"]
    # The mapped table: aa (was a) renamed to a_new, x added, secret never there.
    assert _columns(sql, sink.target, "m2") == [
        ("id", "int(11)"), ("a_new", "int(11)"), ("x", "int(11)"),
    ]  # fmt: skip
    assert sql(f"SELECT id, a_new, x FROM {dst}.m2 ORDER BY id") == ((1, 1, None), (2, 2, 22))
    assert not sql(
        "SELECT 1 FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = 't' "
        "AND INDEX_NAME = 'ix_c'",
        (sink.target,),
    )
    assert worker.exit_code is None and worker.tracker.state == "Streaming"
    assert worker.tracker.view()["lastErrors"] == []  # no retry hid a failed step
    assert worker.stop() == 0

    # A step the target already has is skipped: the worker is stopped, the source changes,
    # and the same change is made on the target by hand before the worker reads it.
    sql(f"ALTER TABLE {src}.t ADD COLUMN d int")
    sql(f"ALTER TABLE {dst}.t ADD COLUMN d int")
    sql(f"INSERT INTO {src}.t VALUES (5, 50, 'five', 55)")
    again = sink.run(config)
    sink.converge(["t"], 30)
    assert _same_shape(sink, "t") and again.exit_code is None
    assert again.tracker.view()["lastErrors"] == []
    assert again.stop() == 0


def test_stop_is_the_default_and_stops_at_the_first_row_that_does_not_fit(sink: Sink) -> None:
    sql, src = sink.sql, f"`{sink.source}`"
    sink.create("t", "id int PRIMARY KEY, a int")
    worker = sink.run(sink.config())
    sink.streaming(worker)
    sql(f"INSERT INTO {src}.t VALUES (1, 10)")
    wait_until(lambda: sql(f"SELECT id FROM `{sink.target}`.t"), 30, "row 1")
    sql(f"ALTER TABLE {src}.t ADD COLUMN c int")
    sql(f"INSERT INTO {src}.t VALUES (2, 20, 2)")
    assert worker.join(30) == 1
    failure = worker.worker.failure
    assert failure is not None and failure.reason == "TargetSchemaMismatch"
    assert "no column `c`" in failure.message
    assert "sink.mysql.schemaChanges is stop" in failure.message
    assert "evolve" in failure.message and "ignore" in failure.message
    # The target was left alone: no column added, the row before the DDL applied.
    assert [name for name, _ in _columns(sql, sink.target, "t")] == ["id", "a"]
    assert sql(f"SELECT id, a FROM `{sink.target}`.t") == ((1, 10),)


def test_ignore_leaves_the_target_alone_and_keeps_streaming(sink: Sink) -> None:
    sql, src = sink.sql, f"`{sink.source}`"
    sink.create("t", "id int PRIMARY KEY, a int, b varchar(10)")
    worker = sink.run(sink.config(sink={"schemaChanges": "ignore"}))
    sink.streaming(worker)
    sql(f"INSERT INTO {src}.t VALUES (1, 10, 'one')")
    sql(f"ALTER TABLE {src}.t ADD COLUMN c int")
    sql(f"INSERT INTO {src}.t VALUES (2, 20, 'two', 2)")
    sql(f"UPDATE {src}.t SET c = 3, a = 11 WHERE id = 1")
    sql(f"ALTER TABLE {src}.t DROP COLUMN b")
    sql(f"INSERT INTO {src}.t VALUES (3, 30, 3)")
    sql(f"DELETE FROM {src}.t WHERE id = 2")

    # Rows carry on with the columns both sides have; the target's own b stays as it was
    # (NULL for rows inserted after the source dropped it).
    def projected() -> bool:
        return rows(sql, sink.target, "t") == [(1, 11, "one"), (3, 30, None)]

    wait_until(projected, 30, "the target to follow the common columns")
    assert [name for name, _ in _columns(sql, sink.target, "t")] == ["id", "a", "b"]
    assert worker.exit_code is None and worker.tracker.state == "Streaming"
    assert worker.tracker.view()["lastErrors"] == []
    assert worker.stop() == 0


def test_a_fenced_worker_does_not_change_the_target(evolving: Sink) -> None:
    """DDL cannot share the checkpoint row's transaction, so the epoch is checked right
    before each target statement: a worker another one took over changes nothing."""
    sink = evolving
    sql, src = sink.sql, f"`{sink.source}`"
    sink.create("t", "id int PRIMARY KEY, a int")
    worker = sink.run(sink.config(sink={"schemaChanges": "evolve"}))
    sink.streaming(worker)
    sql(f"INSERT INTO {src}.t VALUES (1, 10)")
    wait_until(lambda: sql(f"SELECT id FROM `{sink.target}`.t"), 30, "row 1")
    # What a second worker's start does: take the task's next epoch.
    sql(f"UPDATE `{sink.target}`.ferry_checkpoints SET epoch = epoch + 1")
    sql(f"ALTER TABLE {src}.t ADD COLUMN c int")
    assert worker.join(30) == 1
    failure = worker.worker.failure
    assert failure is not None and failure.reason == "Fenced"
    assert [name for name, _ in _columns(sql, sink.target, "t")] == ["id", "a"]
