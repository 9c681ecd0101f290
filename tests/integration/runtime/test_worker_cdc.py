"""The worker end to end on the real MariaDB and Kafka: snapshot+cdc under concurrent writes,
DDL mid-stream, filters and mapping, resetPosition, fencing."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

pytestmark = [pytest.mark.mysql, pytest.mark.kafka]
ROWS = 100_000


class Writer(threading.Thread):
    """Random inserts, updates and deletes on ``db.big`` until stopped."""

    def __init__(self, sql: Callable[..., Any], database: str, first_id: int) -> None:
        super().__init__(daemon=True)
        self.sql, self.database, self.next_id = sql, database, first_id
        self.done = threading.Event()
        self.ops = 0
        self.random = random.Random(7)

    def run(self) -> None:
        table = f"`{self.database}`.big"
        while not self.done.is_set():
            choice = self.random.random()
            key = self.random.randint(1, self.next_id - 1)
            if choice < 0.4:
                self.sql(
                    f"INSERT INTO {table} (id, a, b) VALUES (%s, %s, 'new')",
                    (self.next_id, self.ops),
                )
                self.next_id += 1
            elif choice < 0.8:
                self.sql(f"UPDATE {table} SET a = %s, b = 'upd' WHERE id = %s", (self.ops, key))
            else:
                self.sql(f"DELETE FROM {table} WHERE id = %s", (key,))
            self.ops += 1


def _source_rows(sql: Callable[..., Any], database: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    rows = sql(f"SELECT id, a, b FROM `{database}`.big")
    return {(r[0],): {"id": r[0], "a": r[1], "b": r[2]} for r in rows}


def _server_position(sql: Callable[..., Any]) -> tuple[str, int]:
    file, pos = sql("SHOW MASTER STATUS")[0][:2]
    return str(file), int(pos)


def _caught_up(worker: Any, sql: Callable[..., Any]) -> Callable[[], bool]:
    """A condition: the worker delivered up to the server's position *as of now* (the shared
    server keeps moving with other tests' writes, so "equal to the current one" may never
    hold, and the server's idle heartbeat may never come)."""
    target = _server_position(sql)

    def reached() -> bool:
        position = worker.tracker.position
        return bool(position) and (position["file"], position["pos"]) >= target

    return reached


def test_snapshot_and_cdc_under_concurrent_writes_reconstruct_every_row(
    database: str,
    admin_sql: Callable[..., Any],
    make_config: Callable[..., dict[str, Any]],
    run_worker: Callable[..., Any],
    kafka_bootstrap: str,
    topic_prefix: str,
    helpers: Any,
) -> None:
    admin_sql(f"CREATE TABLE `{database}`.big (id int PRIMARY KEY, a int, b varchar(40))")
    numbers = f"`{database}`.seq_1_to_{ROWS}"  # MariaDB's sequence engine
    admin_sql(f"INSERT INTO `{database}`.big SELECT seq, seq, CONCAT('row ', seq) FROM {numbers}")
    started = time.monotonic()
    worker = run_worker(make_config(performance={"snapshotChunkSize": 5000, "batchSize": 2000}))
    writer = Writer(admin_sql, database, ROWS + 1)
    writer.start()
    helpers.wait_until(lambda: worker.tracker.state == "Streaming", 120, "the snapshot")
    snapshot_seconds = time.monotonic() - started
    progress = worker.tracker.progress()
    assert progress["percent"] == 100.0 and progress["tables"][0]["state"] == "Done"
    time.sleep(2)  # keep writing while streaming
    writer.done.set()
    writer.join()
    helpers.wait_until(_caught_up(worker, admin_sql), 120, "the worker to catch up")
    records = helpers.read_topic(kafka_bootstrap, f"{topic_prefix}.{database}.big")
    print(f"snapshot of {ROWS} rows + {writer.ops} changes: {snapshot_seconds:.1f}s")
    assert writer.ops > 100
    assert helpers.replay(records) == _source_rows(admin_sql, database)
    # Per key, binlog events arrive in binlog order (all of a key's records share a partition).
    last: dict[Any, tuple[str, int]] = {}
    for key, value in records:
        if value["type"] == "bootstrap-insert":
            continue
        file, pos = value["position"].rsplit(":", 1)
        where = (file, int(pos))
        assert where >= last.get(key["pk.id"], ("", 0)), f"out of order for {key}"
        last[key["pk.id"]] = where


