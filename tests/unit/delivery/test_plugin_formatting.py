"""kubectl ferry: the table, panel, bars and counts people read."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ferry_operator.plugin import formatting, revisions
from ferry_operator.plugin.errors import NotFoundError

NOW = datetime(2026, 1, 31, 18, 0, 0, tzinfo=UTC)


def task(name: str, status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "shop",
            "generation": 3,
            "creationTimestamp": "2026-01-31T15:00:00Z",
        },
        "spec": spec,
        "status": status or {},
    }


RUNNING = task(
    "orders",
    {
        "phase": "Running",
        "observedGeneration": 3,
        "configRevision": "orders-r2",
        "lag": {"seconds": 125.4},
        "position": {"file": "binlog.000042", "pos": 1234},
        "progress": {
            "percent": 100.0,
            "rowsDone": 10,
            "rowsTotal": 10,
            "eta": None,
            "tables": [{"name": "shop.orders", "rowsDone": 10, "rowsTotal": 10, "state": "done"}],
        },
        "counters": {"events": 500, "errors": 2, "restarts": 1},
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Running",
                "lastTransitionTime": "2026-01-31T17:55:00Z",
                "message": "streaming",
            }
        ],
        "lastErrors": [
            {
                "time": "2026-01-31T17:50:00Z",
                "reason": "ConnectionLost",
                "table": "shop.orders",
                "position": "binlog.000042:1000",
                "message": "lost connection, retried",
            }
        ],
    },
)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (0, "0s"), (59.6, "1m00s"), (125, "2m05s"), (7500, "2h05m"), (90000, "1d01h")],
)
def test_durations_are_compact(seconds: float | None, text: str) -> None:
    assert formatting.duration(seconds) == text


@pytest.mark.parametrize(
    ("timestamp", "text"),
    [
        ("2026-01-31T17:59:30Z", "30s"),
        ("2026-01-31T17:58:00Z", "2m"),
        ("2026-01-31T15:00:00Z", "3h"),
        ("2026-01-28T18:00:00Z", "3d"),
        (None, "-"),
        ("garbage", "-"),
    ],
)
def test_age_like_kubectl(timestamp: str | None, text: str) -> None:
    assert formatting.age(timestamp, NOW) == text


def test_list_table_has_the_dashboard_columns() -> None:
    lines = formatting.list_table([RUNNING, task("fresh")], NOW, all_namespaces=False).splitlines()
    assert lines[0].split() == [
        "NAME", "READY", "PHASE", "REASON", "LAG", "PROGRESS", "POSITION", "AGE",
    ]  # fmt: skip
    assert lines[1].split() == [
        "orders", "True", "Running", "Running", "2m05s", "100%", "binlog.000042:1234", "3h",
    ]  # fmt: skip
    assert lines[2].split() == ["fresh", "-", "Pending", "-", "-", "-", "-", "3h"]
    wide = formatting.list_table([RUNNING], NOW, all_namespaces=True).splitlines()
    assert wide[0].split()[0] == "NAMESPACE" and wide[1].split()[0] == "shop"


MYSQL_GTID = "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5000,4f22ab58-82db-22f2-af44-d91bb0530673:1-9"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "-"),
        ({}, "-"),
        ({"file": "binlog.000042", "pos": 1234}, "binlog.000042:1234"),
        ({"file": "binlog.000042", "pos": 4, "gtid": "0-1-100"}, "binlog.000042:4"),
        ({"file": "b.1", "pos": 4, "display": "b.1:4"}, "b.1:4"),
        ({"gtid": "0-1-100"}, "0-1-100"),
        ({"gtid": MYSQL_GTID}, MYSQL_GTID[:39] + "…"),
        ({"timestamp": "2026-01-31T17:00:00Z"}, "2026-01-31T17:00:00Z"),
        ("binlog.000042:1000", "binlog.000042:1000"),
    ],
)
def test_position_is_file_and_offset_or_a_short_gtid(value: Any, text: str) -> None:
    assert formatting.position(value) == text


def test_status_panel_shows_the_whole_gtid_beside_the_position() -> None:
    mariadb = task("m", {"position": {"file": "b.1", "pos": 4, "gtid": "0-1-100"}})
    assert "Position:     b.1:4 (GTID 0-1-100)" in formatting.status_panel(mariadb, NOW)
    mysql = task("m", {"position": {"gtid": MYSQL_GTID}})
    assert f"(GTID {MYSQL_GTID})" in formatting.status_panel(mysql, NOW)


def test_status_panel_shows_conditions_counters_and_errors() -> None:
    panel = formatting.status_panel(RUNNING, NOW)
    assert "SyncTask:     shop/orders" in panel
    assert "Phase:        Running" in panel
    assert "Generation:   3 (observed 3)" in panel
    assert "events 500, errors 2, restarts 1" in panel
    ready = next(line for line in panel.splitlines() if line.strip().startswith("Ready"))
    assert ready.split() == ["Ready", "True", "Running", "5m", "streaming"]
    assert "ConnectionLost shop.orders binlog.000042:1000: lost connection, retried" in panel


def test_status_panel_of_a_new_task_says_none() -> None:
    panel = formatting.status_panel(task("fresh"), NOW)
    assert "Phase:        Pending" in panel
    assert panel.count("  none") == 2


def test_status_panel_shows_the_scheduled_resume() -> None:
    paused = task("p", {"phase": "Paused"}, paused=True, resumeAt="2026-02-01T00:00:00Z")
    assert "Paused (resumes at 2026-02-01T00:00:00Z)" in formatting.status_panel(paused, NOW)


@pytest.mark.parametrize(
    ("fraction", "filled"), [(0.0, 0), (0.5, 5), (1.0, 10), (2.0, 10), (-1, 0)]
)
def test_bar_is_clamped(fraction: float, filled: int) -> None:
    drawn = formatting.bar(fraction, 10)
    assert len(drawn) == 10 and drawn.count("█") == filled


def test_progress_view_per_table() -> None:
    snapshotting = task(
        "big",
        {
            "phase": "Snapshotting",
            "heartbeatTime": "2026-01-31T17:59:56Z",
            "progress": {
                "percent": 25.0,
                "rowsDone": 250,
                "rowsTotal": 1000,
                "eta": "2026-01-31T18:03:00Z",
                "tables": [
                    {"name": "s.a", "rowsDone": 250, "rowsTotal": 500, "state": "Running"},
                    {"name": "s.b", "rowsDone": 0, "rowsTotal": 500, "state": "Pending"},
                ],
            },
        },
    )
    view = formatting.progress_view(snapshotting, by_table=True, now=NOW)
    assert " 25.0%  rows 250/1000  ETA 3m00s  (updated 4s ago)" in view
    assert "s.a" in view and "50%" in view and "Running" in view
    assert "s.b" not in formatting.progress_view(snapshotting, by_table=False, now=NOW)
    fresh = formatting.progress_view(task("fresh"), by_table=True, now=NOW)
    assert "no snapshot progress" in fresh


def test_eta_is_relative_and_updated_says_how_long_ago() -> None:
    assert formatting.eta({"eta": "2026-01-31T19:02:03Z"}, NOW) == "1h02m"
    assert formatting.eta({"eta": "2026-01-31T17:00:00Z"}, NOW) == "0s"  # overdue
    assert formatting.eta({"percent": 100.0, "eta": None}, NOW) == "done"
    assert formatting.eta({"eta": None}, NOW) == "-"
    assert formatting.updated({"heartbeatTime": "2026-01-31T17:59:18Z"}, NOW) == ("updated 42s ago")
    assert formatting.updated({}, NOW) == "never updated"


def test_history_marks_the_current_revision() -> None:
    items = [
        revisions.Revision(2, "t-r2", "2026-01-31T17:00:00Z", {}, "", "abcdef0123456789", "spec"),
        revisions.Revision(1, "t-r1", "2026-01-31T16:00:00Z", {}, "", None, None),
    ]
    lines = formatting.history_table(items, 2, NOW).splitlines()
    assert lines[0].split() == ["REVISION", "AGE", "HASH", "CHANGE-CAUSE"]
    assert lines[1].split() == ["1", "2h", "-", "-"]
    assert lines[2].split() == ["2", "*", "60m", "abcdef012345", "spec"]


def test_stats_counts_every_phase() -> None:
    counts = formatting.phase_counts([RUNNING, task("a"), task("b", {"phase": "Failed"})])
    assert counts == {
        "Pending": 1,
        "Starting": 0,
        "Snapshotting": 0,
        "Running": 1,
        "Paused": 0,
        "Failed": 1,
        "Completed": 0,
        "Scheduled": 0,
    }
    assert formatting.stats_table([RUNNING]).splitlines()[-1].split() == ["total", "1"]


def test_table_progress_finds_a_table_by_full_or_unique_short_name() -> None:
    tables = [
        {"name": "shop.orders", "rowsDone": 30, "rowsTotal": 120, "state": "Running"},
        {"name": "shop.items", "rowsDone": 5, "rowsTotal": 5, "state": "Done"},
        {"name": "archive.items", "rowsDone": 0, "rowsTotal": 0, "state": "Pending"},
    ]
    snap = task("big", {"phase": "Snapshotting", "progress": {"percent": 20, "tables": tables}})
    assert formatting.table_progress(snap, "orders", NOW) == (
        "shop.orders  Running  █████░░░░░░░░░░░░░░░  25.0%  rows 30/120  (never updated)"
    )
    assert formatting.table_progress(snap, "archive.items", NOW).startswith(
        "archive.items  Pending  ░░░░"
    )
    with pytest.raises(NotFoundError, match=r"'items' is in several databases: use db\.table"):
        formatting.table_progress(snap, "items", NOW)
    with pytest.raises(NotFoundError, match=r"tables: shop\.orders, shop\.items, archive\.items"):
        formatting.table_progress(snap, "shop.refunds", NOW)
    fresh = task("new", {"phase": "Pending"})
    assert formatting.find_table(fresh, "shop.orders") is None
    assert formatting.table_progress(fresh, "shop.orders", NOW) == (
        "new: Pending, no snapshot progress reported"
    )
