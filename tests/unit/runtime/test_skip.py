"""spec.skipEvent in the worker without servers: the config, the checkpoint record, when a
skip is pending or passed, the matcher, and the poison-row message that says how to skip."""

from __future__ import annotations

from typing import Any

import pytest

from ferry_runtime import checkpoint, config, errors, skip
from ferry_runtime.checkpoint import Checkpoint, SkipRecord
from ferry_runtime.source.positions import Gtid
from ferry_runtime.status import StatusTracker
from ferry_runtime.worker import Worker

BASE: dict[str, Any] = {
    "task": {"name": "orders", "namespace": "shop"},
    "source": {"host": "db", "user": "u", "passwordEnv": "PW", "serverId": 1},
    "sink": {"kafka": {"bootstrapServers": "k"}},
}


def parse(**fields: Any) -> config.WorkerConfig:
    return config.parse({**BASE, **fields})


def test_config_takes_file_pos_or_one_gtid() -> None:
    by_pos = parse(skipEvent={"position": {"file": "binlog.000003", "pos": 1500}, "nonce": "a"})
    assert by_pos.skip_event is not None
    assert by_pos.skip_event.position == config.BinlogFilePosition(file="binlog.000003", pos=1500)
    by_gtid = parse(skipEvent={"position": {"gtid": "0-1-57"}, "nonce": "b"})
    assert by_gtid.skip_event is not None
    assert by_gtid.skip_event.position == config.SkipGtid(gtid="0-1-57")
    assert "skipEvent:" in by_gtid.to_yaml()


@pytest.mark.parametrize(
    ("skip_event", "expected"),
    [
        ({"position": {"gtid": "0-1-5,1-1-9"}, "nonce": "a"}, "give one GTID"),
        ({"position": {"gtid": "nope"}, "nonce": "a"}, "is not a GTID"),
        ({"position": {"timestamp": "2026-01-01T00:00:00Z"}, "nonce": "a"}, "{file, pos} or"),
        ({"position": {"file": "binlog.000001", "pos": 2}, "nonce": "a"}, "skipEvent.position"),
        ({"position": {"file": "binlog.000001", "pos": 9}, "nonce": ""}, "skipEvent.nonce"),
        ({"position": {"file": "binlog.000001", "pos": 9}}, "skipEvent.nonce: Field required"),
    ],
)
def test_config_refuses_a_bad_skip_naming_the_field(
    skip_event: dict[str, Any], expected: str
) -> None:
    with pytest.raises(config.ConfigError) as refused:
        parse(skipEvent=skip_event)
    assert expected in str(refused.value)
    assert "skipEvent" in str(refused.value)


def test_the_checkpoint_keeps_the_last_skip() -> None:
    record = SkipRecord("n1", "binlog.000003:1500", "0-1-57", ("shop.orders",), 1, 12.5)
    state = Checkpoint(position={"file": "binlog.000003", "pos": 1600}, skip=record)
    assert checkpoint.decode(checkpoint.encode(state, "task")) == state
    older = checkpoint.decode(b'{"task": "t", "position": null}')  # before skipEvent existed
    assert older.skip is None


def skip_event(nonce: str = "n1", **position: Any) -> config.SkipEvent:
    return config.SkipEvent.model_validate({"position": position, "nonce": nonce})


def test_a_skip_is_pending_until_its_nonce_is_in_the_checkpoint() -> None:
    wanted = skip_event(file="binlog.000003", pos=1500)
    assert skip.pending(None, Checkpoint()) is None
    target = skip.pending(wanted, Checkpoint())
    assert target == skip.Target("n1", file="binlog.000003", pos=1500)
    done = Checkpoint(skip=SkipRecord("n1", "binlog.000003:1500"))
    assert skip.pending(wanted, done) is None  # re-applying the same nonce: nothing
    assert skip.pending(skip_event("n2", file="binlog.000003", pos=1500), done) is not None
    by_gtid = skip.pending(skip_event("n3", gtid="0-1-57"), done)
    assert by_gtid == skip.Target("n3", gtid=Gtid(0, 1, 57))


def test_passed_compares_with_the_checkpoint() -> None:
    by_pos = skip.Target("n", file="binlog.000003", pos=1500)
    assert not skip.passed(by_pos, None)
    assert not skip.passed(by_pos, {"file": "binlog.000003", "pos": 1400})
    assert skip.passed(by_pos, {"file": "binlog.000003", "pos": 1500})
    assert skip.passed(by_pos, {"file": "binlog.000004", "pos": 4})
    assert not skip.passed(by_pos, {"file": "binlog.000002", "pos": 9000})
    by_gtid = skip.Target("n", gtid=Gtid(0, 1, 57))
    at = {"file": "binlog.000009", "pos": 4}
    assert not skip.passed(by_gtid, {**at, "gtid": "0-1-56,1-1-900"})
    assert skip.passed(by_gtid, {**at, "gtid": "0-1-57"})
    assert skip.passed(by_gtid, {**at, "gtid": "1-1-2,0-2-70"})
    assert not skip.passed(by_gtid, {**at, "gtid": "1-1-900"})  # another domain
    assert not skip.passed(by_gtid, at)  # no GTID known


