"""spec.heartbeat and spec.sink.kafka.transactionTopic render into the worker config, from
the task or from its TaskTemplate, and are absent (off) when not set."""

from __future__ import annotations

from typing import Any

from ferry_operator.api.connector import Connector
from ferry_operator.api.synctask import SyncTask
from ferry_operator.api.tasktemplate import TaskTemplate
from ferry_operator.render.worker_config import render_worker_config

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
    "events": Connector.model_validate(
        {
            "metadata": {"name": "events", "namespace": "shop"},
            "spec": {"type": "kafka", "kafka": {"bootstrapServers": "kafka:9092"}},
        }
    ),
}


def _task(**spec: Any) -> SyncTask:
    return SyncTask.model_validate(
        {
            "metadata": {"name": "orders", "namespace": "shop", "uid": "u-1"},
            "spec": {
                "source": {"connectorRef": {"name": "db"}},
                "sink": {"connectorRef": {"name": "events"}, "kafka": {}},
                **spec,
            },
        }
    )


def test_off_when_not_set() -> None:
    config = render_worker_config(_task(), CONNECTORS)
    assert config.heartbeat is None
    assert config.sink.kafka is not None and config.sink.kafka.transaction_topic is None
    assert "heartbeat" not in config.to_yaml() and "transactionTopic" not in config.to_yaml()


def test_rendered_with_defaults_filled_in() -> None:
    sink = {"connectorRef": {"name": "events"}, "kafka": {"transactionTopic": "shop.tx"}}
    config = render_worker_config(_task(heartbeat={}, sink=sink), CONNECTORS)
    assert config.heartbeat is not None
    assert config.heartbeat.table == "ferry_meta.heartbeat"
    assert config.heartbeat.interval.total_seconds() == 10
    assert config.sink.kafka is not None and config.sink.kafka.transaction_topic == "shop.tx"


def test_a_template_supplies_them_and_the_task_overrides() -> None:
    template = TaskTemplate.model_validate(
        {
            "metadata": {"name": "defaults", "namespace": "shop"},
            "spec": {
                "template": {
                    "heartbeat": {"interval": "30s", "table": "meta.hb"},
                    "sink": {"kafka": {"transactionTopic": "shared.tx"}},
                }
            },
        }
    )
    task = _task(templateRef={"name": "defaults"}, heartbeat={"interval": "5s"})
    config = render_worker_config(task, CONNECTORS, template)
    assert config.heartbeat is not None
    assert (config.heartbeat.interval.total_seconds(), config.heartbeat.table) == (5, "meta.hb")
    assert config.sink.kafka is not None and config.sink.kafka.transaction_topic == "shared.tx"
