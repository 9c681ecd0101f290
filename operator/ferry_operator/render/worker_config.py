"""Render the WorkerConfig (the worker's contract, ferry_runtime.config) from a SyncTask, its
TaskTemplate and its Connectors, all as parsed models. ``ferry run`` uses the same function.

Passwords are never rendered: the config names environment variables (:data:`SOURCE_PASSWORD`
…) that the Deployment fills from the Connectors' Secrets (:func:`secret_env`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ferry_operator.api.connector import Connector, ConnectorSpec, TLSFiles
from ferry_operator.api.synctask import SyncTask, SyncTaskSpec
from ferry_operator.api.tasktemplate import TaskTemplate
from ferry_operator.render import kafka_settings
from ferry_operator.render.errors import ConnectorNotFound, ConnectorTypeMismatch, InvalidSpec
from ferry_operator.render.merge import deep_merge
from ferry_runtime.config import WorkerConfig

__all__ = [
    "SCHEMA_REGISTRY_PASSWORD",
    "SCHEMA_REGISTRY_USERNAME",
    "SINK_PASSWORD",
    "SINK_SASL_PASSWORD",
    "SINK_SASL_USERNAME",
    "SOURCE_PASSWORD",
    "TLS_DIR",
    "SecretEnv",
    "SecretVolume",
    "config_hash",
    "effective_spec",
    "render_worker_config",
    "secret_env",
    "secret_volumes",
    "secrets_hash",
    "stored_spec",
]

SOURCE_PASSWORD = "FERRY_SOURCE_PASSWORD"
SINK_PASSWORD = "FERRY_SINK_PASSWORD"
SINK_SASL_USERNAME = "FERRY_SINK_SASL_USERNAME"
SINK_SASL_PASSWORD = "FERRY_SINK_SASL_PASSWORD"
SCHEMA_REGISTRY_USERNAME = "FERRY_SCHEMA_REGISTRY_USERNAME"
SCHEMA_REGISTRY_PASSWORD = "FERRY_SCHEMA_REGISTRY_PASSWORD"
# Fields that steer the worker's lifecycle, not its config: left out of the stored spec.
LIFECYCLE_FIELDS = ("paused", "resumeAt", "restartNonce")

SecretEnv = tuple[str, str, str]  # (environment variable, Secret name, key)
# Certificates and keys: Secret volumes under here (not under the ConfigMap's /etc/ferry).
TLS_DIR = "/etc/ferry-tls"
CA_FILE, CERT_FILE, KEY_FILE = "ca.crt", "tls.crt", "tls.key"


@dataclass(frozen=True)
class SecretVolume:
    """A Secret mounted into the worker: ``items`` are (key, file name) pairs."""

    name: str
    secret: str
    items: tuple[tuple[str, str], ...]
    mount_path: str


def _tls_volumes(role: str, tls: TLSFiles | None, tls_dir: str) -> list[SecretVolume]:
    """The Secret volumes for one client (role: source or sink)."""
    out: list[SecretVolume] = []
    if tls is None:
        return out
    if tls.ca_secret_ref is not None:
        ref = tls.ca_secret_ref
        out.append(
            SecretVolume(f"{role}-ca", ref.name, ((ref.key, CA_FILE),), f"{tls_dir}/{role}/ca")
        )
    if tls.client_cert_secret_ref is not None:
        out.append(
            SecretVolume(
                f"{role}-client",
                tls.client_cert_secret_ref.name,
                ((CERT_FILE, CERT_FILE), (KEY_FILE, KEY_FILE)),
                f"{tls_dir}/{role}/client",
            )
        )
    return out


def _tls_config(role: str, tls: TLSFiles | None, mode: str, tls_dir: str) -> dict[str, Any]:
    """The worker config's tls block for one client: the mode and file paths, no content."""
    out: dict[str, Any] = {"mode": mode}
    if tls is not None and tls.ca_secret_ref is not None:
        out["caFile"] = f"{tls_dir}/{role}/ca/{CA_FILE}"
    if tls is not None and tls.client_cert_secret_ref is not None:
        out["certFile"] = f"{tls_dir}/{role}/client/{CERT_FILE}"
        out["keyFile"] = f"{tls_dir}/{role}/client/{KEY_FILE}"
    return out


def _mysql_tls(role: str, endpoint: Any, tls_dir: str) -> dict[str, Any]:
    tls = endpoint.tls
    return {} if tls is None else {"tls": _tls_config(role, tls, tls.mode, tls_dir)}


def _kafka_tls(kafka: Any, tls_dir: str) -> dict[str, Any]:
    if not kafka.security_protocol.endswith("SSL") or kafka.tls is None:
        return {}
    return {"tls": _tls_config("sink", kafka.tls, "verify-identity", tls_dir)}


def effective_spec(task: SyncTask, template: TaskTemplate | None) -> SyncTaskSpec:
    """TaskTemplate ⊕ SyncTask (the task wins; maps merge deeply)."""
    own = task.spec.model_dump(by_alias=True, exclude_none=True)
    shared = template.spec.template.model_dump(by_alias=True, exclude_none=True) if template else {}
    return SyncTaskSpec.model_validate(deep_merge(shared, own))


