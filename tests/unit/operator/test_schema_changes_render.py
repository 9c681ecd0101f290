"""sink.kafka.schemaChanges and sink.mysql.schemaChanges on the operator's side, without
servers: the API refuses bad values naming the field, the renderer carries both into the
worker config, and unset renders nothing (existing tasks keep their config hash)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from ferry_operator.api.connector import Connector
from ferry_operator.api.synctask import SyncTask
from ferry_operator.render.worker_config import render_worker_config

CONNECTORS = {
    name: Connector.model_validate(
        {"metadata": {"name": name, "namespace": "shop"}, "spec": spec}
    )
    for name, spec in {
        "shop-db": {
            "type": "mysql",
            "mysql": {"host": "db", "user": "ferry",
                      "passwordSecretRef": {"name": "db", "key": "password"}},
        },
        "copy-db": {
            "type": "mysql",
            "mysql": {"host": "copy", "user": "writer",
                      "passwordSecretRef": {"name": "copy", "key": "password"}},
        },
        "events": {"type": "kafka", "kafka": {"bootstrapServers": "kafka:9092"}},
    }.items()
}  # fmt: skip


def task(sink: dict[str, Any]) -> SyncTask:
    return SyncTask.model_validate(
        {
            "metadata": {"name": "orders", "namespace": "shop", "uid": "u-1"},
            "spec": {"source": {"connectorRef": {"name": "shop-db"}}, "sink": sink},
        }
    )


def test_kafka_schema_changes_reach_the_worker_config() -> None:
    sink = {"connectorRef": {"name": "events"}, "kafka": {"schemaChanges": {"topic": "ddl"}}}
    rendered = render_worker_config(task(sink), CONNECTORS)
    assert rendered.sink.kafka is not None and rendered.sink.kafka.schema_changes is not None
    assert rendered.sink.kafka.schema_changes.topic == "ddl"
    assert "schemaChanges:\n      topic: ddl" in rendered.to_yaml()


@pytest.mark.parametrize("mode", ["stop", "evolve", "ignore"])
def test_mysql_schema_changes_reach_the_worker_config(mode: str) -> None:
    sink = {"connectorRef": {"name": "copy-db"}, "mysql": {"schemaChanges": mode}}
    rendered = render_worker_config(task(sink), CONNECTORS)
    assert rendered.sink.mysql is not None and rendered.sink.mysql.schema_changes == mode


def test_unset_renders_nothing() -> None:
    for sink in (
        {"connectorRef": {"name": "copy-db"}, "mysql": {}},
        {"connectorRef": {"name": "events"}, "kafka": {}},
    ):
        assert "schemaChanges" not in render_worker_config(task(sink), CONNECTORS).to_yaml()


def test_bad_values_are_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError, match="schemaChanges"):
        task({"connectorRef": {"name": "copy-db"}, "mysql": {"schemaChanges": "apply"}})
    with pytest.raises(ValidationError, match="schemaChanges"):
        task({"connectorRef": {"name": "events"}, "kafka": {"schemaChanges": "ddl"}})
