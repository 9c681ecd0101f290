"""Notifications: which events a status change fires and their payload (reconcile/notify.py),
and the notifier's pure parts and HTTP POST (notifier.py) against a local http.server."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest

from ferry_operator import notifier
from ferry_operator.api.synctask import SyncTaskSpec
from ferry_operator.reconcile import notify

OK = ("False", "AsExpected", "")
NOW = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)


def _conditions(ready: str, stalled: str = "False", reason: str = "Running") -> dict[str, Any]:
    return {
        "Ready": (ready, reason, f"ready is {ready}"),
        "Reconciling": OK,
        "Stalled": (stalled, "HeartbeatMissing" if stalled == "True" else "AsExpected", "silent"),
        "Degraded": OK,
    }


def _before(phase: str, ready: str = "True", stalled: str = "False") -> dict[str, Any]:
    return {
        "phase": phase,
        "conditions": [
            {"type": "Ready", "status": ready},
            {"type": "Stalled", "status": stalled},
        ],
    }


@pytest.mark.parametrize(
    ("before", "phase", "conditions", "expected"),
    [
        (
            _before("Running"),
            "Failed",
            _conditions("False", "True", "PoisonRow"),
            ["Failed", "Stalled"],
        ),
        (_before("Failed", "False", "True"), "Failed", _conditions("False", "True"), []),
        (_before("Running"), "Running", _conditions("False", "True"), ["Stalled"]),
        (_before("Running", "False", "True"), "Running", _conditions("True"), ["Recovered"]),
        (_before("Failed", "False", "True"), "Snapshotting", _conditions("True"), ["Recovered"]),
        (_before("Starting", "False"), "Running", _conditions("True"), []),  # not a recovery
        (
            _before("Snapshotting"),
            "Completed",
            _conditions("True", reason="Completed"),
            ["Completed"],
        ),
        (_before("Completed"), "Completed", _conditions("True", reason="Completed"), []),
        ({}, "Failed", _conditions("False", "True", "InvalidSpec"), ["Failed", "Stalled"]),
    ],
)
def test_fired(before: dict[str, Any], phase: str, conditions: Any, expected: list[str]) -> None:
    assert notify.fired(before, phase, conditions) == expected


def test_deliveries_go_to_the_entries_that_ask_and_hold_no_url() -> None:
    spec = SyncTaskSpec.model_validate(
        {
            "notifications": [
                {"on": ["Failed"], "webhook": {"urlSecretRef": {"name": "a", "key": "url"}}},
                {
                    "on": ["Completed", "Failed"],
                    "webhook": {"urlSecretRef": {"name": "b", "key": "u"}},
                },
            ]
        }
    )
    conditions = _conditions("False", "True", "PoisonRow")
    out = notify.deliveries(
        spec, "shop", "orders", ["Failed", "Stalled"], "Failed", conditions, NOW
    )
    assert [(d.index, d.secret, d.key) for d in out] == [(0, "a", "url"), (1, "b", "u")]
    assert out[0].payload == {
        "task": "orders",
        "namespace": "shop",
        "event": "Failed",
        "phase": "Failed",
        "reason": "PoisonRow",
        "message": "ready is False",
        "time": "2026-12-02T02:00:00Z",
    }
    stalled = notify.payload(
        "shop", "orders", "Stalled", "Running", _conditions("False", "True"), NOW
    )
    assert (stalled["reason"], stalled["message"]) == ("HeartbeatMissing", "silent")
    run = {"id": "R1", "rows": 5}
    completed = notify.payload(
        "shop", "orders", "Completed", "Completed", _conditions("True"), NOW, run
    )
    assert completed["run"] == run


def test_entries_replace_the_same_delivery_and_keep_the_newest() -> None:
    old = [{"on": "Failed", "index": 0, "time": f"t{i}", "attempts": 1} for i in range(10)]
    updated = notifier.entries(old, {"on": "Failed", "index": 0, "time": "t3", "attempts": 2})
    assert updated[0] == {"on": "Failed", "index": 0, "time": "t3", "attempts": 2}
    assert len(updated) == 10 and sum(1 for e in updated if e["time"] == "t3") == 1
    added = notifier.entries(old, {"on": "Completed", "index": 0, "time": "t10", "attempts": 1})
    assert (
        len(added) == notifier.HISTORY and added[0]["time"] == "t10" and added[-1]["time"] == "t8"
    )


class _Receiver(http.server.BaseHTTPRequestHandler):
    answers: ClassVar[list[int]] = []
    bodies: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).bodies.append(json.loads(self.rfile.read(length)))
        code = type(self).answers.pop(0) if type(self).answers else 200
        self.send_response(code)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    _Receiver.answers, _Receiver.bodies = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/s3cr3t-token?key=k3y"
    server.shutdown()


def test_post_sends_json_and_errors_hold_no_url(receiver: str) -> None:
    notifier.post(receiver, {"event": "Failed"})
    assert _Receiver.bodies == [{"event": "Failed"}]
    _Receiver.answers = [503]
    with pytest.raises(notifier.SendError) as failed:
        notifier.post(receiver, {"event": "Failed"})
    assert str(failed.value) == "HTTP 503 Service Unavailable"
    closed = "http://127.0.0.1:1/hooks/s3cr3t-token"
    with pytest.raises(notifier.SendError) as refused:
        notifier.post(closed, {}, timeout=2)
    assert "cannot connect" in str(refused.value) and "s3cr3t" not in str(refused.value)
    with pytest.raises(notifier.SendError, match="not http"):
        notifier.post("file:///etc/passwd", {})
