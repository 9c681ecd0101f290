"""kubectl ferry: what people type for --to and --resume-at becomes the CRD's shapes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ferry_operator.plugin import positions
from ferry_operator.plugin.errors import UsageError

NOW = datetime(2026, 1, 31, 18, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("binlog.000042:1234", {"file": "binlog.000042", "pos": 1234}),
        ("mysql-bin.000001:4", {"file": "mysql-bin.000001", "pos": 4}),
        ("gtid:0-1-100", {"gtid": "0-1-100"}),
        (
            "GTID:3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5",
            {"gtid": "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5"},
        ),
        ("2026-01-31T17:00:00Z", {"timestamp": "2026-01-31T17:00:00Z"}),
        ("2026-01-31T19:00:00+02:00", {"timestamp": "2026-01-31T17:00:00Z"}),
        ("earliest", {"at": "earliest"}),
        ("latest", {"at": "latest"}),
    ],
)
def test_positions_parse_to_the_crd_shape(text: str, expected: dict[str, object]) -> None:
    assert positions.parse_position(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("binlog.000042", "not a position"),
        ("binlog.000042:2", "starts at 4"),
        ("gtid:", "empty"),
        ("2026-01-31T17:00:00", "no time zone"),
        ("newest", "FILE:POS"),
    ],
)
def test_bad_positions_are_refused_with_a_hint(text: str, fragment: str) -> None:
    with pytest.raises(UsageError, match=fragment):
        positions.parse_position(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", "2026-01-31T18:30:00Z"),
        ("+2h", "2026-01-31T20:00:00Z"),
        ("1d", "2026-02-01T18:00:00Z"),
        ("2026-02-01T08:00:00+01:00", "2026-02-01T07:00:00Z"),
    ],
)
def test_resume_at_takes_a_time_or_a_duration(text: str, expected: str) -> None:
    assert positions.parse_resume_at(text, NOW) == expected


def test_resume_at_in_the_past_is_refused() -> None:
    with pytest.raises(UsageError, match="in the past"):
        positions.parse_resume_at("2026-01-31T17:59:59Z", NOW)
    with pytest.raises(UsageError, match="neither an RFC 3339 time nor a duration"):
        positions.parse_resume_at("tomorrow", NOW)


def test_nonces_are_fresh_and_tell_when() -> None:
    first, second = positions.new_nonce(NOW), positions.new_nonce(NOW)
    assert first != second
    assert first.startswith("20260131T180000Z-")
