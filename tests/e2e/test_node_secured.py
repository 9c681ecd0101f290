"""Secured endpoints on the real node, with the operator's own pods: one ``helm install`` of the
chart for the module, Connectors at the pod network's secured listeners (tests/infra/secured.sh:
MariaDB over TLS as users that must use it, ``REQUIRE SSL``; Kafka SASL_SSL with SCRAM-SHA-512
and mutual TLS), CA and client certificate as Secrets the worker pods mount, passwords through
``secretKeyRef``. The operator pod probes the Connectors from the pod network too.

In order, on one installation (each test runs its own task, deleted afterwards):

- SCRAM, then mTLS: a worker pod snapshots and streams a table under concurrent writes, is
  force-deleted mid-stream, and its replacement goes on from the checkpoint: per key, every
  change exactly once (tests/e2e/node.py: KeyHistory);
- rotation: the Secret and the server's password change together; the operator re-probes the
  Connector, the Deployment's pod template gets a new ``ferry.dev/secrets-hash`` (no new config
  revision) and a new pod replaces the old one, which checkpoints on SIGTERM: nothing lost,
  nothing doubled;
- hygiene: a task over the secured endpoints with a distinctive password fails once (its binlog
  connection killed) and recovers; then no password of the module is in any ConfigMap, status,
  Event or Deployment, in ``kubectl logs`` of the operator and of every worker pod (also the
  pods already gone, followed while they ran), nor in a worker's /metrics and /status.

Run: ``tests/infra/up`` (with the node), then
``PYTHONPATH=operator:runtime python3 -m pytest tests/e2e/test_node_secured.py``.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.conftest import service_missing
from tests.e2e.node import (
    Node,
    Writer,
    delivered_exactly_once,
    installed_chart,
    wait_for,
)

pytestmark = [pytest.mark.kube, pytest.mark.node, pytest.mark.timeout(900)]

GROUP = "ferry.dev/v1alpha1"
HASH = "ferry.dev/secrets-hash"
COUNTERS = 40
SECURED_KEYS = (
    "FERRY_TLS_CA_FILE",
    "FERRY_TLS_CLIENT_CERT_FILE",
    "FERRY_TLS_CLIENT_KEY_FILE",
    "FERRY_POD_KAFKA_SASL_BOOTSTRAP",
    "FERRY_POD_KAFKA_MTLS_BOOTSTRAP",
    "FERRY_KAFKA_SCRAM_USER",
    "FERRY_KAFKA_SCRAM_PASSWORD",
)


@dataclass
class Secured:
    """One installation watching one namespace, the secured Connectors in it, and what the
    hygiene test searches: every password used here and the logs of worker pods now gone."""

    node: Node
    system: str  # the operator's namespace
    namespace: str  # the tasks' namespace
    database: str
    topic_prefix: str
    passwords: dict[str, str] = field(default_factory=dict)  # what → password
    users: list[str] = field(default_factory=list)  # MariaDB users to drop at the end
    followed_logs: dict[str, Path] = field(default_factory=dict)  # pod → its log, followed
    followers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def kubectl(self, *args: str, stdin: str | None = None, timeout: float = 300) -> str:
        # -n first: after `exec POD --` every argument is the command's.
        return self.node.kubectl("-n", self.namespace, *args, stdin=stdin, timeout=timeout)

    def apply(self, *documents: dict[str, Any]) -> None:
        self.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(documents))

    def get(self, kind: str, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.node.kubectl_json("get", kind, name, "-n", self.namespace)
        return found

    def condition(self, kind: str, name: str, type_: str = "Ready") -> dict[str, Any]:
        conditions = (self.get(kind, name).get("status") or {}).get("conditions") or []
        return next((c for c in conditions if c["type"] == type_), {})

    def worker_pod(self, task: str) -> dict[str, Any] | None:
        return self.node.ready_pod(
            self.namespace, f"ferry.dev/task={task},app.kubernetes.io/component=worker"
        )

    def follow_logs(self, pod: str, directory: Path) -> None:
        """``kubectl logs -f`` of a pod into a file until its container ends, so that the
        hygiene test also reads what a pod that is gone by then logged."""
        path = directory / f"{pod}.log"
        follower = subprocess.Popen(
            [self.node.values["FERRY_KUBECTL"], "logs", "-f", "-n", self.namespace, pod],
            stdout=path.open("wb"),
            stderr=subprocess.STDOUT,
            env=self.node.env,
        )
        self.followers.append(follower)
        self.followed_logs[pod] = path

    def topic(self, task: str) -> str:
        return f"{self.topic_prefix}.{task}.{self.database}.order_counters"


def secret(name: str, data: dict[str, str], type_: str = "Opaque") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "type": type_,
        "stringData": data,
    }


def mysql_connector(node: Node, name: str, user: str, secret_name: str) -> dict[str, Any]:
    """At the host's address on the pod network, over TLS verified against the test CA (the
    server's certificate names that address)."""
    return {
        "apiVersion": GROUP,
        "kind": "Connector",
        "metadata": {"name": name},
        "spec": {
            "type": "mysql",
            "mysql": {
                "host": node.pod_host,
                "port": node.mysql_port,
                "user": user,
                "passwordSecretRef": {"name": secret_name, "key": "password"},
                "tls": {"mode": "verify-identity", "caSecretRef": {"name": "test-ca"}},
            },
        },
    }


