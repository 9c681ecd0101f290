"""The one merge rule: later layers win; mappings merge key by key, anything else
(scalars, lists) is replaced whole. Precedence: defaults < TaskTemplate < SyncTask <
what the operator must set."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["deep_merge"]


def deep_merge(*layers: Mapping[str, Any] | None) -> dict[str, Any]:
    """Merge ``layers`` left to right into a new dict; the inputs are not changed."""
    result: dict[str, Any] = {}
    for layer in layers:
        for key, value in (layer or {}).items():
            current = result.get(key)
            if isinstance(current, Mapping) and isinstance(value, Mapping):
                result[key] = deep_merge(current, value)
            elif isinstance(value, Mapping):
                result[key] = deep_merge(value)
            else:
                result[key] = value
    return result
