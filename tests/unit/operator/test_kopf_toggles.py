"""kopf_toggles: kopf's startup wait for its indexes, shared by all waiters (one check of the
toggle set per change, not one per waiter), with kopf's semantics."""

from __future__ import annotations

import asyncio
from typing import Any

from ferry_operator import kopf_toggles
from ferry_operator.kopf_toggles import SharedWaitToggleSet

ORIGINAL = kopf_toggles._Base  # kopf's own ToggleSet


class Counted:
    """A toggle set class counting the checks of its state."""

    def __init__(self, base: Any) -> None:
        self.checks = 0
        counter = self

        class Subclass(base):  # type: ignore[misc]
            def is_on(self) -> bool:
                counter.checks += 1
                result: bool = super().is_on()
                return result

        self.cls = Subclass


async def _startup(toggle_set: Any, waiters: int, objects: int) -> None:
    """kopf's startup in small: every object waits for the set; each of ``objects`` adds a
    toggle and drops it (its index is filled), then the last blocker goes."""
    blocker = await toggle_set.make_toggle(name="blocker")
    done = 0

    async def wait() -> None:
        nonlocal done
        await toggle_set.wait_for(True)
        done += 1

    tasks = [asyncio.create_task(wait()) for _ in range(waiters)]
    await asyncio.sleep(0)
    for i in range(objects):
        toggle = await toggle_set.make_toggle(name=f"object {i}")
        await asyncio.sleep(0)
        await toggle_set.drop_toggle(toggle)
    assert done == 0  # still blocked
    await toggle_set.drop_toggle(blocker)
    await asyncio.wait_for(asyncio.gather(*tasks), 10)
    assert done == waiters


def test_all_waiters_are_released_once_with_one_check_per_change() -> None:
    shared, kopfs = Counted(SharedWaitToggleSet), Counted(ORIGINAL)
    asyncio.run(_startup(shared.cls(all), waiters=200, objects=200))
    asyncio.run(_startup(kopfs.cls(all), waiters=200, objects=200))
    # kopf's: every change re-checks the set in every waiter (~ waiters * changes).
    assert kopfs.checks > 200 * 200
    assert shared.checks < 10 * (200 + 200)


def test_semantics_as_kopfs() -> None:
    async def scenario() -> None:
        toggles = SharedWaitToggleSet(all)
        await asyncio.wait_for(toggles.wait_for(True), 1)  # all() of nothing is on
        off = await toggles.make_toggle(False)
        waiting = asyncio.create_task(toggles.wait_for(True))
        await asyncio.sleep(0.01)
        assert not waiting.done()
        await off.turn_to(True)  # a toggle turned on counts, as in kopf
        await asyncio.wait_for(waiting, 1)
        await asyncio.wait_for(toggles.wait_for(True), 1)
        # any(): peering's pause set; waiting for "off"
        paused = SharedWaitToggleSet(any)
        on = await paused.make_toggle(True)
        resumed = asyncio.create_task(paused.wait_for(False))
        again = asyncio.create_task(paused.wait_for(False))
        await asyncio.sleep(0.01)
        assert not resumed.done() and not again.done()
        await on.turn_to(False)
        await asyncio.wait_for(asyncio.gather(resumed, again), 1)
        # on again, then a new wait blocks until off again
        await on.turn_to(True)
        later = asyncio.create_task(paused.wait_for(False))
        await asyncio.sleep(0.01)
        assert not later.done()
        await paused.drop_toggle(on)
        await asyncio.wait_for(later, 1)

    asyncio.run(scenario())


def test_a_cancelled_waiter_leaves_the_others_waiting() -> None:
    async def scenario() -> None:
        toggles = SharedWaitToggleSet(all)
        off = await toggles.make_toggle(False)
        first = asyncio.create_task(toggles.wait_for(True))
        second = asyncio.create_task(toggles.wait_for(True))
        await asyncio.sleep(0.01)
        first.cancel()
        await asyncio.sleep(0.01)
        assert first.cancelled() and not second.done()
        await toggles.drop_toggle(off)
        await asyncio.wait_for(second, 1)

    asyncio.run(scenario())


def test_install_makes_kopf_build_the_shared_set() -> None:
    aiotoggles = kopf_toggles.aiotoggles
    before = aiotoggles.ToggleSet
    try:
        assert kopf_toggles.install()
        assert aiotoggles.ToggleSet is SharedWaitToggleSet
        assert kopf_toggles.install()  # twice: still installed
    finally:
        aiotoggles.ToggleSet = before
