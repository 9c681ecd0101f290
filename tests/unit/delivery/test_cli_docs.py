"""docs/cli.md shows what the code prints: each example block there is the output of the
formatting functions for the objects below (the doc's story: ``shop/orders`` mid-snapshot,
``shop/invoices`` paused)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ferry_operator.plugin import formatting, revisions

DOC = (Path(__file__).resolve().parents[3] / "docs" / "cli.md").read_text()
NOW = datetime(2026, 11, 22, 22, 5, 0, tzinfo=UTC)


def _condition(kind: str, status: str, reason: str, message: str = "") -> dict[str, Any]:
    return {"type": kind, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": "2026-11-22T22:01:00Z"}  # fmt: skip


ORDERS: dict[str, Any] = {
    "metadata": {
        "name": "orders",
        "namespace": "shop",
        "generation": 1,
        "creationTimestamp": "2026-11-22T21:00:00Z",
    },
    "spec": {},
    "status": {
        "phase": "Snapshotting",
        "observedGeneration": 1,
        "configRevision": "orders-r2",
        "position": {"file": "binlog.000042", "pos": 1234},
        "lag": {"seconds": 4.2, "display": "4s"},
        "throughput": {"eventsPerSecond": 1830.0},
        "progress": {
            "percent": 62.5,
            "display": "62%",
            "rowsDone": 62500,
            "rowsTotal": 100000,
            "eta": "2026-11-22T22:05:41Z",
            "tables": [
                {"name": "shop.orders", "rowsDone": 50000, "rowsTotal": 50000, "state": "Done"},
                {
                    "name": "shop.customers",
                    "rowsDone": 12500,
                    "rowsTotal": 50000,
                    "state": "Running",
                },
            ],
        },
        "counters": {"events": 48210, "errors": 1, "restarts": 1},
        "heartbeatTime": "2026-11-22T22:04:57Z",
        "conditions": [
            _condition("Ready", "True", "Snapshotting", "the worker is snapshotting"),
            _condition("Stalled", "False", "AsExpected"),
        ],
        "lastErrors": [
            {
                "time": "2026-11-22T22:01:10Z",
                "reason": "ConnectionLost",
                "table": "shop.orders",
                "position": "binlog.000042:1100",
                "message": "binlog: Lost connection to server during query (127.0.0.1:13306)",
            },
        ],
    },
}
INVOICES: dict[str, Any] = {
    "metadata": {
        "name": "invoices",
        "namespace": "shop",
        "creationTimestamp": "2026-11-20T22:05:00Z",
    },
    "spec": {"paused": True},
    "status": {"phase": "Paused", "conditions": [_condition("Ready", "False", "Paused")]},
}


def _in_doc(text: str) -> None:
    assert text in DOC, f"docs/cli.md does not show what the code prints:\n{text}"


def test_list_block() -> None:
    _in_doc(formatting.list_table([INVOICES, ORDERS], NOW, all_namespaces=False))


def test_status_block() -> None:
    _in_doc(formatting.status_panel(ORDERS, NOW))


def test_progress_block() -> None:
    _in_doc(formatting.progress_view(ORDERS, True, NOW))


def test_history_block() -> None:
    items = [
        revisions.Revision(1, "orders-r1", "2026-11-22T20:05:00Z", {}, "", "9f2c4e1a7b3d5e6f",
                           "created"),
        revisions.Revision(2, "orders-r2", "2026-11-22T22:00:00Z", {}, "", "41d0a8c2e6f10000",
                           "performance.batchSize: 500 → 2000"),
        revisions.Revision(3, "orders-r3", "2026-11-22T22:04:00Z", {}, "", "9f2c4e1a7b3d5e6f",
                           "rollback to r1"),
    ]  # fmt: skip
    _in_doc(formatting.history_table(items, 3, NOW))
