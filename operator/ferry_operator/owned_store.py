"""The objects the operator owns for its SyncTasks, and their worker pods, watched by the
operator itself into one store of slim copies (owned.slim, cache.pod_view) — not by kopf.

kopf gives every watched object a worker of its own (an asyncio task, a queue, loggers, a
cause per event) and, at startup, keeps each of them alive with its object until every index
is filled. At 5,000 tasks that is ~35,000 workers at once and most of the operator's peak
memory (docs/benchmarks.md, "Where the memory went"), for objects whose events only update a
copy and perhaps wake a task. Here one loop per kind (and namespace) lists the objects in
pages, keeps their slim copies, then follows the watch from the listing's resourceVersion:
no per-object task, a listing page at a time in memory.

- :class:`Store` holds the copies, by kind, and serves them to the reconcilers as lookups
  (cache.Cache): the one object per task of ServiceAccounts, Roles, RoleBindings and
  Deployments by (namespace, name), the revision ConfigMaps and the worker pods by
  (namespace, task). Written from the event loop, read from handler threads: a lookup
  returns a tuple made in one C call.
- :meth:`Store.wait_filled`: the operator's readiness for SyncTasks. A task is reconciled
  only once every kind has been listed (its first reconcile after a restart decides from
  these copies); the SyncTask handlers wait for it (handlers.py).
- :func:`watch`: list, then watch from the listing's version; "410 Gone" (the version is
  too old for the API server) lists again, and the objects the new listing lacks are
  dropped as deleted. Any other failure backs off and lists again.
- Every event is passed to ``on_change(plural, type, body)`` (``type`` None for a listed
  object, as kopf does): handlers.py wakes the object's task when what the task acts on
  changed.

kopf's HTTP client and credentials are reused (``kopf._cogs.clients``, kopf pinned to
1.45.x): :func:`start` is called from a kopf startup handler, inside kopf's context."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import importlib
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from ferry_operator import cache, owned
from ferry_operator.render.meta import TASK_LABEL

__all__ = ["CHUNK", "Index", "OnChange", "Store", "scopes", "start", "stop", "watch"]

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, name or task)
# (plural, event type, the object — as received, or the kept copy of one found gone —, its task)
OnChange = Callable[[str, str | None, Mapping[str, Any], str | None], None]
# Objects per listing page: only a page's objects are parsed whole at a time.
CHUNK = 500

fetching: Any
watching: Any
try:
    fetching = importlib.import_module("kopf._cogs.clients.fetching")
    watching = importlib.import_module("kopf._cogs.clients.watching")
except ImportError:  # pragma: no cover - a kopf without these modules
    fetching = watching = None


class Index(Mapping[Key, tuple[dict[str, Any], ...]]):
    """key → the copies stored under it (a kopf index's shape: cache.Lookup)."""

    def __init__(self) -> None:
        self._by: dict[Key, dict[str, dict[str, Any]]] = {}

    def __getitem__(self, key: Key) -> tuple[dict[str, Any], ...]:
        return tuple(self._by[key].values())

    def __iter__(self) -> Iterator[Key]:
        return iter(list(self._by))

    def __len__(self) -> int:
        return len(self._by)

    def put(self, key: Key, name: str, body: dict[str, Any]) -> None:
        self._by.setdefault(key, {})[name] = body

    def one(self, key: Key, name: str) -> dict[str, Any] | None:
        return self._by.get(key, {}).get(name)

    def drop(self, key: Key, name: str) -> None:
        found = self._by.get(key)
        if found is not None:
            found.pop(name, None)
            if not found:
                del self._by[key]


def _task_of(body: Mapping[str, Any]) -> str | None:
    label = ((body.get("metadata") or {}).get("labels") or {}).get(TASK_LABEL)
    return str(label) if label else None


# What the store keeps of each kind: what a reconcile reads of it (owned.py; a pod: what
# status.workerPod and its change view read).
_SLIM: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    **{kind.plural: functools.partial(owned.slim, kind) for kind in owned.KINDS},
    "pods": cache.pod_view,
}
# How each kind is looked up: the one-per-task kinds by their own name (<task>-worker), the
# revision ConfigMaps and the worker pods by their task.
_KEYED_BY_TASK: dict[str, bool] = {
    **{kind.plural: kind.index is None for kind in owned.KINDS},
    "pods": True,
}


