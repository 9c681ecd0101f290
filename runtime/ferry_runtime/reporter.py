"""Reports the worker's live state onto its SyncTask's status, at a bounded rate.

A :class:`Reporter` thread reads the StatusTracker and hands the worker-owned status fields
(workerState, position, lag, throughput, progress, counters, lastErrors, lastSkip,
selectedTables, heartbeatTime) to a
:class:`StatusWriter`. It writes every ``reporting.interval`` (default 10 s) and at once on a
state change, never twice within ``min_spacing`` seconds, and once more on ``stop()``.
A failed write is logged and retried with backoff; it never stops the worker.

:class:`KubernetesStatusWriter` writes with server-side apply on the ``status`` subresource
under the field manager ``ferry-worker``: the operator's fields (phase, conditions,
observedGeneration, configRevision, written as ``ferry-operator``) are left alone, and a
field the worker stops sending (an ETA once the snapshot is done) is removed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection
from typing import Any, Protocol

from ferry_runtime.config import ReportingConfig, TaskIdentity
from ferry_runtime.status import State, StatusTracker

__all__ = [
    "FIELD_MANAGER",
    "WORKER_FIELDS",
    "KubernetesStatusWriter",
    "Reporter",
    "StatusWriter",
    "redact",
    "start",
    "worker_fields",
]

FIELD_MANAGER = "ferry-worker"
GROUP, VERSION, PLURAL, KIND = "ferry.dev", "v1alpha1", "synctasks", "SyncTask"
WORKER_FIELDS = (
    "workerState",
    "position",
    "lag",
    "throughput",
    "progress",
    "counters",
    "retry",
    "lastErrors",
    "lastSkip",
    "verification",
    "lastResnapshot",
    "selectedTables",
    "appliedRevision",
    "heartbeatTime",
)
MIN_SPACING_SECONDS = 1.0  # a flapping state must not flood the API server
MAX_RETRY_SECONDS = 30.0
REDACTED = "***"

log = logging.getLogger(__name__)


class StatusWriter(Protocol):
    """Where the worker's status fields go (the Kubernetes API, or anything else)."""

    def write(self, fields: dict[str, Any]) -> None:
        """Store ``fields`` (the worker-owned status fields); raise on failure."""


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def redact(value: Any, secrets: Collection[str]) -> Any:
    """Replace every occurrence of a secret in any string of ``value`` (defence in depth:
    messages must not hold secrets, but a driver might echo one)."""
    if isinstance(value, str):
        for secret in secrets:
            if secret:
                value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, dict):
        return {k: redact(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, secrets) for v in value]
    return value


def worker_fields(view: dict[str, Any], secrets: Collection[str] = ()) -> dict[str, Any]:
    """The status fields the worker owns, from ``tracker.view()``, without nulls."""
    view = {**view, "workerState": view.get("state")}
    fields = {key: view[key] for key in WORKER_FIELDS if key in view}
    return redact(_drop_none(fields), secrets)  # type: ignore[no-any-return]


class KubernetesStatusWriter:
    """Server-side apply of the worker's fields on ``synctasks/<name>/status``."""

    def __init__(self, api_client: Any, namespace: str, name: str) -> None:
        from kubernetes import client

        self._api = client.CustomObjectsApi(api_client)
        self.namespace = namespace
        self.name = name

    def write(self, fields: dict[str, Any]) -> None:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": KIND,
            "metadata": {"name": self.name, "namespace": self.namespace},
            "status": fields,
        }
        self._api.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            self.namespace,
            PLURAL,
            self.name,
            body,
            field_manager=FIELD_MANAGER,
            force=True,  # these fields are the worker's alone; take them over if need be
            _content_type="application/apply-patch+yaml",  # JSON is YAML
            _request_timeout=10,
        )


def kubernetes_api_client() -> Any:
    """An ApiClient from the in-cluster service account, else from KUBECONFIG."""
    from kubernetes import client, config

    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    return client.ApiClient(configuration)


class Reporter:
    """Background thread writing the tracker's worker fields through a StatusWriter."""

    def __init__(
        self,
        tracker: StatusTracker,
        writer: StatusWriter,
        interval: float,
        *,
        min_spacing: float = MIN_SPACING_SECONDS,
        secrets: Collection[str] = (),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._tracker = tracker
        self._writer = writer
        self._interval = interval
        self._min_spacing = min(min_spacing, interval)
        self._secrets = tuple(secrets)
        self._monotonic = monotonic
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._write_lock = threading.Lock()
        self._last_write = float("-inf")
        self.writes = 0  # successful writes (observability and tests)
        self.failures = 0
        tracker.on_state_change(self._on_state_change)
        self._thread = threading.Thread(target=self._loop, name="status-reporter", daemon=True)
        self._thread.start()

    def _on_state_change(self, state: State) -> None:
        self._wake.set()

    def report(self) -> bool:
        """Write once now; True on success. Failures are logged, never raised."""
        with self._write_lock:
            fields = worker_fields(self._tracker.view(), self._secrets)
            self._last_write = self._monotonic()
            try:
                self._writer.write(fields)
            except Exception as error:  # any failure: log, retry later, keep the worker going
                self.failures += 1
                log.warning("could not report status (will retry): %s", _describe(error))
                return False
            self.writes += 1
            return True

    def _loop(self) -> None:
        retry = 1.0
        next_due = self._monotonic()  # report at once on start
        while not self._stop.is_set():
            self._wake.wait(timeout=max(0.0, next_due - self._monotonic()))
            if self._stop.is_set():
                return
            self._wake.clear()
            spacing = self._last_write + self._min_spacing - self._monotonic()
            if spacing > 0 and self._stop.wait(spacing):
                return
            if self.report():
                retry = 1.0
                next_due = self._monotonic() + self._interval
            else:
                next_due = self._monotonic() + min(retry, self._interval)
                retry = min(retry * 2, MAX_RETRY_SECONDS)

    def stop(self) -> None:
        """Stop the thread and send one final report (e.g. the checkpoint after a flush)."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=15)
        self.report()


def _describe(error: BaseException) -> str:
    status = getattr(error, "status", None)
    reason = getattr(error, "reason", None)
    if status is not None:
        return f"HTTP {status} {reason or ''}".strip()
    return f"{type(error).__name__}: {error}"


def start(
    tracker: StatusTracker,
    reporting: ReportingConfig,
    task: TaskIdentity,
    *,
    api_client: Any = None,
    secrets: Collection[str] = (),
) -> Reporter | None:
    """Report onto ``reporting.kubernetes``'s SyncTask; None when there is none to report to.

    ``api_client`` defaults to in-cluster config, else KUBECONFIG. ``secrets`` are values
    scrubbed from every reported string.
    """
    target = reporting.kubernetes
    if target is None:
        return None
    writer = KubernetesStatusWriter(
        api_client if api_client is not None else kubernetes_api_client(),
        target.namespace,
        target.name,
    )
    log.info(
        "reporting status of task %s to synctask %s/%s every %s",
        task.id,
        target.namespace,
        target.name,
        reporting.interval,
    )
    return Reporter(tracker, writer, reporting.interval.total_seconds(), secrets=secrets)
