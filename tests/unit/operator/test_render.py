"""The pure renderers: golden files for every object of a task (regenerate with
FERRY_UPDATE_GOLDEN=1), the merge rule, and the errors that name the field."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from ferry_operator import crdgen
from ferry_operator.api.connector import Connector
from ferry_operator.api.synctask import SyncTask
from ferry_operator.api.tasktemplate import TaskTemplate
from ferry_operator.render import errors, objects
from ferry_operator.render.merge import deep_merge
from ferry_operator.render.meta import Owner
from ferry_operator.render.worker_config import (
    config_hash,
    effective_spec,
    render_worker_config,
    secret_env,
    secret_volumes,
    secrets_hash,
    stored_spec,
)
from ferry_runtime import live

GOLDEN = Path(__file__).parent / "golden"


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks, so the golden files read like the cluster's."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _dump(objs: list[dict[str, Any]]) -> str:
    return yaml.dump_all(objs, Dumper=_Dumper, sort_keys=True)


UPDATE = os.environ.get("FERRY_UPDATE_GOLDEN") == "1"

CONNECTORS = {
    "shop-db": Connector.model_validate(
        {
            "metadata": {"name": "shop-db", "namespace": "shop"},
            "spec": {
                "type": "mysql",
                "mysql": {
                    "host": "mariadb.shop",
                    "user": "ferry",
                    "passwordSecretRef": {"name": "shop-db", "key": "password"},
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
    "replica": Connector.model_validate(
        {
            "metadata": {"name": "replica", "namespace": "shop"},
            "spec": {
                "type": "mysql",
                "mysql": {
                    "host": "replica.shop",
                    "port": 3307,
                    "user": "writer",
                    "passwordSecretRef": {"name": "replica", "key": "pw"},
                },
            },
        }
    ),
    "secure-db": Connector.model_validate(
        {
            "metadata": {"name": "secure-db", "namespace": "shop"},
            "spec": {
                "type": "mysql",
                "mysql": {
                    "host": "mariadb.shop",
                    "user": "ferry",
                    "passwordSecretRef": {"name": "secure-db", "key": "password"},
                    "tls": {
                        "mode": "verify-ca",
                        "caSecretRef": {"name": "db-ca"},
                        "clientCertSecretRef": {"name": "db-client"},
                    },
                },
            },
        }
    ),
    "secure-events": Connector.model_validate(
        {
            "metadata": {"name": "secure-events", "namespace": "shop"},
            "spec": {
                "type": "kafka",
                "kafka": {
                    "bootstrapServers": "kafka:9093",
                    "securityProtocol": "SASL_SSL",
                    "sasl": {"mechanism": "SCRAM-SHA-512", "secretRef": "kafka-user"},
                    "tls": {"caSecretRef": {"name": "kafka-ca", "key": "ca.pem"}},
                },
            },
        }
    ),
}
TEMPLATE = TaskTemplate.model_validate(
    {
        "metadata": {"name": "defaults", "namespace": "shop"},
        "spec": {
            "template": {
                "source": {"connectorRef": {"name": "shop-db"}, "include": ["shop.*"]},
                "sink": {"kafka": {"format": "debezium", "topic": "t.{table}"}},
                "performance": {"batchSize": 100, "maxBatchDelay": "1s"},
                "delivery": "at-least-once",
            }
        },
    }
)


def _task(**spec: Any) -> SyncTask:
    base = {
        "source": {"connectorRef": {"name": "shop-db"}, "include": ["shop.order_*"]},
        "sink": {"connectorRef": {"name": "events"}, "kafka": {"topic": "ferry.{table}"}},
    }
    return SyncTask.model_validate(
        {
            "metadata": {"name": "orders", "namespace": "shop", "uid": "1234-abcd"},
            "spec": deep_merge(base, spec),
        }
    )


def _objects(task: SyncTask, template: TaskTemplate | None = None) -> list[dict[str, Any]]:
    owner = Owner(task.metadata.name, task.metadata.namespace, task.metadata.uid or "")
    spec = effective_spec(task, template)
    config = render_worker_config(task, CONNECTORS, template)
    digest = config_hash(config)
    return [
        objects.revision_configmap(owner, 3, config, stored_spec(spec), digest, "spec changed"),
        objects.worker_configmap(owner, config, "orders-r3"),
        objects.deployment(
            owner,
            spec,
            live.restart_hash(config),
            secret_env(spec, CONNECTORS),
            replicas=0 if spec.paused else 1,
            secret_volumes=secret_volumes(spec, CONNECTORS),
        ),
        objects.service_account(owner),
        objects.role(owner),
        objects.role_binding(owner),
    ]


CASES = {
    "kafka-task": _task(
        worker={"resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}},
        startPosition={"file": "binlog.000001", "pos": 4},
    ),
    "paused-restart-reset": _task(
        paused=True,
        resumeAt="2030-01-01T00:00:00Z",
        restartNonce="n1",
        resetPosition={"to": {"at": "earliest"}, "nonce": "r1"},
    ),
    "mysql-sink": _task(
        sink={"connectorRef": {"name": "replica"}, "kafka": None, "mysql": {"database": "copy"}}
    ),
    "secured": _task(
        source={"connectorRef": {"name": "secure-db"}},
        sink={"connectorRef": {"name": "secure-events"}},
    ),
}


def test_certificates_are_secret_volumes_and_the_config_names_only_paths() -> None:
    rendered = _objects(CASES["secured"])
    configmap, deploy = rendered[0], rendered[2]
    config = yaml.safe_load(configmap["data"]["worker.yaml"])
    assert config["source"]["tls"] == {
        "mode": "verify-ca",
        "caFile": "/etc/ferry-tls/source/ca/ca.crt",
        "certFile": "/etc/ferry-tls/source/client/tls.crt",
        "keyFile": "/etc/ferry-tls/source/client/tls.key",
    }
    kafka = config["sink"]["kafka"]
    assert kafka["tls"] == {"mode": "verify-identity", "caFile": "/etc/ferry-tls/sink/ca/ca.crt"}
    assert (kafka["saslMechanism"], kafka["securityProtocol"]) == ("SCRAM-SHA-512", "SASL_SSL")
    pod = deploy["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["source-ca"]["secret"] == {
        "secretName": "db-ca",
        "items": [{"key": "ca.crt", "path": "ca.crt"}],
        "defaultMode": 0o440,
    }
    assert volumes["source-client"]["secret"]["secretName"] == "db-client"
    assert volumes["sink-ca"]["secret"]["items"] == [{"key": "ca.pem", "path": "ca.crt"}]
    assert "configMap" not in volumes["source-ca"] and "sink-client" not in volumes
    mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["source-client"] == {
        "name": "source-client",
        "mountPath": "/etc/ferry-tls/source/client",
        "readOnly": True,
    }
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in pod["containers"][0]["env"]}
    assert env["FERRY_SINK_SASL_PASSWORD"] == {"name": "kafka-user", "key": "password"}
    assert env["FERRY_SINK_SASL_USERNAME"] == {"name": "kafka-user", "key": "username"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendered_objects_match_golden_file(case: str) -> None:
    task = CASES[case]
    text = _dump(_objects(task))
    path = GOLDEN / f"{case}.yaml"
    if UPDATE:
        path.write_text(text)
    assert path.exists(), f"{path} missing: run with FERRY_UPDATE_GOLDEN=1"
    assert text == path.read_text(), f"{path} differs: review, then FERRY_UPDATE_GOLDEN=1"


def test_template_merges_under_the_task() -> None:
    task = SyncTask.model_validate(
        {
            "metadata": {"name": "orders", "namespace": "shop", "uid": "u"},
            "spec": {
                "templateRef": {"name": "defaults"},
                "sink": {"connectorRef": {"name": "events"}, "kafka": {"topic": "mine"}},
                "performance": {"batchSize": 7},
            },
        }
    )
    text = _dump(_objects(task, TEMPLATE))
    path = GOLDEN / "from-template.yaml"
    if UPDATE:
        path.write_text(text)
    assert text == path.read_text()
    config = render_worker_config(task, CONNECTORS, TEMPLATE)
    assert config.sink.kafka is not None
    assert (config.sink.kafka.topic, config.sink.kafka.format) == ("mine", "debezium")
    assert config.performance.batch_size == 7
    assert config.performance.max_batch_delay.total_seconds() == 1.0
    assert config.delivery == "at-least-once"
    assert config.include == ["shop.*"]


def test_deep_merge_precedence_and_no_mutation() -> None:
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    over = {"a": {"c": [3]}, "e": {"f": 1}}
    merged = deep_merge(base, over)
    assert merged == {"a": {"b": 1, "c": [3]}, "d": 1, "e": {"f": 1}}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    merged["e"]["f"] = 2
    assert over["e"]["f"] == 1


def test_no_secret_in_the_config_and_passwords_come_from_secret_refs() -> None:
    rendered = _objects(CASES["mysql-sink"])
    configmap, deploy = rendered[0], rendered[2]
    assert "password:" not in configmap["data"]["worker.yaml"]
    env = deploy["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {e["name"]: e["valueFrom"]["secretKeyRef"] for e in env} == {
        "FERRY_SOURCE_PASSWORD": {"name": "shop-db", "key": "password"},
        "FERRY_SINK_PASSWORD": {"name": "replica", "key": "pw"},
    }


def test_hash_changes_with_the_config_only() -> None:
    same = config_hash(render_worker_config(_task(paused=True), CONNECTORS))
    assert same == config_hash(render_worker_config(_task(), CONNECTORS))
    assert same == config_hash(render_worker_config(_task(restartNonce="x"), CONNECTORS))
    assert same != config_hash(render_worker_config(_task(mode="cdc"), CONNECTORS))


def test_missing_connector_is_named() -> None:
    task = _task(sink={"connectorRef": {"name": "nowhere"}})
    with pytest.raises(errors.ConnectorNotFound, match="Connector 'nowhere' not found") as info:
        render_worker_config(task, CONNECTORS)
    assert info.value.name == "nowhere"


def test_sink_kind_must_match_the_connector_type() -> None:
    task = _task(sink={"connectorRef": {"name": "shop-db"}})
    with pytest.raises(errors.ConnectorTypeMismatch, match=r"spec.sink.connectorRef.*type mysql"):
        render_worker_config(task, CONNECTORS)


def test_template_task_without_source_is_invalid() -> None:
    task = SyncTask.model_validate(
        {"metadata": {"name": "x"}, "spec": {"templateRef": {"name": "gone"}}}
    )
    with pytest.raises(errors.InvalidSpec, match=r"spec.source.connectorRef is required"):
        render_worker_config(task, CONNECTORS, None)


def test_secrets_hash_follows_resource_versions_of_the_connectors_used() -> None:
    spec = effective_spec(CASES["secured"], None)
    versions = {"secure-db": {"secure-db": "10", "db-ca": "11"}, "secure-events": {"k": "12"}}
    first = secrets_hash(spec, versions)
    assert first is not None and len(first) == 16
    assert secrets_hash(spec, dict(versions)) == first  # stable
    rotated = {**versions, "secure-db": {"secure-db": "13", "db-ca": "11"}}
    assert secrets_hash(spec, rotated) != first
    # A Connector the task does not use changes nothing; no versions known: no annotation.
    assert secrets_hash(spec, {**versions, "replica": {"replica": "99"}}) == first
    assert secrets_hash(spec, {}) is None
    owner = Owner("orders", "shop", "u")
    config = render_worker_config(CASES["secured"], CONNECTORS)
    deploy = objects.deployment(
        owner, spec, live.restart_hash(config), [], replicas=1, secrets_hash=first
    )
    annotations = deploy["spec"]["template"]["metadata"]["annotations"]
    assert annotations["ferry.dev/secrets-hash"] == first


def test_on_position_unavailable_reaches_the_worker_and_is_left_out_when_unset() -> None:
    config = render_worker_config(_task(onPositionUnavailable="resnapshot"), CONNECTORS)
    assert config.on_position_unavailable == "resnapshot"
    assert "onPositionUnavailable: resnapshot" in config.to_yaml()
    # Unset renders nothing: existing tasks keep their config hash.
    assert "onPositionUnavailable" not in render_worker_config(_task(), CONNECTORS).to_yaml()


def test_snapshot_request_reaches_the_worker() -> None:
    request = {"tables": ["shop.order_items"], "nonce": "again-1"}
    config = render_worker_config(_task(snapshotRequest=request), CONNECTORS)
    assert config.snapshot_request is not None
    assert (config.snapshot_request.tables, config.snapshot_request.nonce) == (
        ["shop.order_items"],
        "again-1",
    )
    assert "snapshotRequest" not in render_worker_config(_task(), CONNECTORS).to_yaml()


def test_snapshot_new_tables_reaches_the_worker_and_is_left_out_when_unset() -> None:
    config = render_worker_config(_task(snapshotNewTables=True), CONNECTORS)
    assert config.snapshot_new_tables is True
    assert "snapshotNewTables: true" in config.to_yaml()
    assert "snapshotNewTables" not in render_worker_config(_task(), CONNECTORS).to_yaml()


def test_snapshot_request_where_reaches_the_worker_and_a_semicolon_is_refused() -> None:
    where = "created_at > '2026-01-01'"
    request = {"tables": ["shop.orders"], "nonce": "w1", "where": where}
    config = render_worker_config(_task(snapshotRequest=request), CONNECTORS)
    assert config.snapshot_request is not None and config.snapshot_request.where == where
    assert (
        "where"
        not in render_worker_config(
            _task(snapshotRequest={"tables": ["shop.orders"], "nonce": "w1"}), CONNECTORS
        ).to_yaml()
    )
    schema = crdgen.render(crdgen.CRDS[0])["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    field = schema["properties"]["spec"]["properties"]["snapshotRequest"]["properties"]["where"]
    assert (field["pattern"], field["maxLength"]) == ("^[^;]*$", 1000)
