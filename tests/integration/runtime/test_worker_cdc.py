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
from tests.integration.runtime.conftest import Pipeline

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


def test_snapshot_and_cdc_under_concurrent_writes_reconstruct_every_row(pipeline: Pipeline) -> None:
    sql, db = pipeline.sql, pipeline.db
    sql(f"CREATE TABLE {db}.big (id int PRIMARY KEY, a int, b varchar(40))")
    numbers = f"{db}.seq_1_to_{ROWS}"  # MariaDB's sequence engine
    sql(f"INSERT INTO {db}.big SELECT seq, seq, CONCAT('row ', seq) FROM {numbers}")
    started = time.monotonic()
    worker = pipeline.run(performance={"snapshotChunkSize": 5000, "batchSize": 2000})
    writer = Writer(sql, pipeline.database, ROWS + 1)
    writer.start()
    pipeline.wait_streaming(worker, 120)
    snapshot_seconds = time.monotonic() - started
    progress = worker.tracker.progress()
    assert progress["percent"] == 100.0 and progress["tables"][0]["state"] == "Done"
    time.sleep(2)  # keep writing while streaming
    writer.done.set()
    writer.join()
    pipeline.wait_caught_up(worker, 120)
    records = pipeline.records("big")
    print(f"snapshot of {ROWS} rows + {writer.ops} changes: {snapshot_seconds:.1f}s")
    assert writer.ops > 100
    assert pipeline.replay(records) == _source_rows(sql, pipeline.database)
    # Per key, binlog events arrive in binlog order (all of a key's records share a partition).
    last: dict[Any, tuple[str, int]] = {}
    for key, value in records:
        if value["type"] == "bootstrap-insert":
            continue
        file, pos = value["position"].rsplit(":", 1)
        where = (file, int(pos))
        assert where >= last.get(key["pk.id"], ("", 0)), f"out of order for {key}"
        last[key["pk.id"]] = where


def test_ddl_mid_stream_keeps_streaming_with_the_new_column_names(pipeline: Pipeline) -> None:
    sql, db = pipeline.sql, pipeline.db
    sql(f"CREATE TABLE {db}.t (id int PRIMARY KEY, a int)")
    worker = pipeline.run(mode="cdc")
    pipeline.wait_streaming(worker)
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
        sql(statement)
        # MariaDB's binlog does not say a column is JSON; information_schema does, as of
        # now. Waiting keeps "now" close to the event (see docs/worker.md, limitations).
        pipeline.wait_caught_up(worker, 30, statement)
    pipeline.wait_caught_up(worker)
    assert worker.tracker.state == "Streaming"
    t = [v["data"] for _, v in pipeline.records("t")]
    assert t == [
        {"id": 1, "a": 10},
        {"id": 2, "a": 20, "b": "two"},
        {"id": 3, "b": "three"},
        {"id": 4, "c": "four"},
        {"id": 4, "c": "FOUR"},
    ]
    u = pipeline.records("u")
    w = pipeline.records("w")
    assert [v["data"] for _, v in u] == [{"k": "k1", "v": {"x": 1}}]
    assert [v["data"] for _, v in w] == [{"k": "k2", "v": [1]}]


def test_filters_mapping_and_debezium_format(pipeline: Pipeline) -> None:
    sql, db, database = pipeline.sql, pipeline.db, pipeline.database
    sql(f"CREATE TABLE {db}.users (id int PRIMARY KEY, email varchar(50), pw varchar(50))")
    sql(f"CREATE TABLE {db}.audit_log (id int PRIMARY KEY, line text)")
    sql(f"CREATE TABLE {db}.nokey (line varchar(20))")
    sql(f"INSERT INTO {db}.users VALUES (1, 'a@x', 'secret-hash')")
    sql(f"INSERT INTO {db}.audit_log VALUES (1, 'ignored')")
    sql(f"INSERT INTO {db}.nokey VALUES ('first'), ('second')")
    config = pipeline.config(
        exclude=[f"{database}.audit_*"],
        mapping=[{"table": f"{database}.users", "target": "people",
                  "columns": {"email": "mail"}, "drop": ["pw"]}],
        sink={"kafka": {**pipeline.config()["sink"]["kafka"], "format": "debezium"}},
    )  # fmt: skip
    worker = pipeline.start(config)
    pipeline.wait_streaming(worker)
    sql(f"UPDATE {db}.users SET pw = 'other', email = 'b@x' WHERE id = 1")
    sql(f"INSERT INTO {db}.audit_log VALUES (2, 'ignored')")
    sql(f"INSERT INTO {db}.nokey VALUES ('third')")
    pipeline.wait_caught_up(worker)
    people = pipeline.records("people")
    assert [(k, v["op"], v["before"], v["after"]) for k, v in people] == [
        ({"id": 1}, "r", None, {"id": 1, "mail": "a@x"}),
        ({"id": 1}, "u", {"id": 1, "mail": "a@x"}, {"id": 1, "mail": "b@x"}),
    ]
    assert "secret-hash" not in repr(people) and "other" not in repr(people)
    assert pipeline.records("audit_log") == []
    nokey = pipeline.records("nokey")
    assert [v["after"]["line"] for _, v in nokey] == ["first", "second", "third"]
    assert {json_key["table"] for json_key, _ in nokey} == {"nokey"}


def test_reset_position_is_applied_once_per_nonce(pipeline: Pipeline) -> None:
    sql, db = pipeline.sql, pipeline.db
    sql(f"CREATE TABLE {db}.t (id int PRIMARY KEY)")
    file, pos = sql("SHOW MASTER STATUS")[0][:2]
    start = {"file": file, "pos": int(pos)}

    def run_until_caught_up(**overrides: Any) -> Counter[int]:
        worker = pipeline.run(mode="cdc", **overrides)
        pipeline.wait_caught_up(worker)
        assert worker.stop() == 0
        return Counter(v["data"]["id"] for _, v in pipeline.records("t"))

    sql(f"INSERT INTO {db}.t VALUES (1), (2)")
    assert run_until_caught_up(startPosition=start) == {1: 1, 2: 1}
    reset = {"to": start, "nonce": "first"}
    assert run_until_caught_up(resetPosition=reset) == {1: 2, 2: 2}  # replayed once
    sql(f"INSERT INTO {db}.t VALUES (3)")
    assert run_until_caught_up(resetPosition=reset) == {1: 2, 2: 2, 3: 1}  # same nonce: no replay
    again = {"to": start, "nonce": "second"}
    assert run_until_caught_up(resetPosition=again) == {1: 3, 2: 3, 3: 2}


def test_a_second_worker_with_the_same_task_fences_the_first(pipeline: Pipeline) -> None:
    sql, db = pipeline.sql, pipeline.db
    sql(f"CREATE TABLE {db}.t (id int PRIMARY KEY)")
    first = pipeline.run(mode="cdc")
    pipeline.wait_caught_up(first, 60, "the first worker")
    sql(f"INSERT INTO {db}.t VALUES (1)")
    pipeline.wait_until(lambda: first.tracker.events >= 1, 30, "the first worker's event")
    second = pipeline.run(mode="cdc")
    pipeline.wait_streaming(second)
    sql(f"INSERT INTO {db}.t VALUES (2), (3)")
    assert first.join(60) == 1
    assert first.worker.failure is not None and first.worker.failure.reason == "Fenced"
    pipeline.wait_caught_up(second, 60, "the second worker")
    ids = Counter(v["data"]["id"] for _, v in pipeline.records("t"))
    assert ids == {1: 1, 2: 1, 3: 1}
