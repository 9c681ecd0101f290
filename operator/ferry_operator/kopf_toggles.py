"""A fix for kopf's startup with thousands of objects: one shared wait per toggle set.

kopf holds every object's handlers until all indexes are filled (cache.py relies on that:
a task's first reconcile finds its owned objects in memory). Each object of every watched
kind waits for that in ``ToggleSet.wait_for``, on one ``asyncio.Condition``; each object of
an indexed kind adds and drops a toggle in the same set, and each of those wakes every
waiter, which re-checks the whole set. That is quadratic in the number of watched objects:
with 1,000 paused tasks (~7,000 objects) the restarted operator made its first reconcile
only after minutes, 90 % of its CPU in ``Condition.notify_all`` (py-spy,
tests/bench/bench_operator.py --restart; docs/benchmarks.md).

Here the waiters for one state share one future, resolved by a single waiter on kopf's
condition: a change wakes one task instead of thousands, and the waiters wake once, when the
state is reached. The semantics are kopf's (the state held at some moment after the call;
``make_toggle``, ``drop_toggle`` and ``Toggle.turn_to`` untouched). kopf creates its toggle
sets through the module attribute, so :func:`install` swaps in the subclass before the
operator starts; it does nothing if kopf's class no longer looks as expected."""

from __future__ import annotations

import asyncio
import importlib
import logging
from typing import Any

__all__ = ["SharedWaitToggleSet", "install", "install_no_wait"]

log = logging.getLogger(__name__)

aiotoggles: Any
processing: Any
try:
    aiotoggles = importlib.import_module("kopf._cogs.aiokits.aiotoggles")
    processing = importlib.import_module("kopf._core.reactor.processing")
except ImportError:  # pragma: no cover - a kopf without these modules: leave it alone
    aiotoggles = processing = None


_Base: Any = aiotoggles.ToggleSet if aiotoggles is not None else object


class SharedWaitToggleSet(_Base):  # type: ignore[misc]
    """kopf's ToggleSet whose ``wait_for`` callers share one waiter per state."""

    def __init__(self, fn: Any) -> None:
        super().__init__(fn)
        self._shared: dict[bool, asyncio.Future[None]] = {}
        self._watchers: set[asyncio.Task[None]] = set()

    async def wait_for(self, state: bool, /) -> None:
        wanted = bool(state)
        if self.is_on() == wanted:
            return
        shared = self._shared.get(wanted)
        if shared is None or shared.done():
            shared = asyncio.get_running_loop().create_future()
            self._shared[wanted] = shared
            watcher = asyncio.create_task(self._watch(wanted, shared))
            self._watchers.add(watcher)  # a strong reference until it is done
            watcher.add_done_callback(self._watchers.discard)
        await asyncio.shield(shared)

    async def _watch(self, wanted: bool, shared: asyncio.Future[None]) -> None:
        try:
            await super().wait_for(wanted)
        except asyncio.CancelledError:
            shared.cancel()
            raise
        except BaseException as error:  # pragma: no cover - kopf's wait raises nothing else
            if not shared.done():
                shared.set_exception(error)
            raise
        if not shared.done():
            shared.set_result(None)


def install() -> bool:
    """Make kopf build its toggle sets as :class:`SharedWaitToggleSet`; True if it did."""
    if aiotoggles is None:
        return False
    current = aiotoggles.ToggleSet
    if current is SharedWaitToggleSet:
        return True
    expected = ("wait_for", "make_toggle", "drop_toggle", "is_on")
    if current is not _Base or not all(hasattr(current, name) for name in expected):
        log.warning("kopf's ToggleSet changed: its startup wait is left as it is")
        return False
    aiotoggles.ToggleSet = SharedWaitToggleSet
    return True


class _NoWait:
    """kopf's "operator indexed" toggle set as seen by an object whose handlers read no index:
    its own toggle is dropped once it is indexed (the operator's readiness still counts it),
    its handlers run without waiting for every other object."""

    def __init__(self, toggles: Any) -> None:
        self._toggles = toggles

    async def drop_toggle(self, toggle: Any, /) -> None:
        await self._toggles.drop_toggle(toggle)

    async def wait_for(self, state: bool, /) -> None:
        return None

    def is_on(self) -> bool:
        return bool(self._toggles.is_on())


def install_no_wait(resources: set[tuple[str, str, str]]) -> bool:
    """Let the objects of ``resources`` (group, version, plural) be handled as soon as they
    are indexed, not when every watched object is: their worker then exits after kopf's
    idle timeout instead of holding the object until the startup listing is over (the
    startup's memory peak: all watched objects at once). Only for kinds whose handlers read
    no index (the owned kinds' change views, handlers.py). Their handling then comes before
    the tasks' resumes: at 5,000 tasks the peak fell by a third and the start took 60 %
    longer, so handlers.py installs it only with FERRY_KOPF_NO_WAIT=1 (docs/benchmarks.md).
    True if installed."""
    if processing is None:
        return False
    current = processing.process_resource_event
    if getattr(current, "__ferry_no_wait__", None) is not None:
        current.__ferry_no_wait__.update(resources)
        return True
    if not asyncio.iscoroutinefunction(current):
        log.warning("kopf's process_resource_event changed: every object waits at startup")
        return False
    chosen = set(resources)

    async def process_resource_event(
        *, resource: Any, operator_indexed: Any = None, **kwargs: Any
    ) -> Any:
        selector = (resource.group, resource.version, resource.plural)
        if operator_indexed is not None and selector in chosen:
            operator_indexed = _NoWait(operator_indexed)
        return await current(resource=resource, operator_indexed=operator_indexed, **kwargs)

    process_resource_event.__ferry_no_wait__ = chosen  # type: ignore[attr-defined]
    processing.process_resource_event = process_resource_event
    return True
