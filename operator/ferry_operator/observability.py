"""The operator's HTTP port: ``/healthz`` and ``/metrics`` (the Helm chart probes and scrapes it).

``/healthz`` answers 200 while the operator's event loop is turning (a ticker task stamps
it every few seconds), 503 when the loop has been stuck for longer than the limit.
``/metrics`` serves one series set per SyncTask, read from the tasks' status at scrape time
(one LIST per scrape), which the chart's alerts and dashboard use; and the operator's own
cost: ``ferry_operator_api_requests_total{verb,resource}`` (every API request its
reconcilers make) and ``ferry_operator_reconciles_total{trigger}``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ferry_operator import kube
from ferry_operator.api import GROUP, VERSION
from ferry_operator.api.synctask import PHASES
from ferry_runtime.config import parse_duration

__all__ = ["PHASES", "RECONCILES", "LoopHeartbeat", "SyncTaskCollector", "serve", "task_metrics"]

TICK_SECONDS = 5.0
STUCK_AFTER_SECONDS = 60.0
RECONCILES = Counter(
    "ferry_operator_reconciles",
    "SyncTask reconciles, by what started them (resync, create, update, resume, template, …)",
    ["trigger"],
    registry=None,  # serve() registers it
)


class LoopHeartbeat:
    """Stamped by a task on the operator's event loop; stale means the loop is wedged."""

    def __init__(self) -> None:
        self.last = time.monotonic()

    async def run(self) -> None:
        while True:
            self.last = time.monotonic()
            await asyncio.sleep(TICK_SECONDS)

    def healthy(self) -> bool:
        return time.monotonic() - self.last < STUCK_AFTER_SECONDS


def task_metrics(tasks: Sequence[dict[str, Any]]) -> list[Metric]:
    """Pure: SyncTask objects → metric families labelled (namespace, synctask)."""
    labels = ["namespace", "synctask"]
    ready = GaugeMetricFamily(
        "ferry_synctask_ready", "1 when the task's Ready condition is True", labels=labels
    )
    phase = GaugeMetricFamily(
        "ferry_synctask_phase", "1 for the task's current phase", labels=[*labels, "phase"]
    )
    lag = GaugeMetricFamily(
        "ferry_synctask_lag_seconds", "Replication lag reported by the worker", labels=labels
    )
    threshold = GaugeMetricFamily(
        "ferry_synctask_lag_threshold_seconds", "spec.alerts.lagThreshold", labels=labels
    )
    progress = GaugeMetricFamily(
        "ferry_synctask_progress_percent", "Snapshot progress", labels=labels
    )
    events = CounterMetricFamily("ferry_synctask_events", "Events delivered", labels=labels)
    errors = CounterMetricFamily(
        "ferry_synctask_errors", "Errors counted by the worker", labels=labels
    )
    restarts = CounterMetricFamily(
        "ferry_synctask_restarts",
        "Worker restarts: the pipeline's after transient errors and its pods' (crashes)",
        labels=labels,
    )
    drift = GaugeMetricFamily(
        "ferry_synctask_verification_mismatched_rows",
        "Rows the last finished spec.verifyRequest found different in the sink",
        labels=labels,
    )
    for task in tasks:
        key = [task["metadata"]["namespace"], task["metadata"]["name"]]
        status = task.get("status") or {}
        conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
        ready.add_metric(key, 1.0 if conditions.get("Ready") == "True" else 0.0)
        for name in PHASES:
            phase.add_metric([*key, name], 1.0 if status.get("phase") == name else 0.0)
        lag.add_metric(key, float((status.get("lag") or {}).get("seconds") or 0))
        limit = ((task.get("spec") or {}).get("alerts") or {}).get("lagThreshold")
        if limit:
            threshold.add_metric(key, parse_duration(limit).total_seconds())
        progress.add_metric(key, float((status.get("progress") or {}).get("percent") or 0))
        counters = status.get("counters") or {}
        events.add_metric(key, float(counters.get("events") or 0))
        errors.add_metric(key, float(counters.get("errors") or 0))
        pod_restarts = (status.get("workerPod") or {}).get("restarts") or 0
        restarts.add_metric(key, float((counters.get("restarts") or 0) + pod_restarts))
        verified = status.get("verification") or {}
        if verified.get("state") == "Completed":
            drift.add_metric(key, float(verified.get("mismatchedRows") or 0))
    return [ready, phase, lag, threshold, progress, events, errors, restarts, drift]


class SyncTaskCollector(Collector):
    """Lists the watched namespaces' SyncTasks at scrape time."""

    def __init__(self, namespaces: Sequence[str]) -> None:
        self.namespaces = list(namespaces)

    def collect(self) -> Iterator[Metric]:
        custom = kube.clients().custom
        if self.namespaces:
            tasks = [
                item
                for ns in self.namespaces
                for item in custom.list_namespaced_custom_object(GROUP, VERSION, ns, "synctasks")[
                    "items"
                ]
            ]
        else:
            tasks = custom.list_cluster_custom_object(GROUP, VERSION, "synctasks")["items"]
        yield from task_metrics(tasks)


def serve(port: int, namespaces: Sequence[str], heartbeat: LoopHeartbeat) -> ThreadingHTTPServer:
    """Start the port in a daemon thread; returns the server (``.server_address``)."""
    registry = CollectorRegistry()
    registry.register(SyncTaskCollector(namespaces))
    registry.register(kube.REQUESTS)
    registry.register(RECONCILES)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/healthz":
                ok = heartbeat.healthy()
                self._reply(
                    200 if ok else 503, b"ok\n" if ok else b"event loop stuck\n", "text/plain"
                )
            elif self.path == "/metrics":
                self._reply(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            else:
                self._reply(404, b"not found\n", "text/plain")

        def _reply(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # probes every few seconds
            pass

    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    threading.Thread(target=server.serve_forever, name="ferry-http", daemon=True).start()
    return server
