"""The worker's config: the contract the operator renders into a ConfigMap.

Field names are camelCase in YAML, as in the SyncTask spec they come from. Unknown keys are
refused with a message naming them. No secret ever appears here: passwords travel as the
*name* of an environment variable that the Deployment fills from a Secret.
"""

from __future__ import annotations

import fnmatch
import random
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    Tag,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

from ferry_runtime.source.positions import check_gtid_text, parse_gtids

__all__ = [
    "FIXED_PRODUCER_SETTINGS",
    "AvroSettings",
    "BinlogFilePosition",
    "ConfigError",
    "Duration",
    "ErrorPolicy",
    "GtidPosition",
    "Heartbeat",
    "KafkaSink",
    "MySQLSink",
    "Performance",
    "Position",
    "ReportingConfig",
    "ResetPosition",
    "RestartPolicy",
    "SchemaRegistry",
    "SinkConfig",
    "SkipEvent",
    "SkipGtid",
    "SnapshotRequest",
    "SourceConfig",
    "TLSFiles",
    "TableMapping",
    "TaskIdentity",
    "TimestampPosition",
    "WorkerConfig",
    "format_duration",
    "load",
    "parse",
    "parse_duration",
]


class ConfigError(ValueError):
    """The worker config is invalid; the message names each offending field."""


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: Any) -> timedelta:
    """``"500ms"``, ``"10s"``, ``"5m"``, ``"1h"``, or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a duration (examples: 500ms, 10s, 5m, 1h)")
    return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be greater than zero")
    return value


def format_duration(value: timedelta) -> str:
    """The inverse of parse_duration: ``10s``, ``500ms``."""
    millis = round(value.total_seconds() * 1000)
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    AfterValidator(_positive),
    PlainSerializer(format_duration, return_type=str),
]
_TABLE_GLOB = re.compile(r"^[^.\s]+\.[^.\s]+$")


def _table_glob(value: str) -> str:
    if not _TABLE_GLOB.match(value):
        raise ValueError(f"{value!r} is not a 'database.table' pattern (globs: * and ?)")
    return value


TableGlob = Annotated[str, AfterValidator(_table_glob)]


# snapshotRequest.where: one SQL expression, bounded, with no statement separator.
WHERE_MAX = 1000
WHERE_PATTERN = r"^[^;]*$"


class Model(BaseModel):
    """Strict base: camelCase keys, unknown keys refused, immutable."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )


# ---------------------------------------------------------------- positions


class BinlogFilePosition(Model):
    file: str = Field(min_length=1, description="Binlog file name, e.g. binlog.000042.")
    pos: int = Field(ge=4, description="Byte offset of an event in that file (4 = its start).")


class GtidPosition(Model):
    gtid: Annotated[str, AfterValidator(check_gtid_text)] = Field(
        min_length=1,
        description="MariaDB GTID position (domain-server-seq[,…]): the last transaction "
        "already applied; reading starts after it. (A MySQL GTID set is refused when resolved.)",
    )


class TimestampPosition(Model):
    timestamp: AwareDatetime = Field(
        description="RFC 3339 with a zone (Z or an offset): the first transaction stamped at "
        "or after this time's second."
    )


def _position_kind(value: Any) -> str | None:
    """Pick the union member from the keys present, so errors name the right fields."""
    if isinstance(value, str):
        return "keyword"
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if isinstance(value, dict):
        for key in ("file", "gtid", "timestamp"):
            if key in value:
                return key
    return None


Position = Annotated[
    Annotated[BinlogFilePosition, Tag("file")]
    | Annotated[GtidPosition, Tag("gtid")]
    | Annotated[TimestampPosition, Tag("timestamp")]
    | Annotated[Literal["earliest", "latest"], Tag("keyword")],
    Discriminator(
        _position_kind,
        custom_error_type="invalid_position",
        custom_error_message="a position is {file, pos}, {gtid}, {timestamp}, earliest or latest",
    ),
]