def kafka_connectors(values: dict[str, str]) -> list[dict[str, Any]]:
    """SCRAM-SHA-512 over SASL_SSL, and mutual TLS (a kubernetes.io/tls client certificate)."""
    ca = {"caSecretRef": {"name": "test-ca"}}
    return [
        {
            "apiVersion": GROUP,
            "kind": "Connector",
            "metadata": {"name": "kafka-scram"},
            "spec": {
                "type": "kafka",
                "kafka": {
                    "bootstrapServers": values["FERRY_POD_KAFKA_SASL_BOOTSTRAP"],
                    "securityProtocol": "SASL_SSL",
                    "sasl": {"mechanism": "SCRAM-SHA-512", "secretRef": "kafka-scram"},
                    "tls": ca,
                },
            },
        },
        {
            "apiVersion": GROUP,
            "kind": "Connector",
            "metadata": {"name": "kafka-mtls"},
            "spec": {
                "type": "kafka",
                "kafka": {
                    "bootstrapServers": values["FERRY_POD_KAFKA_MTLS_BOOTSTRAP"],
                    "securityProtocol": "SSL",
                    "tls": {**ca, "clientCertSecretRef": {"name": "kafka-client"}},
                },
            },
        },
    ]


def sync_task(secured: Secured, name: str, source: str, sink: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": GROUP,
        "kind": "SyncTask",
        "metadata": {"name": name},
        "spec": {
            "source": {
                "connectorRef": {"name": source},
                "include": [f"{secured.database}.order_counters"],
            },
            "sink": {
                "connectorRef": {"name": sink},
                "kafka": {"topic": f"{secured.topic_prefix}.{name}.{{database}}.{{table}}"},
            },
            "delivery": "exactly-once",
            **spec,
        },
    }


def deployment_annotations(secured: Secured, task: str) -> dict[str, str]:
    deployment = secured.get("deployment", f"{task}-worker")
    return dict(deployment["spec"]["template"]["metadata"].get("annotations") or {})


def ready_task_pod(secured: Secured, task: str, logs: Path) -> dict[str, Any]:
    """The task Ready and its worker pod Ready; the pod's log is followed from now on."""
    secured.kubectl(
        "wait", "--for=condition=Ready", f"synctask/{task}", "--timeout=300s", timeout=320
    )
    pod: dict[str, Any] = wait_for("a Ready worker pod", lambda: secured.worker_pod(task))
    secured.follow_logs(pod["metadata"]["name"], logs)
    return pod


def replacement_pod(secured: Secured, task: str, old: str, logs: Path) -> dict[str, Any]:
    pod: dict[str, Any] = wait_for(
        f"a new Ready worker pod instead of {old}",
        lambda: (p := secured.worker_pod(task)) and p["metadata"]["name"] != old and p,
        timeout=180,
    )
    secured.follow_logs(pod["metadata"]["name"], logs)
    return pod


def assert_exactly_once(secured: Secured, task: str) -> None:
    """Waits until the task's topic caught up with the source with every change exactly once;
    a duplicate or a lost change never clears, so it fails naming the problems it saw."""
    topic = secured.topic(task)
    problems: list[str] = []

    def clean() -> bool:
        problems[:] = delivered_exactly_once(secured.node, secured.database, topic)
        return not problems

    try:
        wait_for("every change exactly once", clean, timeout=120)
    except AssertionError:
        raise AssertionError(f"{len(problems)} problems in {topic}: {problems[:10]}") from None