def _connector(
    connectors: Mapping[str, Connector], name: str | None, where: str, kind: str
) -> ConnectorSpec:
    if name is None:
        raise InvalidSpec(f"{where}.connectorRef is required")
    found = connectors.get(name)
    if found is None:
        raise ConnectorNotFound(f"{where}.connectorRef: Connector {name!r} not found", name)
    if found.spec.type != kind:
        raise ConnectorTypeMismatch(
            f"{where}.connectorRef: Connector {name!r} is of type {found.spec.type}, "
            f"this needs type {kind}"
        )
    return found.spec


def _server_id(key: str) -> int:
    """A replica server id that is stable for the task and unlikely to collide."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % (2**31 - 2) + 2


def _schema_registry(kafka: Any, connector: str | None) -> dict[str, Any]:
    """The registry of format avro, from the sink Connector; credentials as env names."""
    registry = kafka.schema_registry
    if registry is None:
        raise InvalidSpec(
            f"spec.sink.kafka.format avro needs a schema registry: set spec.kafka.schemaRegistry "
            f"(url, secretRef) on the sink Connector {connector!r}"
        )
    out: dict[str, Any] = {"url": registry.url}
    if registry.secret_ref is not None:
        out |= {"usernameEnv": SCHEMA_REGISTRY_USERNAME, "passwordEnv": SCHEMA_REGISTRY_PASSWORD}
    return out


def _sink(spec: SyncTaskSpec, connectors: Mapping[str, Connector], tls_dir: str) -> dict[str, Any]:
    sink = spec.sink
    if sink is None or (sink.kafka is None) == (sink.mysql is None):
        raise InvalidSpec("spec.sink needs exactly one of kafka and mysql")
    name = sink.connector_ref.name if sink.connector_ref else None
    if sink.kafka is not None:
        kafka = _connector(connectors, name, "spec.sink", "kafka").kafka
        assert kafka is not None  # admission guarantees the block matches the type
        out: dict[str, Any] = {
            "bootstrapServers": kafka.bootstrap_servers,
            "securityProtocol": kafka.security_protocol,
            **_kafka_tls(kafka, tls_dir),
            **sink.kafka.model_dump(
                by_alias=True, exclude_none=True, exclude={"producer", "topics"}
            ),
            **kafka_settings.worker_settings(kafka, sink.kafka),
        }
        if kafka.sasl is not None:
            out |= {
                "saslMechanism": kafka.sasl.mechanism,
                "saslUsernameEnv": SINK_SASL_USERNAME,
                "saslPasswordEnv": SINK_SASL_PASSWORD,
            }
        if sink.kafka.format == "avro":
            out["schemaRegistry"] = _schema_registry(kafka, name)
        return {"kafka": out}
    mysql = _connector(connectors, name, "spec.sink", "mysql").mysql
    assert mysql is not None and sink.mysql is not None
    return {
        "mysql": {
            "host": mysql.host,
            "port": mysql.port,
            "user": mysql.user,
            "passwordEnv": SINK_PASSWORD,
            **_mysql_tls("sink", mysql, tls_dir),
            **sink.mysql.model_dump(by_alias=True, exclude_none=True),
        }
    }


def render_worker_config(
    task: SyncTask,
    connectors: Mapping[str, Connector],
    template: TaskTemplate | None = None,
    *,
    report_to_kubernetes: bool = True,
    reporting_port: int = 8080,
    tls_dir: str = TLS_DIR,
) -> WorkerConfig:
    """The worker config for ``task``; raises a RenderError subclass naming the field.
    Certificate paths are under ``tls_dir`` (where :func:`secret_volumes` puts them)."""
    spec = effective_spec(task, template)
    meta = task.metadata
    source_ref = (
        spec.source.connector_ref.name if spec.source and spec.source.connector_ref else None
    )
    source = _connector(connectors, source_ref, "spec.source", "mysql").mysql
    assert source is not None
    identity_key = meta.uid or f"{meta.namespace}/{meta.name}"
    dumped = spec.model_dump(by_alias=True, exclude_none=True)
    data: dict[str, Any] = {
        "task": {"name": meta.name, "namespace": meta.namespace, "uid": meta.uid},
        "source": {
            "host": source.host,
            "port": source.port,
            "user": source.user,
            "passwordEnv": SOURCE_PASSWORD,
            "serverId": (spec.source and spec.source.server_id) or _server_id(identity_key),
            **_mysql_tls("source", source, tls_dir),
        },
        "sink": _sink(spec, connectors, tls_dir),
        "reporting": {"port": reporting_port},
    }
    for key in ("include", "exclude"):
        if key in dumped.get("source", {}):
            data[key] = dumped["source"][key]
    for key in (
        "mapping",
        "mode",
        "delivery",
        "performance",
        "restartPolicy",
        "errorPolicy",
        "onPositionUnavailable",
        "heartbeat",
        "snapshotNewTables",
        "logLevel",
        "logFormat",
    ):
        if key in dumped:
            data[key] = dumped[key]
    if spec.start_position is not None:
        data["startPosition"] = spec.start_position.to_worker()
    if spec.reset_position is not None:
        data["resetPosition"] = {
            "to": spec.reset_position.to.to_worker(),
            "nonce": spec.reset_position.nonce,
        }
    if spec.snapshot_request is not None:
        data["snapshotRequest"] = dumped["snapshotRequest"]
    if spec.skip_event is not None:
        data["skipEvent"] = {
            "position": spec.skip_event.position.to_worker(),
            "nonce": spec.skip_event.nonce,
        }
    if spec.verify_request is not None:
        data["verifyRequest"] = spec.verify_request.to_worker()
    if report_to_kubernetes:
        data["reporting"]["kubernetes"] = {"namespace": meta.namespace, "name": meta.name}
    try:
        return WorkerConfig.model_validate(data)
    except ValidationError as error:
        raise InvalidSpec(_explain(error)) from None


def _explain(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"] if not str(p).startswith("function-"))
        parts.append(f"{where}: {item['msg']}")
    return "the rendered worker config is invalid: " + "; ".join(parts)


def config_hash(config: WorkerConfig) -> str:
    """A short, stable hash of the rendered config: a new revision exactly when it changes."""
    return hashlib.sha256(config.to_yaml().encode()).hexdigest()[:16]


def stored_spec(spec: SyncTaskSpec) -> dict[str, Any]:
    """The effective spec as kept in a revision (lifecycle fields left out)."""
    dumped = spec.model_dump(by_alias=True, exclude_none=True)
    return {k: v for k, v in dumped.items() if k not in LIFECYCLE_FIELDS}


def secret_env(spec: SyncTaskSpec, connectors: Mapping[str, Connector]) -> list[SecretEnv]:
    """The environment variables the worker reads credentials from, and their Secret keys."""
    out: list[SecretEnv] = []
    if spec.source and spec.source.connector_ref:
        found = connectors.get(spec.source.connector_ref.name)
        if found and found.spec.mysql:
            ref = found.spec.mysql.password_secret_ref
            out.append((SOURCE_PASSWORD, ref.name, ref.key))
    if spec.sink and spec.sink.connector_ref:
        found = connectors.get(spec.sink.connector_ref.name)
        if found and found.spec.mysql:
            ref = found.spec.mysql.password_secret_ref
            out.append((SINK_PASSWORD, ref.name, ref.key))
        if found and found.spec.kafka and found.spec.kafka.sasl:
            secret = found.spec.kafka.sasl.secret_ref
            out += [
                (SINK_SASL_USERNAME, secret, "username"),
                (SINK_SASL_PASSWORD, secret, "password"),
            ]
        registry = found.spec.kafka.schema_registry if found and found.spec.kafka else None
        avro = spec.sink.kafka is not None and spec.sink.kafka.format == "avro"
        if avro and registry is not None and registry.secret_ref is not None:
            out += [
                (SCHEMA_REGISTRY_USERNAME, registry.secret_ref, "username"),
                (SCHEMA_REGISTRY_PASSWORD, registry.secret_ref, "password"),
            ]
    return out


def secret_volumes(
    spec: SyncTaskSpec, connectors: Mapping[str, Connector], tls_dir: str = TLS_DIR
) -> list[SecretVolume]:
    """The Secrets the worker mounts as files under ``tls_dir``: CA bundles and client
    certificates (the config names the paths; the content never enters a ConfigMap)."""
    out: list[SecretVolume] = []
    if spec.source and spec.source.connector_ref:
        found = connectors.get(spec.source.connector_ref.name)
        if found and found.spec.mysql:
            out += _tls_volumes("source", found.spec.mysql.tls, tls_dir)
    if spec.sink and spec.sink.connector_ref:
        found = connectors.get(spec.sink.connector_ref.name)
        if found and found.spec.mysql:
            out += _tls_volumes("sink", found.spec.mysql.tls, tls_dir)
        if found and found.spec.kafka and found.spec.kafka.security_protocol.endswith("SSL"):
            out += _tls_volumes("sink", found.spec.kafka.tls, tls_dir)
    return out


def secrets_hash(
    spec: SyncTaskSpec, secret_versions: Mapping[str, Mapping[str, str] | None]
) -> str | None:
    """A short hash of the resourceVersions of the Secrets the task's Connectors use
    (``secret_versions``: Connector name → its status.secretVersions), None when none is
    known. In the pod template it rolls the worker when a credential or certificate changes;
    it is made of versions only, never of Secret data."""
    used = [
        ref.name
        for part in (spec.source, spec.sink)
        if part is not None and (ref := part.connector_ref) is not None
    ]
    pairs = sorted(
        f"{connector}/{secret}={version}"
        for connector in set(used)
        for secret, version in (secret_versions.get(connector) or {}).items()
    )
    if not pairs:
        return None
    return hashlib.sha256("\n".join(pairs).encode()).hexdigest()[:16]
