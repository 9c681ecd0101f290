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

__all__ = ["SharedWaitToggleSet", "install"]

log = logging.getLogger(__name__)

aiotoggles: Any
try:
    aiotoggles = importlib.import_module("kopf._cogs.aiokits.aiotoggles")
except ImportError:  # pragma: no cover - a kopf without this module: leave it alone
    aiotoggles = None


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
