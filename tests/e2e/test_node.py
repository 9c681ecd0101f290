"""Ferry as its users run it, on the test environment's real node: `helm install` of the chart
with the images built from the Dockerfile, examples/mysql-to-kafka applied as a user would,
workers as real pods. The tests run in order on one installation; each checks what it did
with a read_committed consumer, per key (tests/e2e/node.py: KeyHistory)."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import yaml
from tests.e2e.node import (
    Node,
    Writer,
    delivered_exactly_once,
    example_manifests,
    installed_chart,
    read_topic,
    run,
    wait_for,
)

pytestmark = [pytest.mark.kube, pytest.mark.node, pytest.mark.timeout(900)]

TASK = "shop-orders"  # examples/mysql-to-kafka/synctask.yaml
WORKER = f"ferry.dev/task={TASK},app.kubernetes.io/component=worker"
# The config revisions (<task>-r<N>), not the <task>-worker-config each worker pod mounts.
REVISIONS = "app.kubernetes.io/managed-by=ferry,ferry.dev/revision"
SNAPSHOT_ROWS = 1000
COUNTERS = 40


@dataclass(frozen=True)
class Release:
    """One `helm install` of the chart, watching one namespace of tasks."""

    node: Node
    system: str  # the operator's namespace
    namespace: str  # the tasks' namespace
    topic_prefix: str
    installed_at: float

    def topic(self, table: str) -> str:
        return f"{self.topic_prefix}.shop.{table}"

    def kubectl(self, *args: str, stdin: str | None = None, timeout: float = 300) -> str:
        return self.node.kubectl(*args, "-n", self.namespace, stdin=stdin, timeout=timeout)

    def task(self, name: str = TASK) -> dict[str, object]:
        task: dict[str, object] = self.node.kubectl_json(
            "get", "synctask", name, "-n", self.namespace
        )
        return task

    def worker_pod(self) -> dict[str, object] | None:
        return self.node.ready_pod(self.namespace, WORKER)

    def exec(self, pod: str, *command: str, namespace: str | None = None) -> str:
        return self.node.kubectl(
            "exec", "-n", namespace or self.namespace, pod, "--", *command, timeout=120
        )


def seed_shop(node: Node) -> None:
    """The example's database: order tables and customers (card_number is dropped by the
    example's mapping), and order_counters for the exactly-once checks."""
    node.sql(
        f"""
        DROP DATABASE IF EXISTS shop;
        CREATE DATABASE shop CHARACTER SET utf8mb4;
        USE shop;
        CREATE TABLE shop.customers (id INT PRIMARY KEY, name VARCHAR(80), card_number VARCHAR(20));
        CREATE TABLE shop.order_items (id INT PRIMARY KEY, sku VARCHAR(20), qty INT);
        CREATE TABLE shop.order_counters (id INT PRIMARY KEY, v INT NOT NULL);
        INSERT INTO shop.customers VALUES (1, 'Ada', '4111111111111111');
        INSERT INTO shop.order_items SELECT seq, CONCAT('SKU-', seq % 50), 1 + seq % 5
            FROM seq_1_to_{SNAPSHOT_ROWS};
        INSERT INTO shop.order_counters SELECT seq, 0 FROM seq_1_to_{COUNTERS}
        """
    )


@pytest.fixture(scope="module")
def release(node: Node) -> Iterator[Release]:
    suffix = uuid.uuid4().hex[:6]
    namespace = f"e2e-shop-{suffix}"
    seed_shop(node)
    node.kubectl("create", "namespace", namespace)
    installed_at = time.monotonic()
    try:
        with installed_chart(node, suffix, namespace) as system:
            yield Release(node, system, namespace, f"e2e.{suffix}", installed_at)
    finally:
        node.kubectl("delete", "namespace", namespace, "--wait=false")


def operator_pod(release: Release) -> dict[str, object] | None:
    return release.node.ready_pod(release.system, "app.kubernetes.io/name=ferry")


def assert_nonroot_with_readonly_root(release: Release, pod: str, namespace: str) -> None:
    """Checked from inside the container, as a user would: `id`, and a write to / fails."""
    assert release.exec(pod, "id", "-u", namespace=namespace).strip() == "65532"
    write = run(
        release.node.values["FERRY_KUBECTL"], "exec", "-n", namespace, pod, "--",
        "sh", "-c", "touch /written-by-e2e",
        env=release.node.env, check=False,
    )  # fmt: skip
    assert write.returncode != 0
    assert "Read-only file system" in write.stderr


