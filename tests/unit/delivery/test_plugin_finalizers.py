"""clear-finalizers chooses only deleted tasks held long by Ferry's finalizer, and its patch
is guarded by the finalizer list it read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ferry_operator.plugin import finalizers, positions
from ferry_operator.plugin.errors import UsageError

NOW = datetime(2026, 1, 31, 18, 0, 0, tzinfo=UTC)


def task(name: str, deleted: str | None, held: list[str]) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "shop", "finalizers": held}
    if deleted:
        meta["deletionTimestamp"] = deleted
    return {"metadata": meta}


def test_only_long_deleted_tasks_holding_the_finalizer() -> None:
    tasks = [
        task("stuck", "2026-01-31T17:50:00Z", ["other.io/x", finalizers.FINALIZER]),
        task("just-deleted", "2026-01-31T17:59:50Z", [finalizers.FINALIZER]),
        task("alive", None, [finalizers.FINALIZER]),
        task("not-ours", "2026-01-31T17:00:00Z", ["other.io/x"]),
    ]
    found = finalizers.stuck(tasks, NOW, timedelta(minutes=5))
    assert [s.name for s in found] == ["stuck"]
    assert found[0].describe() == (
        "shop/stuck: deleted 10m00s ago, still held by ferry.dev/finalizer"
    )
    assert [s.name for s in finalizers.stuck(tasks, NOW, timedelta(0))] == [
        "stuck",
        "just-deleted",
    ]


def test_the_patch_keeps_other_finalizers_and_tests_first() -> None:
    (found,) = finalizers.stuck(
        [task("stuck", "2026-01-31T17:50:00Z", ["other.io/x", finalizers.FINALIZER])],
        NOW,
        timedelta(0),
    )
    assert finalizers.release_patch(found) == [
        {"op": "test", "path": "/metadata/finalizers",
         "value": ["other.io/x", finalizers.FINALIZER]},
        {"op": "replace", "path": "/metadata/finalizers", "value": ["other.io/x"]},
    ]  # fmt: skip


def test_older_than_is_a_duration() -> None:
    assert positions.parse_age("90s") == timedelta(seconds=90)
    assert positions.parse_age("0s") == timedelta(0)
    with pytest.raises(UsageError, match="--older-than 'soon'"):
        positions.parse_age("soon")
