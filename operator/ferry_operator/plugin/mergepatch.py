"""JSON merge patches (RFC 7386): compute the patch that turns one document into another.

Maps are patched key by key (``None`` deletes a key); anything else, lists included, is
replaced whole. So a patch never leaves a stale key behind, e.g. ``file``/``pos`` when a
position becomes ``{gtid}``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["apply", "diff"]


def diff(current: Any, target: Any) -> Any:
    """The merge patch that turns ``current`` into ``target`` (``{}`` when they are equal)."""
    if not isinstance(current, dict) or not isinstance(target, dict):
        return target
    patch: dict[str, Any] = {}
    for key in current.keys() - target.keys():
        patch[key] = None
    for key, value in target.items():
        if key not in current:
            patch[key] = value
        elif isinstance(current[key], dict) and isinstance(value, dict):
            nested = diff(current[key], value)
            if nested != {}:
                patch[key] = nested
        elif current[key] != value:
            patch[key] = value
    return patch


def apply(document: Any, patch: Any) -> Any:
    """Apply a merge patch as the API server does (used to predict and to test)."""
    if not isinstance(patch, dict):
        return patch
    result: dict[str, Any] = dict(document) if isinstance(document, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply(result.get(key), value)
    return result
