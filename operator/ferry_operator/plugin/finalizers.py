"""``kubectl ferry clear-finalizers``: which deleted SyncTasks are stuck on the operator's
finalizer, and the guarded JSON patch that lets them go (pure).

The operator removes ``ferry.dev/finalizer`` seconds after a task is deleted (once its worker
has stopped). A task still carrying it long after its deletion means no operator is handling
it: the operator was uninstalled first, or is down. Only such tasks are chosen, and the patch
tests the finalizer list first, so it fails rather than overwrite a change made meanwhile.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ferry_operator.plugin.formatting import duration

__all__ = ["FINALIZER", "Stuck", "release_patch", "stuck"]

FINALIZER = "ferry.dev/finalizer"


@dataclass(frozen=True)
class Stuck:
    namespace: str
    name: str
    deleted_for: timedelta
    finalizers: list[str]

    def describe(self) -> str:
        return (
            f"{self.namespace}/{self.name}: deleted {duration(self.deleted_for.total_seconds())} "
            f"ago, still held by {FINALIZER}"
        )


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def stuck(tasks: Sequence[dict[str, Any]], now: datetime, older_than: timedelta) -> list[Stuck]:
    """The tasks deleted more than ``older_than`` ago that still carry Ferry's finalizer."""
    found = []
    for task in tasks:
        meta = task.get("metadata") or {}
        deleted = meta.get("deletionTimestamp")
        finalizers = list(meta.get("finalizers") or [])
        if not deleted or FINALIZER not in finalizers:
            continue
        age = now - _time(str(deleted))
        if age >= older_than:
            found.append(Stuck(meta["namespace"], meta["name"], age, finalizers))
    return found


def release_patch(task: Stuck) -> list[dict[str, Any]]:
    """A JSON patch removing Ferry's finalizer only if the list is still what was read."""
    remaining = [f for f in task.finalizers if f != FINALIZER]
    return [
        {"op": "test", "path": "/metadata/finalizers", "value": task.finalizers},
        {"op": "replace", "path": "/metadata/finalizers", "value": remaining},
    ]
