"""spec.skipEvent through the operator, on the real API server, MariaDB and a MySQL sink: a
poison row stops the task, ``kubectl ferry skip`` with the position from status.lastErrors
makes a new config revision carrying the skip, the worker (run from it, the test playing
kubelet) skips exactly that event, and status.lastSkip, status.lastSkipNonce and one
EventSkipped Event record it; re-applying the same nonce changes nothing. The example
manifest applies."""

from __future__ import annotations

import os
import subprocess
import time
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
    mysql_connector,
    task,
    wait_until,
)

from ferry_operator import kubectl_plugin

pytestmark = [pytest.mark.kube, pytest.mark.mysql]

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def target(mysql_connect: Callable[..., Any]) -> Iterator[str]:
    name = f"skip_target_{uuid.uuid4().hex[:8]}"
    with mysql_connect(admin=True) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
    yield name
    with mysql_connect(admin=True) as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


def _status(ferry: Ferry) -> dict[str, Any]:
    return ferry.get("synctasks", "orders").get("status") or {}


def test_skip_event_reaches_the_worker_and_is_recorded_once(
    ferry: Ferry,
    testenv: Any,
    mysql_connect: Callable[..., Any],
    database: str,
    target: str,
    ferry_operator: OperatorProcess,
    kubelet: Kubelet,
) -> None:
    def sql(statement: str) -> list[Any]:
        with mysql_connect(admin=True) as conn, conn.cursor() as cur:
            cur.execute(statement)
            return list(cur.fetchall())

    sql(f"CREATE TABLE `{database}`.notes (id int PRIMARY KEY, v int)")
    sql(f"CREATE TABLE `{target}`.notes (id int PRIMARY KEY, v tinyint)")  # refuses v > 127
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
            mode="cdc",
            errorPolicy={"mode": "fail"},
        ),
    )
    wait_until(lambda: _status(ferry).get("configRevision") == "orders-r1", 60, "r1")
    kubelet.start("orders")
    wait_until(lambda: _status(ferry).get("phase") == "Running", 90, "Running")

    sql(f"INSERT INTO `{database}`.notes VALUES (1, 1)")
    wait_until(lambda: sql(f"SELECT id FROM `{target}`.notes"), 60, "row 1 in the target")
    sql(f"INSERT INTO `{database}`.notes VALUES (2, 1000)")  # the poison row
    sql(f"INSERT INTO `{database}`.notes VALUES (3, 3)")
    wait_until(lambda: _status(ferry).get("phase") == "Failed", 60, "Failed")
    error = _status(ferry)["lastErrors"][0]
    assert error["reason"] == "PoisonRow" and error["table"] == f"{database}.notes", error
    ready = ferry.condition("synctasks", "orders")
    hint = f"kubectl ferry skip orders -n {ferry.ns} --position {error['position']}"
    assert ready["reason"] == "PoisonRow" and hint in ready["message"], ready

    # What the message says to run.
    code = kubectl_plugin.main(
        [
            *hint.split()[2:],  # skip orders -n NS --position FILE:POS
            "--nonce",
            "n1",
            "--kubeconfig",
            str(testenv.kubeconfig),
        ]
    )
    assert code == 0
    wait_until(lambda: ferry.revisions("orders") == ["orders-r1", "orders-r2"], 60, "r2")
    revision = ferry.core.read_namespaced_config_map("orders-r2", ferry.ns)
    file, pos = error["position"].rsplit(":", 1)
    assert yaml.safe_load(revision.data["worker.yaml"])["skipEvent"] == {
        "position": {"file": file, "pos": int(pos)},
        "nonce": "n1",
    }
    assert revision.metadata.annotations["ferry.dev/change-cause"] == "skipEvent (nonce n1)"
    wait_until(lambda: _status(ferry).get("configRevision") == "orders-r2", 60, "on r2")

    # The Deployment now mounts r2: the kubelet replaces the (exited) worker.
    kubelet.stop()
    kubelet.start("orders")
    wait_until(lambda: (_status(ferry).get("lastSkip") or {}).get("nonce") == "n1", 90, "skip")
    wait_until(lambda: _status(ferry).get("lastSkipNonce") == "n1", 60, "lastSkipNonce")
    wait_until(lambda: _status(ferry).get("phase") == "Running", 60, "Running again")
    last = _status(ferry)["lastSkip"]
    assert (last["position"], last["table"], last["events"]) == (
        error["position"],
        f"{database}.notes",
        1,
    )
    wait_until(lambda: ferry.events("EventSkipped"), 30, "the EventSkipped Event")
    (event,) = ferry.events("EventSkipped")
    assert event.type == "Normal"
    assert f"at {error['position']}" in event.message and "nonce n1" in event.message
    wait_until(
        lambda: sql(f"SELECT id, v FROM `{target}`.notes ORDER BY id") == [(1, 1), (3, 3)],
        60,
        "rows 1 and 3 in the target, row 2 skipped",
    )

    # The same nonce again (a GitOps re-apply, the same CLI call): nothing more happens.
    generation = ferry.get("synctasks", "orders")["metadata"]["generation"]
    same = ferry.get("synctasks", "orders")["spec"]["skipEvent"]
    ferry.patch_spec("synctasks", "orders", {"skipEvent": same})
    again = kubectl_plugin.main(
        [*hint.split()[2:], "--nonce", "n1", "--kubeconfig", str(testenv.kubeconfig)]
    )
    assert again == 0
    assert ferry.get("synctasks", "orders")["metadata"]["generation"] == generation
    sql(f"INSERT INTO `{database}`.notes VALUES (4, 4)")
    wait_until(
        lambda: sql(f"SELECT id FROM `{target}`.notes ORDER BY id") == [(1,), (3,), (4,)],
        60,
        "row 4",
    )
    time.sleep(3)  # a few resyncs (1 s each)
    assert ferry.revisions("orders") == ["orders-r1", "orders-r2"]
    assert len(ferry.events("EventSkipped")) == 1
    assert _status(ferry)["lastSkip"]["nonce"] == "n1"


def test_the_skip_event_example_applies(testenv: Any, ferry: Ferry) -> None:
    example = REPO / "examples" / "skip-event"
    result = subprocess.run(
        [testenv.kubectl, "apply", "-n", ferry.ns, "--validate=strict", "-f", str(example)],
        env={**os.environ, "KUBECONFIG": str(testenv.kubeconfig)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "synctask.ferry.dev/shop-orders created" in result.stdout
    applied = ferry.get("synctasks", "shop-orders")
    assert applied["spec"]["skipEvent"]["position"] == {"file": "binlog.000042", "pos": 1234}
