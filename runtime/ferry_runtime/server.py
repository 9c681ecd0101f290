"""The worker's HTTP port: /healthz, /readyz, /status (JSON) and /metrics (Prometheus).

It runs on a daemon thread beside the pipeline and only reads the StatusTracker:

- ``/healthz`` 200 while the process answers and no pipeline thread has stopped beating
  (``tracker.heartbeat``) for ``stall_timeout`` seconds; 503 with the stalled names otherwise.
- ``/readyz``  200 in Snapshotting, Streaming or Completed; 503 otherwise.
- ``/status``  ``tracker.view()`` plus events by table and op and errors by reason.
- ``/metrics`` Prometheus text exposition from a registry private to this server.
"""

from __future__ import annotations

import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import exposition

from ferry_runtime import metrics
from ferry_runtime.status import StatusTracker

__all__ = ["READY_STATES", "StatusServer", "start", "status_document"]

READY_STATES = frozenset({"Snapshotting", "Streaming", "Completed"})
DEFAULT_STALL_TIMEOUT = 120.0  # seconds without a heartbeat before /healthz fails

log = logging.getLogger(__name__)


def status_document(tracker: StatusTracker) -> dict[str, Any]:
    """The /status body: the worker-owned status fields plus the counter breakdown."""
    with tracker.reading():  # one consistent picture across view() and breakdown()
        document = tracker.view()
        breakdown = tracker.breakdown()
    document["counters"].update(breakdown)
    return document


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        tracker = self.server.tracker
        if path == "/healthz":
            stalled = tracker.stalled(self.server.stall_timeout)
            if stalled:
                self._send_json(HTTPStatus.SERVICE_UNAVAILABLE, {"ok": False, "stalled": stalled})
            else:
                self._send_json(HTTPStatus.OK, {"ok": True})
        elif path == "/readyz":
            state = tracker.state
            code = HTTPStatus.OK if state in READY_STATES else HTTPStatus.SERVICE_UNAVAILABLE
            self._send_json(code, {"ready": code == HTTPStatus.OK, "state": state})
        elif path == "/status":
            self._send_json(HTTPStatus.OK, status_document(tracker))
        elif path == "/metrics":
            accept = self.headers.get("Accept", "")
            encoder, content_type = exposition.choose_encoder(accept)
            self._send(HTTPStatus.OK, encoder(self.server.registry), content_type)
        else:
            self._send_json(HTTPStatus.NOT_FOUND, {"error": f"no such endpoint: {path}"})

    def _send_json(self, code: HTTPStatus, body: dict[str, Any]) -> None:
        self._send(code, json.dumps(body).encode(), "application/json")

    def _send(self, code: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http: " + format, *args)  # probes every few seconds would flood the log


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, tracker: StatusTracker, stall_timeout: float) -> None:
        super().__init__(("0.0.0.0", port), _Handler)
        self.tracker = tracker
        self.stall_timeout = stall_timeout
        self.registry = metrics.registry(tracker)


class StatusServer:
    """A running status server; ``port`` is the bound port (useful with port 0)."""

    def __init__(self, server: _Server) -> None:
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="status-http"
        )
        self._thread.daemon = True
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def start(
    tracker: StatusTracker, port: int, stall_timeout: float = DEFAULT_STALL_TIMEOUT
) -> StatusServer:
    """Serve the tracker on 0.0.0.0:``port`` (0 picks a free port) from a daemon thread."""
    server = StatusServer(_Server(port, tracker, stall_timeout))
    log.info("status server listening on port %d", server.port)
    return server
