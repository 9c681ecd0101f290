"""Secret hygiene: a task over secured endpoints (MariaDB over TLS as a REQUIRE SSL user with a
distinctive password, Kafka over SASL_SSL with SCRAM) runs, fails once and recovers; then every
ConfigMap, status, Event, the operator's and the worker's logs, the worker's metrics and
/status document and the Deployment are searched for the passwords: no hit.

The test plays kubelet (conftest.Kubelet): the worker runs as a local process exactly as the
Deployment describes it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.operator.conftest import (
    Ferry,
    Kubelet,
    OperatorProcess,
    kafka_connector,
    mysql_connector,
    source_user,
    task,
    wait_until,
)

pytestmark = [pytest.mark.kube, pytest.mark.mysql, pytest.mark.kafka]


@pytest.fixture
def distinctive_user(mysql_connect: Any) -> Iterator[tuple[str, str]]:
    user, password = f"ferry_hyg_{uuid.uuid4().hex[:8]}", f"Hyg13ne-{uuid.uuid4().hex}-Pw"
    with source_user(mysql_connect, user, password, require_ssl=True) as created:
        yield created


def test_no_password_anywhere(
    ferry: Ferry,
    testenv: Any,
    secured: dict[str, str],
    database: str,
    mysql_connect: Any,
    distinctive_user: tuple[str, str],
    kubelet: Kubelet,
    ferry_operator: OperatorProcess,
) -> None:
    user, password = distinctive_user
    scram_password = secured["FERRY_KAFKA_SCRAM_PASSWORD"]
    ca = Path(secured["FERRY_TLS_CA_FILE"]).read_text()
    ferry.secret("db", password)
    for name, data in {
        "ca": {"ca.crt": ca},
        "kafka-user": {"username": secured["FERRY_KAFKA_SCRAM_USER"], "password": scram_password},
    }.items():
        ferry.core.create_namespaced_secret(
            ferry.ns, {"metadata": {"name": name}, "stringData": data}
        )
    db = mysql_connector("db", testenv, user=user)
    db["spec"]["mysql"]["tls"] = {"mode": "verify-identity", "caSecretRef": {"name": "ca"}}
    kafka = kafka_connector("kafka", secured["FERRY_KAFKA_SASL_BOOTSTRAP"])
    kafka["spec"]["kafka"] |= {
        "securityProtocol": "SASL_SSL",
        "sasl": {"mechanism": "SCRAM-SHA-512", "secretRef": "kafka-user"},
        "tls": {"caSecretRef": {"name": "ca"}},
    }
    ferry.create("connectors", db)
    ferry.create("connectors", kafka)
    with mysql_connect(admin=True) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE TABLE `{database}`.t (id int PRIMARY KEY, v varchar(20))")
        cur.execute(f"INSERT INTO `{database}`.t VALUES (1, 'a'), (2, 'b')")
    prefix = f"hyg.{uuid.uuid4().hex[:8]}"
    ferry.create(
        "synctasks",
        task(
            "orders",
            source={"connectorRef": {"name": "db"}, "include": [f"{database}.*"]},
            sink={"connectorRef": {"name": "kafka"}, "kafka": {"topic": f"{prefix}.{{table}}"}},
            restartPolicy={"backoff": "200ms"},
        ),
    )
    wait_until(lambda: ferry.deployment("orders"), 90, "the worker Deployment")
    kubelet.start("orders")
    wait_until(
        lambda: ferry.get("synctasks", "orders").get("status", {}).get("phase") == "Running",
        90,
        "Running",
    )
    with mysql_connect(admin=True) as conn, conn.cursor() as cur:
        cur.execute(f"INSERT INTO `{database}`.t VALUES (3, 'c')")
        # One failure, with its error message: kill the worker's binlog connection.
        cur.execute("SHOW PROCESSLIST")
        dumps = [r[0] for r in cur.fetchall() if r[4] == "Binlog Dump" and r[1] == user]
        assert dumps, "no binlog connection of the worker's user"
        cur.execute(f"KILL CONNECTION {dumps[0]}")
        cur.execute(f"INSERT INTO `{database}`.t VALUES (4, 'd')")

    def recovered() -> bool:
        status = ferry.get("synctasks", "orders").get("status") or {}
        counters = status.get("counters") or {}
        return (counters.get("events") or 0) >= 4 and (counters.get("restarts") or 0) >= 1

    wait_until(recovered, 90, "the worker to recover and deliver every row")
    status = ferry.get("synctasks", "orders")["status"]
    assert status["lastErrors"][0]["reason"] == "ConnectionLost"

    seen = {
        "configmaps": [cm.data for cm in ferry.core.list_namespaced_config_map(ferry.ns).items],
        "synctask": ferry.get("synctasks", "orders"),
        "connectors": [ferry.get("connectors", n) for n in ("db", "kafka")],
        "events": [(e.reason, e.message) for e in ferry.core.list_namespaced_event(ferry.ns).items],
        "deployment": ferry.api.sanitize_for_serialization(ferry.deployment("orders")),
        "metrics": kubelet.fetch("/metrics"),
        "status": kubelet.fetch("/status"),
        "operator log": ferry_operator.log(),
        "worker log": kubelet.log.read_text(),
    }
    for where, text in seen.items():
        dumped = text if isinstance(text, str) else json.dumps(text)
        assert password not in dumped, f"the MySQL password is in the {where}"
        assert scram_password not in dumped, f"the SCRAM password is in the {where}"
    # And the searches were not vacuous: the worker did log, report and export metrics.
    assert "ferry_events_total" in seen["metrics"]
    assert user in json.dumps(seen["configmaps"])
