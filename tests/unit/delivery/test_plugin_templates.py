"""kubectl ferry create --template and template-from: the manifests they build."""

from __future__ import annotations

from typing import Any

import pytest

from ferry_operator.plugin import templates
from ferry_operator.plugin.errors import UsageError

TEMPLATE: dict[str, Any] = {
    "metadata": {"name": "shop-defaults", "namespace": "shop"},
    "spec": {
        "template": {
            "source": {"connectorRef": {"name": "shop-db"}, "exclude": ["*.tmp_*"]},
            "sink": {"connectorRef": {"name": "kafka"}, "kafka": {"format": "debezium"}},
            "performance": {"batchSize": 2000},
        }
    },
}


def test_build_task_refers_to_the_template_and_holds_its_own_tables() -> None:
    task = templates.build_task(
        "refunds", "shop", TEMPLATE, ["shop.refunds"], ["shop.refunds_old"], {"team": "shop"}
    )
    assert task == {
        "apiVersion": "ferry.dev/v1alpha1",
        "kind": "SyncTask",
        "metadata": {"name": "refunds", "namespace": "shop", "labels": {"team": "shop"}},
        "spec": {
            "templateRef": {"name": "shop-defaults"},
            "source": {"include": ["shop.refunds"], "exclude": ["shop.refunds_old"]},
        },
    }
    merged = templates.effective_spec(TEMPLATE, task["spec"])
    assert merged["source"] == {
        "connectorRef": {"name": "shop-db"},
        "include": ["shop.refunds"],
        "exclude": ["shop.refunds_old"],  # the task's list replaces the template's
    }
    assert merged["performance"] == {"batchSize": 2000}


def test_build_task_refuses_what_the_operator_would() -> None:
    with pytest.raises(UsageError, match="--include is required: TaskTemplate 'shop-defaults'"):
        templates.build_task("t", "shop", TEMPLATE, [], [], {})
    no_sink = {"metadata": {"name": "bare"}, "spec": {"template": {"source": TEMPLATE["spec"][
        "template"]["source"]}}}  # fmt: skip
    with pytest.raises(UsageError, match=r"'bare' sets no spec\.template\.sink\.connectorRef"):
        templates.build_task("t", "shop", no_sink, ["a.b"], [], {})
    two_sinks = {"metadata": {"name": "two"}, "spec": {"template": {
        **TEMPLATE["spec"]["template"],
        "sink": {"connectorRef": {"name": "k"}, "kafka": {}, "mysql": {}}}}}  # fmt: skip
    with pytest.raises(UsageError, match="sink needs exactly one of kafka and mysql"):
        templates.build_task("t", "shop", two_sinks, ["a.b"], [], {})
    bad = {"metadata": {"name": "bad"}, "spec": {"template": {
        **TEMPLATE["spec"]["template"], "mode": "sometimes"}}}  # fmt: skip
    with pytest.raises(UsageError, match=r"^spec\.mode: "):
        templates.build_task("t", "shop", bad, ["a.b"], [], {})


def test_globs_and_labels_as_typed() -> None:
    assert templates.split_globs(["shop.a, shop.b", "shop.a", "x.*"]) == ["shop.a", "shop.b", "x.*"]
    assert templates.split_globs(None) == []
    assert templates.parse_labels(["team=shop", "tier="]) == {"team": "shop", "tier": ""}
    with pytest.raises(UsageError, match="--label 'team' is not KEY=VALUE"):
        templates.parse_labels(["team"])


TASK: dict[str, Any] = {
    "apiVersion": "ferry.dev/v1alpha1",
    "kind": "SyncTask",
    "metadata": {
        "name": "orders",
        "namespace": "shop",
        "uid": "1234",
        "resourceVersion": "99",
        "generation": 4,
        "labels": {"team": "shop"},
        "annotations": {"argocd.argoproj.io/tracking-id": "x"},
        "managedFields": [{"manager": "kubectl"}],
    },
    "spec": {
        "templateRef": {"name": "shop-defaults"},
        "source": {"include": ["shop.orders"], "serverId": 4242},
        "sink": {"kafka": {"topic": "ferry.{database}.{table}"}},
        "mode": "cdc",
        "startPosition": {"at": "latest"},
        "mapping": [{"table": "shop.customers", "drop": ["card_number"]}],
        "paused": True,
        "resumeAt": "2026-02-01T00:00:00Z",
        "restartNonce": "n1",
        "resetPosition": {"to": {"at": "earliest"}, "nonce": "n2"},
        "snapshotRequest": {"tables": ["shop.orders"], "nonce": "n3"},
    },
    "status": {"phase": "Paused", "lastRestartNonce": "n1"},
}


def test_template_from_keeps_shared_settings_only() -> None:
    manifest = templates.template_from(TASK, TEMPLATE, "orders-defaults")
    assert manifest == {
        "apiVersion": "ferry.dev/v1alpha1",
        "kind": "TaskTemplate",
        "metadata": {"name": "orders-defaults", "namespace": "shop"},
        "spec": {
            "template": {
                # The template's fields merged in; the task's own tables, server id and
                # start position left out.
                "source": {"connectorRef": {"name": "shop-db"}, "exclude": ["*.tmp_*"]},
                "sink": {
                    "connectorRef": {"name": "kafka"},
                    "kafka": {"format": "debezium", "topic": "ferry.{database}.{table}"},
                },
                "performance": {"batchSize": 2000},
                "mode": "cdc",
                "mapping": [{"table": "shop.customers", "drop": ["card_number"]}],
            }
        },
    }


def test_template_from_drops_every_lifecycle_field_and_nonce() -> None:
    assert set(templates.TASK_ONLY_FIELDS) >= {
        "templateRef", "paused", "resumeAt", "restartNonce", "resetPosition", "snapshotRequest",
    }  # fmt: skip
    without = templates.template_from(TASK, None, "orders")["spec"]["template"]
    assert not set(without) & set(templates.TASK_ONLY_FIELDS)
    # Without its template the task's source held only its own tables and server id.
    assert "source" not in without and "startPosition" not in without
    assert without["sink"] == {"kafka": {"topic": "ferry.{database}.{table}"}}
