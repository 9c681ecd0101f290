"""Credential rotation: the Secret and the server's password change together; the Connector
is probed again at once and stays Ready, and the worker's pod template changes (a hash of
the Secrets' resourceVersions, never of their data), so the Deployment rolls the worker
onto the new credentials without a new config revision. The test plays kubelet
(conftest.Kubelet): it replaces the worker process when the pod template changes, and every
row written before, during and after the rotation is in Kafka exactly once."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
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
from tests.integration.runtime.conftest import read_topic

pytestmark = [pytest.mark.kube, pytest.mark.mysql, pytest.mark.kafka]
HASH = "ferry.dev/secrets-hash"


@pytest.fixture
def rotating_user(mysql_connect: Any) -> Iterator[tuple[str, str]]:
    """A user of its own with what a source needs, so its password can change."""
    user, password = f"ferry_rot_{uuid.uuid4().hex[:8]}", f"old-{uuid.uuid4().hex}"
    with source_user(mysql_connect, user, password) as created:
        yield created


def _template_annotations(ferry: Ferry, name: str) -> dict[str, str]:
    return dict(ferry.deployment(name).spec.template.metadata.annotations or {})


def test_a_rotated_password_reprobes_and_rolls_the_worker(
    ferry: Ferry,
    testenv: Any,
    kafka_bootstrap: str,
    mysql_connect: Any,
    rotating_user: tuple[str, str],
    database: str,
    kubelet: Kubelet,
    ferry_operator: OperatorProcess,
) -> None:
    user, old = rotating_user
    ferry.secret("db", old)
    ferry.create("connectors", mysql_connector("db", testenv, user=user))
    ferry.create("connectors", kafka_connector("kafka", kafka_bootstrap))
    wait_until(lambda: ferry.condition("connectors", "db").get("status") == "True", 60, "db")

    def insert(first: int, last: int) -> None:
        with mysql_connect(admin=True) as conn, conn.cursor() as cur:
            values = ",".join(f"({n})" for n in range(first, last + 1))
            cur.execute(f"INSERT INTO `{database}`.t VALUES {values}")

    with mysql_connect(admin=True) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE TABLE `{database}`.t (id int PRIMARY KEY)")
    insert(1, 10)
    topic = f"rot.{uuid.uuid4().hex[:8]}.t"
    ferry.create(
        "synctasks",
        task(
            "orders",
            source={"connectorRef": {"name": "db"}, "include": [f"{database}.*"]},
            sink={"connectorRef": {"name": "kafka"}, "kafka": {"topic": topic}},
        ),
    )
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
    kubelet.start("orders")
    wait_until(lambda: _events(ferry) >= 10, 90, "the snapshot delivered")
    insert(11, 20)

    # Rotate: the server's password and the Secret together. The running worker keeps its
    # session; rows written now wait in the binlog for the next worker.
    new = f"new-{uuid.uuid4().hex}"
    with mysql_connect(admin=True) as conn, conn.cursor() as cur:
        cur.execute(f"ALTER USER '{user}'@'%' IDENTIFIED BY '{new}'")
    ferry.core.patch_namespaced_secret("db", ferry.ns, {"stringData": {"password": new}})
    insert(21, 30)

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

    # The Deployment's new pod: the old worker gets SIGTERM (it checkpoints), the new one
    # starts with the new password from the Secret and goes on from the checkpoint.
    kubelet.stop()
    kubelet.start("orders")
    insert(31, 40)
    wait_until(lambda: len(read_topic(kafka_bootstrap, topic)) >= 40, 90, "every row")
    delivered = Counter(value["data"]["id"] for _, value in read_topic(kafka_bootstrap, topic))
    assert delivered == {n: 1 for n in range(1, 41)}
    assert "AuthenticationFailed" not in kubelet.log.read_text()


def _events(ferry: Ferry) -> int:
    status = ferry.get("synctasks", "orders").get("status") or {}
    return int((status.get("counters") or {}).get("events") or 0)