def assert_exactly_once(release: Release) -> None:
    """Waits until the topic has caught up with the source with every change exactly once;
    a duplicate or a lost change never clears, so it fails with the problems it saw."""
    topic = release.topic("order_counters")
    problems: list[str] = []

    def clean() -> bool:
        problems[:] = delivered_exactly_once(release.node, "shop", topic)
        return not problems

    try:
        wait_for("every change exactly once", clean, timeout=120)
    except AssertionError:
        raise AssertionError(f"{len(problems)} problems in {topic}: {problems[:10]}") from None


def test_operator_pod_is_ready_as_nonroot_with_a_readonly_root(release: Release) -> None:
    pod = operator_pod(release)
    assert pod is not None, "helm --wait returned without a Ready operator pod"
    name = pod["metadata"]["name"]  # type: ignore[index]
    assert_nonroot_with_readonly_root(release, name, release.system)
    images = {c["image"] for c in pod["spec"]["containers"]}  # type: ignore[index]
    assert images == {"ferry.local/ferry-operator:dev"}


def test_example_snapshots_then_streams_into_kafka(release: Release) -> None:
    password = release.node.values["FERRY_MYSQL_PASSWORD"]
    release.kubectl(
        "apply", "-f", "-", stdin=example_manifests(release.node, release.topic_prefix, password)
    )
    release.kubectl(
        "wait", "--for=condition=Ready", f"synctask/{TASK}", "--timeout=300s", timeout=320
    )
    pod = wait_for("a Ready worker pod", release.worker_pod)
    assert pod["spec"]["containers"][0]["image"] == "ferry.local/ferry-worker:dev"

    items = release.topic("order_items")
    wait_for(
        f"{SNAPSHOT_ROWS} snapshot rows in {items}",
        lambda: (
            len(read_topic(release.node.kafka_bootstrap, items, f"e2e-{time.time_ns()}"))
            >= SNAPSHOT_ROWS
        ),
    )
    first_row_after = time.monotonic() - release.installed_at
    print(f"helm install to the snapshot in Kafka: {first_row_after:.0f} s")

    release.node.sql(
        "INSERT INTO shop.order_items VALUES (100001, 'SKU-NEW', 3);"
        "UPDATE shop.order_items SET qty = 9 WHERE id = 1"
    )
    records = wait_for(
        "the streamed insert and update",
        lambda: (
            (r := read_topic(release.node.kafka_bootstrap, items, f"e2e-{time.time_ns()}"))[
                SNAPSHOT_ROWS + 1 :
            ]
            and r
        ),
    )
    snapshot = records[:SNAPSHOT_ROWS]
    assert {r["type"] for r in snapshot} == {"bootstrap-insert"}
    assert sorted(r["data"]["id"] for r in snapshot) == list(range(1, SNAPSHOT_ROWS + 1))
    assert [(r["type"], r["data"]["id"]) for r in records[SNAPSHOT_ROWS:]] == [
        ("insert", 100001),
        ("update", 1),
    ]
    # The example's mapping drops card_number before it leaves the worker.
    customers = read_topic(
        release.node.kafka_bootstrap, release.topic("customers"), f"e2e-{time.time_ns()}"
    )
    assert customers and all("card_number" not in r["data"] for r in customers)


def test_worker_runs_nonroot_and_its_token_patches_only_its_own_task(release: Release) -> None:
    pod = wait_for("a Ready worker pod", release.worker_pod)
    name = pod["metadata"]["name"]
    assert_nonroot_with_readonly_root(release, name, release.namespace)

    other = yaml.safe_load(
        example_manifests(release.node, release.topic_prefix, "x").split("---")[-1]
    )
    other["metadata"]["name"] = "another-task"
    other["spec"]["paused"] = True
    release.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(other))
    # The worker's own, mounted ServiceAccount token, through the `kubernetes` Service's
    # ClusterIP (kube-proxy) to the API server.
    probe = """
import json, os, ssl, sys, urllib.error, urllib.request
sa = "/var/run/secrets/kubernetes.io/serviceaccount"
env = os.environ
base = "https://%s:%s" % (env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"])
token, ns = open(sa + "/token").read(), open(sa + "/namespace").read()
context = ssl.create_default_context(cafile=sa + "/ca.crt")
def patch(task):
    body = json.dumps({"status": {"heartbeatTime": sys.argv[3]}}).encode()
    request = urllib.request.Request(
        "%s/apis/ferry.dev/v1alpha1/namespaces/%s/synctasks/%s/status" % (base, ns, task),
        data=body, method="PATCH",
        headers={"Authorization": "Bearer " + token,
                 "Content-Type": "application/merge-patch+json"})
    try:
        return urllib.request.urlopen(request, context=context).status
    except urllib.error.HTTPError as error:
        return error.code
print(json.dumps({"own": patch(sys.argv[1]), "other": patch(sys.argv[2])}))
"""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    answer = json.loads(release.exec(name, "python3", "-c", probe, TASK, "another-task", now))
    assert answer == {"own": 200, "other": 403}
    release.kubectl("delete", "synctask", "another-task", "--wait", "--timeout=60s")


