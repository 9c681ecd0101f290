"""Credential rotation: the Secret and the server's password change together; the Connector
is probed again at once and stays Ready, and the worker's pod template changes (a hash of
the Secrets' resourceVersions, never of their data), so the Deployment rolls the worker
onto the new credentials without a new config revision."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from tests.integration.operator.conftest import (
    Ferry,
    OperatorProcess,
    kafka_connector,
    mysql_connector,
    task,
    wait_until,
)

pytestmark = [pytest.mark.kube, pytest.mark.mysql, pytest.mark.kafka]
HASH = "ferry.dev/secrets-hash"


@pytest.fixture
def rotating_user(mysql_connect: Any) -> Iterator[tuple[str, str]]:
    """A user of its own with what a source needs, so its password can change."""
    user, password = f"ferry_rot_{uuid.uuid4().hex[:8]}", f"old-{uuid.uuid4().hex}"
    with mysql_connect(admin=True) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
        cur.execute(
            f"GRANT SELECT, RELOAD, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO '{user}'@'%'"
        )
    yield user, password
    with mysql_connect(admin=True) as conn, conn.cursor() as cur:
        cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")


def _template_annotations(ferry: Ferry, name: str) -> dict[str, str]:
    return dict(ferry.deployment(name).spec.template.metadata.annotations or {})


def test_a_rotated_password_reprobes_and_rolls_the_worker(
    ferry: Ferry,
    testenv: Any,
    kafka_bootstrap: str,
    mysql_connect: Any,
    rotating_user: tuple[str, str],
    ferry_operator: OperatorProcess,
) -> None:
    user, old = rotating_user
    ferry.secret("db", old)
    ferry.create("connectors", mysql_connector("db", testenv, user=user))
    ferry.create("connectors", kafka_connector("kafka", kafka_bootstrap))
    wait_until(lambda: ferry.condition("connectors", "db").get("status") == "True", 60, "db")
    ferry.create("synctasks", task("orders"))
    before = wait_until(
        lambda: (
            _template_annotations(ferry, "orders").get(HASH)
            and _template_annotations(ferry, "orders")
        ),
        60,
        "the worker with a secrets hash",
    )
    versions = ferry.get("connectors", "db")["status"]["secretVersions"]
    assert set(versions) == {"db"}

    # Rotate: the server's password and the Secret together.
    new = f"new-{uuid.uuid4().hex}"
    with mysql_connect(admin=True) as conn, conn.cursor() as cur:
        cur.execute(f"ALTER USER '{user}'@'%' IDENTIFIED BY '{new}'")
    ferry.core.patch_namespaced_secret("db", ferry.ns, {"stringData": {"password": new}})

    after = wait_until(
        lambda: (a := _template_annotations(ferry, "orders")).get(HASH) != before[HASH] and a,
        60,
        "the worker's pod template to change",
    )
    assert ferry.condition("connectors", "db")["status"] == "True"
    assert ferry.get("connectors", "db")["status"]["secretVersions"]["db"] != versions["db"]
    # Same config: no new revision, only the pod rolls; nothing holds the password.
    assert after["ferry.dev/config-hash"] == before["ferry.dev/config-hash"]
    assert ferry.revisions("orders") == ["orders-r1"]
    shown = (
        json.dumps(
            [ferry.get("connectors", "db"), ferry.get("synctasks", "orders")]
            + [cm.data for cm in ferry.core.list_namespaced_config_map(ferry.ns).items]
            + [e.message for e in ferry.core.list_namespaced_event(ferry.ns).items]
        )
        + json.dumps(after)
        + ferry_operator.log()
    )
    assert old not in shown and new not in shown
