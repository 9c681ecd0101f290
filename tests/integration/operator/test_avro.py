"""format avro through the API server and the operator: the sink Connector's
kafka.schemaRegistry reaches the worker's config, its Secret's credentials reach the worker as
environment variables (the test plays kubelet and fills them from the Secret), and the
worker's records are registered with and decode through the real registry, which requires
those credentials. A task with format avro whose Connector has no registry is not rendered:
its Ready condition names the field."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from kubernetes import client
from tests.integration.operator.conftest import (
    Ferry,
    Kubelet,
    OperatorProcess,
    kafka_connector,
    mysql_connector,
    task,
    wait_until,
)
from tests.integration.runtime.test_avro import Registry, raw_records

pytestmark = [pytest.mark.kube, pytest.mark.mysql, pytest.mark.kafka]


def test_avro_task_runs_with_the_connectors_registry_and_its_secret(
    ferry: Ferry,
    testenv: Any,
    database: str,
    topic_prefix: str,
    kafka_bootstrap: str,
    schema_registry: Any,
    mysql_connect: Any,
    ferry_operator: OperatorProcess,
    kubelet: Kubelet,
) -> None:
    with mysql_connect(admin=True) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE TABLE `{database}`.orders (id int PRIMARY KEY, total decimal(8,2))")
        cur.execute(f"INSERT INTO `{database}`.orders VALUES (1, 9.50)")
    ferry.core.create_namespaced_secret(
        ferry.ns,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="registry"),
            string_data={
                "username": schema_registry.username,
                "password": schema_registry.password,
            },
        ),
    )
    ferry.secret("db", testenv.mysql["password"])
    ferry.create("connectors", mysql_connector("db", testenv))
    events = kafka_connector("kafka", kafka_bootstrap)
    events["spec"]["kafka"]["schemaRegistry"] = {
        "url": schema_registry.url,
        "secretRef": "registry",
    }
    ferry.create("connectors", events)
    topic = f"{topic_prefix}.{{database}}.{{table}}"
    ferry.create(
        "synctasks",
        task(
            "orders",
            source={"connectorRef": {"name": "db"}, "include": [f"{database}.*"]},
            sink={"connectorRef": {"name": "kafka"}, "kafka": {"topic": topic, "format": "avro"}},
        ),
    )
    status = lambda: ferry.get("synctasks", "orders").get("status") or {}  # noqa: E731
    try:
        wait_until(lambda: status().get("configRevision") == "orders-r1", 60, "r1")
        revision = ferry.core.read_namespaced_config_map("orders-r1", ferry.ns)
        config = yaml.safe_load(revision.data["worker.yaml"])
        assert config["sink"]["kafka"]["schemaRegistry"] == {
            "url": schema_registry.url,
            "usernameEnv": "FERRY_SCHEMA_REGISTRY_USERNAME",
            "passwordEnv": "FERRY_SCHEMA_REGISTRY_PASSWORD",
        }
        assert schema_registry.password not in revision.data["worker.yaml"]
        env = {
            e.name: e.value_from.secret_key_ref
            for e in ferry.deployment("orders").spec.template.spec.containers[0].env
            if e.value_from is not None
        }
        ref = env["FERRY_SCHEMA_REGISTRY_PASSWORD"]
        assert (ref.name, ref.key) == ("registry", "password")
        kubelet.start("orders")  # the env from the Secret, as the kubelet would
        registry = Registry(schema_registry)
        name = f"{topic_prefix}.{database}.orders"
        records = wait_until(lambda: raw_records(kafka_bootstrap, name), 90, "a record")
        ((key, value),) = records
        assert registry.decode(key)[1] == {"id": 1}
        value_id, datum = registry.decode(value)
        assert value_id == registry.version_id(f"{name}-value", 1)
        assert datum["op"] == "r" and str(datum["after"]["total"]) == "9.50"
    finally:
        kubelet.stop()


def test_avro_without_a_registry_on_the_connector_is_an_invalid_spec(
    ferry: Ferry, connectors: None, ferry_operator: OperatorProcess
) -> None:
    ferry.create(
        "synctasks",
        task("orders", sink={"connectorRef": {"name": "kafka"}, "kafka": {"format": "avro"}}),
    )
    wait_until(
        lambda: ferry.condition("synctasks", "orders").get("reason") == "InvalidSpec",
        60,
        "InvalidSpec",
    )
    message = ferry.condition("synctasks", "orders")["message"]
    assert "spec.sink.kafka.format avro needs a schema registry" in message
    assert "spec.kafka.schemaRegistry" in message and "'kafka'" in message
    assert not ferry.revisions("orders")


def test_a_missing_registry_secret_shows_on_the_connector(
    ferry: Ferry, kafka_bootstrap: str, ferry_operator: OperatorProcess
) -> None:
    events = kafka_connector("kafka", kafka_bootstrap)
    events["spec"]["kafka"]["schemaRegistry"] = {"url": "http://registry:8081", "secretRef": "nope"}
    ferry.create("connectors", events)
    wait_until(
        lambda: ferry.condition("connectors", "kafka").get("reason") == "SecretNotFound",
        60,
        "SecretNotFound",
    )
    message = ferry.condition("connectors", "kafka")["message"]
    assert "spec.kafka.schemaRegistry.secretRef: Secret 'nope' not found" in message