def test_the_matcher_meets_a_file_pos_target_once() -> None:
    missed: list[str] = []
    matcher = skip.Matcher(
        skip.Target("n", file="b.000003", pos=1500), lambda t, w: missed.append(w)
    )
    assert not matcher.row_event("b.000003", 1400)
    matcher.reached("b.000003", 1400)
    assert matcher.row_event("b.000003", 1500)
    matcher.reached("b.000003", 1500)
    matcher.reached("b.000003", 1600)
    assert not matcher.row_event("b.000003", 1500)  # once
    assert matcher.matched and missed == []


def test_the_matcher_says_when_the_stream_went_past_a_position_that_is_no_row_event() -> None:
    missed: list[tuple[skip.Target, str]] = []
    target = skip.Target("n", file="b.000003", pos=1450)  # e.g. where an event starts
    matcher = skip.Matcher(target, lambda t, w: missed.append((t, w)))
    assert not matcher.row_event("b.000003", 1500, start=1450)  # only the end counts
    matcher.reached("b.000003", 1500)
    matcher.reached("b.000003", 1600)
    assert [t for t, _ in missed] == [target]  # said once
    assert "b.000003:1500" in missed[0][1]
    assert "where the row event ending at b.000003:1500 starts" in missed[0][1]
    assert not matcher.active


def test_the_matcher_skips_a_whole_transaction_by_gtid() -> None:
    missed: list[str] = []
    matcher = skip.Matcher(skip.Target("n", gtid=Gtid(0, 1, 57)), lambda t, w: missed.append(w))
    assert not matcher.transaction(Gtid(0, 1, 56))
    assert not matcher.transaction(Gtid(1, 1, 99))  # another domain
    assert matcher.transaction(Gtid(0, 1, 57))
    assert not matcher.transaction(Gtid(0, 1, 58))
    assert missed == []
    late = skip.Matcher(skip.Target("n", gtid=Gtid(0, 1, 57)), lambda t, w: missed.append(w))
    assert not late.transaction(Gtid(0, 1, 60))
    assert missed and "0-1-60" in missed[0]


def worker(**fields: Any) -> Worker:
    return Worker(parse(**fields), StatusTracker(clock=lambda: 1_800_000_000.0))


def test_a_poison_row_under_fail_says_how_to_skip_its_event_in_one_error() -> None:
    stopping = worker(errorPolicy={"mode": "fail"})
    poison = errors.PoisonRow("cannot convert a row of shop.t: bad", "shop.t", "binlog.000003:1500")
    with pytest.raises(errors.FatalError) as raised:
        stopping._poison(poison)
    assert raised.value.recorded
    (entry,) = stopping.tracker.view()["lastErrors"]
    assert entry["position"] == "binlog.000003:1500" and entry["table"] == "shop.t"
    assert entry["message"] == raised.value.message
    assert (
        "To skip this one event: kubectl ferry skip orders -n shop --position binlog.000003:1500"
        in entry["message"]
    )
    snapshot_row = errors.PoisonRow("too large", "shop.t", "binlog.000003:900", snapshot=True)
    with pytest.raises(errors.FatalError) as raised:
        worker(errorPolicy={"mode": "fail"})._poison(snapshot_row)
    assert "kubectl ferry skip" not in raised.value.message  # no binlog event to skip


def test_a_skip_behind_the_checkpoint_skips_nothing_and_says_so_once() -> None:
    w = worker(skipEvent={"position": {"file": "binlog.000003", "pos": 1500}, "nonce": "n1"})
    state = Checkpoint(position={"file": "binlog.000004", "pos": 4})
    assert w._pending_skip(state) is None
    assert w._pending_skip(state) is None
    entries = w.tracker.view()["lastErrors"]
    assert [e["reason"] for e in entries] == ["SkipEventNotFound"]
    assert "binlog.000004:4 is past it already" in entries[0]["message"]
    assert entries[0]["position"] == "binlog.000003:1500"
    ahead = Checkpoint(position={"file": "binlog.000003", "pos": 1000})
    assert w._pending_skip(ahead) == skip.Target("n1", file="binlog.000003", pos=1500)


def test_status_shows_the_skip_restored_from_the_checkpoint() -> None:
    w = worker()
    record = SkipRecord("n1", "binlog.000003:1500", "0-1-57", ("shop.t",), 1, 1_800_000_000.0)
    w._restore(Checkpoint(skip=record))
    assert w.tracker.view()["lastSkip"] == {
        "nonce": "n1",
        "position": "binlog.000003:1500",
        "gtid": "0-1-57",
        "table": "shop.t",
        "events": 1,
        "time": "2027-01-15T08:00:00Z",
    }
