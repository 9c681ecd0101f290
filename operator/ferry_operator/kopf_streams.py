"""The objects kopf watches, slimmed as they arrive: what kopf and the handlers keep of them.

kopf hands every listed or watched object to a worker of its own, and at startup that worker
holds the object until every index is filled (kopf_toggles.py): with thousands of objects
they are all in memory at once, each in full, though the operator reads a few fields of
them. The owned objects and worker pods (most of them: 6 per task, and its pod) are not
kopf's any more (owned_store.py); of what kopf still watches, each watch event's object is
replaced, before kopf sees it, by what the operator reads:

- Secrets: their metadata and type (a Secret event only names the Connectors to re-probe;
  the probe reads the Secret afresh);
- everything else (SyncTasks, Connectors, TaskTemplates, kopf's peering objects): the whole
  object but its ``metadata.managedFields``, which neither kopf nor a handler reads.

kopf's events carry the same object (uid, resourceVersion, labels, annotations, finalizers,
deletionTimestamp are metadata: kept), so its bookkeeping is unchanged. kopf reads each
watch through ``watching.continuous_watch``, looked up in its module at every (re)connect:
:func:`install` wraps it once, before the operator starts; it does nothing if kopf's module
no longer looks as expected."""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from typing import Any

__all__ = ["SECRETS", "install", "slimmer", "without_managed_fields"]

log = logging.getLogger(__name__)

Slim = Callable[[Mapping[str, Any]], dict[str, Any]]
SECRETS = ("", "v1", "secrets")
_EVENT_TYPES = (None, "ADDED", "MODIFIED", "DELETED")  # an object's events (not ERROR, BOOKMARK)

watching: Any
try:
    watching = importlib.import_module("kopf._cogs.clients.watching")
except ImportError:  # pragma: no cover - a kopf without this module: leave it alone
    watching = None


def without_managed_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    """The object without ``metadata.managedFields`` (shallow: the rest is shared)."""
    found = dict(body)
    metadata = found.get("metadata")
    if isinstance(metadata, Mapping) and "managedFields" in metadata:
        found["metadata"] = {k: v for k, v in metadata.items() if k != "managedFields"}
    return found


def _secret(body: Mapping[str, Any]) -> dict[str, Any]:
    kept = {k: body[k] for k in ("apiVersion", "kind", "metadata", "type") if k in body}
    return without_managed_fields(kept)


_SLIMMERS: dict[tuple[str, str, str], Slim] = {SECRETS: _secret}


def slimmer(group: str, version: str, plural: str) -> Slim:
    """What is kept of a watched object of this resource (pure functions)."""
    return _SLIMMERS.get((group, version, plural), without_managed_fields)


def _slim_event(slim: Slim, event: Any) -> Any:
    """The raw watch event with its object slimmed (in place; other items as they are)."""
    if isinstance(event, dict) and event.get("type") in _EVENT_TYPES:
        body = event.get("object")
        if isinstance(body, Mapping) and isinstance(body.get("metadata"), Mapping):
            event["object"] = slim(body)
    return event


def _wrap(original: Callable[..., AsyncGenerator[Any]]) -> Callable[..., AsyncIterator[Any]]:
    @functools.wraps(original)
    async def continuous_watch(*, resource: Any, **kwargs: Any) -> AsyncIterator[Any]:
        slim = slimmer(resource.group, resource.version, resource.plural)
        async with contextlib.aclosing(original(resource=resource, **kwargs)) as stream:
            async for event in stream:
                yield _slim_event(slim, event)

    continuous_watch.__ferry_slimmed__ = True  # type: ignore[attr-defined]
    return continuous_watch


def install() -> bool:
    """Make kopf's watches hand slimmed objects to kopf; True if it did (or had)."""
    if watching is None:
        return False
    current = getattr(watching, "continuous_watch", None)
    if getattr(current, "__ferry_slimmed__", False):
        return True
    parameters = inspect.signature(current).parameters if callable(current) else {}
    if not inspect.isasyncgenfunction(current) or "resource" not in parameters:
        log.warning("kopf's continuous_watch changed: watched objects are kept whole")
        return False
    watching.continuous_watch = _wrap(current)
    return True
