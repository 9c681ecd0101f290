"""End to end on kind: build and load both images, install the chart, run MariaDB and Kafka
in the cluster, apply a SyncTask, wait for Ready, and check that rows arrive in Kafka —
the snapshot's and those written afterwards."""

from __future__ import annotations

import json
from subprocess import run

import pytest
from tests.e2e.conftest import REPO, KindCluster

pytestmark = pytest.mark.timeout(1800)
NS = "shop"


def mariadb(cluster: KindCluster, sql: str) -> str:
    return cluster.kubectl_run(
        "exec",
        "-n",
        NS,
        "deploy/mariadb",
        "--",
        "sh",
        "-c",
        f'mariadb -uroot -p"$MARIADB_ROOT_PASSWORD" -N -e "{sql}"',
    )


def topic_records(cluster: KindCluster, topic: str, count: int) -> list[dict[str, object]]:
    out = cluster.kubectl_run(
        "exec",
        "-n",
        NS,
        "deploy/kafka",
        "--",
        "/opt/kafka/bin/kafka-console-consumer.sh",
        "--bootstrap-server",
        "localhost:9092",
        "--topic",
        topic,
        "--from-beginning",
        "--isolation-level",
        "read_committed",
        "--max-messages",
        str(count),
        "--timeout-ms",
        "120000",
        timeout=180,
    )
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_rows_flow_from_mariadb_to_kafka(kind_cluster: KindCluster) -> None:
    cluster = kind_cluster
    cluster.kubectl_run("create", "namespace", NS)
    cluster.kubectl_run("apply", "-n", NS, "-f", str(REPO / "tests/e2e/manifests/services.yaml"))
    for deployment in ("mariadb", "kafka"):
        cluster.kubectl_run("rollout", "status", "-n", NS, f"deploy/{deployment}", "--timeout=300s")

    install = run(
        [
            cluster.helm,
            "install",
            "ferry",
            str(REPO / "charts/ferry"),
            "-n",
            "ferry-system",
            "--create-namespace",
            "--set",
            "image.repository=ferry.local/ferry-operator",
            "--set",
            "image.tag=e2e",
            "--set",
            "image.pullPolicy=Never",
            "--set",
            "workerImage.repository=ferry.local/ferry-worker",
            "--set",
            "workerImage.tag=e2e",
            "--wait",
            "--timeout",
            "300s",
        ],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert install.returncode == 0, install.stderr

    cluster.kubectl_run("apply", "-n", NS, "-f", str(REPO / "tests/e2e/manifests/synctask.yaml"))
    cluster.kubectl_run(
        "wait", "-n", NS, "--for=condition=Ready", "synctask/orders", "--timeout=300s", timeout=320
    )
    snapshot = topic_records(cluster, "ferry.shop.orders", 2)
    assert sorted(r["data"]["id"] for r in snapshot) == [1, 2]  # type: ignore[index]

    mariadb(
        cluster,
        "INSERT INTO shop.orders VALUES (3, 'plum', 7);"
        " UPDATE shop.orders SET qty = 4 WHERE id = 1;",
    )
    records = topic_records(cluster, "ferry.shop.orders", 4)
    assert [(r["type"], r["data"]["id"]) for r in records[2:]] == [("insert", 3), ("update", 1)]  # type: ignore[index]
    listed = cluster.kubectl_run("get", "synctasks", "-n", NS)
    assert "Running" in listed
