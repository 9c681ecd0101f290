"""spec.skipEvent on the real MariaDB and Kafka: a poison row stops the task, the position its
error shows (parsed as ``kubectl ferry skip --position`` parses it) skips exactly that event,
once per nonce, and the rows around it arrive exactly once; a GTID skip set before its
transaction exists survives a worker restart and still skips it once."""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import pytest
from tests.integration.runtime.conftest import Pipeline, WorkerThread
from tests.integration.scratch import ScratchMariaDB

from ferry_operator.plugin import positions

pytestmark = [pytest.mark.mysql, pytest.mark.kafka]

MAX_BYTES = 10_000  # the producer's message.max.bytes: a bigger record is a poison row


def _ids(records: list[tuple[Any, Any]]) -> Counter[int]:
    return Counter(value["data"]["id"] for _, value in records)


def _failed(worker: WorkerThread) -> Any:
    assert worker.join(60) == 1, worker.tracker.view()
    failure = worker.worker.failure
    assert failure is not None
    return failure


def test_a_poison_row_is_skipped_once_by_the_position_its_error_shows(pipeline: Pipeline) -> None:
    sql, table = pipeline.sql, f"{pipeline.db}.t"
    sql(f"CREATE TABLE {table} (id int PRIMARY KEY, note mediumtext)")
    config = pipeline.config(mode="cdc", errorPolicy={"mode": "fail"})
    config["sink"]["kafka"]["producer"] = {"message.max.bytes": MAX_BYTES}

    first = pipeline.start(copy.deepcopy(config))
    pipeline.wait_streaming(first)
    sql(f"INSERT INTO {table} VALUES (1, 'before')")
    pipeline.wait_until(lambda: first.tracker.events >= 1, 60, "row 1")  # a batch of its own
    file, pos = pipeline.server_position()  # a transaction boundary before the poison row
    sql(f"INSERT INTO {table} VALUES (2, %s)", ("x" * (2 * MAX_BYTES),))
    sql(f"INSERT INTO {table} VALUES (3, 'after')")

    failure = _failed(first)
    assert failure.reason == "PoisonRow"
    (error,) = [e for e in first.tracker.view()["lastErrors"] if e["reason"] == "PoisonRow"]
    assert error["table"] == f"{pipeline.database}.t"
    hint = f"kubectl ferry skip {config['task']['name']} -n test --position {error['position']}"
    assert hint in error["message"], error
    assert _ids(pipeline.records("t")) == {1: 1}

    # The position is pasted into `kubectl ferry skip --position`, which sets spec.skipEvent.
    skip_event = {"position": positions.parse_event_position(error["position"]), "nonce": "n1"}
    config["skipEvent"] = skip_event
    second = pipeline.start(copy.deepcopy(config))
    pipeline.wait_until(lambda: second.tracker.view()["lastSkip"], 60, "the skip")
    # Counters carry on from the checkpoint: 1 event (row 1) before this worker.
    pipeline.wait_until(lambda: second.tracker.events >= 2, 60, "the row after the skip")
    last = second.tracker.view()["lastSkip"]
    assert (last["nonce"], last["position"], last["table"], last["events"]) == (
        "n1",
        error["position"],
        f"{pipeline.database}.t",
        1,
    )
    sql(f"INSERT INTO {table} VALUES (4, 'later')")
    pipeline.wait_until(lambda: second.tracker.events >= 3, 60, "row 4")
    assert second.stop() == 0
    assert _ids(pipeline.records("t")) == {1: 1, 3: 1, 4: 1}

    # The same nonce again (a re-applied manifest, a restarted worker): nothing more happens.
    third = pipeline.start(copy.deepcopy(config))
    pipeline.wait_streaming(third)
    sql(f"INSERT INTO {table} VALUES (5, 'again')")
    pipeline.wait_until(lambda: third.tracker.events >= 4, 60, "row 5")
    assert third.stop() == 0
    assert _ids(pipeline.records("t")) == {1: 1, 3: 1, 4: 1, 5: 1}
    view = third.tracker.view()
    assert view["lastSkip"]["nonce"] == "n1"  # from the checkpoint
    assert [e for e in view["lastErrors"] if e["reason"] == "SkipEventNotFound"] == []

    # Even when the stream reads that event again (resetPosition to before it), a consumed
    # nonce skips nothing: the poison row stops the task again, at the same position.
    config["resetPosition"] = {"to": {"file": file, "pos": pos}, "nonce": "r1"}
    fourth = pipeline.start(copy.deepcopy(config))
    assert _failed(fourth).reason == "PoisonRow"
    again = [e for e in fourth.tracker.view()["lastErrors"] if e["reason"] == "PoisonRow"]
    assert [e["position"] for e in again] == [error["position"]]