def test_ddl_mid_stream_keeps_streaming_with_the_new_column_names(
    database: str,
    admin_sql: Callable[..., Any],
    make_config: Callable[..., dict[str, Any]],
    run_worker: Callable[..., Any],
    kafka_bootstrap: str,
    topic_prefix: str,
    helpers: Any,
) -> None:
    db = f"`{database}`"
    admin_sql(f"CREATE TABLE {db}.t (id int PRIMARY KEY, a int)")
    worker = run_worker(make_config(mode="cdc"))
    helpers.wait_until(lambda: worker.tracker.state == "Streaming", 60, "streaming")
    time.sleep(1)
    statements = [
        f"INSERT INTO {db}.t VALUES (1, 10)",
        f"ALTER TABLE {db}.t ADD COLUMN b varchar(10) DEFAULT 'x'",
        f"INSERT INTO {db}.t VALUES (2, 20, 'two')",
        f"ALTER TABLE {db}.t DROP COLUMN a",
        f"INSERT INTO {db}.t VALUES (3, 'three')",
        f"ALTER TABLE {db}.t RENAME COLUMN b TO c",
        f"INSERT INTO {db}.t VALUES (4, 'four')",
        f"CREATE TABLE {db}.u (k varchar(5) PRIMARY KEY, v json)",
        f"INSERT INTO {db}.u VALUES ('k1', '{{\"x\": 1}}')",
        f"RENAME TABLE {db}.u TO {db}.w",
        f"INSERT INTO {db}.w VALUES ('k2', '[1]')",
        f"DROP TABLE {db}.w",
        f"UPDATE {db}.t SET c = 'FOUR' WHERE id = 4",
    ]
    for statement in statements:
        admin_sql(statement)
        # MariaDB's binlog does not say a column is JSON; information_schema does, as of
        # now. Waiting keeps "now" close to the event (see docs/worker.md, limitations).
        helpers.wait_until(_caught_up(worker, admin_sql), 30, statement)
    helpers.wait_until(_caught_up(worker, admin_sql), 60, "the worker to catch up")
    assert worker.tracker.state == "Streaming"
    t = [v["data"] for _, v in helpers.read_topic(kafka_bootstrap, f"{topic_prefix}.{database}.t")]
    assert t == [
        {"id": 1, "a": 10},
        {"id": 2, "a": 20, "b": "two"},
        {"id": 3, "b": "three"},
        {"id": 4, "c": "four"},
        {"id": 4, "c": "FOUR"},
    ]
    u = helpers.read_topic(kafka_bootstrap, f"{topic_prefix}.{database}.u")
    w = helpers.read_topic(kafka_bootstrap, f"{topic_prefix}.{database}.w")
    assert [v["data"] for _, v in u] == [{"k": "k1", "v": {"x": 1}}]
    assert [v["data"] for _, v in w] == [{"k": "k2", "v": [1]}]


def test_filters_mapping_and_debezium_format(
    database: str,
    admin_sql: Callable[..., Any],
    make_config: Callable[..., dict[str, Any]],
    run_worker: Callable[..., Any],
    kafka_bootstrap: str,
    topic_prefix: str,
    helpers: Any,
) -> None:
    db = f"`{database}`"
    admin_sql(f"CREATE TABLE {db}.users (id int PRIMARY KEY, email varchar(50), pw varchar(50))")
    admin_sql(f"CREATE TABLE {db}.audit_log (id int PRIMARY KEY, line text)")
    admin_sql(f"CREATE TABLE {db}.nokey (line varchar(20))")
    admin_sql(f"INSERT INTO {db}.users VALUES (1, 'a@x', 'secret-hash')")
    admin_sql(f"INSERT INTO {db}.audit_log VALUES (1, 'ignored')")
    admin_sql(f"INSERT INTO {db}.nokey VALUES ('first'), ('second')")
    config = make_config(
        exclude=[f"{database}.audit_*"],
        mapping=[{"table": f"{database}.users", "target": "people",
                  "columns": {"email": "mail"}, "drop": ["pw"]}],
        sink={"kafka": {**make_config()["sink"]["kafka"], "format": "debezium"}},
    )  # fmt: skip
    worker = run_worker(config)
    helpers.wait_until(lambda: worker.tracker.state == "Streaming", 60, "streaming")
    admin_sql(f"UPDATE {db}.users SET pw = 'other', email = 'b@x' WHERE id = 1")
    admin_sql(f"INSERT INTO {db}.audit_log VALUES (2, 'ignored')")
    admin_sql(f"INSERT INTO {db}.nokey VALUES ('third')")
    helpers.wait_until(_caught_up(worker, admin_sql), 60, "the worker to catch up")
    people = helpers.read_topic(kafka_bootstrap, f"{topic_prefix}.{database}.people")
    assert [(k, v["op"], v["before"], v["after"]) for k, v in people] == [
        ({"id": 1}, "r", None, {"id": 1, "mail": "a@x"}),
        ({"id": 1}, "u", {"id": 1, "mail": "a@x"}, {"id": 1, "mail": "b@x"}),
    ]
    assert "secret-hash" not in repr(people) and "other" not in repr(people)
    assert helpers.read_topic(kafka_bootstrap, f"{topic_prefix}.{database}.audit_log") == []
    nokey = helpers.read_topic(kafka_bootstrap, f"{topic_prefix}.{database}.nokey")
    assert [v["after"]["line"] for _, v in nokey] == ["first", "second", "third"]
    assert {json_key["table"] for json_key, _ in nokey} == {"nokey"}


