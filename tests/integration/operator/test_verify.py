"""spec.verifyRequest through the operator, on the real API server and MariaDB with a MySQL
sink: ``kubectl ferry verify`` makes a config revision carrying the request, the worker (run
from it, the test playing kubelet) finds the row changed on the target behind Ferry's back,
and status.verification, the worker's /metrics, one DriftFound Event and lastVerifyNonce
record it; ``verify --repair --wait`` fixes the row (exit 1: drift was found), a second
``verify --wait`` finds none (exit 0, a Verified Event). The example manifest applies."""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.integration.operator.conftest import (
    Ferry,
    Kubelet,
    OperatorProcess,
    delete_ferry_objects,
    mysql_connector,
    task,
    wait_until,
)

from ferry_operator import kubectl_plugin

pytestmark = [pytest.mark.kube, pytest.mark.mysql]

REPO = Path(__file__).resolve().parents[3]


SCHEMA = "/spec/versions/0/schema/openAPIV3Schema/properties"
MINE = (
    ("spec", "verifyRequest"),
    ("spec", "verifySchedule"),
    ("status", "verification"),
    ("status", "lastVerifyNonce"),
    ("status", "nextVerification"),
    ("status", "scheduledVerification"),
)


@pytest.fixture
def crd_fields(kube_api: Any, ferry_crds: None) -> Iterator[None]:
    """Keeps spec.verifyRequest (and its CEL rule) and status.verification in the shared API
    server's SyncTask CRD while the test runs: another working tree testing against the same
    server may apply CRDs without them at any moment, and the server would prune them from
    the task. Adds only
    these properties (a JSON patch), never removes another tree's; on a server only this tree
    uses, it finds them present and does nothing."""
    from kubernetes import client

    extensions = client.ApiextensionsV1Api(kube_api)
    name = "synctasks.ferry.dev"
    ours = yaml.safe_load((REPO / "crds" / "ferry.dev_synctasks.yaml").read_text())
    props = ours["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    stop = threading.Event()

    def keep() -> None:
        while not stop.is_set():
            crd = kube_api.sanitize_for_serialization(
                extensions.read_custom_resource_definition(name)
            )
            have = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
            patch = [
                {
                    "op": "add",
                    "path": f"{SCHEMA}/{part}/properties/{field}",
                    "value": props[part]["properties"][field],
                }
                for part, field in MINE
                if field not in have[part]["properties"]
            ]
            rules = have["spec"].get("x-kubernetes-validations") or []
            rule = next(
                r for r in props["spec"]["x-kubernetes-validations"] if "verifyRequest" in r["rule"]
            )
            if rule not in rules:
                path = f"{SCHEMA}/spec/x-kubernetes-validations"
                patch.append({"op": "add", "path": f"{path}/-", "value": rule})
            if patch:
                extensions.patch_custom_resource_definition(name, patch)
            stop.wait(0.5)

    thread = threading.Thread(target=keep, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(10)


@pytest.fixture
def target(mysql_connect: Callable[..., Any]) -> Iterator[str]:
    name = f"verify_target_{uuid.uuid4().hex[:8]}"
    with mysql_connect(admin=True) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
    yield name
    with mysql_connect(admin=True) as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


def _verification(ferry: Ferry) -> dict[str, Any]:
    status = ferry.get("synctasks", "orders").get("status") or {}
    found: dict[str, Any] = status.get("verification") or {}
    return found


def _done(ferry: Ferry, nonce: str) -> bool:
    found = _verification(ferry)
    return found.get("nonce") == nonce and found.get("state") == "Completed"


def test_verify_finds_drift_reports_it_and_repairs_it(
    ferry: Ferry,
    testenv: Any,
    mysql_connect: Callable[..., Any],
    database: str,
    target: str,
    crd_fields: None,
    ferry_operator: OperatorProcess,
    kubelet: Kubelet,
) -> None:
    def sql(statement: str) -> list[Any]:
        with mysql_connect(admin=True) as conn, conn.cursor() as cur:
            cur.execute(statement)
            return list(cur.fetchall())

    sql(f"CREATE TABLE `{database}`.notes (id int PRIMARY KEY, v varchar(20))")
    sql(f"CREATE TABLE `{target}`.notes (id int PRIMARY KEY, v varchar(20))")
    sql(f"INSERT INTO `{database}`.notes VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    ferry.secret("db", testenv.mysql["password"])
    ferry.create("connectors", mysql_connector("db", testenv))
    ferry.create(
        "connectors", mysql_connector("replica", testenv, user=testenv.mysql_admin["user"])
    )
    ferry.create(
        "synctasks",
        task(
            "orders",
            source={"connectorRef": {"name": "db"}, "include": [f"{database}.notes"]},
            sink={"connectorRef": {"name": "replica"}, "mysql": {"database": target}},
        ),
    )
    wait_until(lambda: _status_field(ferry, "configRevision") == "orders-r1", 60, "r1")
    kubelet.start("orders")
    wait_until(lambda: _status_field(ferry, "phase") == "Running", 90, "Running")
    wait_until(lambda: len(sql(f"SELECT id FROM `{target}`.notes")) == 3, 60, "the snapshot")
    sql(f"UPDATE `{target}`.notes SET v = 'tampered' WHERE id = 2")  # behind Ferry's back

    kubeconfig = ["--kubeconfig", str(testenv.kubeconfig), "-n", ferry.ns]
    assert kubectl_plugin.main(["verify", "orders", "--nonce", "v1", *kubeconfig]) == 0
    wait_until(lambda: ferry.revisions("orders")[-1:] == ["orders-r2"], 60, "r2")
    revision = ferry.core.read_namespaced_config_map("orders-r2", ferry.ns)
    assert revision.metadata.annotations["ferry.dev/change-cause"] == "verifyRequest (nonce v1)"
    wait_until(lambda: _status_field(ferry, "configRevision") == "orders-r2", 60, "on r2")
    kubelet.stop()
    kubelet.start("orders")
    wait_until(lambda: _done(ferry, "v1"), 90, "verification v1")
    found = _verification(ferry)
    assert (found["mismatchedRows"], found["rows"], found["tables"]) == (
        1, 3, [f"{database}.notes"],
    )  # fmt: skip
    assert found["sampleKeys"] == [{"table": f"{database}.notes", "key": "[2]"}]
    wait_until(lambda: _status_field(ferry, "lastVerifyNonce") == "v1", 60, "lastVerifyNonce")
    (event,) = wait_until(lambda: ferry.events("DriftFound"), 30, "the DriftFound Event")
    assert event.type == "Warning" and "1 mismatched" in event.message and "[2]" in event.message
    assert "ferry_verification_mismatched_rows 1.0" in _metrics(kubelet)

    # --repair --wait: blocks until the result of its nonce (the test restarts the worker).
    codes: list[int] = []

    def verify(*extra: str) -> threading.Thread:
        args = ["verify", "orders", "--wait", "--timeout", "120", *extra, *kubeconfig]
        thread = threading.Thread(target=lambda: codes.append(kubectl_plugin.main(args)))
        thread.start()
        return thread

    def rerun(revision: str) -> None:
        wait_until(lambda: _status_field(ferry, "configRevision") == revision, 60, revision)
        kubelet.stop()
        kubelet.start("orders")

    waiting = verify("--repair", "--nonce", "v2")
    rerun("orders-r3")
    waiting.join(150)
    assert codes == [1]  # drift was found (and repaired)
    assert (_verification(ferry)["mismatchedRows"], _verification(ferry)["repairedRows"]) == (1, 1)
    wait_until(lambda: sql(f"SELECT v FROM `{target}`.notes WHERE id = 2") == [("b",)], 30, "fix")

    waiting = verify("--nonce", "v3")
    rerun("orders-r4")
    waiting.join(150)
    assert codes == [1, 0]
    wait_until(lambda: ferry.events("Verified"), 30, "the Verified Event")
    assert len(ferry.events("DriftFound")) == 2  # v1 and v2, once each
    kubelet.stop()
    delete_ferry_objects(ferry)  # while the operator runs: its finalizers let them go


def _metrics(kubelet: Kubelet) -> str:
    """The running worker's /metrics (the log holds every run's port: the last is its)."""
    port = re.findall(r"status on port (\d+)", kubelet.log.read_text())[-1]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def _status_field(ferry: Ferry, name: str) -> Any:
    return (ferry.get("synctasks", "orders").get("status") or {}).get(name)


def test_the_verify_example_applies(testenv: Any, ferry: Ferry, crd_fields: None) -> None:
    example = REPO / "examples" / "verify"
    result = subprocess.run(
        [testenv.kubectl, "apply", "-n", ferry.ns, "--validate=strict", "-f", str(example)],
        env={**os.environ, "KUBECONFIG": str(testenv.kubeconfig)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "synctask.ferry.dev/shop-replica created" in result.stdout
    applied = ferry.get("synctasks", "shop-replica")
    assert applied["spec"]["verifyRequest"]["repair"] is True
    assert "synctask.ferry.dev/shop-events-checked created" in result.stdout
    nightly = ferry.get("synctasks", "shop-events-checked")["spec"]["verifySchedule"]
    assert (nightly["schedule"], nightly["timeZone"]) == ("0 3 * * *", "Europe/Berlin")


def test_repair_with_a_kafka_sink_is_refused_at_admission(ferry: Ferry, crd_fields: None) -> None:
    bad = task(
        "bad",
        source={"connectorRef": {"name": "db"}},
        sink={"connectorRef": {"name": "events"}, "kafka": {}},
        verifyRequest={"nonce": "v", "repair": True},
    )
    time.sleep(1)  # the guard's first pass
    with pytest.raises(Exception, match=r"spec\.verifyRequest\.repair needs a MySQL sink"):
        ferry.create("synctasks", bad)