class Store:
    """The slim copies of every watched owned object and worker pod, by plural."""

    def __init__(self, on_change: OnChange | None = None) -> None:
        self.on_change = on_change
        self._indexes = {plural: Index() for plural in _SLIM}
        # plural → (namespace, name) → its index key: to drop it on deletion or relisting
        self._keys: dict[str, dict[Key, Key]] = {plural: {} for plural in _SLIM}
        self._pending: set[tuple[str, str | None]] = set()
        self._filled = threading.Event()

    def lookup(self, plural: str) -> Index:
        return self._indexes[plural]

    def __len__(self) -> int:
        return sum(len(keys) for keys in self._keys.values())

    # -- readiness

    def expect(self, plural: str, namespace: str | None) -> None:
        """A listing to wait for before the store counts as filled."""
        self._pending.add((plural, namespace))
        self._filled.clear()

    def listed(self, plural: str, namespace: str | None) -> None:
        self._pending.discard((plural, namespace))
        if not self._pending and not self._filled.is_set():
            log.info("owned objects in memory: %d", len(self))
            self._filled.set()

    def filled(self) -> bool:
        return self._filled.is_set()

    def wait_filled(self, timeout: float | None = None) -> bool:
        """Block (a handler thread) until every kind has been listed once; False on timeout."""
        return self._filled.wait(timeout)

    # -- events (from the event loop)

    def apply(self, plural: str, type: str | None, raw: Mapping[str, Any]) -> None:
        """One watch or listing event (``type`` None: listed); the object is slimmed here."""
        meta = raw["metadata"]
        name = (str(meta["namespace"]), str(meta["name"]))
        task = _task_of(raw)
        if type == "DELETED":
            self._drop(plural, name)
        else:
            self._put(plural, name, task, _SLIM[plural](raw))
        if self.on_change is not None:
            self.on_change(plural, type, raw, task)

    def relisted(self, plural: str, namespace: str | None, seen: set[Key]) -> None:
        """A listing is complete: what it lacks was deleted meanwhile (a watch that lost
        events and listed again); each is passed on as DELETED."""
        keys = self._keys[plural]
        gone = [n for n in keys if n not in seen and (namespace is None or n[0] == namespace)]
        for name in gone:
            namespace_, key = keys.pop(name)
            index = self._indexes[plural]
            body = index.one((namespace_, key), name[1])
            index.drop((namespace_, key), name[1])
            if body is not None and self.on_change is not None:
                task = key if _KEYED_BY_TASK[plural] else _task_of(body)
                self.on_change(plural, "DELETED", body, task)

    def _put(self, plural: str, name: Key, task: str | None, body: dict[str, Any]) -> None:
        keys = self._keys[plural]
        before = keys.get(name)
        key = None if task is None else (name[0], task if _KEYED_BY_TASK[plural] else name[1])
        if before is not None and before != key:  # (same key: replaced in place, never absent)
            self._indexes[plural].drop(before, name[1])
            del keys[name]
        if key is None:  # no task label: not Ferry's (the API server filters these)
            return
        keys[name] = key
        self._indexes[plural].put(key, name[1], body)

    def _drop(self, plural: str, name: Key) -> None:
        key = self._keys[plural].pop(name, None)
        if key is not None:
            self._indexes[plural].drop(key, name[1])


# ---------------------------------------------------------------- the watches


# What is watched (owned.py's table: the owned kinds and the worker pods), by plural.
_WATCHED = {plural: (group, version) for group, version, plural in owned.WATCHED}


def _resource(plural: str) -> Any:
    import kopf

    group, version = _WATCHED[plural]
    return kopf.Resource(group, version, plural, namespaced=True)


