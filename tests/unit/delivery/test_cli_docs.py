"""docs/cli.md shows what the code prints: each example block there is the output of the
formatting functions for the objects below (the doc's story: ``shop/orders`` mid-snapshot,
``shop/invoices`` paused)."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ferry_operator import kubectl_plugin
from ferry_operator.plugin import (
    bulk,
    commands,
    formatting,
    lifecycle,
    revisions,
    templates,
    workerlogs,
)

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


def test_progress_table_line() -> None:
    _in_doc(
        "$ kubectl ferry progress orders --table shop.customers\n"
        + formatting.table_progress(ORDERS, "shop.customers", NOW)
    )


def test_bulk_summary_block() -> None:
    again, first = lifecycle.pause({"paused": True}, None), lifecycle.pause({}, None)
    outcomes = [
        bulk.Outcome("invoices", "shop", bulk.UNCHANGED, again.message),
        bulk.Outcome("orders", "shop", bulk.CHANGED, first.message),
        bulk.Outcome("refunds", "shop", bulk.FAILED, "not found"),
    ]
    _in_doc("$ kubectl ferry pause invoices orders refunds\n" + bulk.summary_table(outcomes))


def test_no_pod_block() -> None:
    _in_doc(f"error: {workerlogs.no_pod_message(INVOICES)}")


SHOP_DEFAULTS: dict[str, Any] = {
    "metadata": {"name": "shop-defaults", "namespace": "shop"},
    "spec": {
        "template": {
            "source": {"connectorRef": {"name": "shop-db"}, "exclude": ["*.tmp_*"]},
            "sink": {"connectorRef": {"name": "kafka"}, "kafka": {"format": "debezium"}},
            "performance": {"batchSize": 2000},
        }
    },
}


def test_create_dry_run_block() -> None:
    task = templates.build_task(
        "refunds", "shop", SHOP_DEFAULTS, ["shop.refunds"], [], {"team": "shop"}
    )
    _in_doc(
        "$ kubectl ferry create refunds --template shop-defaults --include shop.refunds "
        "--label team=shop --dry-run -o yaml\n" + templates.dump(task)
    )


def test_template_from_block() -> None:
    orders = {
        "metadata": {"name": "orders", "namespace": "shop"},
        "spec": {
            **SHOP_DEFAULTS["spec"]["template"],
            "source": {**SHOP_DEFAULTS["spec"]["template"]["source"], "include": ["shop.orders"]},
            "paused": True,
            "restartNonce": "20261122T220449Z-1a2b3c",
        },
    }
    manifest = templates.template_from(orders, None, "shop-defaults")
    assert manifest["spec"] == SHOP_DEFAULTS["spec"]
    _in_doc(
        "$ kubectl ferry template-from orders --name shop-defaults\n" + templates.dump(manifest)
    )


COMMON_FLAGS = {"-h", "--help", "-n", "--namespace", "--context", "--kubeconfig", "-o", "--output"}


def test_every_verb_and_flag_is_documented() -> None:
    """Each verb has a heading or a row (`verb …`), and each of its flags is mentioned."""
    verbs = next(
        action
        for action in kubectl_plugin.build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    )
    assert set(verbs.choices) == set(commands.VERBS)
    for name, parser in verbs.choices.items():
        assert re.search(rf"`{re.escape(name)}[ `]", DOC), f"docs/cli.md lacks the verb {name}"
        for action in parser._actions:
            flags = [f for f in action.option_strings if f not in COMMON_FLAGS]
            if flags:
                assert any(flag in DOC for flag in flags), f"docs/cli.md lacks {name} {flags}"
