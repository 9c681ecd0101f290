"""The API server itself refuses bad Ferry manifests, naming the field (docs/invalid-manifests.md
lists the same cases), accepts the valid ones, and ``kubectl explain`` documents fields."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

pytestmark = pytest.mark.kube

GROUP, VERSION = "ferry.dev", "v1alpha1"

TASK: dict[str, Any] = {
    "apiVersion": f"{GROUP}/{VERSION}",
    "kind": "SyncTask",
    "metadata": {"name": "orders"},
    "spec": {
        "source": {"connectorRef": {"name": "shop-db"}, "include": ["shop.order_*"]},
        "sink": {"connectorRef": {"name": "events"}, "kafka": {"topic": "ferry.{table}"}},
    },
}
MYSQL_CONNECTOR: dict[str, Any] = {
    "apiVersion": f"{GROUP}/{VERSION}",
    "kind": "Connector",
    "metadata": {"name": "shop-db"},
    "spec": {
        "type": "mysql",
        "mysql": {
            "host": "db",
            "user": "ferry",
            "passwordSecretRef": {"name": "shop-db", "key": "password"},
        },
    },
}
KAFKA_CONNECTOR: dict[str, Any] = {
    "apiVersion": f"{GROUP}/{VERSION}",
    "kind": "Connector",
    "metadata": {"name": "events"},
    "spec": {"type": "kafka", "kafka": {"bootstrapServers": "kafka:9092"}},
}
TEMPLATE: dict[str, Any] = {
    "apiVersion": f"{GROUP}/{VERSION}",
    "kind": "TaskTemplate",
    "metadata": {"name": "defaults"},
    "spec": {"template": {"delivery": "at-least-once", "performance": {"batchSize": 100}}},
}


def _spec(**changes: Any) -> Callable[[dict[str, Any]], None]:
    def edit(obj: dict[str, Any]) -> None:
        for path, value in changes.items():
            node = obj
            *parents, last = path.split("__")
            for key in parents:
                node = node.setdefault(key, {})
            if value is None:
                node.pop(last, None)
            else:
                node[last] = value

    return edit


# (case id, base object, edit, substrings the API server's message must hold)
INVALID: list[tuple[str, dict[str, Any], Callable[[dict[str, Any]], None], list[str]]] = [
    (
        "log-level-unknown",
        TASK,
        _spec(spec__logLevel="LOUD"),
        ["spec.logLevel", "Unsupported value", "DEBUG"],
    ),
    (
        "log-format-unknown",
        TASK,
        _spec(spec__logFormat="xml"),
        ["spec.logFormat", "Unsupported value", "json"],
    ),
    (
        "no-source",
        TASK,
        _spec(spec__source=None),
        ["spec.source: Invalid value", "spec.source.connectorRef is required"],
    ),
    (
        "two-sinks",
        TASK,
        _spec(spec__sink__mysql={"database": "x"}),
        ["spec.sink", "only one of sink.kafka and sink.mysql"],
    ),
    (
        "no-sink-kind",
        TASK,
        _spec(spec__sink__kafka=None),
        ["spec.sink: Invalid value", "spec.sink needs exactly one of kafka and mysql"],
    ),
    (
        "position-file-without-pos",
        TASK,
        _spec(spec__startPosition={"file": "binlog.000001"}),
        ["spec.startPosition", "file and pos go together"],
    ),
    (
        "position-two-kinds",
        TASK,
        _spec(spec__startPosition={"gtid": "0-1-5", "at": "latest"}),
        ["spec.startPosition", "exactly one of"],
    ),
    (
        "position-keyword-unknown",
        TASK,
        _spec(spec__startPosition={"at": "middle"}),
        ["spec.startPosition.at", "Unsupported value"],
    ),
    (
        "position-pos-too-small",
        TASK,
        _spec(spec__startPosition={"file": "binlog.000001", "pos": 1}),
        ["spec.startPosition.pos"],
    ),
    ("unknown-field", TASK, _spec(spec__colour="red"), ['unknown field "spec.colour"']),
    (
        "negative-batch-size",
        TASK,
        _spec(spec__performance={"batchSize": -5}),
        ["spec.performance.batchSize"],
    ),
    (
        "empty-include",
        TASK,
        _spec(spec__source={"connectorRef": {"name": "db"}, "include": []}),
        ["spec.source.include"],
    ),
    (
        "include-not-database-table",
        TASK,
        _spec(spec__source={"connectorRef": {"name": "db"}, "include": ["orders"]}),
        ["spec.source.include[0]", "source.include entries must be a database.table glob"],
    ),
    (
        "resume-at-not-a-time",
        TASK,
        _spec(spec__paused=True, spec__resumeAt="tomorrow morning"),
        ["spec.resumeAt"],
    ),
    (
        "resume-at-without-paused",
        TASK,
        _spec(spec__resumeAt="2030-01-01T00:00:00Z"),
        ["spec.resumeAt: Invalid value", "spec.resumeAt needs spec.paused: true"],
    ),
    ("bad-mode", TASK, _spec(spec__mode="mirror"), ["spec.mode", "Unsupported value"]),
    (
        "bad-delivery",
        TASK,
        _spec(spec__delivery="exactly-twice"),
        ["spec.delivery", "Unsupported value"],
    ),
    (
        "bad-kafka-format",
        TASK,
        _spec(spec__sink__kafka={"format": "protobuf"}),
        ["spec.sink.kafka.format"],
    ),
    (
        "bad-avro-subject-strategy",
        TASK,
        _spec(spec__sink__kafka={"format": "avro", "avro": {"subjectStrategy": "topic"}}),
        ["spec.sink.kafka.avro.subjectStrategy", "Unsupported value"],
    ),
    (
        "avro-settings-without-avro-format",
        TASK,
        _spec(spec__sink__kafka={"avro": {"subjectStrategy": "recordName"}}),
        ["spec.sink.kafka.avro", "needs sink.kafka.format avro"],
    ),
    (
        "dead-letter-without-topic",
        TASK,
        _spec(spec__errorPolicy={"mode": "deadLetter"}),
        ["spec.errorPolicy", "deadLetterTopic is required"],
    ),
    (
        "bad-duration",
        TASK,
        _spec(spec__performance={"maxBatchDelay": "fast"}),
        ["spec.performance.maxBatchDelay", "a number and a unit ms, s, m or h"],
    ),
    (
        "history-limit-zero",
        TASK,
        _spec(spec__revisionHistoryLimit=0),
        ["spec.revisionHistoryLimit"],
    ),
    (
        "reset-without-nonce",
        TASK,
        _spec(spec__resetPosition={"to": {"at": "earliest"}}),
        ["spec.resetPosition.nonce", "Required value"],
    ),
    (
        "snapshot-with-start-position",
        TASK,
        _spec(spec__mode="snapshot", spec__startPosition={"at": "latest"}),
        ["spec.startPosition: Invalid value", "does not apply to mode snapshot"],
    ),
    (
        "connector-type-without-block",
        MYSQL_CONNECTOR,
        _spec(spec__type="kafka"),
        ["spec", "set exactly the block matching type"],
    ),
    (
        "connector-port-out-of-range",
        MYSQL_CONNECTOR,
        _spec(spec__mysql__port=70000),
        ["spec.mysql.port"],
    ),
    (
        "connector-no-password-ref",
        MYSQL_CONNECTOR,
        _spec(spec__mysql__passwordSecretRef=None),
        ["spec.mysql.passwordSecretRef", "Required value"],
    ),
    (
        "kafka-bad-bootstrap",
        KAFKA_CONNECTOR,
        _spec(spec__kafka__bootstrapServers="kafka"),
        ["spec.kafka.bootstrapServers", "must be host:port pairs separated by commas"],
    ),
    (
        "template-unknown-field",
        TEMPLATE,
        _spec(spec__template__paused=True),
        ['unknown field "spec.template.paused"'],
    ),
    # ------------------------------------------------ issue 11: every field reviewed
    (
        "position-file-is-a-path",
        TASK,
        _spec(spec__startPosition={"file": "../etc/passwd", "pos": 4}),
        ["spec.startPosition.file", "a binlog file name such as binlog.000042", "never a path"],
    ),
    (
        "position-file-absolute-path",
        TASK,
        _spec(spec__startPosition={"file": "/var/lib/mysql/binlog.000001", "pos": 4}),
        ["spec.startPosition.file", "never a path"],
    ),
    (
        "position-gtid-not-a-gtid",
        TASK,
        _spec(spec__startPosition={"gtid": "abc"}),
        ["spec.startPosition.gtid", "MariaDB GTID position (domain-server-sequence"],
    ),
    (
        "position-gtid-mysql-uuid-without-interval",
        TASK,
        _spec(spec__startPosition={"gtid": "3e11fa47-71ca-11e1-9e33-c80aa9429562"}),
        ["spec.startPosition.gtid", "MySQL GTID set (uuid:interval"],
    ),
    (
        "reset-gtid-two-parts",
        TASK,
        _spec(spec__resetPosition={"to": {"gtid": "0-1"}, "nonce": "r1"}),
        ["spec.resetPosition.to.gtid", "domain-server-sequence"],
    ),
    (
        "task-name-too-long",
        TASK,
        _spec(metadata__name="o" * 64),
        ["metadata.name: a SyncTask name is at most 63 characters", "ferry.dev/task label"],
    ),
    (
        "topic-unknown-placeholders",
        TASK,
        _spec(spec__sink__kafka={"topic": "ferry.{schema}.{tbl}"}),
        ["spec.sink.kafka.topic", "unknown placeholder", "only {database} and {table}"],
    ),
    (
        "topic-bad-characters",
        TASK,
        _spec(spec__sink__kafka={"topic": "ferry/{table} x"}),
        ["spec.sink.kafka.topic", "may hold only letters, digits, '.', '_', '-'"],
    ),
    (
        "template-topic-unknown-placeholder",
        TEMPLATE,
        _spec(spec__template__sink={"kafka": {"topic": "t.{db}"}}),
        ["spec.template.sink.kafka.topic", "unknown placeholder"],
    ),
    (
        "dead-letter-topic-not-a-topic",
        TASK,
        _spec(spec__errorPolicy={"mode": "deadLetter", "deadLetterTopic": "dlq.{table}"}),
        ["spec.errorPolicy.deadLetterTopic", "must be a Kafka topic name"],
    ),
    (
        "duration-zero",
        TASK,
        _spec(spec__performance={"maxBatchDelay": "0s"}),
        ["spec.performance.maxBatchDelay", "a duration greater than zero"],
    ),
    (
        "restart-max-backoff-below-backoff",
        TASK,
        _spec(spec__restartPolicy={"backoff": "10s", "maxBackoff": "1s"}),
        ["spec.restartPolicy.maxBackoff", "at least restartPolicy.backoff"],
    ),
    (
        "restart-reset-after-not-a-duration",
        TASK,
        _spec(spec__restartPolicy={"resetAfter": "soon"}),
        ["spec.restartPolicy.resetAfter", "a duration greater than zero"],
    ),
    (
        "restart-multiplier-too-large",
        TASK,
        _spec(spec__restartPolicy={"multiplier": 100}),
        ["spec.restartPolicy.multiplier", "less than or equal to 10"],
    ),
    (
        "restart-max-retries-negative",
        TASK,
        _spec(spec__restartPolicy={"maxRetries": -1}),
        ["spec.restartPolicy.maxRetries", "greater than or equal to 0"],
    ),
    (
        "mapping-target-with-backquote",
        TASK,
        _spec(spec__mapping=[{"table": "shop.orders", "target": "o`; DROP"}]),
        ["spec.mapping[0].target"],
    ),
    (
        "mapping-column-too-long",
        TASK,
        _spec(spec__mapping=[{"table": "shop.orders", "columns": {"a": "c" * 65}}]),
        ["spec.mapping[0].columns.a", "64"],
    ),
    (
        "sink-database-too-long",
        TASK,
        _spec(spec__sink={"connectorRef": {"name": "events"}, "mysql": {"database": "d" * 65}}),
        ["spec.sink.mysql.database", "64"],
    ),
    (
        "node-selector-value-too-long",
        TASK,
        _spec(spec__worker={"nodeSelector": {"zone": "z" * 64}}),
        ["spec.worker.nodeSelector.zone", "63"],
    ),
    (
        "resources-not-a-quantity",
        TASK,
        _spec(spec__worker={"resources": {"requests": {"cpu": "lots"}}}),
        [
            "spec.worker.resources.requests[cpu]",
            "worker.resources.requests values must be quantities",
        ],
    ),
    (
        "resources-limit-not-a-quantity",
        TASK,
        _spec(spec__worker={"resources": {"limits": {"memory": "1 GB"}}}),
        [
            "spec.worker.resources.limits[memory]",
            "worker.resources.limits values must be quantities",
        ],
    ),
    (
        "node-selector-value-not-a-label-value",
        TASK,
        _spec(spec__worker={"nodeSelector": {"zone": "eu west"}}),
        ["spec.worker.nodeSelector[zone]", "worker.nodeSelector values must be label values"],
    ),
    (
        "mapping-table-not-a-glob",
        TASK,
        _spec(spec__mapping=[{"table": "orders"}]),
        ["spec.mapping[0].table", "mapping[].table must be a database.table glob"],
    ),
    (
        "mapping-column-with-backquote",
        TASK,
        _spec(spec__mapping=[{"table": "shop.orders", "columns": {"a": "b`c"}}]),
        ["spec.mapping[0].columns[a]", "mapping[].columns values must be a MySQL name"],
    ),
    (
        "mapping-drop-trailing-space",
        TASK,
        _spec(spec__mapping=[{"table": "shop.orders", "drop": ["card_number "]}]),
        ["spec.mapping[0].drop[0]", "mapping[].drop entries must be a MySQL name"],
    ),
    (
        "schedule-four-fields",
        TASK,
        _spec(spec__mode="snapshot", spec__schedule="0 2 * *"),
        ["spec.schedule", "spec.schedule must be a cron expression of 5 fields"],
    ),
    (
        "schedule-hour-out-of-range",
        TASK,
        _spec(spec__mode="snapshot", spec__schedule="0 24 * * *"),
        ["spec.schedule", "hour (0-23)"],
    ),
    (
        "schedule-without-mode-snapshot",
        TASK,
        _spec(spec__schedule="@daily"),
        ["spec.schedule", "spec.schedule needs spec.mode: snapshot"],
    ),
    (
        "time-zone-not-a-zone-name",
        TASK,
        _spec(spec__mode="snapshot", spec__schedule="@daily", spec__timeZone="Europe Berlin"),
        ["spec.timeZone", "spec.timeZone must be an IANA time zone name"],
    ),
    (
        "time-zone-without-schedule",
        TASK,
        _spec(spec__mode="snapshot", spec__timeZone="UTC"),
        ["spec.timeZone", "spec.timeZone needs spec.schedule"],
    ),
    (
        "verify-schedule-not-cron",
        TASK,
        _spec(spec__verifySchedule={"schedule": "0 3 * *"}),
        ["spec.verifySchedule.schedule", "spec.verifySchedule.schedule must be a cron expression"],
    ),
    (
        "verify-schedule-minute-out-of-range",
        TASK,
        _spec(spec__verifySchedule={"schedule": "60 3 * * *"}),
        ["spec.verifySchedule.schedule", "minute (0-59)"],
    ),
    (
        "verify-schedule-without-schedule",
        TASK,
        _spec(spec__verifySchedule={"timeZone": "UTC"}),
        ["spec.verifySchedule.schedule", "Required value"],
    ),
    (
        "verify-schedule-time-zone-not-a-zone-name",
        TASK,
        _spec(spec__verifySchedule={"schedule": "@daily", "timeZone": "Europe Berlin"}),
        ["spec.verifySchedule.timeZone", "spec.verifySchedule.timeZone must be an IANA"],
    ),
    (
        "verify-schedule-repair-with-kafka-sink",
        TASK,
        _spec(spec__verifySchedule={"schedule": "@daily", "repair": True}),
        ["spec.verifySchedule", "spec.verifySchedule.repair needs a MySQL sink"],
    ),
    (
        "verify-schedule-on-a-snapshot-task",
        TASK,
        _spec(spec__mode="snapshot", spec__verifySchedule={"schedule": "@daily"}),
        ["spec.verifySchedule", "spec.verifySchedule needs a streaming task"],
    ),
    (
        "verify-schedule-table-not-a-glob",
        TASK,
        _spec(spec__verifySchedule={"schedule": "@daily", "tables": ["orders"]}),
        ["spec.verifySchedule.tables[0]", "verifySchedule.tables entries must be a database"],
    ),
    (
        "notification-event-unknown",
        TASK,
        _spec(
            spec__notifications=[
                {"on": ["Exploded"], "webhook": {"urlSecretRef": {"name": "hook", "key": "url"}}}
            ]
        ),
        ["spec.notifications[0].on[0]", "Unsupported value"],
    ),
    (
        "notification-without-webhook",
        TASK,
        _spec(spec__notifications=[{"on": ["Failed"]}]),
        ["spec.notifications[0].webhook", "Required value"],
    ),
    (
        "snapshot-request-table-not-a-glob",
        TASK,
        _spec(spec__snapshotRequest={"tables": ["shop"], "nonce": "s1"}),
        ["spec.snapshotRequest.tables[0]", "snapshotRequest.tables entries must be a database"],
    ),
    (
        "image-with-a-space",
        TASK,
        _spec(spec__worker={"image": "ferry worker:1"}),
        ["spec.worker.image"],
    ),
    (
        "connector-ref-not-a-name",
        TASK,
        _spec(spec__source={"connectorRef": {"name": "Shop_DB"}}),
        ["spec.source.connectorRef.name"],
    ),
    (
        "connector-host-with-scheme",
        MYSQL_CONNECTOR,
        _spec(spec__mysql__host="mysql://db:3306"),
        ["spec.mysql.host"],
    ),
    (
        "connector-schema-registry-url-with-credentials",
        KAFKA_CONNECTOR,
        _spec(spec__kafka__schemaRegistry={"url": "https://user:pw@registry:8081"}),
        ["spec.kafka.schemaRegistry.url", "without user info"],
    ),
    (
        "connector-schema-registry-not-a-url",
        KAFKA_CONNECTOR,
        _spec(spec__kafka__schemaRegistry={"url": "registry:8081"}),
        ["spec.kafka.schemaRegistry.url", "http:// or https://"],
    ),
    (
        "connector-secret-key-with-space",
        MYSQL_CONNECTOR,
        _spec(spec__mysql__passwordSecretRef={"name": "shop-db", "key": "pass word"}),
        ["spec.mysql.passwordSecretRef.key"],
    ),
    (
        "connector-tls-mode-unknown",
        MYSQL_CONNECTOR,
        _spec(spec__mysql__tls={"mode": "strict"}),
        ["spec.mysql.tls.mode", "Unsupported value", "verify-identity"],
    ),
    (
        "connector-tls-disabled-with-a-ca",
        MYSQL_CONNECTOR,
        _spec(spec__mysql__tls={"mode": "disabled", "caSecretRef": {"name": "db-ca"}}),
        ["spec.mysql.tls.mode", "disabled and preferred use no certificates"],
    ),
    (
        "kafka-sasl-on-plaintext",
        KAFKA_CONNECTOR,
        _spec(spec__kafka__sasl={"mechanism": "PLAIN", "secretRef": "k"}),
        ["spec.kafka.sasl", "needs securityProtocol SASL_PLAINTEXT or SASL_SSL"],
    ),
    (
        "kafka-sasl-protocol-without-sasl",
        KAFKA_CONNECTOR,
        _spec(spec__kafka__securityProtocol="SASL_SSL"),
        ["spec.kafka.securityProtocol", "need kafka.sasl"],
    ),
    (
        "kafka-tls-on-plaintext",
        KAFKA_CONNECTOR,
        _spec(spec__kafka__tls={"caSecretRef": {"name": "kafka-ca"}}),
        ["spec.kafka.tls", "needs securityProtocol SSL or SASL_SSL"],
    ),
    (
        "kafka-sasl-mechanism-unknown",
        KAFKA_CONNECTOR,
        _spec(
            spec__kafka__securityProtocol="SASL_SSL",
            spec__kafka__sasl={"mechanism": "GSSAPI", "secretRef": "k"},
        ),
        ["spec.kafka.sasl.mechanism", "Unsupported value", "SCRAM-SHA-512"],
    ),
    (
        "snapshot-parallelism-too-large",
        TASK,
        _spec(spec__performance={"snapshotParallelism": 64}),
        ["spec.performance.snapshotParallelism", "less than or equal to 16"],
    ),
]

VALID = [
    ("task", TASK, _spec()),
    ("task-log-debug-json", TASK, _spec(spec__logLevel="DEBUG", spec__logFormat="json")),
    ("task-from-template", TASK, _spec(spec__source=None, spec__templateRef={"name": "defaults"})),
    (
        "task-paused-until",
        TASK,
        _spec(spec__paused=True, spec__resumeAt="2030-01-01T00:00:00Z"),
    ),
    (
        "task-everything",
        TASK,
        _spec(
            spec__startPosition={"file": "binlog.000001", "pos": 4},
            spec__resetPosition={"to": {"at": "earliest"}, "nonce": "r1"},
            spec__restartNonce="n1",
            spec__mapping=[{"table": "shop.orders", "target": "o", "columns": {"a": "b"}}],
            spec__worker={"resources": {"requests": {"cpu": 1, "memory": "1Gi"}}},
            spec__alerts={"lagThreshold": "30s", "errorRateThreshold": 0.05},
            spec__errorPolicy={"mode": "deadLetter", "deadLetterTopic": "dlq"},
        ),
    ),
    (
        "task-gtid-mariadb-list",
        TASK,
        _spec(spec__startPosition={"gtid": "0-1-100, 1-2-7"}),
    ),
    (
        "task-gtid-mysql-set",
        TASK,
        _spec(
            spec__startPosition={
                "gtid": "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7,"
                "4e11fa47-71ca-11e1-9e33-c80aa9429562:tag_a:1-3"
            }
        ),
    ),
    (
        "task-verify-schedule",
        TASK,
        _spec(
            spec__verifySchedule={
                "schedule": "30 3 * * MON-FRI",
                "timeZone": "America/New_York",
                "tables": ["shop.order_*"],
                "chunkSize": 500,
            },
            spec__verifyRequest={"nonce": "v1"},
        ),
    ),
    ("task-name-63", TASK, _spec(metadata__name="o" * 63)),
    (
        "task-restart-policy",
        TASK,
        _spec(
            spec__restartPolicy={
                "maxRetries": 10,
                "resetAfter": "10m",
                "backoff": "1.5s",
                "multiplier": 2,
                "maxBackoff": "5m",
            },
            spec__mapping=[{"table": "shop.o*", "columns": {"a": "b"}, "drop": ["secret"]}],
            spec__worker={"nodeSelector": {"zone": "a"}, "resources": {"limits": {"cpu": "500m"}}},
        ),
    ),
    ("mysql-connector", MYSQL_CONNECTOR, _spec()),
    (
        "mysql-connector-tls",
        MYSQL_CONNECTOR,
        _spec(
            spec__mysql__host="10.0.0.7",
            spec__mysql__tls={
                "mode": "verify-ca",
                "caSecretRef": {"name": "db-ca"},
                "clientCertSecretRef": {"name": "db-client"},
            },
        ),
    ),
    (
        "kafka-connector-sasl-ssl",
        KAFKA_CONNECTOR,
        _spec(
            spec__kafka__securityProtocol="SASL_SSL",
            spec__kafka__sasl={"mechanism": "SCRAM-SHA-512", "secretRef": "kafka-user"},
            spec__kafka__tls={"caSecretRef": {"name": "kafka-ca", "key": "ca.pem"}},
        ),
    ),
    (
        "kafka-connector-mtls",
        KAFKA_CONNECTOR,
        _spec(
            spec__kafka__securityProtocol="SSL",
            spec__kafka__tls={"clientCertSecretRef": {"name": "kafka-client"}},
        ),
    ),
    ("kafka-connector", KAFKA_CONNECTOR, _spec()),
    (
        "kafka-connector-schema-registry",
        KAFKA_CONNECTOR,
        _spec(
            spec__kafka__schemaRegistry={
                "url": "https://registry.kafka:8080/apis/ccompat/v7",
                "secretRef": "registry-user",
            }
        ),
    ),
    (
        "avro-task",
        TASK,
        _spec(spec__sink__kafka={"format": "avro", "avro": {"subjectStrategy": "recordName"}}),
    ),
    ("template", TEMPLATE, _spec()),
]

PLURALS = {"SyncTask": "synctasks", "Connector": "connectors", "TaskTemplate": "tasktemplates"}


def _create(custom: client.CustomObjectsApi, namespace: str, obj: dict[str, Any]) -> Any:
    return custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURALS[obj["kind"]], obj, field_validation="Strict"
    )


def test_there_are_at_least_fifteen_invalid_cases() -> None:
    assert len(INVALID) >= 15


@pytest.mark.parametrize(("case", "base", "edit", "expected"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_manifest_is_refused_naming_the_field(
    custom: client.CustomObjectsApi,
    namespace: str,
    case: str,
    base: dict[str, Any],
    edit: Callable[[dict[str, Any]], None],
    expected: list[str],
) -> None:
    obj = copy.deepcopy(base)
    edit(obj)
    with pytest.raises(ApiException) as refused:
        _create(custom, namespace, obj)
    assert refused.value.status == 422 or (refused.value.status == 400 and case.endswith("field"))
    message = json.loads(refused.value.body)["message"]
    for text in expected:
        assert text in message, f"{text!r} not in {message}"
    # Every refusal says what is allowed, in words, never only a regular expression.
    assert "should match" not in message, message


@pytest.mark.parametrize(("case", "base", "edit"), VALID, ids=[c[0] for c in VALID])
def test_valid_manifest_is_accepted(
    custom: client.CustomObjectsApi,
    namespace: str,
    case: str,
    base: dict[str, Any],
    edit: Callable[[dict[str, Any]], None],
) -> None:
    obj = copy.deepcopy(base)
    edit(obj)
    created = _create(custom, namespace, obj)
    assert created["spec"]["type" if obj["kind"] == "Connector" else next(iter(obj["spec"]))]


def test_connector_defaults_are_filled_in(custom: client.CustomObjectsApi, namespace: str) -> None:
    created = _create(custom, namespace, copy.deepcopy(MYSQL_CONNECTOR))
    assert created["spec"]["mysql"]["port"] == 3306


def test_kubectl_explain_prints_the_description(testenv: Any, ferry_crds: None) -> None:
    result = subprocess.run(
        [testenv.kubectl, "explain", "synctask.spec.resumeAt"],
        env={**os.environ, "KUBECONFIG": str(testenv.kubeconfig)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert "With paused: true, run again from this time on" in " ".join(result.stdout.split())


def test_the_example_applies_cleanly(testenv: Any, namespace: str, ferry_crds: None) -> None:
    example = Path(__file__).resolve().parents[3] / "examples" / "mysql-to-kafka"
    result = subprocess.run(
        [testenv.kubectl, "apply", "-n", namespace, "--validate=strict", "-f", str(example)],
        env={**os.environ, "KUBECONFIG": str(testenv.kubeconfig)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "synctask.ferry.dev/shop-orders created" in result.stdout
    assert "connector.ferry.dev/shop-db created" in result.stdout


def test_the_avro_example_applies_cleanly(testenv: Any, namespace: str, ferry_crds: None) -> None:
    example = Path(__file__).resolve().parents[3] / "examples" / "avro"
    result = subprocess.run(
        [testenv.kubectl, "apply", "-n", namespace, "--validate=strict", "-f", str(example)],
        env={**os.environ, "KUBECONFIG": str(testenv.kubeconfig)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "synctask.ferry.dev/shop-orders-avro created" in result.stdout
    assert "connector.ferry.dev/events-avro created" in result.stdout