class ResetPosition(Model):
    to: Position = Field(description="Where to restart reading from.")
    nonce: str = Field(min_length=1, description="Applied once per distinct nonce.")


def _one_gtid(text: str) -> str:
    gtids = parse_gtids(text)
    if len(gtids) != 1:
        raise ValueError("give one GTID (domain-server-sequence, e.g. 0-1-100), not a list")
    return text.strip()


class SkipGtid(Model):
    gtid: Annotated[str, AfterValidator(_one_gtid)] = Field(
        min_length=1,
        description="One MariaDB GTID (domain-server-sequence): every row event of that "
        "transaction is skipped.",
    )


def _event_kind(value: Any) -> str | None:
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if isinstance(value, dict):
        for key in ("file", "gtid"):
            if key in value:
                return key
    return None


EventPosition = Annotated[
    Annotated[BinlogFilePosition, Tag("file")] | Annotated[SkipGtid, Tag("gtid")],
    Discriminator(
        _event_kind,
        custom_error_type="invalid_event_position",
        custom_error_message="the event's position is {file, pos} or {gtid}",
    ),
]


class SkipEvent(Model):
    """Skip one binlog event, once per nonce (spec.skipEvent). ``{file, pos}`` is a row
    event's position as Ferry reports it (status.lastErrors[].position: the offset right
    after the event, mysqlbinlog's end_log_pos); ``{gtid}`` skips a whole transaction."""

    position: EventPosition = Field(description="The event to skip.")
    nonce: str = Field(min_length=1, description="Applied once per distinct nonce.")


# ---------------------------------------------------------------- TLS


class TLSFiles(Model):
    """TLS of one client: the mode (MySQL's --ssl-mode names) and the PEM files it uses,
    mounted from Secrets; the config holds paths only."""

    mode: Literal["disabled", "preferred", "required", "verify-ca", "verify-identity"] = (
        "verify-identity"
    )
    ca_file: str | None = Field(default=None, description="CA bundle; default: system CAs.")
    cert_file: str | None = Field(default=None, description="Client certificate (mutual TLS).")
    key_file: str | None = Field(default=None, description="Client certificate's key.")

    @model_validator(mode="after")
    def _cert_and_key(self) -> TLSFiles:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("certFile and keyFile go together")
        return self


class SnapshotRequest(Model):
    tables: list[TableGlob] = Field(min_length=1, description="Selected tables to read again.")
    cancel: bool = Field(default=False, description="Stop re-reading these tables instead.")
    nonce: str = Field(min_length=1, description="Applied once per distinct nonce.")
    where: str | None = Field(
        default=None,
        min_length=1,
        max_length=WHERE_MAX,
        pattern=WHERE_PATTERN,
        description="An SQL condition limiting the rows read again (one expression, no ';').",
    )


class VerifyRequest(Model):
    """Compare the source with the target once per nonce (spec.verifyRequest); see
    :mod:`ferry_runtime.verify`."""

    tables: list[TableGlob] = Field(
        default_factory=lambda: ["*.*"], min_length=1, description="Selected tables to verify."
    )
    repair: bool = Field(
        default=False, description="MySQL sink: rewrite the mismatched rows from the source."
    )
    chunk_size: int = Field(default=1000, ge=1, le=100_000, description="Rows per checksum.")
    nonce: str = Field(min_length=1, description="Applied once per distinct nonce.")


# ---------------------------------------------------------------- source and rules


class SourceConfig(Model):
    host: str = Field(min_length=1)
    port: int = Field(default=3306, ge=1, le=65535)
    user: str = Field(min_length=1)
    password_env: str = Field(
        min_length=1, description="Name of the environment variable holding the password."
    )
    server_id: int = Field(
        ge=1, le=2**32 - 1, description="Replica server id; unique among the source's replicas."
    )
    connect_timeout: Duration = Field(default=timedelta(seconds=10))
    tls: TLSFiles | None = Field(default=None, description="None: no TLS.")


