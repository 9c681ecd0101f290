"""Connector probing against the real MariaDB and Kafka: Ready when complete, and a message
naming exactly what is missing otherwise; the password appears nowhere; a Secret change
re-probes at once."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from tests.integration.operator.conftest import (
    Ferry,
    OperatorProcess,
    kafka_connector,
    mysql_connector,
    wait_until,
)

pytestmark = [pytest.mark.kube, pytest.mark.mysql, pytest.mark.kafka]


@pytest.fixture
def limited_user(mysql_connect: Any) -> Iterator[tuple[str, str]]:
    """A MySQL user with SELECT only (no replication grants)."""
    user, password = f"ferry_lim_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    with mysql_connect(admin=True) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
        cur.execute(f"GRANT SELECT ON *.* TO '{user}'@'%'")
    yield user, password
    with mysql_connect(admin=True) as conn, conn.cursor() as cur:
        cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")


def _ready(ferry: Ferry, name: str) -> dict[str, Any]:
    return wait_until(lambda: ferry.condition("connectors", name) or None, 60, f"{name} probed")


def test_complete_mysql_and_kafka_are_ready(
    ferry: Ferry, testenv: Any, kafka_bootstrap: str, ferry_operator: OperatorProcess
) -> None:
    ferry.secret("db", testenv.mysql["password"])
    ferry.create("connectors", mysql_connector("db", testenv))
    ferry.create("connectors", kafka_connector("kafka", kafka_bootstrap))
    assert _ready(ferry, "db")["status"] == "True"
    assert _ready(ferry, "kafka")["status"] == "True"
    server = ferry.get("connectors", "db")["status"]["server"]
    assert server["binlogFormat"] == "ROW" and server["binlogRowImage"] == "FULL"
    assert "MariaDB" in server["version"]


def test_missing_replication_grant_is_named(
    ferry: Ferry, testenv: Any, limited_user: tuple[str, str], ferry_operator: OperatorProcess
) -> None:
    user, password = limited_user
    ferry.secret("lim", password)
    ferry.create("connectors", mysql_connector("db", testenv, user=user, secret="lim"))
    assert _ready(ferry, "db")["status"] == "True"  # it connects: usable as a sink
    binlog = ferry.condition("connectors", "db", "BinlogReady")
    assert (binlog["status"], binlog["reason"]) == ("False", "MissingGrant")
    assert f"user '{user}' lacks the REPLICATION SLAVE privilege" in binlog["message"]
    assert "SELECT privilege" not in binlog["message"]


def test_wrong_password_is_reported_without_the_password_and_secret_fix_reprobes(
    ferry: Ferry, testenv: Any, ferry_operator: OperatorProcess
) -> None:
    wrong = f"wrong-{uuid.uuid4().hex}"
    ferry.secret("db", wrong)
    ferry.create("connectors", mysql_connector("db", testenv))
    ready = _ready(ferry, "db")
    assert (ready["status"], ready["reason"]) == ("False", "AuthenticationFailed")
    assert "access denied for user 'ferry'" in ready["message"]
    status = json.dumps(ferry.get("connectors", "db")["status"])
    events = json.dumps([e.message for e in ferry.core.list_namespaced_event(ferry.ns).items])
    assert wrong not in status and wrong not in events
    assert wrong not in ferry_operator.log()

    # Fixing the Secret re-probes now, not at the next periodic probe (30 s here).
    ferry.core.patch_namespaced_secret(
        "db", ferry.ns, client.V1Secret(string_data={"password": testenv.mysql["password"]})
    )
    wait_until(lambda: ferry.condition("connectors", "db").get("status") == "True", 15, "re-probed")
    real = testenv.mysql["password"]
    assert real not in json.dumps(ferry.get("connectors", "db")["status"])
    assert real not in ferry_operator.log()


def test_unreachable_kafka_is_named(ferry: Ferry, ferry_operator: OperatorProcess) -> None:
    ferry.create("connectors", kafka_connector("kafka", "127.0.0.1:1"))
    ready = _ready(ferry, "kafka")
    assert (ready["status"], ready["reason"]) == ("False", "Unreachable")
    assert ready["message"] == "Kafka at 127.0.0.1:1 is unreachable"
    wait_until(lambda: ferry.events("Unreachable"), 15, "an Unreachable event")


def test_missing_secret_is_named(
    ferry: Ferry, testenv: Any, ferry_operator: OperatorProcess
) -> None:
    ferry.create("connectors", mysql_connector("db", testenv, secret="nope"))
    ready = _ready(ferry, "db")
    assert ready["reason"] == "SecretNotFound"
    assert "spec.mysql.passwordSecretRef: Secret 'nope' not found" in ready["message"]


def test_missing_secret_key_names_it_and_the_keys_present(
    ferry: Ferry, testenv: Any, ferry_operator: OperatorProcess
) -> None:
    ferry.core.create_namespaced_secret(
        ferry.ns,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="db"),
            string_data={"passwd": testenv.mysql["password"], "user": "ferry"},
        ),
    )
    ferry.create("connectors", mysql_connector("db", testenv))  # key: password
    ready = _ready(ferry, "db")
    assert ready["reason"] == "SecretKeyNotFound"
    assert ready["message"] == (
        "spec.mysql.passwordSecretRef: Secret 'db' has no key 'password' (it has: passwd, user)"
    )
    assert testenv.mysql["password"] not in json.dumps(ferry.get("connectors", "db"))