def test_a_skip_at_an_event_start_skips_nothing_and_says_which_position_to_give(
    pipeline: Pipeline,
) -> None:
    """mysqlbinlog's ``# at`` (where an event starts) is not Ferry's position of it (where it
    ends): nothing is skipped, and the error names the position that would skip it."""
    sql, table = pipeline.sql, f"{pipeline.db}.t"
    sql(f"CREATE TABLE {table} (id int PRIMARY KEY)")
    file, pos = pipeline.server_position()
    sql(f"INSERT INTO {table} VALUES (1), (2)")  # one row event
    events = sql(f"SHOW BINLOG EVENTS IN '{file}' FROM {pos} LIMIT 500")
    ours = next(
        i
        for i, event in enumerate(events)
        if event[2] == "Table_map" and f"({pipeline.database}.t)" in event[5]
    )
    rows = next(event for event in events[ours:] if event[2].startswith("Write_rows"))
    start, end = int(rows[1]), int(rows[4])
    worker = pipeline.run(
        mode="cdc",
        startPosition={"file": file, "pos": pos},
        skipEvent={"position": {"file": file, "pos": start}, "nonce": "n1"},
    )
    pipeline.wait_until(lambda: worker.tracker.events >= 2, 60, "both rows")
    missed = [e for e in worker.tracker.view()["lastErrors"] if e["reason"] == "SkipEventNotFound"]
    assert len(missed) == 1 and missed[0]["position"] == f"{file}:{start}"
    assert "skipped nothing" in missed[0]["message"]
    assert f"to skip that event, give {file}:{end}" in missed[0]["message"]
    assert worker.tracker.view().get("lastSkip") is None
    assert worker.tracker.state == "Streaming"
    assert _ids(pipeline.records("t")) == {1: 1, 2: 1}


def test_a_gtid_skip_survives_a_restart_before_its_transaction_and_applies_once(
    scratch: ScratchMariaDB, pipeline: Pipeline, helpers: Any, kafka_bootstrap: str
) -> None:
    """On a private server, so the GTID of a transaction not written yet is known."""
    with scratch.root() as conn, conn.cursor() as cur:
        cur.execute("CREATE DATABASE shop")
        cur.execute("CREATE TABLE shop.t (id INT PRIMARY KEY)")
        cur.execute("CREATE TABLE shop.u (id INT PRIMARY KEY)")
        cur.execute("SELECT @@gtid_binlog_pos")
        domain, server, seq = (int(part) for part in str(cur.fetchone()[0]).split("-"))
    target = f"{domain}-{server}-{seq + 2}"  # the second transaction from now
    config = pipeline.config(
        include=["shop.*"],
        mode="cdc",
        skipEvent={"position": {"gtid": target}, "nonce": "g1"},
    )
    config["source"] = {**config["source"], "host": "127.0.0.1", "port": scratch.port}

    def write(*statements: str) -> None:
        with scratch.root() as conn, conn.cursor() as cur:
            cur.execute("BEGIN")
            for statement in statements:
                cur.execute(statement)
            cur.execute("COMMIT")

    first = pipeline.start(copy.deepcopy(config))
    pipeline.wait_streaming(first)
    write("INSERT INTO shop.t VALUES (1)")  # seq + 1
    helpers.wait_until(lambda: first.tracker.events >= 1, 60, "row 1")
    assert first.stop() == 0  # stopped before the skip's transaction exists
    assert first.tracker.view().get("lastSkip") is None

    second = pipeline.start(copy.deepcopy(config))
    pipeline.wait_streaming(second)
    write("INSERT INTO shop.t VALUES (2)", "INSERT INTO shop.u VALUES (20)")  # the target
    write("INSERT INTO shop.t VALUES (3)")  # seq + 3
    helpers.wait_until(lambda: second.tracker.events >= 2, 60, "row 3")  # 1 before it
    last = second.tracker.view()["lastSkip"]
    assert (last["nonce"], last["gtid"], last["events"], last["table"]) == (
        "g1",
        target,
        2,
        "shop.t, shop.u",
    )
    assert second.stop() == 0

    third = pipeline.start(copy.deepcopy(config))
    pipeline.wait_streaming(third)
    write("INSERT INTO shop.t VALUES (4)")
    helpers.wait_until(lambda: third.tracker.events >= 3, 60, "row 4")
    assert third.stop() == 0
    topic = f"{pipeline.topic_prefix}.shop"
    assert _ids(helpers.read_topic(kafka_bootstrap, f"{topic}.t")) == {1: 1, 3: 1, 4: 1}
    assert helpers.read_topic(kafka_bootstrap, f"{topic}.u") == []
