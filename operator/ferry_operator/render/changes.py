"""What changed between two effective specs, as a revision's change cause says it (pure):
``performance.batchSize: 500 → 2000``, several joined with ``; ``, the rest counted."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["MAX_SHOWN", "UNSET", "describe", "differences"]

MAX_SHOWN = 3
MAX_VALUE_CHARS = 40
UNSET = "(unset)"
_MISSING = object()  # a path on one side only


def _flatten(value: Any, path: str, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping) and value:
        for key in sorted(value):
            _flatten(value[key], f"{path}.{key}" if path else str(key), out)
    else:
        out[path] = value


def _shown(value: Any) -> str:
    if value is _MISSING:
        return UNSET
    text: str = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def differences(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """One ``path: old → new`` per changed leaf (maps are walked, lists compared whole),
    in path order."""
    old: dict[str, Any] = {}
    new: dict[str, Any] = {}
    _flatten(before, "", old)
    _flatten(after, "", new)
    changed = []
    for path in sorted(old.keys() | new.keys()):
        was, now = old.get(path, _MISSING), new.get(path, _MISSING)
        if was != now:
            changed.append(f"{path}: {_shown(was)} → {_shown(now)}")
    return changed


def describe(before: Mapping[str, Any], after: Mapping[str, Any]) -> str | None:
    """The changes joined for a change cause; None when nothing differs."""
    changed = differences(before, after)
    if not changed:
        return None
    shown = "; ".join(changed[:MAX_SHOWN])
    more = len(changed) - MAX_SHOWN
    return f"{shown} (and {more} more)" if more > 0 else shown