def create_user(secured: Secured, what: str, password: str) -> str:
    """A MariaDB user that must use TLS, holding what a source needs (dropped at the end)."""
    user = f"e2e_{what}_{uuid.uuid4().hex[:8]}"
    secured.node.sql(
        f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}' REQUIRE SSL;"
        f"GRANT SELECT, RELOAD, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO '{user}'@'%'"
    )
    secured.users.append(user)
    secured.passwords[what] = password
    return user


def delete_task(secured: Secured, task: str) -> None:
    """The task and its worker gone (the node has 2 cores for everything)."""
    secured.kubectl("delete", "synctask", task, "--wait", "--timeout=120s", timeout=150)


@pytest.fixture(scope="module")
def secured(node: Node, ferry_crds: None) -> Iterator[Secured]:
    """The secured listeners' tasks, after this tree's CRDs are applied (helm install leaves
    an existing CRD as it is: on a long-lived test cluster it may be older than the worker,
    whose status write then fails as a whole on a field the CRD does not know)."""
    values = node.values
    missing = [key for key in SECURED_KEYS if not values.get(key)]
    if missing:
        service_missing("the secured listeners", f"{missing} not in the env file")
    suffix = uuid.uuid4().hex[:6]
    namespace, database = f"e2e-sec-{suffix}", f"e2e_sec_{suffix}"
    node.sql(f"CREATE DATABASE {database}")
    node.sql(
        f"""
        CREATE TABLE order_counters (id INT PRIMARY KEY, v INT NOT NULL);
        INSERT INTO order_counters SELECT seq, 0 FROM seq_1_to_{COUNTERS}
        """,
        database,
    )
    node.kubectl("create", "namespace", namespace)
    state: Secured | None = None
    try:
        with installed_chart(node, suffix, namespace) as system:
            state = Secured(node, system, namespace, database, f"e2esec.{suffix}")
            key = Path(values["FERRY_TLS_CLIENT_KEY_FILE"]).read_text()
            state.passwords["SCRAM"] = values["FERRY_KAFKA_SCRAM_PASSWORD"]
            # A line from the middle of the client's private key stands for the whole key.
            state.passwords["client key"] = key.splitlines()[len(key.splitlines()) // 2]
            password = f"Db-{uuid.uuid4().hex}"
            user = create_user(state, "db", password)
            state.apply(
                secret("test-ca", {"ca.crt": Path(values["FERRY_TLS_CA_FILE"]).read_text()}),
                secret(
                    "kafka-client",
                    {"tls.crt": Path(values["FERRY_TLS_CLIENT_CERT_FILE"]).read_text(),
                     "tls.key": key},
                    "kubernetes.io/tls",
                ),
                secret(
                    "kafka-scram",
                    {"username": values["FERRY_KAFKA_SCRAM_USER"],
                     "password": values["FERRY_KAFKA_SCRAM_PASSWORD"]},
                ),
                secret("db", {"password": password}),
                mysql_connector(node, "db", user, "db"),
                *kafka_connectors(values),
            )  # fmt: skip
            yield state
    finally:
        if state is not None:
            for follower in state.followers:
                if follower.poll() is None:
                    follower.terminate()
                    follower.wait(10)
            for user in state.users:
                node.sql(f"DROP USER IF EXISTS '{user}'@'%'")
        node.sql(f"DROP DATABASE IF EXISTS {database}")
        node.kubectl("delete", "namespace", namespace, "--wait=false")


def secret_refs(pod: dict[str, Any]) -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    """The worker container's env from Secrets (variable → (Secret, key)) and the Secret
    volumes (volume → Secret)."""
    container = pod["spec"]["containers"][0]
    env = {
        e["name"]: (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
        for e in container.get("env") or []
        if "secretKeyRef" in (e.get("valueFrom") or {})
    }
    volumes = {
        v["name"]: v["secret"]["secretName"] for v in pod["spec"]["volumes"] if "secret" in v
    }
    return env, volumes


def deliver_through_a_forced_pod_replacement(
    secured: Secured, task: str, sink: str, first_new_id: int, logs: Path
) -> dict[str, Any]:
    """The task from the ``db`` Connector into ``sink``, with writes going on; its pod is
    force-deleted mid-stream; then every change of the table is in the topic exactly once.
    Returns the replacement pod (still running)."""
    node = secured.node
    secured.apply(sync_task(secured, task, "db", sink))
    name = ready_task_pod(secured, task, logs)["metadata"]["name"]
    with Writer(node, secured.database, first_new_id) as writer:
        time.sleep(4)
        secured.kubectl("delete", "pod", name, "--force", "--grace-period=0")
        replacement = replacement_pod(secured, task, name, logs)
        time.sleep(4)
    assert writer.writes > 100, f"the writer made only {writer.writes} writes"
    assert_exactly_once(secured, task)
    return replacement


# ---------------------------------------------------------------- delivery


def test_scram_connector_worker_pod_delivers_exactly_once(secured: Secured, tmp_path: Path) -> None:
    ready = wait_for(
        "kafka-scram Ready",
        lambda: (c := secured.condition("connectors", "kafka-scram")).get("status") == "True" and c,
    )
    assert ready["reason"] == "Ready"
    pod = deliver_through_a_forced_pod_replacement(secured, "scram", "kafka-scram", 1000, tmp_path)
    env, volumes = secret_refs(pod)
    assert env == {
        "FERRY_SOURCE_PASSWORD": ("db", "password"),
        "FERRY_SINK_SASL_USERNAME": ("kafka-scram", "username"),
        "FERRY_SINK_SASL_PASSWORD": ("kafka-scram", "password"),
    }
    assert volumes == {"source-ca": "test-ca", "sink-ca": "test-ca"}
    delete_task(secured, "scram")


def test_mtls_connector_worker_pod_delivers_exactly_once(secured: Secured, tmp_path: Path) -> None:
    wait_for(
        "kafka-mtls Ready",
        lambda: secured.condition("connectors", "kafka-mtls").get("status") == "True",
    )
    pod = deliver_through_a_forced_pod_replacement(secured, "mtls", "kafka-mtls", 100_000, tmp_path)
    env, volumes = secret_refs(pod)
    assert env == {"FERRY_SOURCE_PASSWORD": ("db", "password")}
    assert volumes == {"source-ca": "test-ca", "sink-ca": "test-ca", "sink-client": "kafka-client"}
    # The client certificate and key are files from the Secret volume, readable by the worker.
    listing = secured.kubectl(
        "exec", pod["metadata"]["name"], "--", "ls", "/etc/ferry-tls/sink/client"
    )
    assert listing.split() == ["tls.crt", "tls.key"]
    delete_task(secured, "mtls")


# ---------------------------------------------------------------- rotation


def test_rotation_replaces_the_worker_pod_and_loses_nothing(
    secured: Secured, tmp_path: Path
) -> None:
    node = secured.node
    old, new = f"Rot-old-{uuid.uuid4().hex}", f"Rot-new-{uuid.uuid4().hex}"
    user = create_user(secured, "rotation", old)
    secured.passwords["rotation new"] = new
    secured.apply(
        secret("rot-db", {"password": old}),
        mysql_connector(node, "rot-db", user, "rot-db"),
        sync_task(secured, "rotation", "rot-db", "kafka-scram"),
    )
    first = ready_task_pod(secured, "rotation", tmp_path)["metadata"]["name"]
    before = deployment_annotations(secured, "rotation")
    versions = secured.get("connectors", "rot-db")["status"]["secretVersions"]
    with Writer(node, secured.database, 200_000) as writer:
        time.sleep(4)
        # The server's password and the Secret, together. The running worker keeps its
        # session; what is written from now on waits in the binlog for the next pod.
        node.sql(f"ALTER USER '{user}'@'%' IDENTIFIED BY '{new}'")
        secured.kubectl(
            "patch", "secret", "rot-db", "-p", json.dumps({"stringData": {"password": new}})
        )
        after = wait_for(
            "the pod template's secrets hash to change",
            lambda: (
                (a := deployment_annotations(secured, "rotation")).get(HASH) != before[HASH] and a
            ),
            timeout=120,
        )
        second = replacement_pod(secured, "rotation", first, tmp_path)
        time.sleep(4)
    assert writer.writes > 100
    assert second["metadata"]["annotations"][HASH] == after[HASH]
    # Only the pod rolled: same config, no new revision.
    assert after["ferry.dev/config-hash"] == before["ferry.dev/config-hash"]
    revisions = secured.kubectl(
        "get", "configmaps", "-l", "ferry.dev/task=rotation,ferry.dev/revision", "-o", "name"
    )
    assert revisions.split() == ["configmap/rotation-r1"]
    # The operator probed the Connector again with the new Secret.
    status = secured.get("connectors", "rot-db")["status"]
    assert status["secretVersions"]["rot-db"] != versions["rot-db"]
    assert secured.condition("connectors", "rot-db")["status"] == "True"
    assert_exactly_once(secured, "rotation")
    assert "AuthenticationFailed" not in secured.kubectl("logs", second["metadata"]["name"])
    delete_task(secured, "rotation")


# ---------------------------------------------------------------- secret hygiene

FETCH = """
import sys, urllib.request
print(urllib.request.urlopen("http://127.0.0.1:8080" + sys.argv[1], timeout=5).read().decode())
"""


def test_no_password_in_configmaps_status_events_or_pod_logs(
    secured: Secured, tmp_path: Path
) -> None:
    node = secured.node
    password = f"Hyg13ne-{uuid.uuid4().hex}-Pw"
    user = create_user(secured, "hygiene", password)
    secured.apply(
        secret("hyg-db", {"password": password}),
        mysql_connector(node, "hyg-db", user, "hyg-db"),
        sync_task(secured, "hygiene", "hyg-db", "kafka-scram", restartPolicy={"backoff": "200ms"}),
    )
    pod = ready_task_pod(secured, "hygiene", tmp_path)["metadata"]["name"]
    # One failure, with its error message: kill the worker's binlog connection.
    with node.mysql() as conn, conn.cursor() as cur:
        cur.execute("SHOW PROCESSLIST")
        dumps = [r[0] for r in cur.fetchall() if r[4] == "Binlog Dump" and r[1] == user]
        assert dumps, "no binlog connection of the worker's user"
        cur.execute(f"KILL CONNECTION {dumps[0]}")
    node.sql(f"UPDATE {secured.database}.order_counters SET v = v + 1 WHERE id = 1")

    def recovered() -> dict[str, Any] | None:
        status: dict[str, Any] = secured.get("synctask", "hygiene").get("status") or {}
        counters = status.get("counters") or {}
        restarted = counters.get("restarts", 0) >= 1
        return status if restarted and counters.get("events", 0) > COUNTERS else None

    status = wait_for("the worker to recover and deliver", recovered, timeout=120)
    assert status["lastErrors"][0]["reason"] == "ConnectionLost"

    def dump(*args: str) -> str:
        return node.kubectl(*args, "-o", "json")

    seen: dict[str, str] = {}
    for ns in (secured.namespace, secured.system):
        seen[f"ConfigMaps in {ns}"] = dump("get", "configmaps", "-n", ns)
        seen[f"Events in {ns}"] = dump("get", "events", "-n", ns)
    seen["SyncTasks"] = dump("get", "synctasks", "-n", secured.namespace)
    seen["Connectors"] = dump("get", "connectors", "-n", secured.namespace)
    seen["Deployments"] = dump("get", "deployments", "-n", secured.namespace)
    for ns in (secured.system, secured.namespace):
        for found in node.kubectl_json("get", "pods", "-n", ns)["items"]:
            name = found["metadata"]["name"]
            logs = ("logs", "-n", ns, name, "--all-containers")
            seen[f"kubectl logs {ns}/{name}"] = node.kubectl(*logs)
            restarts = sum(c["restartCount"] for c in found["status"].get("containerStatuses", []))
            if restarts:
                seen[f"kubectl logs --previous {ns}/{name}"] = node.kubectl(*logs, "--previous")
    seen["/metrics"] = secured.kubectl("exec", pod, "--", "python3", "-c", FETCH, "/metrics")
    seen["/status"] = secured.kubectl("exec", pod, "--", "python3", "-c", FETCH, "/status")
    delete_task(secured, "hygiene")
    for follower in secured.followers:  # each ends when its pod's container does
        try:
            follower.wait(60)
        except subprocess.TimeoutExpired:
            follower.terminate()
    for gone, path in secured.followed_logs.items():
        seen[f"the followed log of {gone}"] = path.read_text(errors="replace")

    hits = [
        f"the {what} password is in {where}"
        for where, text in seen.items()
        for what, secret_text in secured.passwords.items()
        if secret_text in text
    ]
    assert hits == []
    # And the searches were not vacuous: the operator and the workers logged, the worker
    # exported metrics, the configs name the users.
    operator_logs = [t for w, t in seen.items() if w.startswith(f"kubectl logs {secured.system}/")]
    assert operator_logs and all(operator_logs), list(seen)
    assert "ferry_events_total" in seen["/metrics"]
    assert user in seen[f"ConfigMaps in {secured.namespace}"]
    worker_logs = [t for w, t in seen.items() if "followed log" in w]
    assert worker_logs and all(worker_logs)
