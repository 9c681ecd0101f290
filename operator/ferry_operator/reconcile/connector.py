"""Reconcile one Connector: observe (read its Secret, probe the endpoint) → decide (Ready and
the message naming what is missing) → act (record status, event on a transition)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ferry_operator.api.connector import Connector
from ferry_operator.applier import Applier
from ferry_operator.context import Context
from ferry_operator.kube import Clients, is_not_found
from ferry_operator.reconcile import probe
from ferry_operator.recorder import conditions, record, rfc3339

__all__ = ["BINLOG_READY", "OWNED_STATUS", "decide", "missing_secret", "observe", "reconcile"]

BINLOG_READY = "BinlogReady"
OWNED_STATUS = {"observedGeneration", "conditions", "server", "lastProbeTime"}


@dataclass(frozen=True)
class Observed:
    connector: dict[str, Any]
    result: probe.ProbeResult
    now: datetime


def _read_secret(clients: Clients, namespace: str, name: str) -> dict[str, str] | None:
    """The Secret's data (base64 values), None when it does not exist."""
    try:
        secret = clients.core.read_namespaced_secret(name, namespace)
    except Exception as error:
        if is_not_found(error):
            return None
        raise
    return dict(secret.data or {})


def _secret_value(clients: Clients, namespace: str, name: str, key: str) -> str | None:
    value = (_read_secret(clients, namespace, name) or {}).get(key)
    return base64.b64decode(value).decode() if value is not None else None


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
    if spec.mysql is not None:
        ref = spec.mysql.password_secret_ref
        data = _read_secret(clients, ctx.namespace, ref.name)
        missing = missing_secret("spec.mysql.passwordSecretRef", ref.name, ref.key, data)
        if missing is not None:
            result = missing
        else:
            assert data is not None  # missing_secret says when it is None
            password = base64.b64decode(data[ref.key]).decode()
            result = probe.probe_mysql(spec.mysql.host, spec.mysql.port, spec.mysql.user, password)
    else:
        assert spec.kafka is not None
        settings: dict[str, str] = {"security.protocol": spec.kafka.security_protocol}
        if spec.kafka.sasl is not None:
            user = _secret_value(clients, ctx.namespace, spec.kafka.sasl.secret_ref, "username")
            secret = _secret_value(clients, ctx.namespace, spec.kafka.sasl.secret_ref, "password")
            settings |= {
                "sasl.mechanism": spec.kafka.sasl.mechanism,
                "sasl.username": user or "",
                "sasl.password": secret or "",
            }
        result = probe.probe_kafka(spec.kafka.bootstrap_servers, settings)
    return Observed(body, result, now)


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