def test_reset_position_is_applied_once_per_nonce(
    database: str,
    admin_sql: Callable[..., Any],
    make_config: Callable[..., dict[str, Any]],
    run_worker: Callable[..., Any],
    kafka_bootstrap: str,
    topic_prefix: str,
    helpers: Any,
) -> None:
    db = f"`{database}`"
    admin_sql(f"CREATE TABLE {db}.t (id int PRIMARY KEY)")
    file, pos = admin_sql("SHOW MASTER STATUS")[0][:2]
    start = {"file": file, "pos": int(pos)}
    topic = f"{topic_prefix}.{database}.t"

    def run_until_caught_up(**overrides: Any) -> Counter[int]:
        worker = run_worker(make_config(mode="cdc", **overrides))
        helpers.wait_until(_caught_up(worker, admin_sql), 60, "the worker to catch up")
        assert worker.stop() == 0
        return Counter(v["data"]["id"] for _, v in helpers.read_topic(kafka_bootstrap, topic))

    admin_sql(f"INSERT INTO {db}.t VALUES (1), (2)")
    assert run_until_caught_up(startPosition=start) == {1: 1, 2: 1}
    reset = {"to": start, "nonce": "first"}
    assert run_until_caught_up(resetPosition=reset) == {1: 2, 2: 2}  # replayed once
    admin_sql(f"INSERT INTO {db}.t VALUES (3)")
    assert run_until_caught_up(resetPosition=reset) == {1: 2, 2: 2, 3: 1}  # same nonce: no replay
    again = {"to": start, "nonce": "second"}
    assert run_until_caught_up(resetPosition=again) == {1: 3, 2: 3, 3: 2}


def test_a_second_worker_with_the_same_task_fences_the_first(
    database: str,
    admin_sql: Callable[..., Any],
    make_config: Callable[..., dict[str, Any]],
    run_worker: Callable[..., Any],
    kafka_bootstrap: str,
    topic_prefix: str,
    helpers: Any,
) -> None:
    db = f"`{database}`"
    admin_sql(f"CREATE TABLE {db}.t (id int PRIMARY KEY)")
    first = run_worker(make_config(mode="cdc"))
    helpers.wait_until(_caught_up(first, admin_sql), 60, "the first worker")
    admin_sql(f"INSERT INTO {db}.t VALUES (1)")
    helpers.wait_until(lambda: first.tracker.events >= 1, 30, "the first worker's event")
    second = run_worker(make_config(mode="cdc"))
    helpers.wait_until(lambda: second.tracker.state == "Streaming", 60, "the second worker")
    admin_sql(f"INSERT INTO {db}.t VALUES (2), (3)")
    assert first.join(60) == 1
    assert first.worker.failure is not None and first.worker.failure.reason == "Fenced"
    helpers.wait_until(_caught_up(second, admin_sql), 60, "the second worker")
    ids = Counter(
        v["data"]["id"]
        for _, v in helpers.read_topic(kafka_bootstrap, f"{topic_prefix}.{database}.t")
    )
    assert ids == {1: 1, 2: 1, 3: 1}
