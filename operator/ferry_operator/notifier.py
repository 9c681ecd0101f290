"""Sends notifications (spec.notifications) in the background, with retries, and records
each delivery in ``status.notifications``.

The reconcile decides *what* fires (reconcile/notify.py) and, once the status recording the
change is written, hands the deliveries to :func:`submit`. One thread sends them: it reads
the webhook URL from its Secret at each attempt (a fixed Secret is used by the next retry),
POSTs the JSON body, and on a failure (no connection, a non-2xx answer, a missing Secret or
key) tries again after 1, 2, 4, 8 s (:data:`ATTEMPTS` attempts in all). After each attempt it
writes the entry ``{on, index, time, delivered, attempts, lastError}`` with server-side apply
under its own field manager ``ferry-notifier``, which owns ``status.notifications`` alone (the
newest :data:`HISTORY` entries).

The URL is a secret: it is never logged nor written to status or Events, and an error
message that would hold it has it replaced. Deliveries still waiting when the operator stops
are not sent (status shows them undelivered).
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from ferry_operator.api import GROUP, VERSION
from ferry_operator.context import Context
from ferry_operator.kube import Clients
from ferry_operator.reconcile.notify import Delivery

__all__ = ["ATTEMPTS", "FIELD_MANAGER", "HISTORY", "Notifier", "entries", "submit"]

FIELD_MANAGER = "ferry-notifier"
ATTEMPTS = 5
HISTORY = 10
BACKOFF = float(os.environ.get("FERRY_NOTIFY_BACKOFF_SECONDS", "1"))
TIMEOUT = 10.0
log = logging.getLogger(__name__)


class SendError(Exception):
    """An attempt failed; the message holds no secret."""


@dataclass(frozen=True)
class Job:
    ctx: Context
    delivery: Delivery
    attempts: int = 0
    last_error: str | None = None
    delivered: bool = False

    @property
    def event(self) -> str:
        return str(self.delivery.payload["event"])

    def entry(self) -> dict[str, Any]:
        out = {
            "on": self.event,
            "index": self.delivery.index,
            "time": self.delivery.payload["time"],
            "delivered": self.delivered,
            "attempts": self.attempts,
            "lastError": self.last_error,
        }
        return {k: v for k, v in out.items() if v is not None}


def entries(current: list[dict[str, Any]], entry: dict[str, Any]) -> list[dict[str, Any]]:
    """``current`` with ``entry`` in place of the one for the same event, index and time
    (else first), newest :data:`HISTORY` kept (pure)."""

    def same(other: dict[str, Any]) -> bool:
        return all(other.get(k) == entry[k] for k in ("on", "index", "time"))

    rest = [other for other in current if not same(other)]
    return [entry, *rest][:HISTORY]


def _scrub(message: str, url: str) -> str:
    """``message`` without the URL or the parts of it that could be a credential."""
    parts = urlsplit(url)
    for secret in (url, parts.netloc, parts.path + (f"?{parts.query}" if parts.query else "")):
        if secret and len(secret) > 1:
            message = message.replace(secret, "***")
    return message


def post(url: str, body: dict[str, Any], timeout: float = TIMEOUT) -> None:
    """POST ``body`` as JSON to ``url``; raise SendError without the URL in it."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise SendError("the webhook URL is not http:// or https://")
    data = json.dumps(body).encode()
    request = urllib.request.Request(
        url,
        data=data,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "ferry-operator"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as error:
        raise SendError(f"HTTP {error.code} {error.reason}") from None
    except urllib.error.URLError as error:
        raise SendError(_scrub(f"cannot connect: {error.reason}", url)) from None
    except (OSError, ValueError) as error:
        raise SendError(_scrub(f"{type(error).__name__}: {error}", url)) from None


@dataclass(order=True)
class _Due:
    at: float
    seq: int
    job: Job = field(compare=False)


class Notifier:
    """The sending thread and its queue."""

    def __init__(self, clients: Clients) -> None:
        self.clients = clients
        self._queue: list[_Due] = []
        self._seq = itertools.count()
        self._wake = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name="ferry-notifier", daemon=True)
        self._thread.start()

    def submit(self, ctx: Context, deliveries: list[Delivery]) -> None:
        with self._wake:
            for delivery in deliveries:
                job = Job(ctx, delivery)
                heapq.heappush(self._queue, _Due(time.monotonic(), next(self._seq), job))
            self._wake.notify()

    def _next(self) -> Job:
        with self._wake:
            while True:
                if self._queue:
                    wait = self._queue[0].at - time.monotonic()
                    if wait <= 0:
                        return heapq.heappop(self._queue).job
                    self._wake.wait(wait)
                else:
                    self._wake.wait()

    def _loop(self) -> None:
        while True:
            job = self._next()
            try:
                self._attempt(job)
            except Exception:  # a bug must not end the thread
                log.exception("%s notification %s: unexpected error", job.ctx, job.event)

    def _url(self, ctx: Context, delivery: Delivery) -> str:
        import base64

        from kubernetes import client

        try:
            secret = self.clients.core.read_namespaced_secret(delivery.secret, ctx.namespace)
        except client.ApiException as error:
            if error.status == 404:
                raise SendError(f"Secret {delivery.secret} does not exist") from None
            raise SendError(f"cannot read Secret {delivery.secret}: {error.reason}") from None
        data = secret.data or {}
        if delivery.key not in data:
            raise SendError(
                f"Secret {delivery.secret} has no key {delivery.key} (keys: "
                f"{', '.join(sorted(data)) or 'none'})"
            )
        return base64.b64decode(data[delivery.key]).decode().strip()

    def _attempt(self, job: Job) -> None:
        attempt = job.attempts + 1
        try:
            post(self._url(job.ctx, job.delivery), job.delivery.payload)
        except SendError as error:
            job = replace(job, attempts=attempt, last_error=str(error))
            retry = attempt < ATTEMPTS
            log.warning(
                "%s notification %s (spec.notifications[%d]) attempt %d failed: %s%s",
                job.ctx, job.event, job.delivery.index, attempt, error,
                f"; retry in {BACKOFF * 2 ** (attempt - 1):.0f}s" if retry else "; giving up",
            )  # fmt: skip
            self._record(job)
            if retry:
                with self._wake:
                    at = time.monotonic() + BACKOFF * 2 ** (attempt - 1)
                    heapq.heappush(self._queue, _Due(at, next(self._seq), job))
                    self._wake.notify()
            return
        job = replace(job, attempts=attempt, delivered=True)
        log.info(
            "%s notification %s (spec.notifications[%d]) delivered (attempt %d)",
            job.ctx, job.event, job.delivery.index, attempt,
        )  # fmt: skip
        self._record(job)

    def _record(self, job: Job) -> None:
        ctx = job.ctx
        try:
            task = self.clients.get_custom(ctx.namespace, "synctasks", ctx.name)
            if task is None or task["metadata"].get("uid") != ctx.uid:
                return
            current = (task.get("status") or {}).get("notifications") or []
            body = {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "SyncTask",
                "metadata": {"name": ctx.name, "namespace": ctx.namespace},
                "status": {"notifications": entries(current, job.entry())},
            }
            self.clients.custom.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                ctx.namespace,
                "synctasks",
                ctx.name,
                body,
                field_manager=FIELD_MANAGER,
                force=True,
                _content_type="application/apply-patch+yaml",
            )
        except Exception as error:  # the delivery stands; only its record is missing
            log.warning("%s could not record notification %s: %s", ctx, job.event, error)


_NOTIFIER: Notifier | None = None
_GUARD = threading.Lock()


def submit(ctx: Context, clients: Clients, deliveries: list[Delivery]) -> None:
    """Queue ``deliveries`` (the status recording their change is written already)."""
    global _NOTIFIER
    if not deliveries:
        return
    with _GUARD:
        if _NOTIFIER is None:
            _NOTIFIER = Notifier(clients)
    _NOTIFIER.submit(ctx, deliveries)
