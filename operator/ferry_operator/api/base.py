"""Building blocks shared by the API models: the strict base model, references, positions,
durations and conditions.

Every field carries a description: the CRD generator copies it into the OpenAPI schema, so
``kubectl explain`` documents it. Cross-field rules are CEL (``x-kubernetes-validations``)
attached with :func:`cel`, so the API server refuses a bad manifest before any code runs.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

__all__ = [
    "BINLOG_FILE_PATTERN",
    "DNS_SUBDOMAIN",
    "DURATION_PATTERN",
    "GTID_MARIADB_PATTERN",
    "GTID_MYSQL_PATTERN",
    "HOST_PATTERN",
    "SECRET_KEY",
    "Condition",
    "ConnectorRef",
    "LocalObjectRef",
    "Model",
    "ObjectMeta",
    "Position",
    "Resource",
    "SecretKeyRef",
    "SecretRef",
    "cel",
    "duration_field",
    "matches",
    "must_match",
    "positive_duration",
]

# Same grammar as ferry_runtime.config.parse_duration: 500ms, 10s, 5m, 1h (all also Go
# durations, so CEL's duration() reads them for cross-field rules).
DURATION_PATTERN = r"^[0-9]+(\.[0-9]+)?(ms|s|m|h)$"
# An object name (RFC 1123 subdomain), as the API server requires of what a reference names.
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# A host name (RFC 1123) or an IPv4/IPv6 address: no scheme, no port, no path.
_HOST_LABEL = r"[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?"
HOST_PATTERN = rf"^({_HOST_LABEL}(\.{_HOST_LABEL})*\.?|[0-9a-fA-F:.]*:[0-9a-fA-F:.]*)$"
# A key of a Secret's data.
SECRET_KEY = r"^[-._a-zA-Z0-9]+$"
# A binlog file: the server's base name and a numeric extension (binlog.000042); never a path.
BINLOG_FILE_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\.[0-9]{6,}$"
# MariaDB GTID position: domain-server-sequence, one per domain, comma-separated.
_MARIADB_ENTRY = r"[0-9]{1,10}-[0-9]{1,10}-[0-9]{1,20}"
GTID_MARIADB_PATTERN = rf"^{_MARIADB_ENTRY}(,\s*{_MARIADB_ENTRY})*$"
# MySQL GTID set: uuid, then intervals (1-5) and, since 8.3, tags: uuid:tag:1-5:7[,uuid:…].
_UUID = r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}"
_MYSQL_ENTRY = rf"{_UUID}(:([0-9]+(-[0-9]+)?|[A-Za-z_][A-Za-z0-9_]{{0,31}}))*:[0-9]+(-[0-9]+)?"
GTID_MYSQL_PATTERN = rf"^{_MYSQL_ENTRY}(,\s*{_MYSQL_ENTRY})*$"


def cel(*rules: tuple[str, str] | tuple[str, str, str]) -> dict[str, Any]:
    """``json_schema_extra`` holding CEL rules as (rule, message[, fieldPath]) tuples; the
    fieldPath makes the API server's error name the field rather than its parent."""
    validations: list[dict[str, Any]] = []
    for rule, message, *field_path in rules:
        entry = {"rule": rule, "message": message}
        if field_path:
            entry["fieldPath"] = field_path[0]
        validations.append(entry)
    return {"x-kubernetes-validations": validations}


def matches(pattern: str, on: str = "self") -> str:
    """CEL: ``on`` matches ``pattern`` (a raw CEL string, so backslashes stay as written)."""
    assert "'" not in pattern
    return f"{on}.matches(r'{pattern}')"


def must_match(pattern: str, message: str) -> dict[str, Any]:
    """``json_schema_extra`` for a string that must match ``pattern``: a CEL rule, so the API
    server's refusal says ``message`` (what is allowed) rather than the regular expression."""
    return cel((matches(pattern), message))


NAME_MESSAGE = (
    "must be an object name: lowercase letters, digits, '-' and '.', starting and ending with "
    "a letter or digit"
)
KEY_MESSAGE = "must be a Secret key: letters, digits, '-', '_' and '.'"


def positive_duration(field: str) -> tuple[str, str]:
    """The CEL rule (on the field itself) for a duration greater than zero."""
    return (
        f"{matches(DURATION_PATTERN)} && duration(self) > duration('0s')",
        f"{field} must be a duration greater than zero: a number and a unit ms, s, m or h "
        "(500ms, 10s, 5m, 1h)",
    )


