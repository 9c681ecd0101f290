"""spec.notifications against the real API server, with the operator as a process and a real
HTTP receiver (http.server on a thread of the test): the operator POSTs JSON when the task
fails, retries after a failed attempt, notifies the recovery and the end of a snapshot, and
records each delivery in status.notifications; the URL (a secret) is in no status, Event or
log line."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from kubernetes import client

from . import crdguard
from .conftest import Ferry, Kubelet, OperatorProcess, task, wait_until

pytestmark = [pytest.mark.kube, pytest.mark.mysql, pytest.mark.kafka]


@pytest.fixture(autouse=True)
def _crds_of_this_tree(kube_api: Any, ferry_crds: None) -> Iterator[None]:
    with crdguard.guarded(kube_api):
        yield


@pytest.fixture
def tasks_deleted_first(ferry: Ferry, ferry_operator: OperatorProcess) -> Iterator[None]:
    """The operator stops only after the test's SyncTasks and Connectors are gone (their
    finalizers). A 429 (a CRD being re-applied on the shared server) is waited out."""
    yield
    for plural in ("synctasks", "connectors"):

        def gone(plural: str = plural) -> bool:
            try:
                listed = ferry.custom.list_namespaced_custom_object(
                    "ferry.dev", "v1alpha1", ferry.ns, plural
                )
                for item in listed["items"]:
                    if not item["metadata"].get("deletionTimestamp"):
                        ferry.custom.delete_namespaced_custom_object(
                            "ferry.dev", "v1alpha1", ferry.ns, plural, item["metadata"]["name"]
                        )
            except client.ApiException as error:
                if error.status in (404, 429, 500, 503):
                    return False
                raise
            return not listed["items"]

        wait_until(gone, 90, f"the test's {plural} deleted")


TOKEN = "t0k3n-9f8e7d6c5b4a"


class Receiver(http.server.BaseHTTPRequestHandler):
    answers: ClassVar[list[int]] = []  # status codes to answer, in order; then 200
    received: ClassVar[list[tuple[str, int, dict[str, Any]]]] = []  # path, answer, body

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        code = type(self).answers.pop(0) if type(self).answers else 200
        type(self).received.append((self.path, code, body))
        self.send_response(code)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    Receiver.answers, Receiver.received = [], []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/{TOKEN}"
    server.shutdown()


def _hook_secret(ferry: Ferry, url: str) -> None:
    ferry.core.create_namespaced_secret(
        ferry.ns,
        client.V1Secret(metadata=client.V1ObjectMeta(name="hook"), string_data={"url": url}),
    )


def _notifications(on: list[str]) -> list[dict[str, Any]]:
    return [{"on": on, "webhook": {"urlSecretRef": {"name": "hook", "key": "url"}}}]


def _status(ferry: Ferry, name: str) -> dict[str, Any]:
    return ferry.get("synctasks", name).get("status") or {}


def _events(received: list[tuple[str, int, dict[str, Any]]]) -> list[tuple[str, int]]:
    return [(body["event"], code) for _, code, body in received]


def _no_secret_anywhere(ferry: Ferry, operator: OperatorProcess) -> None:
    for name in ("flaky", "once"):
        try:
            status = json.dumps(ferry.get("synctasks", name).get("status"))
        except client.ApiException:
            continue
        assert TOKEN not in status
        assert "/hooks/" not in status
    events = " ".join(str(e.message) for e in ferry.core.list_namespaced_event(ferry.ns).items)
    assert TOKEN not in events
    assert TOKEN not in operator.log()


def test_failed_is_posted_retried_after_a_failure_and_recovered_follows(
    ferry: Ferry,
    connectors: None,
    ferry_operator: OperatorProcess,
    tasks_deleted_first: None,
    receiver: str,
) -> None:
    _hook_secret(ferry, receiver)
    Receiver.answers = [500]  # the first attempt fails
    spec = {
        **task("flaky")["spec"],
        "mode": "snapshot",
        "schedule": "0 2 * * *",
        "timeZone": "Mars/Olympus",  # looks like a zone name: admitted; the operator fails it
        "notifications": _notifications(["Failed", "Recovered"]),
    }
    ferry.create("synctasks", {**task("flaky"), "spec": spec})

    wait_until(lambda: len(Receiver.received) >= 2, 120, "the failed POST and its retry")
    path, code, body = Receiver.received[0]
    assert path == f"/hooks/{TOKEN}" and code == 500
    assert Receiver.received[1][1] == 200 and Receiver.received[1][2] == body
    assert body["task"] == "flaky" and body["namespace"] == ferry.ns
    assert body["event"] == "Failed" and body["phase"] == "Failed"
    assert body["reason"] == "InvalidSpec"
    assert "spec.timeZone: unknown time zone 'Mars/Olympus'" in body["message"]
    assert body["time"].endswith("Z")
    entry = wait_until(
        lambda: (n := _status(ferry, "flaky").get("notifications")) and n[0]["delivered"] and n[0],
        30,
        "the delivery recorded",
    )
    assert entry == {
        "on": "Failed",
        "index": 0,
        "time": body["time"],
        "delivered": True,
        "attempts": 2,
        "lastError": "HTTP 500 Internal Server Error",
    }

    # Fixed: the task waits for its schedule, Ready again — Recovered.
    ferry.patch_spec("synctasks", "flaky", {"timeZone": "Europe/Berlin"})
    wait_until(lambda: len(Receiver.received) >= 3, 60, "the Recovered POST")
    assert _events(Receiver.received) == [("Failed", 500), ("Failed", 200), ("Recovered", 200)]
    recovered = Receiver.received[2][2]
    assert recovered["phase"] == "Scheduled" and recovered["reason"] == "Scheduled"
    wait_until(
        lambda: (
            [n["on"] for n in _status(ferry, "flaky").get("notifications") or []]
            == ["Recovered", "Failed"]
        ),
        30,
        "both deliveries in status",
    )
    _no_secret_anywhere(ferry, ferry_operator)


def test_a_finished_snapshot_records_its_run_and_posts_completed(
    ferry: Ferry,
    testenv: Any,
    mysql_connect: Any,
    database: str,
    topic_prefix: str,
    connectors: None,
    ferry_operator: OperatorProcess,
    tasks_deleted_first: None,
    receiver: str,
    tmp_path: Path,
) -> None:
    with mysql_connect(admin=True) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE TABLE `{database}`.items (id INT PRIMARY KEY)")
        cur.executemany(f"INSERT INTO `{database}`.items VALUES (%s)", [(i,) for i in range(4)])
    _hook_secret(ferry, receiver)
    spec = {
        "source": {"connectorRef": {"name": "db"}, "include": [f"{database}.items"]},
        "sink": {
            "connectorRef": {"name": "kafka"},
            "kafka": {"topic": f"{topic_prefix}.{{table}}"},
        },
        "mode": "snapshot",  # no schedule: one run
        "notifications": _notifications(["Completed", "Failed"]),
    }
    ferry.create("synctasks", {**task("once"), "spec": spec})
    active = wait_until(lambda: _status(ferry, "once").get("activeRun"), 60, "the run started")
    kubelet = Kubelet(ferry, testenv, tmp_path)
    kubelet.start("once")
    try:
        wait_until(lambda: Receiver.received, 90, "the Completed POST")
    except AssertionError:
        reasons = [(e.reason, e.message) for e in ferry.core.list_namespaced_event(ferry.ns).items]
        raise AssertionError(
            f"no POST; status {_status(ferry, 'once')}; events {reasons}"
        ) from None
    finally:
        kubelet.stop()
    status = _status(ferry, "once")
    last = status["lastRun"]
    assert last["result"] == "Completed" and last["rows"] == 4 and last["start"] == active["start"]
    assert last["end"] >= last["start"] and "durationSeconds" in last and last["duration"]
    assert "id" not in last and status["runs"] == [last]
    assert status["phase"] == "Completed"
    assert _events(Receiver.received) == [("Completed", 200)]
    body = Receiver.received[0][2]
    assert body["run"] == last and body["phase"] == "Completed"
    wait_until(
        lambda: (_status(ferry, "once").get("notifications") or [{}])[0].get("delivered"),
        30,
        "the delivery recorded",
    )
    _no_secret_anywhere(ferry, ferry_operator)
