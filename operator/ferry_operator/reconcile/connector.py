"""Reconcile one Connector: observe (read its Secret, probe the endpoint) → decide (Ready and
the message naming what is missing) → act (record status, event on a transition)."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ferry_operator.api.connector import Connector, ConnectorSpec, TLSFiles
from ferry_operator.applier import Applier
from ferry_operator.context import Context
from ferry_operator.kube import Clients, is_not_found
from ferry_operator.reconcile import probe
from ferry_operator.recorder import conditions, record, rfc3339

__all__ = ["BINLOG_READY", "OWNED_STATUS", "decide", "missing_secret", "observe", "reconcile"]

BINLOG_READY = "BinlogReady"
OWNED_STATUS = {"observedGeneration", "conditions", "server", "lastProbeTime", "secretVersions"}


@dataclass(frozen=True)
class Observed:
    connector: dict[str, Any]
    result: probe.ProbeResult
    now: datetime
    secret_versions: dict[str, str] = field(default_factory=dict)


class _Missing(Exception):
    """A referenced Secret or key does not exist; ``result`` says which (SecretNotFound,
    or SecretKeyNotFound naming the keys present)."""

    def __init__(self, result: probe.ProbeResult) -> None:
        super().__init__(*result.missing)
        self.result = result


class _Secrets:
    """The Connector's Secrets, each read once per probe; remembers their resourceVersions
    (recorded in status: a change rolls the workers, which never needs their data)."""

    def __init__(self, clients: Clients, namespace: str) -> None:
        self.clients, self.namespace = clients, namespace
        self.versions: dict[str, str] = {}
        self._data: dict[str, dict[str, str] | None] = {}

    def value(self, name: str, key: str, field: str) -> str:
        if name not in self._data:
            try:
                secret = self.clients.core.read_namespaced_secret(name, self.namespace)
            except Exception as error:
                if not is_not_found(error):
                    raise
                secret = None
            self._data[name] = None if secret is None else dict(secret.data or {})
            if secret is not None:
                self.versions[name] = str(secret.metadata.resource_version)
        data = self._data[name]
        missing = missing_secret(field, name, key, data)
        if missing is not None:
            raise _Missing(missing)
        assert data is not None  # missing_secret says when it is None
        return base64.b64decode(data[key]).decode()


def _tls(secrets: _Secrets, tls: TLSFiles | None, mode: str, field: str) -> probe.ProbeTLS | None:
    """The TLS material of ``tls`` read from its Secrets (PEM), for the probe."""
    if tls is None:
        return None
    ca_pem = cert_pem = key_pem = None
    ca_source = "the system CAs"
    if tls.ca_secret_ref is not None:
        ref = tls.ca_secret_ref
        ca_pem = secrets.value(ref.name, ref.key, f"{field}.caSecretRef")
        ca_source = f"{field}.caSecretRef (Secret {ref.name!r} key {ref.key!r})"
    if tls.client_cert_secret_ref is not None:
        name = tls.client_cert_secret_ref.name
        where = f"{field}.clientCertSecretRef"
        cert_pem = secrets.value(name, "tls.crt", where)
        key_pem = secrets.value(name, "tls.key", where)
    return probe.ProbeTLS(mode, ca_pem, cert_pem, key_pem, ca_source)


def _probe(secrets: _Secrets, spec: ConnectorSpec) -> probe.ProbeResult:
    if spec.mysql is not None:
        mysql = spec.mysql
        ref = mysql.password_secret_ref
        password = secrets.value(ref.name, ref.key, "spec.mysql.passwordSecretRef")
        tls = mysql.tls
        material = _tls(secrets, tls, tls.mode if tls else "disabled", "spec.mysql.tls")
        return probe.probe_mysql(mysql.host, mysql.port, mysql.user, password, material)
    kafka = spec.kafka
    assert kafka is not None
    settings: dict[str, str] = {"security.protocol": kafka.security_protocol}
    if kafka.sasl is not None:
        secret, field = kafka.sasl.secret_ref, "spec.kafka.sasl.secretRef"
        settings |= {
            "sasl.mechanism": kafka.sasl.mechanism,
            "sasl.username": secrets.value(secret, "username", field),
            "sasl.password": secrets.value(secret, "password", field),
        }
    registry = kafka.schema_registry
    if registry is not None and registry.secret_ref is not None:
        # Read so that a missing Secret or key shows here and a change rolls the workers
        # (secretVersions); the workers send them as HTTP basic auth.
        field = "spec.kafka.schemaRegistry.secretRef"
        secrets.value(registry.secret_ref, "username", field)
        secrets.value(registry.secret_ref, "password", field)
    material = None
    if kafka.security_protocol.endswith("SSL"):
        material = _tls(secrets, kafka.tls, "verify-identity", "spec.kafka.tls")
    return probe.probe_kafka(kafka.bootstrap_servers, settings, material)


def missing_secret(
    where: str, name: str, key: str, data: dict[str, str] | None
) -> probe.ProbeResult | None:
    """Why ``key`` of Secret ``name`` cannot be used (pure): the Secret is missing
    (SecretNotFound), or it lacks the key — then the keys it has are named, never a value
    (SecretKeyNotFound); None when the key is there."""
    if data is None:
        return probe.ProbeResult([f"{where}: Secret {name!r} not found"], "SecretNotFound")
    if key in data:
        return None
    has = ", ".join(sorted(data)) or "no keys"
    return probe.ProbeResult(
        [f"{where}: Secret {name!r} has no key {key!r} (it has: {has})"], "SecretKeyNotFound"
    )


def observe(ctx: Context, clients: Clients, body: dict[str, Any]) -> Observed:
    spec = Connector.model_validate(body).spec
    now = datetime.now(UTC)
    secrets = _Secrets(clients, ctx.namespace)
    try:
        result = _probe(secrets, spec)
    except _Missing as missing:
        result = missing.result
    return Observed(body, result, now, secrets.versions)


def decide(observed: Observed) -> dict[str, Any]:
    """The operator-owned status fields. ``Ready``: usable at all (a sink needs no more);
    ``BinlogReady`` (MySQL): its binlog can be read, which a source needs too."""
    result = observed.result
    wanted = {
        "Ready": (
            ("True", "Ready", "the endpoint is reachable and the credentials work")
            if not result.missing
            else ("False", result.reason, "; ".join(result.missing))
        )
    }
    if (observed.connector.get("spec") or {}).get("mysql") is not None:
        wanted[BINLOG_READY] = (
            ("Unknown", "NotProbed", "the endpoint could not be probed")
            if result.missing
            else ("True", "Ready", "the binlog can be read: a source as well as a sink")
            if not result.source_missing
            else ("False", result.source_reason, "; ".join(result.source_missing))
        )
    previous = (observed.connector.get("status") or {}).get("conditions")
    generation = observed.connector["metadata"].get("generation")
    return {
        "observedGeneration": generation,
        "conditions": conditions(wanted, previous, generation, observed.now),
        "server": result.server or None,
        "lastProbeTime": rfc3339(observed.now),
        "secretVersions": dict(sorted(observed.secret_versions.items())) or None,
    }


def _states(conditions: list[dict[str, Any]]) -> dict[str, tuple[Any, Any]]:
    return {str(c.get("type")): (c.get("status"), c.get("message")) for c in conditions}


def reconcile(
    ctx: Context, clients: Clients, applier: Applier, body: dict[str, Any]
) -> tuple[bool, str, str, bool]:
    """observe → decide → act. Returns (ok, reason, message, transitioned) of the first
    condition that changed (Ready before BinlogReady), else of Ready."""
    observed = observe(ctx, clients, body)
    fields = decide(observed)
    before = _states((observed.connector.get("status") or {}).get("conditions") or [])
    # lastProbeTime alone is not a change worth a write: compare without it.
    compared = OWNED_STATUS - {"lastProbeTime"}
    current = observed.connector.get("status") or {}
    before_fields = {k: v for k, v in current.items() if k in compared and v is not None}
    after_fields = {k: v for k, v in fields.items() if k in compared and v is not None}
    if before_fields != after_fields:
        record(ctx, applier, observed.connector, fields, OWNED_STATUS)
    changed = [
        c for c in fields["conditions"] if before.get(c["type"]) != (c["status"], c["message"])
    ]
    shown = changed[0] if changed else fields["conditions"][0]
    return shown["status"] == "True", shown["reason"], shown["message"], bool(changed)