def duration_field(field: str, description: str) -> Any:
    """An optional duration field whose refusal names ``field`` and says what is allowed."""
    return Field(
        default=None,
        max_length=32,
        description=description,
        json_schema_extra=cel(positive_duration(field)),
    )


class Model(BaseModel):
    """Strict base: camelCase keys, unknown keys refused, immutable."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )


class ObjectMeta(BaseModel):
    """The part of metadata Ferry reads; other keys are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str = Field(min_length=1, description="Object name.")
    namespace: str = Field(default="default", description="Object namespace.")
    uid: str | None = Field(default=None, description="Object uid, when on Kubernetes.")
    generation: int | None = Field(default=None, description="Spec generation.")


class Resource(BaseModel):
    """A whole object as the API returns it: apiVersion, kind and status are ignored here."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    metadata: ObjectMeta = Field(description="Name, namespace, uid.")


class LocalObjectRef(Model):
    """A reference to an object in the same namespace."""

    name: str = Field(
        min_length=1,
        max_length=253,
        description="Name of the object.",
        json_schema_extra=must_match(DNS_SUBDOMAIN, f"name {NAME_MESSAGE}"),
    )


class ConnectorRef(LocalObjectRef):
    """A reference to a Connector in the same namespace."""


class SecretRef(Model):
    """A Secret in the same namespace (the keys it must hold are named where it is used)."""

    name: str = Field(
        min_length=1,
        max_length=253,
        description="Name of the Secret.",
        json_schema_extra=must_match(DNS_SUBDOMAIN, f"name {NAME_MESSAGE}"),
    )


class SecretKeyRef(Model):
    """A key of a Secret in the same namespace."""

    name: str = Field(
        min_length=1,
        max_length=253,
        description="Name of the Secret.",
        json_schema_extra=must_match(DNS_SUBDOMAIN, f"name {NAME_MESSAGE}"),
    )
    key: str = Field(
        min_length=1,
        max_length=253,
        description="Key within the Secret's data.",
        json_schema_extra=must_match(SECRET_KEY, f"key {KEY_MESSAGE}"),
    )


class Position(Model):
    """A binlog position: exactly one of {file, pos}, {gtid}, {timestamp} or {at}."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "[has(self.file), has(self.gtid), has(self.timestamp), has(self.at)]"
                ".filter(x, x).size() == 1",
                "a position is exactly one of {file, pos}, {gtid}, {timestamp} or {at}",
            ),
            ("has(self.file) == has(self.pos)", "file and pos go together"),
        )
    )

    file: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="Binlog file name (not a path), e.g. binlog.000042.",
        json_schema_extra=cel(
            (
                matches(BINLOG_FILE_PATTERN),
                "file must be a binlog file name such as binlog.000042 (letters, digits, '_', "
                "'.', '-', then a numeric extension), never a path",
            )
        ),
    )
    pos: int | None = Field(
        default=None, ge=4, description="Byte offset of an event in file (4 = its start)."
    )
    gtid: str | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        description="A MariaDB GTID position (domain-server-sequence, one per domain, "
        "comma-separated: 0-1-100,1-2-7) or a MySQL GTID set (uuid:interval…, e.g. "
        "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5).",
        json_schema_extra=cel(
            (
                f"{matches(GTID_MARIADB_PATTERN)} || {matches(GTID_MYSQL_PATTERN)}",
                "gtid must be a MariaDB GTID position (domain-server-sequence, e.g. 0-1-100, "
                "several separated by commas) or a MySQL GTID set (uuid:interval, e.g. "
                "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5)",
            )
        ),
    )
    timestamp: str | None = Field(
        default=None,
        description="The first event at or after this time (RFC 3339).",
        json_schema_extra={"format": "date-time"},
    )
    at: Literal["earliest", "latest"] | None = Field(
        default=None, description="earliest: the oldest binlog kept; latest: the current end."
    )

    def to_worker(self) -> Any:
        """The shape ferry_runtime.config.Position accepts."""
        if self.at is not None:
            return self.at
        return self.model_dump(by_alias=True, exclude_none=True)


class Condition(Model):
    """A status condition (Kubernetes conventions, kstatus semantics)."""

    type: str = Field(description="Ready, Reconciling, Stalled or Degraded.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(description="A CamelCase cause, e.g. Paused, ConnectorNotReady.")
    message: str = Field(default="", description="A sentence a person can act on.")
    last_transition_time: str = Field(
        description="When status last changed.", json_schema_extra={"format": "date-time"}
    )
    observed_generation: int | None = Field(
        default=None, description="The spec generation the condition was computed from."
    )
