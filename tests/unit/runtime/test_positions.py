"""GTID and timestamp positions: the pure parts (parsing, validation, the purge rule)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from ferry_runtime import config
from ferry_runtime.source.positions import (
    Gtid,
    check_gtid_text,
    cutoff_second,
    domain_max,
    is_mysql_gtid_set,
    nothing_after,
    parse_gtids,
)

UUID = "3e11fa47-71ca-11e1-9e33-c80aa9429562"


def test_parse_one_and_several_domains() -> None:
    assert parse_gtids("0-1-100") == [Gtid(0, 1, 100)]
    assert parse_gtids(" 0-1-100 , 2-7-5") == [Gtid(0, 1, 100), Gtid(2, 7, 5)]
    assert str(Gtid(2, 7, 5)) == "2-7-5"
    assert parse_gtids(f"0-{2**32 - 1}-{2**64 - 1}") == [Gtid(0, 2**32 - 1, 2**64 - 1)]


def test_a_binlog_state_may_hold_several_servers_of_a_domain() -> None:
    state = parse_gtids("0-1-100,0-2-120,1-1-7", one_per_domain=False)
    assert state == [Gtid(0, 1, 100), Gtid(0, 2, 120), Gtid(1, 1, 7)]
    assert parse_gtids("", one_per_domain=False) == []
    with pytest.raises(ValueError, match="appears twice"):
        parse_gtids("0-1-100,0-2-120")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0-1", "is not a GTID"),
        ("0-1-x", "is not a GTID"),
        ("0-1-5,", "'' is not a GTID"),
        ("-1-1-5", "is not a GTID"),
        ("0-1-5,0-2-9", "domain 0 appears twice"),
        (f"0-{2**32}-5", "32-bit"),
        (f"0-1-{2**64}", "64-bit"),
    ],
)
def test_parse_refuses_with_a_reason(text: str, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        parse_gtids(text)


@pytest.mark.parametrize(
    ("text", "mysql"),
    [
        (f"{UUID}:1-100", True),
        (f"{UUID}:1-5:7:9-12, {UUID.replace('3', '4')}:3", True),
        (f"{UUID}:fleet:1-5", True),  # MySQL 8.3 tagged GTIDs
        (UUID, False),
        ("0-1-100", False),
        (f"{UUID}:1-5,0-1-3", False),
    ],
)
def test_mysql_gtid_sets_are_recognised(text: str, mysql: bool) -> None:
    assert is_mysql_gtid_set(text) is mysql


def test_config_accepts_both_syntaxes_and_names_the_field() -> None:
    assert check_gtid_text(f"{UUID}:1-100") == f"{UUID}:1-100"
    base: dict[str, Any] = {
        "task": {"name": "t"},
        "source": {"host": "db", "user": "u", "passwordEnv": "P", "serverId": 7},
        "sink": {"kafka": {"bootstrapServers": "k:9092"}},
    }
    worker = config.parse({**base, "startPosition": {"gtid": "0-1-5,1-1-9"}})
    assert isinstance(worker.start_position, config.GtidPosition)
    with pytest.raises(config.ConfigError, match=r"startPosition\.gtid\.gtid: .*is not a GTID"):
        config.parse({**base, "startPosition": {"gtid": "0:1:5"}})
    reset = {"to": {"gtid": "0-1-5,0-1-6"}, "nonce": "n"}
    with pytest.raises(config.ConfigError, match=r"resetPosition\.to\.gtid\.gtid: .*twice"):
        config.parse({**base, "resetPosition": reset})


def test_config_timestamps_need_a_zone() -> None:
    base: dict[str, Any] = {
        "task": {"name": "t"},
        "source": {"host": "db", "user": "u", "passwordEnv": "P", "serverId": 7},
        "sink": {"kafka": {"bootstrapServers": "k:9092"}},
    }
    worker = config.parse({**base, "startPosition": {"timestamp": "2026-01-02T03:04:05+02:00"}})
    assert isinstance(worker.start_position, config.TimestampPosition)
    assert worker.start_position.timestamp == datetime(2026, 1, 2, 1, 4, 5, tzinfo=UTC)
    assert "timestamp: '2026-01-02T03:04:05+02:00'" in worker.to_yaml()
    with pytest.raises(config.ConfigError, match=r"startPosition\.timestamp\.timestamp: .*time"):
        config.parse({**base, "startPosition": {"timestamp": "2026-01-02T03:04:05"}})


def test_cutoff_is_the_second_the_time_falls_in() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 999_999, tzinfo=UTC)
    assert cutoff_second(moment) == int(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp())
    east = moment.astimezone(timezone(timedelta(hours=5, minutes=30)))
    assert cutoff_second(east) == cutoff_second(moment)
    with pytest.raises(ValueError, match="time zone"):
        cutoff_second(datetime(2026, 1, 2))


def test_domain_max_is_the_newest_of_the_domain() -> None:
    state = [Gtid(0, 1, 90), Gtid(0, 2, 120), Gtid(1, 1, 7)]
    assert domain_max(state, 0) == Gtid(0, 2, 120)
    assert domain_max(state, 1) == Gtid(1, 1, 7)
    assert domain_max(state, 3) is None


@pytest.mark.parametrize(
    ("state", "gtids", "expected"),
    [
        ([], [Gtid(0, 1, 5)], True),  # nothing before the oldest binlog
        ([Gtid(0, 1, 5)], [Gtid(0, 1, 5)], True),  # it was the very last one
        ([Gtid(0, 1, 6)], [Gtid(0, 1, 5)], False),  # 0-1-6 came after it and is gone
        ([Gtid(0, 1, 5), Gtid(1, 1, 3)], [Gtid(0, 1, 5)], False),  # domain 1 unknown
        ([Gtid(0, 1, 5), Gtid(1, 1, 3)], [Gtid(0, 1, 5), Gtid(1, 1, 3)], True),
        ([Gtid(0, 1, 4), Gtid(0, 2, 5)], [Gtid(0, 1, 4)], False),  # 0-2-5 is newer
    ],
)
def test_start_of_the_oldest_binlog_only_when_nothing_after_was_purged(
    state: list[Gtid], gtids: list[Gtid], expected: bool
) -> None:
    assert nothing_after(state, gtids) is expected