class TableMapping(Model):
    table: TableGlob = Field(description="The source table (database.table; globs allowed).")
    target: str | None = Field(default=None, min_length=1, description="New table name.")
    columns: dict[str, str] = Field(default_factory=dict, description="Renames: old → new.")
    drop: list[str] = Field(default_factory=list, description="Columns left out of events.")

    def matches(self, database: str, table: str) -> bool:
        return fnmatch.fnmatchcase(f"{database}.{table}", self.table)


# ---------------------------------------------------------------- sinks


class SchemaChangeRecords(Model):
    """sink.kafka.schemaChanges: write a record for each DDL on a selected table."""

    topic: str = Field(
        min_length=1, description="The topic of the DDL records (one topic, no placeholders)."
    )


class AvroSettings(Model):
    """sink.kafka.avro: how format avro names its subjects."""

    subject_strategy: Literal["topicName", "recordName"] = Field(
        default="topicName",
        description="topicName: <topic>-key and <topic>-value; recordName: the records' full "
        "names (ferry.<db>.<table>.Key, ferry.<db>.<table>.Envelope).",
    )


class SchemaRegistry(Model):
    """The Confluent-compatible schema registry of format avro (the Connector's)."""

    url: str = Field(min_length=1, description="Base URL of the Confluent-compatible API.")
    username_env: str | None = Field(default=None, description="Basic auth user, from env.")
    password_env: str | None = Field(default=None, description="Basic auth password, from env.")


# librdkafka settings the delivery guarantees rest on: the sink sets them, nobody else.
FIXED_PRODUCER_SETTINGS = frozenset(
    {
        "acks",
        "request.required.acks",
        "enable.idempotence",
        "transactional.id",
        "max.in.flight.requests.per.connection",
        "max.in.flight",
        "enable.gapless.guarantee",
    }
)


class KafkaSink(Model):
    bootstrap_servers: str = Field(min_length=1)
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username_env: str | None = None
    sasl_password_env: str | None = None
    tls: TLSFiles | None = Field(default=None, description="For SSL and SASL_SSL.")
    topic: str = Field(
        default="ferry.{database}.{table}",
        min_length=1,
        description="Topic name template; {database} and {table} are replaced.",
    )
    format: Literal["maxwell", "debezium", "avro"] = "maxwell"
    avro: AvroSettings | None = Field(default=None, description="format avro: subjects.")
    schema_registry: SchemaRegistry | None = Field(
        default=None, description="format avro: where schemas are registered."
    )
    partition_by: Literal["primaryKey", "table", "database"] = "primaryKey"
    offsets_topic: str = Field(
        default="ferry.offsets", description="Compacted topic holding each task's checkpoint."
    )
    # Transaction metadata (spec.sink.kafka.transactionTopic), see ferry_runtime.txmeta.
    transaction_topic: str | None = Field(
        default=None,
        min_length=1,
        description="Debezium-style BEGIN/END records of each source transaction go here, "
        "around its rows in the same Kafka transaction; None: none are written.",
    )
    producer: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="librdkafka producer settings (compression.type, linger.ms, batch.size, "
        "message.max.bytes, request.timeout.ms, …); the delivery guarantees' own settings "
        f"({', '.join(sorted(FIXED_PRODUCER_SETTINGS))}) are Ferry's and refused here.",
    )
    schema_changes: SchemaChangeRecords | None = Field(
        default=None, description="DDL records to a topic (the task's format); unset: none."
    )
    # Topics the worker creates (AdminClient; never broker auto-create). None: the broker's
    # default (num.partitions, default.replication.factor). Left out of rendered configs when
    # unset, so adding them rolled no existing task.
    topic_partitions: int | None = Field(
        default=None, ge=1, le=10_000, description="Partitions of a data topic it creates."
    )
    topic_replication_factor: int | None = Field(
        default=None, ge=1, le=32, description="Replication factor of a data topic it creates."
    )
    offsets_topic_partitions: int | None = Field(
        default=None, ge=1, le=10_000, description="Partitions of the offsets topic (default 1)."
    )
    offsets_topic_replication_factor: int | None = Field(
        default=None, ge=1, le=32, description="Replication factor of the offsets topic."
    )

    @model_validator(mode="after")
    def _fixed_producer_settings(self) -> KafkaSink:
        fixed = sorted(set(self.producer) & FIXED_PRODUCER_SETTINGS)
        if fixed:
            raise ValueError(
                f"producer: {', '.join(fixed)} cannot be set: Ferry sets acks=all and "
                "idempotence (and a transactional.id with exactly-once) so that no record is "
                "lost, duplicated or reordered"
            )
        return self

    @model_validator(mode="after")
    def _avro_needs_registry(self) -> KafkaSink:
        if self.format == "avro" and self.schema_registry is None:
            raise ValueError(
                "format avro needs schemaRegistry (the Connector's kafka.schemaRegistry)"
            )
        return self

    @model_validator(mode="after")
    def _topic_placeholders(self) -> KafkaSink:
        unknown = set(re.findall(r"{([^}]*)}", self.topic)) - {"database", "table"}
        if unknown:
            raise ValueError(
                f"topic: unknown placeholder(s) {sorted(unknown)}; use {{database}} and {{table}}"
            )
        return self


