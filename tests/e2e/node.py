"""The real node of the test environment (tests/infra: kubelet + containerd beside the control
plane) as the end-to-end suite sees it: kubectl and helm against it, the images built from the
Dockerfile, the addresses at which pods reach MariaDB and Kafka, and a per-key exactly-once
checker over what a task delivered."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql
import yaml
from confluent_kafka import Consumer, TopicPartition

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "ferry"


def run(
    *args: str,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    timeout: float = 300,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, env=env, input=stdin
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout[-2000:]}"
            f"\n{result.stderr[-4000:]}"
        )
    return result


@dataclass(frozen=True)
class Node:
    """The test environment's node, from the env file tests/infra/up wrote."""

    values: dict[str, str]

    @property
    def env(self) -> dict[str, str]:
        # kubectl finds the `kubectl ferry` plugin (kubectl-ferry) on the PATH of this Python.
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        return {**os.environ, "KUBECONFIG": self.values["KUBECONFIG"], "PATH": path}

    def kubectl(self, *args: str, stdin: str | None = None, timeout: float = 300) -> str:
        return run(
            self.values["FERRY_KUBECTL"], *args, env=self.env, stdin=stdin, timeout=timeout
        ).stdout

    def kubectl_json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json"))

    def helm(self, *args: str, timeout: float = 600) -> str:
        return run(self.values["FERRY_HELM"], *args, env=self.env, timeout=timeout).stdout

    @property
    def pod_host(self) -> str:
        """The host's address on the pod network: where pods reach MariaDB and the API server."""
        return self.values["FERRY_POD_HOST"]

    @property
    def mysql_port(self) -> int:
        return int(self.values["FERRY_MYSQL_PORT"])

    @property
    def pod_kafka_bootstrap(self) -> str:
        return self.values["FERRY_POD_KAFKA_BOOTSTRAP"]

    @property
    def kafka_bootstrap(self) -> str:
        return self.values["FERRY_KAFKA_BOOTSTRAP"]

    def mysql(self, database: str | None = None) -> Any:
        return pymysql.connect(
            host=self.values["FERRY_MYSQL_HOST"],
            port=self.mysql_port,
            user=self.values["FERRY_MYSQL_ADMIN_USER"],
            password=self.values["FERRY_MYSQL_PASSWORD"],
            database=database,
            autocommit=True,
            connect_timeout=5,
        )

    def sql(self, statements: str, database: str | None = None) -> None:
        with self.mysql(database) as conn, conn.cursor() as cur:
            for statement in filter(None, (s.strip() for s in statements.split(";"))):
                cur.execute(statement)

    def pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.kubectl_json(
            "get", "pods", "-n", namespace, "-l", selector
        )["items"]
        return items

    def ready_pod(self, namespace: str, selector: str) -> dict[str, Any] | None:
        """The one Ready, not terminating pod the selector matches, if there is one."""
        for pod in self.pods(namespace, selector):
            conditions = pod["status"].get("conditions") or []
            ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
            if ready and not pod["metadata"].get("deletionTimestamp"):
                return pod
        return None


@contextmanager
def installed_chart(node: Node, suffix: str, namespace: str) -> Iterator[str]:
    """``helm install`` of the chart with the node's images (``pullPolicy=Never``: only the
    imported image can start), watching ``namespace``; yields the operator's namespace. On the
    way out: Ferry's objects first (the operator removes its finalizers: left on, they would
    keep the namespace Terminating), then the chart."""
    system = f"e2e-ferry-{suffix}"
    try:
        node.helm(
            "install", f"ferry-{suffix}", str(CHART), "-n", system, "--create-namespace",
            "--set", "image.repository=ferry.local/ferry-operator", "--set", "image.tag=dev",
            "--set", "image.pullPolicy=Never",
            "--set", "workerImage.repository=ferry.local/ferry-worker",
            "--set", "workerImage.tag=dev",
            "--set", f"watchNamespaces={{{namespace}}}",
            "--set", f"peering.name=ferry-{suffix}",
            "--wait", "--timeout", "300s",
        )  # fmt: skip
        yield system
    finally:
        kubectl = node.values["FERRY_KUBECTL"]
        run(kubectl, "delete", "synctasks,tasktemplates,connectors", "--all", "-n", namespace,
            "--wait", "--timeout=120s", env=node.env, check=False)  # fmt: skip
        run(node.values["FERRY_HELM"], "uninstall", f"ferry-{suffix}", "-n", system, "--wait",
            "--timeout", "120s", env=node.env, check=False)  # fmt: skip
        run(kubectl, "delete", "namespace", system, "--wait=false", env=node.env, check=False)


def wait_for(what: str, predicate: Callable[[], Any], timeout: float = 180) -> Any:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = predicate()
        except (AssertionError, subprocess.SubprocessError, pymysql.MySQLError) as error:
            last_error, result = error, None
        if result:
            return result
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}: {last_error or ''}")


