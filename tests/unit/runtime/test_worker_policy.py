"""The error policy for a row that cannot be converted (the decision, without servers)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ferry_runtime import config, errors
from ferry_runtime.sink.base import Reads, Segment
from ferry_runtime.sink.kafka_records import KafkaRecords
from ferry_runtime.source.binlog import Transaction
from ferry_runtime.status import StatusTracker
from ferry_runtime.worker import Worker


def make_worker(**policy: Any) -> Worker:
    cfg = config.parse(
        {
            "task": {"name": "t"},
            "source": {"host": "db", "user": "u", "passwordEnv": "PW", "serverId": 1},
            "sink": {"kafka": {"bootstrapServers": "k"}},
            "errorPolicy": policy,
        }
    )
    return Worker(cfg, StatusTracker())


POISON = errors.PoisonRow(
    "cannot convert a row of db.t: ValueError: bad", "db.t", "binlog.000001:9"
)


def test_fail_stops_the_worker_with_poison_row() -> None:
    worker = make_worker(mode="fail")
    with pytest.raises(errors.FatalError) as raised:
        worker._poison(POISON)
    assert raised.value.reason == "PoisonRow"
    assert worker.tracker.errors_by_reason == {"PoisonRow": 1}


def test_skip_records_the_error_and_goes_on() -> None:
    worker = make_worker(mode="skip")
    assert worker._poison(POISON) is None
    (error,) = worker.tracker.view()["lastErrors"]
    assert error["table"] == "db.t" and error["position"] == "binlog.000001:9"


def test_dead_letter_goes_to_the_dead_letter_topic_in_the_same_batch() -> None:
    worker = make_worker(mode="deadLetter", deadLetterTopic="ferry.dead")
    message = worker._poison(POISON)
    assert message is not None
    txn = Transaction([], {"file": "binlog.000001", "pos": 20}, 0, 0.0, [("db.t", message)])
    records, counts = KafkaRecords(worker.config, worker._poison).encode(worker._segments([txn]))
    (record,) = records
    assert record.topic == "ferry.dead" and counts == {}
    assert json.loads(record.value) == {
        "table": "db.t", "position": "binlog.000001:20", "error": message,
    }  # fmt: skip


def test_a_record_too_large_for_kafka_follows_the_error_policy() -> None:
    from ferry_runtime.events import Change

    big = Change("db", "t", "insert", {"id": 1, "blob": "x" * 2_000_000}, None, ("id",))
    small = Change("db", "t", "insert", {"id": 2}, None, ("id",))
    worker = make_worker(mode="deadLetter", deadLetterTopic="ferry.dead")
    records, counts = KafkaRecords(worker.config, worker._poison).encode([Segment([big, small])])
    assert [r.topic for r in records] == ["ferry.dead", "ferry.db.t"]
    assert counts == {("db.t", "insert"): 1}
    assert worker.tracker.errors_by_reason == {"PoisonRow": 1}
    failing = make_worker(mode="fail")
    with pytest.raises(errors.FatalError):
        KafkaRecords(failing.config, failing._poison).encode([Segment([big])])


def test_a_batch_of_binlog_changes_and_snapshot_chunks_keeps_its_order() -> None:
    """A snapshot delivery holds the binlog up to each chunk's position, then the chunk:
    the records keep that order (a chunk restates a key after the changes it contains)."""
    from ferry_runtime.events import Change

    def change(seq: int) -> Change:
        return Change("db", "t", "update", {"id": 1, "seq": seq}, {"id": 1}, ("id",))

    read = Change("db", "t", "read", {}, None, ("id",))
    batch = [
        Segment([change(1)]), Reads(read, [{"id": 1, "seq": 1}]),
        Segment([change(2)]), Reads(read, [{"id": 1, "seq": 2}]),
    ]  # fmt: skip
    worker = make_worker()
    records, counts = KafkaRecords(worker.config, worker._poison).encode(batch)
    seen = [(json.loads(r.value)["type"], json.loads(r.value)["data"]["seq"]) for r in records]
    assert seen == [("update", 1), ("bootstrap-insert", 1), ("update", 2), ("bootstrap-insert", 2)]
    assert counts == {("db.t", "update"): 2, ("db.t", "read"): 2}


def test_retries_say_the_attempt_and_when_the_worker_gives_up(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERRY_TEST_RETRY_PW", "x")
    # A real connection attempt to a port nothing listens on (refused at once): no server.
    cfg = config.parse(
        {
            "task": {"name": "t"},
            "source": {"host": "127.0.0.1", "port": 1, "user": "u",
                       "passwordEnv": "FERRY_TEST_RETRY_PW", "serverId": 1},
            "sink": {"kafka": {"bootstrapServers": "127.0.0.1:1"}},
            "restartPolicy": {"maxRetries": 2, "backoff": "10ms"},
        }
    )  # fmt: skip
    worker = Worker(cfg, StatusTracker())
    with caplog.at_level("WARNING", logger="ferry.worker"):
        assert worker.run() == 1
    lines = [r.getMessage() for r in caplog.records]
    assert "127.0.0.1:1" in lines[0]  # the address it tried
    assert "retry 1 of 2 in 0.0s (the worker gives up if retry 2 fails too" in lines[0]
    assert "retry 2 of 2" in lines[1]
    assert lines[2].endswith("gave up after 2 retries (restartPolicy.maxRetries)")
    assert worker.failure is not None and worker.failure.reason == "TooManyRestarts"
    assert "3 consecutive failures, more than restartPolicy.maxRetries (2)" in (
        worker.failure.message
    )
    assert "the last: ConnectionLost" in worker.failure.message