def test_pause_checkpoints_on_sigterm_and_resume_loses_and_doubles_nothing(
    release: Release,
) -> None:
    node = release.node
    with Writer(node, "shop", first_new_id=1000):
        time.sleep(3)
        pod = wait_for("a Ready worker pod", release.worker_pod)["metadata"]["name"]
        paused_at = time.monotonic()
        release.kubectl("ferry", "pause", TASK)
        wait_for(
            "the worker pod to go", lambda: not node.pods(release.namespace, WORKER), timeout=90
        )
        gone_after = time.monotonic() - paused_at
        # SIGTERM, flush, checkpoint, exit: well inside the 60 s grace period (a worker that
        # ignored SIGTERM would be killed at 60 s).
        assert gone_after < 45, f"the worker took {gone_after:.0f}s to stop after SIGTERM ({pod})"
        task = wait_for(
            "phase Paused", lambda: (t := release.task())["status"].get("phase") == "Paused" and t
        )
        assert task["status"]["position"]["file"] and task["status"]["position"]["pos"] > 0
        time.sleep(3)  # rows written while paused wait in the binlog
        release.kubectl("ferry", "resume", TASK)
        wait_for("a Ready worker pod after resume", release.worker_pod)
        time.sleep(3)
    assert_exactly_once(release)


def test_force_deleted_worker_resumes_from_its_checkpoint_exactly_once(release: Release) -> None:
    node = release.node
    with Writer(node, "shop", first_new_id=100000):
        pod = wait_for("a Ready worker pod", release.worker_pod)["metadata"]["name"]
        time.sleep(4)
        release.kubectl("delete", "pod", pod, "--force", "--grace-period=0")
        replacement = wait_for(
            "a new Ready worker pod",
            lambda: (p := release.worker_pod()) and p["metadata"]["name"] != pod and p,
            timeout=180,
        )
        assert replacement["metadata"]["name"] != pod
        time.sleep(4)
    assert_exactly_once(release)


def test_operator_killed_mid_reconcile_converges_without_duplicates(release: Release) -> None:
    node = release.node
    template = yaml.safe_load(example_manifests(node, release.topic_prefix, "x").split("---")[-1])
    names = [f"fleet-{i:02d}" for i in range(20)]
    tasks = []
    for name in names:
        task = json.loads(json.dumps(template))
        task["metadata"]["name"] = name
        task["spec"]["paused"] = True  # the operator's objects, without 20 workers on 2 cores
        tasks.append(task)
    release.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(tasks))
    old = wait_for("the operator pod", lambda: operator_pod(release))["metadata"]["name"]
    time.sleep(1.5)  # mid-reconcile: some tasks done, some not
    node.kubectl("delete", "pod", old, "-n", release.system, "--force", "--grace-period=0")
    wait_for(
        "a new operator pod",
        lambda: (p := operator_pod(release)) and p["metadata"]["name"] != old,
        timeout=180,
    )

    def converged() -> bool:
        configmaps = node.kubectl_json(
            "get", "configmaps", "-n", release.namespace, "-l", REVISIONS
        )["items"]
        deployments = node.kubectl_json("get", "deployments", "-n", release.namespace)["items"]
        revisions = [cm["metadata"]["labels"]["ferry.dev/task"] for cm in configmaps]
        workers = {d["metadata"]["name"] for d in deployments}
        return all(revisions.count(n) >= 1 and f"{n}-worker" in workers for n in names)

    wait_for("20 tasks reconciled by the new operator pod", converged, timeout=240)
    configmaps = node.kubectl_json("get", "configmaps", "-n", release.namespace, "-l", REVISIONS)[
        "items"
    ]
    revisions = [cm["metadata"]["labels"]["ferry.dev/task"] for cm in configmaps]
    duplicated = {n: revisions.count(n) for n in names if revisions.count(n) != 1}
    assert duplicated == {}, f"tasks with more than one revision for one config: {duplicated}"
    revision_names = {
        cm["metadata"]["labels"]["ferry.dev/task"]: cm["metadata"]["name"] for cm in configmaps
    }
    for name in names:
        status = release.task(name).get("status") or {}
        assert status.get("configRevision") == revision_names[name], (name, status)
        assert status.get("phase") == "Paused", (name, status)
    release.kubectl("delete", "synctasks", *names, "--wait", "--timeout=120s")


