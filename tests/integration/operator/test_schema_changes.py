"""sink.mysql.schemaChanges and sink.kafka.schemaChanges through the API server and the
operator: a task with ``schemaChanges: evolve`` gets it in its config revision, and its
worker (run from that revision, the test playing kubelet) adds the column the source added
to the target; bad values are refused at admission naming the field; the example applies."""

from __future__ import annotations

import copy
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest
import yaml
from kubernetes import client
from tests.integration.operator.conftest import (
    Ferry,
    Kubelet,
    OperatorProcess,
    delete_ferry_objects,
    mysql_connector,
    task,
    wait_until,
)

pytestmark = [pytest.mark.kube, pytest.mark.mysql]

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def target(mysql_connect: Callable[..., Any]) -> Iterator[str]:
    name = f"evolve_target_{uuid.uuid4().hex[:8]}"
    with mysql_connect(admin=True) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
    yield name
    with mysql_connect(admin=True) as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


def test_evolve_reaches_the_worker_and_follows_an_added_column(
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

    def rows(statement: str) -> list[Any]:
        """sql(), or [] while the target lacks the table or column."""
        try:
            return sql(statement)
        except pymysql.err.MySQLError:
            return []

    sql(f"CREATE TABLE `{database}`.notes (id int PRIMARY KEY, v int)")
    sql(f"CREATE TABLE `{target}`.notes (id int PRIMARY KEY, v int)")
    ferry.secret("db", testenv.mysql["password"])
    ferry.create("connectors", mysql_connector("db", testenv))
    ferry.create(
        "connectors", mysql_connector("replica", testenv, user=testenv.mysql_admin["user"])
    )
    try:
        ferry.create(
            "synctasks",
            task(
                "orders",
                source={"connectorRef": {"name": "db"}, "include": [f"{database}.*"]},
                sink={
                    "connectorRef": {"name": "replica"},
                    "mysql": {"database": target, "schemaChanges": "evolve"},
                },
                mode="cdc",
            ),
        )
        stored = ferry.get("synctasks", "orders")["spec"]["sink"]["mysql"]
        assert stored.get("schemaChanges") == "evolve", "pruned: the API server has old CRDs"
        status = lambda: ferry.get("synctasks", "orders").get("status") or {}  # noqa: E731
        wait_until(lambda: status().get("configRevision") == "orders-r1", 60, "r1")
        revision = ferry.core.read_namespaced_config_map("orders-r1", ferry.ns)
        config = yaml.safe_load(revision.data["worker.yaml"])
        assert config["sink"]["mysql"]["schemaChanges"] == "evolve"
        kubelet.start("orders")
        wait_until(lambda: status().get("phase") == "Running", 90, "Running")

        sql(f"ALTER TABLE `{database}`.notes ADD COLUMN note varchar(20) AFTER id")
        sql(f"INSERT INTO `{database}`.notes VALUES (1, 'evolved', 1)")
        sql(f"CREATE TABLE `{database}`.fresh (id int PRIMARY KEY)")
        sql(f"INSERT INTO `{database}`.fresh VALUES (7)")
        wait_until(
            lambda: rows(f"SELECT id, note, v FROM `{target}`.notes") == [(1, "evolved", 1)],
            60,
            "the new column and its row on the target",
        )
        wait_until(lambda: rows(f"SELECT id FROM `{target}`.fresh") == [(7,)], 60, "fresh")
        assert status().get("phase") == "Running"
    finally:
        kubelet.stop()
        delete_ferry_objects(ferry)


def _apply(testenv: Any, namespace: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [testenv.kubectl, "apply", "-n", namespace, "--validate=strict", "-f", str(path)],
        env={**os.environ, "KUBECONFIG": str(testenv.kubeconfig)},
        capture_output=True,
        text=True,
    )


def test_the_example_applies_and_bad_values_are_refused(
    testenv: Any, ferry: Ferry, tmp_path: Path
) -> None:
    example = REPO / "examples" / "schema-changes"
    result = _apply(testenv, ferry.ns, example)
    assert result.returncode == 0, result.stderr
    evolve = ferry.get("synctasks", "shop-to-reporting")["spec"]["sink"]["mysql"]
    assert evolve["schemaChanges"] == "evolve"  # kept: the CRD has the field
    records = ferry.get("synctasks", "shop-orders")["spec"]["sink"]["kafka"]
    assert records["schemaChanges"] == {"topic": "shop.ddl"}

    manifest = yaml.safe_load((example / "mysql-evolve.yaml").read_text())
    bad = copy.deepcopy(manifest)
    bad["metadata"]["name"] = "bad-mode"
    bad["spec"]["sink"]["mysql"]["schemaChanges"] = "apply"
    with pytest.raises(client.ApiException) as refused:
        ferry.create("synctasks", bad)
    assert refused.value.status == 422
    assert "spec.sink.mysql.schemaChanges" in str(refused.value.body)

    records_manifest = yaml.safe_load((example / "kafka-ddl-records.yaml").read_text())
    bad = copy.deepcopy(records_manifest)
    bad["metadata"]["name"] = "bad-topic"
    bad["spec"]["sink"]["kafka"]["schemaChanges"] = {"topic": "shop ddl"}
    with pytest.raises(client.ApiException) as refused:
        ferry.create("synctasks", bad)
    assert "sink.kafka.schemaChanges.topic must be a Kafka topic name" in str(refused.value.body)
