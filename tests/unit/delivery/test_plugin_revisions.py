"""kubectl ferry: revision ConfigMaps are read, diffed and rolled back to correctly."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from ferry_operator.plugin import mergepatch, revisions
from ferry_operator.plugin.errors import NotFoundError


def configmap(
    task: str, number: int, spec: dict[str, Any], config: str = "a: 1\n"
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"{task}-r{number}",
            "labels": {"ferry.dev/task": task},
            "annotations": {"ferry.dev/change-cause": f"change {number}"},
            "creationTimestamp": "2026-01-31T17:00:00Z",
        },
        "data": {"spec.yaml": yaml.safe_dump(spec), "worker.yaml": config},
    }


def test_reads_a_revision_and_ignores_other_configmaps() -> None:
    revision = revisions.from_configmap("orders", configmap("orders", 3, {"mode": "cdc"}))
    assert revision is not None
    assert (revision.number, revision.spec, revision.cause) == (3, {"mode": "cdc"}, "change 3")
    assert revisions.from_configmap("orders", configmap("orders-eu", 1, {})) is None
    other = configmap("orders", 1, {})
    other["metadata"]["labels"] = {}
    assert revisions.from_configmap("orders", other) is None


def test_current_number_accepts_both_forms() -> None:
    assert revisions.current_number({"configRevision": "orders-r7"}) == 7
    assert revisions.current_number({"configRevision": 4}) == 4
    assert revisions.current_number({}) is None


def test_find_names_the_revisions_that_exist() -> None:
    items = [r for r in (revisions.from_configmap("t", configmap("t", n, {})) for n in (1, 2)) if r]
    assert revisions.find("t", items, 2).number == 2
    with pytest.raises(
        NotFoundError, match=r"revision 9 of SyncTask 't' not found \(revisions: 1, 2\)"
    ):
        revisions.find("t", items, 9)


def test_diff_shows_spec_and_config_changes_only() -> None:
    old = revisions.from_configmap("t", configmap("t", 1, {"mode": "cdc", "x": 1}, "a: 1\nb: 2\n"))
    new = revisions.from_configmap(
        "t", configmap("t", 2, {"mode": "snapshot", "x": 1}, "b: 2\na: 1\n")
    )
    assert old and new
    text = revisions.diff(old, new)
    assert "-mode: cdc" in text and "+mode: snapshot" in text
    assert "worker config" not in text  # the same config in another key order is no change
    assert revisions.diff(old, old) == ""


def test_rollback_restores_config_and_keeps_lifecycle_fields() -> None:
    old = revisions.from_configmap(
        "t", configmap("t", 1, {"mode": "cdc", "performance": {"batchSize": 100}, "paused": False})
    )
    assert old
    current = {
        "mode": "snapshot",
        "performance": {"batchSize": 500, "maxBatchDelay": "1s"},
        "paused": True,
        "restartNonce": "n1",
    }
    change = revisions.rollback(current, old)
    assert change.patch is not None
    rolled = mergepatch.apply({"spec": current}, change.patch)["spec"]
    assert rolled == {
        "mode": "cdc",
        "performance": {"batchSize": 100},
        "paused": True,
        "restartNonce": "n1",
    }
    assert revisions.rollback(rolled, old).patch is None