def test_kubectl_ferry_logs_reads_the_worker_pod(release: Release) -> None:
    """`kubectl ferry logs` finds the worker pod from the task (status.workerPod) and reads
    it; --tail and -f as kubectl logs has them."""
    pod = wait_for("a Ready worker pod", release.worker_pod)["metadata"]["name"]
    kubectl, env = release.node.values["FERRY_KUBECTL"], release.node.env
    ferry_logs = [kubectl, "ferry", "logs", TASK, "-n", release.namespace]
    whole = run(*ferry_logs, "--since", "1d", env=env)
    assert f"# pod/{pod}" in whole.stderr
    assert "status server listening on port" in whole.stdout
    assert len(run(*ferry_logs, "--tail", "1", env=env).stdout.strip().splitlines()) == 1
    with subprocess.Popen(
        [*ferry_logs, "-f"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as follow:
        assert follow.stdout is not None
        assert follow.stdout.readline()  # the log so far, then it keeps streaming
        time.sleep(2)
        assert follow.poll() is None, "logs -f exited instead of following"
        follow.terminate()


def test_worker_image_queues_exactly_once_records_in_runs(release: Release) -> None:
    """The image's build of sink/_produce.c finds the librdkafka confluent-kafka bundles and
    serves its Producer: the exactly-once worker (the example's) never fell back to
    producing record by record, which it would say in its log."""
    pod = wait_for("a Ready worker pod", release.worker_pod)["metadata"]["name"]
    check = (
        "from confluent_kafka import Producer; from ferry_runtime.sink import _produce; "
        "_produce.handle(Producer({'bootstrap.servers': '127.0.0.1:9'})); print('served')"
    )
    assert release.exec(pod, "python3", "-c", check).strip() == "served"
    kubectl, env = release.node.values["FERRY_KUBECTL"], release.node.env
    log = run(kubectl, "ferry", "logs", TASK, "-n", release.namespace, "--since", "1d", env=env)
    assert "status server listening on port" in log.stdout  # the worker's log, read
    assert "producing record by record" not in log.stdout


def test_worker_pod_serves_queue_fill_and_slow_decoder_metrics(release: Release) -> None:
    """The worker pod, as the chart's PodMonitor selects it (its labels), serves
    ferry_queue_fill_ratio and ferry_slow_decoder_events_total on its `http` port with the
    values of its run: a new table the example's include selects, with a GEOMETRY column
    the fast row decoder leaves to the library, counts its rows events."""
    monitor_selector = (
        "app.kubernetes.io/managed-by=ferry,app.kubernetes.io/component=worker,ferry.dev/task"
    )
    (selected,) = release.node.pods(release.namespace, monitor_selector)
    pod = wait_for("a Ready worker pod", release.worker_pod)
    assert selected["metadata"]["name"] == pod["metadata"]["name"]
    ports = pod["spec"]["containers"][0]["ports"]
    assert [(p["name"], p["containerPort"]) for p in ports] == [("http", 8080)]

    release.node.sql(
        "CREATE TABLE shop.order_places (id INT PRIMARY KEY, p POINT NOT NULL);"
        "INSERT INTO shop.order_places VALUES (1, POINT(1, 2));"
        "INSERT INTO shop.order_places VALUES (2, POINT(3, 4))"
    )
    scrape = (
        "import urllib.request; "
        "print(urllib.request.urlopen('http://127.0.0.1:8080/metrics', timeout=5).read().decode())"
    )
    name = pod["metadata"]["name"]
    series = 'ferry_slow_decoder_events_total{reason="unsupported",table="shop.order_places"}'

    def scraped() -> str | None:
        text = release.exec(name, "python3", "-c", scrape)
        return text if f"{series} 2.0" in text else None

    text = wait_for("2 slow-decoded rows events of shop.order_places", scraped, timeout=120)
    (fill,) = [
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("ferry_queue_fill_ratio ")
    ]
    assert 0.0 <= fill <= 1.0
    assert not [
        line
        for line in text.splitlines()
        if line.startswith("ferry_slow_decoder_events_total") and "order_places" not in line
    ], "tables the fast decoder reads have no slow-decoder series"