class MySQLSink(Model):
    host: str = Field(min_length=1)
    port: int = Field(default=3306, ge=1, le=65535)
    user: str = Field(min_length=1)
    password_env: str = Field(min_length=1)
    database: str | None = Field(
        default=None, description="Write every table here; default: the source's database."
    )
    tls: TLSFiles | None = Field(default=None, description="None: no TLS.")
    schema_changes: Literal["stop", "evolve", "ignore"] | None = Field(
        default=None,
        description="Source DDL on the target (unset: stop, so that existing configs render "
        "as before): stop (a row that does not fit stops the worker), "
        "evolve (apply column changes and CREATE TABLE), ignore (write the columns it has).",
    )


class SinkConfig(Model):
    kafka: KafkaSink | None = None
    mysql: MySQLSink | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SinkConfig:
        if (self.kafka is None) == (self.mysql is None):
            raise ValueError("exactly one of sink.kafka and sink.mysql must be set")
        return self


# ---------------------------------------------------------------- behaviour


class Performance(Model):
    batch_size: int = Field(default=500, ge=1, le=100_000)
    max_batch_delay: Duration = Field(default=timedelta(milliseconds=500))
    snapshot_chunk_size: int = Field(default=10_000, ge=1, le=1_000_000)
    snapshot_parallelism: int = Field(
        default=1,
        ge=1,
        le=16,
        description="Connections reading snapshot chunks at once (each a chunk ahead of "
        "the delivery); up to parallelism + 1 chunks are held in memory.",
    )
    snapshot_readers: Literal["threads", "processes"] = Field(
        default="threads",
        description="Where the snapshot readers parse and convert rows: threads of the "
        "worker, or child processes (outside its interpreter lock; ~40 MB each).",
    )
    queue_size: int = Field(default=10_000, ge=1, description="Events buffered per stage.")