def example_manifests(node: Node, topic_prefix: str, password: str) -> str:
    """examples/mysql-to-kafka/ as a user applies it, with the in-cluster addresses of this
    environment's MariaDB and Kafka (the example's `mariadb.shop.svc` / `kafka.shop.svc`)."""
    example = REPO / "examples" / "mysql-to-kafka"
    documents: list[dict[str, Any]] = []
    for name in ("secret.yaml", "connectors.yaml", "synctask.yaml"):
        documents += [d for d in yaml.safe_load_all((example / name).read_text()) if d]
    for doc in documents:
        if doc["kind"] == "Secret":
            doc["stringData"]["password"] = password
        elif doc["kind"] == "Connector" and doc["spec"]["type"] == "mysql":
            doc["spec"]["mysql"].update(host=node.pod_host, port=node.mysql_port)
        elif doc["kind"] == "Connector":
            doc["spec"]["kafka"]["bootstrapServers"] = node.pod_kafka_bootstrap
        elif doc["kind"] == "SyncTask":
            doc["spec"]["sink"]["kafka"]["topic"] = f"{topic_prefix}.{{database}}.{{table}}"
    return yaml.safe_dump_all(documents)


# ---------------------------------------------------------------- the exactly-once check


@dataclass
class KeyHistory:
    """What a read_committed consumer saw of one table, per primary key, in topic order."""

    values: dict[int, list[int | None]] = field(default_factory=lambda: defaultdict(list))

    def add(self, record: dict[str, Any]) -> None:
        data = record["data"]
        self.values[int(data["id"])].append(None if record["type"] == "delete" else data["v"])

    def problems(self, source: dict[int, int]) -> list[str]:
        """Each key: its first event is its snapshot row or its insert, then every change
        exactly once and in order (v counts up by one per update), and its last value is the
        source's. The writer only ever increments v, so a repeat is a duplicate and a jump a
        lost or reordered change."""
        found: list[str] = []
        for key, seen in self.values.items():
            present = [v for v in seen if v is not None]
            for before, after in itertools.pairwise(present):
                if after != before + 1:
                    found.append(f"id={key}: {before} then {after} in {seen}")
                    break
            final = seen[-1] if seen else None
            if final != source.get(key):
                found.append(f"id={key}: last delivered {final}, source has {source.get(key)}")
        found += [f"id={key}: never delivered" for key in source.keys() - self.values.keys()]
        return found


def read_topic(bootstrap: str, topic: str, group: str) -> list[dict[str, Any]]:
    """Every committed record of the topic, from the beginning to its end right now."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        partitions = [TopicPartition(topic, p, 0) for p in metadata.partitions]
        # read_committed: the high watermark of what may be read is the last stable offset.
        ends = {
            tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in partitions
        }
        consumer.assign(partitions)
        records: list[dict[str, Any]] = []
        done = {p for p, end in ends.items() if end == 0}
        deadline = time.monotonic() + 60
        while len(done) < len(ends) and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None:
                positions = consumer.position(partitions)
                done |= {tp.partition for tp in positions if tp.offset >= ends[tp.partition]}
                continue
            if message.error():
                continue
            records.append(json.loads(message.value()))
            if message.offset() + 1 >= ends[message.partition()]:
                done.add(message.partition())
        return records
    finally:
        consumer.close()


class Writer:
    """Concurrent writes to `order_counters(id, v)`: inserts of new keys, and updates that add one
    to v, each its own transaction, until stopped."""

    def __init__(self, node: Node, database: str, first_new_id: int) -> None:
        self.node, self.database = node, database
        self.next_id = first_new_id
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.writes = 0

    def __enter__(self) -> Writer:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        self.thread.join(timeout=30)

    def _run(self) -> None:
        with self.node.mysql(self.database) as conn, conn.cursor() as cur:
            while not self.stopping.is_set():
                if self.writes % 5 == 0:
                    cur.execute("INSERT INTO order_counters VALUES (%s, 0)", (self.next_id,))
                    self.next_id += 1
                else:
                    cur.execute(
                        "UPDATE order_counters SET v = v + 1 WHERE id = %s", (1 + self.writes % 40,)
                    )
                self.writes += 1
                time.sleep(0.01)


def source_rows(node: Node, database: str) -> dict[int, int]:
    with node.mysql(database) as conn, conn.cursor() as cur:
        cur.execute("SELECT id, v FROM order_counters")
        return {int(key): int(value) for key, value in cur.fetchall()}


def delivered_exactly_once(node: Node, database: str, topic: str) -> Iterator[str]:
    """Problems with what the topic holds against the source now (empty: exactly once)."""
    history = KeyHistory()
    for record in read_topic(node.kafka_bootstrap, topic, f"e2e-check-{time.time_ns()}"):
        history.add(record)
    yield from history.problems(source_rows(node, database))
