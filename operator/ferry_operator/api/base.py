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
    "DURATION_PATTERN",
    "Condition",
    "ConnectorRef",
    "LocalObjectRef",
    "Model",
    "ObjectMeta",
    "Position",
    "Resource",
    "SecretKeyRef",
    "cel",
]

# Same grammar as ferry_runtime.config.parse_duration: 500ms, 10s, 5m, 1h.
DURATION_PATTERN = r"^[0-9]+(\.[0-9]+)?(ms|s|m|h)$"


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

    name: str = Field(min_length=1, max_length=253, description="Name of the object.")


class ConnectorRef(LocalObjectRef):
    """A reference to a Connector in the same namespace."""


class SecretKeyRef(Model):
    """A key of a Secret in the same namespace."""

    name: str = Field(min_length=1, max_length=253, description="Name of the Secret.")
    key: str = Field(min_length=1, max_length=253, description="Key within the Secret's data.")


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
        default=None, min_length=1, max_length=255, description="Binlog file, e.g. binlog.000042."
    )
    pos: int | None = Field(
        default=None, ge=4, description="Byte offset of an event in file (4 = its start)."
    )
    gtid: str | None = Field(
        default=None, min_length=1, max_length=4096, description="A GTID set or position."
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
