"""When the operator looks at a SyncTask again without being told to by a watch event: one
process-wide schedule of wake-ups (a heap and one thread), instead of a kopf timer per task.

A task is woken
- at its **health deadline** (``health.next_check``): the moment its phase or conditions could
  change with no event at all — a heartbeat that would go missing, a startTimeout running
  out, a crash-loop streak to reset, a failed reconcile's backoff. A task in a steady state
  has none;
- at its **safety net**: ``FERRY_RESYNC_SECONDS`` (default 300) ± 20 % after its last
  reconcile, so that 5,000 tasks resumed together spread their re-reads over minutes;
- **soon** (``kick``) when an object it depends on changed: its worker's Deployment or pods,
  an owned object deleted or edited, a Connector it uses (see handlers.py).

The wake-ups of one task collapse into one: the earliest is kept, so a burst of pod events is
one reconcile. :class:`Dependents` remembers which tasks use which Connector and TaskTemplate
(filled by the reconciles themselves), so a Connector's change wakes exactly its tasks and a
template's user count needs no LIST.
"""

from __future__ import annotations

import heapq
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

__all__ = ["JITTER", "Dependents", "Key", "Schedule", "safety_net"]

Key = tuple[str, str]  # (namespace, task name)
Dep = tuple[str, str]  # (plural, name): ("connectors", "db"), ("tasktemplates", "defaults")
JITTER = 0.2
log = logging.getLogger(__name__)


def safety_net(now: float, interval: float, rng: random.Random | None = None) -> float:
    """The next safety-net wake-up: ``interval`` ± 20 % from ``now``."""
    draw = (rng or random).uniform(1 - JITTER, 1 + JITTER)
    return now + interval * draw


class Schedule:
    """Wake-ups by key; ``run(key, trigger)`` is called in a small thread pool when one is due,
    never twice at once for the same key."""

    def __init__(
        self,
        run: Callable[[Key, str], None],
        workers: int = 4,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._run = run
        self._clock = clock
        self._heap: list[tuple[float, int, Key]] = []
        self._due: dict[Key, tuple[float, str]] = {}
        self._running: set[Key] = set()
        self._seq = 0
        self._cond = threading.Condition()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ferry-wake")
        self._thread: threading.Thread | None = None

    def __len__(self) -> int:
        with self._cond:
            return len(self._due)

    def due(self, key: Key) -> tuple[float, str] | None:
        with self._cond:
            return self._due.get(key)

    def at(self, key: Key, when: float, trigger: str) -> None:
        """Wake ``key`` at ``when`` (replacing its wake-up: after a reconcile)."""
        with self._cond:
            self._set(key, when, trigger)

    def sooner(self, key: Key, when: float, trigger: str) -> None:
        """Wake ``key`` at ``when`` unless it is due earlier already."""
        with self._cond:
            current = self._due.get(key)
            if current is None or when < current[0]:
                self._set(key, when, trigger)

    def forget(self, key: Key) -> None:
        with self._cond:
            self._due.pop(key, None)

    def _set(self, key: Key, when: float, trigger: str) -> None:
        self._due[key] = (when, trigger)
        self._seq += 1
        heapq.heappush(self._heap, (when, self._seq, key))
        self._start()
        self._cond.notify()

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="ferry-wakeups", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while True:
            with self._cond:
                key, trigger = self._next()
                self._running.add(key)
            try:
                self._pool.submit(self._call, key, trigger)
            except RuntimeError:  # the interpreter is shutting down
                return

    def _next(self) -> tuple[Key, str]:
        """Wait for the earliest due key that is not running (call with the lock held)."""
        while True:
            now = self._clock()
            while self._heap:
                when, _, key = self._heap[0]
                current = self._due.get(key)
                if current is None or current[0] != when:
                    heapq.heappop(self._heap)  # replaced or forgotten
                    continue
                break
            if not self._heap:
                self._cond.wait()
                continue
            when, _, key = self._heap[0]
            if when > now:
                self._cond.wait(when - now)
                continue
            heapq.heappop(self._heap)
            if key in self._running:  # wake again once the running one is done
                self._seq += 1
                heapq.heappush(self._heap, (now + 0.5, self._seq, key))
                self._due[key] = (now + 0.5, self._due[key][1])
                continue
            _, trigger = self._due.pop(key)
            return key, trigger

    def _call(self, key: Key, trigger: str) -> None:
        try:
            self._run(key, trigger)
        except Exception:  # the callback reports its own failures; never kill the pool
            log.exception("wake-up of %s/%s failed", *key)
        finally:
            with self._cond:
                self._running.discard(key)


class Dependents:
    """Which tasks use which Connectors and TaskTemplates (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._uses: dict[Key, frozenset[Dep]] = {}
        self._users: dict[tuple[str, Dep], set[str]] = {}

    def record(self, task: Key, uses: Iterable[Dep]) -> frozenset[Dep]:
        """Remember what ``task`` uses; returns what changed (added or dropped)."""
        namespace, name = task
        new = frozenset(uses)
        with self._lock:
            old = self._uses.get(task, frozenset())
            if old == new:
                return frozenset()
            for dep in old - new:
                users = self._users.get((namespace, dep))
                if users is not None:
                    users.discard(name)
                    if not users:
                        del self._users[(namespace, dep)]
            for dep in new - old:
                self._users.setdefault((namespace, dep), set()).add(name)
            self._uses[task] = new
            return old ^ new

    def forget(self, task: Key) -> frozenset[Dep]:
        changed = self.record(task, ())
        with self._lock:
            self._uses.pop(task, None)
        return changed

    def users(self, namespace: str, plural: str, name: str) -> list[str]:
        with self._lock:
            return sorted(self._users.get((namespace, (plural, name)), ()))

    def known(self) -> int:
        with self._lock:
            return len(self._uses)