def _settings(settings: Any) -> Any:
    """kopf's settings for these watches: the task label selects the objects server-side
    (only Ferry's reach the store), listings in pages of :data:`CHUNK`."""
    arrays = importlib.import_module("kopf._cogs.configs.arrays")
    own = copy.copy(settings)
    own.watching = copy.copy(settings.watching)
    own.watching.chunk_size = CHUNK
    own.watching.initial_streaming = False
    own.watching.label_selectors = arrays.SelectorMapping()
    for plural in _WATCHED:
        own.watching.label_selectors[_resource(plural).group, plural] = TASK_LABEL
    own.watching.field_selectors = arrays.SelectorMapping()
    return own


async def _list(store: Store, plural: str, namespace: str | None, settings: Any) -> str:
    seen: set[Key] = set()
    version = ""
    resource = _resource(plural)
    async for chunk, listed_at in fetching.fetch_objs(
        settings=settings, resource=resource, namespace=namespace, logger=log
    ):
        version = listed_at
        for raw in chunk:
            meta = raw["metadata"]
            seen.add((str(meta["namespace"]), str(meta["name"])))
            store.apply(plural, None, raw)
        del chunk
    store.relisted(plural, namespace, seen)
    store.listed(plural, namespace)
    return version


async def _follow(
    store: Store, plural: str, namespace: str | None, settings: Any, since: str
) -> str | None:
    """Watch from ``since`` until the server ends the stream: the version to go on from, or
    None when it is too old (410 Gone: list again)."""
    stopper: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    try:
        async for event in watching.watch_objs(
            settings=settings,
            resource=_resource(plural),
            namespace=namespace,
            since=since,
            operator_pause_waiter=stopper,
        ):
            kind, raw = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                if raw.get("code") == 410:
                    log.debug("watch of %s in %s expired: listing again", plural, namespace)
                    return None
                raise RuntimeError(f"watch of {plural} failed: {raw.get('message') or raw}")
            if kind in ("ADDED", "MODIFIED", "DELETED"):
                store.apply(plural, kind, raw)
            since = (raw.get("metadata") or {}).get("resourceVersion") or since
    finally:
        stopper.cancel()
    return since


async def watch(
    store: Store,
    plural: str,
    namespace: str | None,
    settings: Any,
    since: str | None = None,
    backoff: float = 5.0,
) -> None:
    """Keep ``store`` current for one kind in one namespace (None: all), forever: list, then
    watch; list again when the watch's version expired or anything failed. ``since``: watch
    from this version first instead of listing (a version already known)."""
    own = _settings(settings)
    while True:
        try:
            if since is None:
                since = await _list(store, plural, namespace, own)
            since = await _follow(store, plural, namespace, own, since)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the API server away, a listing's page expired, ...
            log.warning("watch of %s in %s failed, listing again: %s", plural, namespace, error)
            since = None
            await asyncio.sleep(backoff)
            continue
        await asyncio.sleep(own.watching.reconnect_backoff)


def scopes(namespaces: Sequence[str]) -> list[str | None]:
    """The watches' namespaces for the operator's ([]: all; a kopf pattern such as ``ns-*``:
    all, the API server's label selector still limits them to Ferry's objects)."""
    if not namespaces or any(set(ns) & set("*?[]!,") for ns in namespaces):
        return [None]
    return list(dict.fromkeys(namespaces))


def start(
    store: Store, settings: Any, namespaces: Sequence[str | None]
) -> list[asyncio.Task[None]]:
    """One watch task per watched kind and namespace (None: every namespace), in the running
    loop; the store counts as filled once each has listed."""
    tasks: list[asyncio.Task[None]] = []
    for plural in _WATCHED:
        for namespace in namespaces:
            store.expect(plural, namespace)
            tasks.append(
                asyncio.create_task(
                    watch(store, plural, namespace, settings), name=f"ferry watch {plural}"
                )
            )
    return tasks


async def stop(tasks: Sequence[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
