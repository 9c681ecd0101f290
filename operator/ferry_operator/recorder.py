"""The one writer of operator-owned status: server-side apply of the ``status`` subresource
under ``ferry-operator``, only when a field changed. Conditions keep their
lastTransitionTime while their status stays the same (Kubernetes conventions)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ferry_operator.applier import Applier
from ferry_operator.context import Context

__all__ = ["ConditionValue", "conditions", "record", "rfc3339"]

ConditionValue = tuple[str, str, str]  # (status, reason, message)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def conditions(
    wanted: dict[str, ConditionValue],
    previous: list[dict[str, Any]] | None,
    generation: int | None,
    now: datetime,
) -> list[dict[str, Any]]:
    """Condition objects for ``wanted``, reusing transition times from ``previous``."""
    before = {c.get("type"): c for c in previous or []}
    out = []
    for kind, (status, reason, message) in wanted.items():
        old = before.get(kind, {})
        same = old.get("status") == status
        out.append(
            {
                "type": kind,
                "status": status,
                "reason": reason,
                "message": message,
                "lastTransitionTime": old.get("lastTransitionTime") if same else rfc3339(now),
                "observedGeneration": generation,
            }
        )
    return out


def _comparable(status: dict[str, Any], keys: set[str]) -> dict[str, Any]:
    return {k: v for k, v in status.items() if k in keys and v is not None}


def record(
    ctx: Context,
    applier: Applier,
    obj: dict[str, Any],
    fields: dict[str, Any],
    owned: set[str],
) -> bool:
    """Write ``fields`` (the operator-owned part of status) if they differ from ``obj``'s.

    ``owned`` lists every key the operator may own, so a key it no longer sets counts as a change
    (server-side apply then removes it)."""
    current = _comparable(obj.get("status") or {}, owned)
    desired = {k: v for k, v in fields.items() if v is not None}
    if current == desired:
        return False
    meta = obj["metadata"]
    body = {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
        "status": desired,
    }
    applier.patch_status(obj["kind"].lower() + "s", body)
    return True
