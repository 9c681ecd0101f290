"""End to end on the real services: Connectors + SyncTask applied, the operator renders the
config, the test plays kubelet — it runs the worker as a local process from the rendered
ConfigMap (same KUBECONFIG) and stops it when the Deployment scales to 0 — and checks
`kubectl wait --for=condition=Ready`, `kubectl get synctasks`, rows in Kafka, that pausing
stops delivery and that a reset replays."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka import Consumer
from tests.integration.operator.conftest import (
    Ferry,
    OperatorProcess,
    kafka_connector,
    mysql_connector,
    wait_until,
)

pytestmark = [pytest.mark.kube, pytest.mark.mysql, pytest.mark.kafka]


class LocalWorker:
    """The worker of one revision, as a local process (there is no kubelet here)."""

    def __init__(self, ferry: Ferry, testenv: Any, tmp: Path) -> None:
        self.ferry, self.testenv, self.tmp = ferry, testenv, tmp
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, revision: str) -> None:
        configmap = self.ferry.core.read_namespaced_config_map(revision, self.ferry.ns)
        config = yaml.safe_load(configmap.data["worker.yaml"])
        config["reporting"]["port"] = 0  # several workers share this machine
        config["reporting"]["interval"] = "1s"
        path = self.tmp / f"{revision}.yaml"
        path.write_text(yaml.safe_dump(config))
        env = {
            **os.environ,
            "KUBECONFIG": str(self.testenv.kubeconfig),
            "FERRY_SOURCE_PASSWORD": self.testenv.mysql["password"],
        }
        log = (self.tmp / "worker.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ferry_runtime.cli", "--config", str(path)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # what the kubelet sends on scale-down
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


@pytest.fixture
def worker(ferry: Ferry, testenv: Any, tmp_path: Path) -> Iterator[LocalWorker]:
    running = LocalWorker(ferry, testenv, tmp_path)
    yield running
    running.stop()


def count_messages(bootstrap: str, topic: str, expect: int, timeout: float) -> int:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"t-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    seen = 0
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and seen < expect:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                seen += 1
        # a little longer, to catch messages beyond what was expected
        end = time.monotonic() + 2
        while time.monotonic() < end:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                seen += 1
    finally:
        consumer.close()
    return seen


def kubectl(testenv: Any, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [testenv.kubectl, *args],
        env={**os.environ, "KUBECONFIG": str(testenv.kubeconfig)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_rows_flow_pause_stops_delivery_and_reset_replays(
    ferry: Ferry,
    testenv: Any,
    kafka_bootstrap: str,
    mysql_connect: Any,
    database: str,
    topic_prefix: str,
    ferry_operator: OperatorProcess,
    worker: LocalWorker,
) -> None:
    with mysql_connect(admin=True) as conn, conn.cursor() as cur:
        # Where the reset below goes back to: before this test wrote anything (the shared
        # server's first binlog may be gigabytes back).
        cur.execute("SHOW MASTER STATUS")
        before = cur.fetchone()
        cur.execute(f"CREATE TABLE `{database}`.orders (id INT PRIMARY KEY, note VARCHAR(20))")
        cur.executemany(
            f"INSERT INTO `{database}`.orders VALUES (%s, %s)", [(i, f"n{i}") for i in range(20)]
        )
    ferry.secret("db", testenv.mysql["password"])
    ferry.create("connectors", mysql_connector("db", testenv))
    ferry.create("connectors", kafka_connector("kafka", kafka_bootstrap))
    topic = f"{topic_prefix}.orders"
    ferry.create(
        "synctasks",
        {
            "apiVersion": "ferry.dev/v1alpha1",
            "kind": "SyncTask",
            "metadata": {"name": "orders"},
            "spec": {
                "source": {"connectorRef": {"name": "db"}, "include": [f"{database}.orders"]},
                "sink": {
                    "connectorRef": {"name": "kafka"},
                    "kafka": {"topic": f"{topic_prefix}.{{table}}"},
                },
            },
        },
    )
    wait_until(
        lambda: (ferry.get("synctasks", "orders").get("status") or {}).get("configRevision"),
        60,
        "first revision",
    )
    worker.start("orders-r1")
    waited = kubectl(
        testenv,
        "-n",
        ferry.ns,
        "wait",
        "--for=condition=Ready",
        "synctask/orders",
        "--timeout=90s",
        timeout=100,
    )
    assert waited.returncode == 0, waited.stderr
    assert count_messages(kafka_bootstrap, topic, 20, 60) == 20

    table = kubectl(testenv, "-n", ferry.ns, "get", "synctasks")
    header, row = table.stdout.splitlines()[:2]
    assert header.split()[:7] == [
        "NAME", "READY", "PHASE", "REASON", "LAG", "PROGRESS", "POSITION",
    ]  # fmt: skip
    cells = row.split()
    assert cells[1:4] == ["True", "Running", "Running"]
    assert re.fullmatch(r"\d+s", cells[4]), cells  # a duration
    assert cells[5] == "100%"
    assert cells[6].startswith(("mysql-bin", "binlog", "mariadb-bin", "log-bin"))

    # Pause: the Deployment goes to 0 and the "kubelet" stops the worker; new rows wait.
    ferry.patch_spec("synctasks", "orders", {"paused": True})
    wait_until(lambda: ferry.deployment("orders").spec.replicas == 0, 30, "scaled to 0")
    worker.stop()
    with mysql_connect(admin=True) as conn, conn.cursor() as cur:
        cur.executemany(
            f"INSERT INTO `{database}`.orders VALUES (%s, %s)", [(i, "p") for i in range(20, 25)]
        )
    assert count_messages(kafka_bootstrap, topic, 21, 5) == 20
    wait_until(
        lambda: ferry.get("synctasks", "orders")["status"]["phase"] == "Paused", 30, "Paused"
    )

    # Reset to before the table while resuming: a new revision carries the reset once.
    ferry.patch_spec(
        "synctasks",
        "orders",
        {
            "paused": False,
            "resetPosition": {"to": {"file": before[0], "pos": before[1]}, "nonce": "replay-1"},
        },
    )
    wait_until(lambda: ferry.deployment("orders").spec.replicas == 1, 30, "scaled to 1")
    revision = ferry.get("synctasks", "orders")["status"]["configRevision"]
    assert revision == "orders-r2"
    worker.start(revision)
    # Without the reset: 20 + the 5 paused rows = 25. The replay re-delivers the binlog's 25
    # inserts (all after the reset position) after the 20 snapshot rows: 45.
    total = count_messages(kafka_bootstrap, topic, 45, 90)
    assert total >= 45, total