class RestartPolicy(Model):
    max_retries: int | None = Field(
        default=None,
        ge=0,
        description="Consecutive failures allowed; None: unlimited. The streak starts again "
        "after reset_after of healthy progress.",
    )
    reset_after: Duration = Field(default=timedelta(minutes=10))
    backoff: Duration = Field(default=timedelta(seconds=1))
    multiplier: float = Field(default=2.0, ge=1.0)
    max_backoff: Duration = Field(default=timedelta(minutes=5))

    def ceiling(self, attempt: int) -> timedelta:
        """The longest wait before retry number ``attempt`` (1-based): exponential, capped."""
        exponent = min(max(attempt - 1, 0), 64)  # past any cap anyway; no float overflow
        seconds = self.backoff.total_seconds() * self.multiplier**exponent
        return timedelta(seconds=min(seconds, self.max_backoff.total_seconds()))

    def delay(self, attempt: int, draw: Callable[[], float] = random.random) -> timedelta:
        """The wait before retry number ``attempt``: full jitter, uniform in [0, ceiling), so
        that workers hit by one outage do not all retry at the same moment."""
        return self.ceiling(attempt) * draw()


class ErrorPolicy(Model):
    mode: Literal["fail", "skip", "deadLetter"] = "fail"
    dead_letter_topic: str | None = None

    @model_validator(mode="after")
    def _topic_for_dead_letters(self) -> ErrorPolicy:
        if self.mode == "deadLetter" and not self.dead_letter_topic:
            raise ValueError("errorPolicy.deadLetterTopic is required when mode is deadLetter")
        return self


_TABLE_NAME = re.compile(r"^[^.\s`*?]+\.[^.\s`*?]+$")


def _table_name(value: str) -> str:
    if not _TABLE_NAME.match(value):
        raise ValueError(f"{value!r} is not a 'database.table' name (no globs, no backquotes)")
    return value


class Heartbeat(Model):
    """spec.heartbeat: the worker upserts its row of a source table at this interval, so
    the binlog moves on an idle source and lag is measured, not assumed
    (:mod:`ferry_runtime.heartbeat`)."""

    interval: Duration = Field(default=timedelta(seconds=10))
    table: Annotated[str, AfterValidator(_table_name)] = Field(
        default="ferry_meta.heartbeat",
        description="database.table written; its rows reach the sink only when "
        "include names it exactly.",
    )


class TaskIdentity(Model):
    name: str = Field(min_length=1)
    namespace: str = "default"
    uid: str | None = Field(default=None, description="The SyncTask's uid, when on Kubernetes.")

    @property
    def id(self) -> str:
        """Stable id: keys the checkpoint and derives the Kafka transactional.id."""
        return f"{self.namespace}.{self.name}" if self.uid is None else self.uid


class KubernetesReporting(Model):
    namespace: str
    name: str


class ReportingConfig(Model):
    port: int = Field(default=8080, ge=0, le=65535, description="0 picks a free port.")
    interval: Duration = Field(default=timedelta(seconds=10))
    kubernetes: KubernetesReporting | None = Field(
        default=None, description="The SyncTask whose status the worker patches."
    )


