"""Reconcile failures: what to tell the user, when to try again, and when to say it.

A reconcile that raises (the API server refused an object, a request timed out, a bug) is not
a traceback every resync. :func:`describe` turns the exception into a sentence a person can
act on (the API server's own message when there is one, and what to do for the known causes);
:class:`Failures` remembers, per task, the last such sentence and how often it repeated, so
that the handlers log it and post its Warning Event once per change, and retry with an
exponential backoff instead of every resync. The handlers record it as ``Ready=False``
with reason ``ReconcileError``.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_BACKOFF_SECONDS",
    "REASON",
    "REPEAT_AFTER_SECONDS",
    "STALLED_AFTER",
    "Failure",
    "Failures",
    "backoff_seconds",
    "describe",
]

REASON = "ReconcileError"
MAX_BACKOFF_SECONDS = 300.0
# The same message is said again (log line, Event) only after this long, even when a
# reconcile succeeded in between (a resync that needs no write can succeed while every
# write fails: the failure would otherwise be said at each flip).
REPEAT_AFTER_SECONDS = 600.0
STALLED_AFTER = 3  # the same failure this many times in a row: Stalled=True
_LABEL_TOO_LONG = re.compile(r"must be no more than 63 characters")


def _api_message(error: Any) -> str | None:
    """The API server's message in a kubernetes ApiException (its body is a Status)."""
    body = getattr(error, "body", None)
    if not body:
        return None
    try:
        status = json.loads(body)
    except (TypeError, ValueError):
        return None
    message = status.get("message") if isinstance(status, dict) else None
    return str(message) if message else None


def describe(error: BaseException) -> str:
    """A one-line message for ``error`` that says what failed and, where known, what to do."""
    api_message = _api_message(error)
    code = getattr(error, "status", None)
    if api_message is not None:
        text = f"the API server refused a request (HTTP {code}): {api_message}"
        if _LABEL_TOO_LONG.search(api_message):
            text += (
                "; the SyncTask's name becomes a label value, which Kubernetes limits to "
                "63 characters: recreate the task with a shorter name"
            )
        elif code == 403:
            text += "; grant the operator's ServiceAccount this permission (see docs/helm.md)"
        return text
    if code is not None:
        return f"the API server answered HTTP {code} {getattr(error, 'reason', '') or ''}".strip()
    detail = str(error).strip().splitlines()
    first = detail[0] if detail else ""
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


def backoff_seconds(attempt: int, base: float) -> float:
    """Delay before retry number ``attempt`` (1, 2, …): base, 2·base, 4·base … ≤ 5 min."""
    return float(min(base * 2 ** max(attempt - 1, 0), MAX_BACKOFF_SECONDS))


@dataclass(frozen=True)
class Failure:
    """The state of one task's failing reconciles after the newest one."""

    message: str
    attempts: int  # failures in a row with this message
    retry_at: float  # monotonic time before which a resync does not try again
    changed: bool  # a new message (log it, post an Event, write status)

    @property
    def stalled(self) -> bool:
        return self.attempts >= STALLED_AFTER


class Failures:
    """Per task (uid): the failure now in force. Thread-safe: handlers run in threads."""

    def __init__(self, base_delay: float) -> None:
        self.base_delay = base_delay
        self._by_uid: dict[str, Failure] = {}
        self._said: dict[str, tuple[str, float]] = {}  # uid → (message, when) last said
        self._lock = threading.Lock()

    def failed(self, uid: str, message: str, now: float) -> Failure:
        """Record one more failure of ``uid``'s reconcile."""
        with self._lock:
            before = self._by_uid.get(uid)
            same = before is not None and before.message == message
            attempts = before.attempts + 1 if same and before is not None else 1
            failure = Failure(
                message,
                attempts,
                now + backoff_seconds(attempts, self.base_delay),
                changed=not same,
            )
            self._by_uid[uid] = failure
            return failure

    def should_say(self, uid: str, message: str, now: float) -> bool:
        """Whether to log ``message`` and post its Event: a new message, or the same one
        after REPEAT_AFTER_SECONDS. Records that it was said."""
        with self._lock:
            said = self._said.get(uid)
            if said is not None and said[0] == message and now - said[1] < REPEAT_AFTER_SECONDS:
                return False
            self._said[uid] = (message, now)
            return True

    def forget(self, uid: str) -> None:
        """A deleted task: drop everything about it."""
        with self._lock:
            self._by_uid.pop(uid, None)
            self._said.pop(uid, None)

    def succeeded(self, uid: str) -> Failure | None:
        """Forget ``uid``'s failure; returns it when there was one (say it recovered)."""
        with self._lock:
            return self._by_uid.pop(uid, None)

    def due(self, uid: str, now: float) -> bool:
        """Whether a periodic resync of ``uid`` may try again (its backoff is over)."""
        with self._lock:
            failure = self._by_uid.get(uid)
            return failure is None or now >= failure.retry_at

    def current(self, uid: str) -> Failure | None:
        with self._lock:
            return self._by_uid.get(uid)
