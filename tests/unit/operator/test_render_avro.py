"""format avro renders the sink Connector's schema registry into the worker config, its
credentials as environment variables from the Connector's Secret (never values), and a task
with format avro whose Connector has no registry is refused naming the field."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from ferry_operator.api.connector import Connector
from ferry_operator.api.synctask import SyncTask
from ferry_operator.render import objects
from ferry_operator.render.errors import InvalidSpec
from ferry_operator.render.meta import Owner
from ferry_operator.render.worker_config import (
    render_worker_config,
    secret_env,
    secret_volumes,
)
from ferry_runtime import live


def _connector(name: str, kafka: dict[str, Any]) -> Connector:
    return Connector.model_validate(
        {"metadata": {"name": name, "namespace": "shop"}, "spec": {"type": "kafka", "kafka": kafka}}
    )


CONNECTORS = {
    "db": Connector.model_validate(
        {
            "metadata": {"name": "db", "namespace": "shop"},
            "spec": {
                "type": "mysql",
                "mysql": {
                    "host": "mariadb.shop",
                    "user": "ferry",
                    "passwordSecretRef": {"name": "db", "key": "password"},
                },
            },
        }
    ),
    "registry-auth": _connector(
        "registry-auth",
        {
            "bootstrapServers": "kafka:9092",
            "schemaRegistry": {"url": "https://registry:8081", "secretRef": "registry-user"},
        },
    ),
    "registry-open": _connector(
        "registry-open",
        {"bootstrapServers": "kafka:9092", "schemaRegistry": {"url": "http://registry:8081"}},
    ),
    "no-registry": _connector("no-registry", {"bootstrapServers": "kafka:9092"}),
}


def _task(connector: str, **kafka: Any) -> SyncTask:
    return SyncTask.model_validate(
        {
            "metadata": {"name": "orders", "namespace": "shop", "uid": "u-1"},
            "spec": {
                "source": {"connectorRef": {"name": "db"}},
                "sink": {"connectorRef": {"name": connector}, "kafka": kafka},
            },
        }
    )


def test_registry_credentials_reach_the_worker_as_env_from_the_secret() -> None:
    task = _task("registry-auth", format="avro", avro={"subjectStrategy": "recordName"})
    config = render_worker_config(task, CONNECTORS)
    kafka = config.sink.kafka
    assert kafka is not None and kafka.format == "avro"
    assert kafka.avro is not None and kafka.avro.subject_strategy == "recordName"
    assert kafka.schema_registry is not None
    assert kafka.schema_registry.url == "https://registry:8081"
    user_env, password_env = kafka.schema_registry.username_env, kafka.schema_registry.password_env
    assert (user_env, password_env) == (
        "FERRY_SCHEMA_REGISTRY_USERNAME",
        "FERRY_SCHEMA_REGISTRY_PASSWORD",
    )
    assert password_env in config.secret_envs()  # scrubbed from the worker's messages
    owner = Owner("orders", "shop", "u-1")
    deploy = objects.deployment(
        owner,
        task.spec,
        live.restart_hash(config),
        secret_env(task.spec, CONNECTORS),
        replicas=1,
        secret_volumes=secret_volumes(task.spec, CONNECTORS),
    )
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
    assert env[user_env] == {"name": "registry-user", "key": "username"}
    assert env[password_env] == {"name": "registry-user", "key": "password"}
    rendered = yaml.safe_load(config.to_yaml())["sink"]["kafka"]
    assert rendered["schemaRegistry"] == {
        "url": "https://registry:8081",
        "usernameEnv": user_env,
        "passwordEnv": password_env,
    }


def test_a_registry_without_secret_sends_no_credentials() -> None:
    task = _task("registry-open", format="avro")
    kafka = render_worker_config(task, CONNECTORS).sink.kafka
    assert kafka is not None and kafka.schema_registry is not None
    assert kafka.schema_registry.username_env is None and kafka.avro is None
    assert not [e for e in secret_env(task.spec, CONNECTORS) if "REGISTRY" in e[0]]


def test_json_formats_leave_the_registry_out() -> None:
    task = _task("registry-auth", format="debezium")
    kafka = render_worker_config(task, CONNECTORS).sink.kafka
    assert kafka is not None and kafka.schema_registry is None
    assert not [e for e in secret_env(task.spec, CONNECTORS) if "REGISTRY" in e[0]]


def test_avro_without_a_registry_on_the_connector_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidSpec, match=r"spec\.kafka\.schemaRegistry.*'no-registry'"):
        render_worker_config(_task("no-registry", format="avro"), CONNECTORS)