class WorkerConfig(Model):
    task: TaskIdentity
    source: SourceConfig
    include: list[TableGlob] = Field(default_factory=lambda: ["*.*"], min_length=1)
    exclude: list[TableGlob] = Field(default_factory=list)
    mapping: list[TableMapping] = Field(default_factory=list)
    sink: SinkConfig
    mode: Literal["snapshot+cdc", "cdc", "snapshot"] = "snapshot+cdc"
    start_position: Position | None = Field(
        default=None,
        description="Where cdc starts without a checkpoint; default: the snapshot's position "
        "(snapshot+cdc) or latest (cdc).",
    )
    delivery: Literal["exactly-once", "at-least-once"] = "exactly-once"
    performance: Performance = Field(default_factory=Performance)
    restart_policy: RestartPolicy = Field(default_factory=RestartPolicy)
    error_policy: ErrorPolicy = Field(default_factory=ErrorPolicy)
    reset_position: ResetPosition | None = None
    # None is fail: left out of rendered configs, so adding it rolled no existing task.
    on_position_unavailable: Literal["fail", "resnapshot"] | None = Field(
        default=None,
        description="When the checkpoint's binlog is gone: fail (default: the task stops with "
        "PositionUnavailable) or resnapshot (snapshot every table again, then stream on).",
    )
    snapshot_request: SnapshotRequest | None = None
    # None is false: left out of rendered configs (existing tasks keep their config hash).
    snapshot_new_tables: bool | None = Field(
        default=None,
        description="A table newly selected by a changed include/exclude is snapshotted "
        "alone while the others stream on, then streams (false: it streams from the current "
        "position only).",
    )
    skip_event: SkipEvent | None = None
    heartbeat: Heartbeat | None = None
    verify_request: VerifyRequest | None = None
    # None: INFO and text (left out of rendered configs, so adding them rolled no task).
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] | None = Field(
        default=None, description="The worker's log level; default INFO. Applied live."
    )
    log_format: Literal["text", "json"] | None = Field(
        default=None,
        description="text (default) or json: one JSON object per line (time, level, logger, "
        "message and the record's extra fields). Applied live.",
    )
    reporting: ReportingConfig = Field(default_factory=ReportingConfig)

    @model_validator(mode="after")
    def _repair_needs_mysql(self) -> WorkerConfig:
        if self.verify_request and self.verify_request.repair and self.sink.mysql is None:
            raise ValueError(
                "verifyRequest.repair: only a MySQL sink can be repaired (a Kafka topic keeps "
                "its history); leave repair unset to verify a Kafka sink"
            )
        return self

    def selects(self, database: str, table: str) -> bool:
        """Whether ``database.table`` passes the include and exclude globs."""
        name = f"{database}.{table}"
        if self.is_heartbeat_table(database, table) and name not in self.include:
            return False  # the heartbeat table is data only when include names it exactly
        included = any(fnmatch.fnmatchcase(name, glob) for glob in self.include)
        return included and not any(fnmatch.fnmatchcase(name, glob) for glob in self.exclude)

    def is_heartbeat_table(self, database: str, table: str) -> bool:
        return self.heartbeat is not None and self.heartbeat.table == f"{database}.{table}"

    def mapping_for(self, database: str, table: str) -> TableMapping | None:
        return next((m for m in self.mapping if m.matches(database, table)), None)

    def secret_envs(self) -> list[str]:
        """The environment variables holding secrets (passwords), to keep out of messages."""
        names = [self.source.password_env]
        if self.sink.mysql is not None:
            names.append(self.sink.mysql.password_env)
        if self.sink.kafka is not None and self.sink.kafka.sasl_password_env:
            names.append(self.sink.kafka.sasl_password_env)
        registry = self.sink.kafka.schema_registry if self.sink.kafka is not None else None
        if registry is not None and registry.password_env:
            names.append(registry.password_env)
        return names

    def to_yaml(self) -> str:
        """The canonical YAML the operator writes into a ConfigMap (stable key order)."""
        data = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        return yaml.safe_dump(data, sort_keys=True)


def _format_errors(error: ValidationError) -> str:
    """Every problem, ``field: what``, on one line (joined with ``; ``)."""
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"] if not str(part).startswith("function-"))
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown field"
        lines.append(f"{where or '(top level)'}: {message}")
    return "invalid worker config: " + "; ".join(lines)


def _yaml_error(path: str | Path, error: yaml.YAMLError) -> ConfigError:
    """``FILE:LINE:COLUMN: problem`` (1-based, as editors count) for a file that is not YAML."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    context = getattr(error, "context", None)
    detail = f"{problem} ({context})" if context else str(problem)
    return ConfigError(f"{where}: not valid YAML: {detail}")


def parse(data: Any) -> WorkerConfig:
    """Validate a mapping (e.g. parsed YAML) into a WorkerConfig, or raise ConfigError."""
    try:
        return WorkerConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_format_errors(error)) from None


def load(path: str | Path) -> WorkerConfig:
    """Read and validate a worker config file; a ConfigError names the file (and for YAML
    syntax, the line and column)."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as error:
        raise _yaml_error(path, error) from None
    try:
        return parse(data)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None
