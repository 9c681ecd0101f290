"""The SyncTask resource: one change-data-capture task, and its status.

``TaskFields`` are the fields a TaskTemplate may also hold; ``SyncTaskSpec`` adds the
template reference and the lifecycle fields (paused, resumeAt, nonces). Every field is
optional in the schema because a TaskTemplate may supply it; the effective spec (template ⊕
task) is checked for completeness by the renderer. Defaults are applied after that merge, not
by the API server, because a server-side default would hide the template's value.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import ConfigDict, Field

from ferry_operator.api.base import (
    BINLOG_FILE_PATTERN,
    DURATION_PATTERN,
    Condition,
    ConnectorRef,
    LocalObjectRef,
    Model,
    Position,
    Resource,
    cel,
    duration_field,
    matches,
    must_match,
)
from ferry_operator.api.scheduling import (
    CRON_PATTERN,
    TIME_ZONE_PATTERN,
    ActiveRun,
    Notification,
    NotificationStatus,
    RunStatus,
    ScheduledVerificationStatus,
    cron_message,
    schedule_field,
    time_zone_field,
    time_zone_message,
)

__all__ = [
    "Alerts",
    "AvroSpec",
    "ErrorPolicy",
    "Heartbeat",
    "KafkaProducerSpec",
    "KafkaSinkSpec",
    "KafkaTopicsSpec",
    "Mapping",
    "MySQLSinkSpec",
    "Performance",
    "ResetPosition",
    "ResnapshotStatus",
    "RestartPolicy",
    "SchemaChangeRecordsSpec",
    "SinkSpec",
    "SkipEvent",
    "SkipEventPosition",
    "SkipStatus",
    "SnapshotRequest",
    "SourceSpec",
    "SyncTask",
    "SyncTaskSpec",
    "SyncTaskStatus",
    "TaskFields",
    "VerificationStatus",
    "VerifyRequest",
    "VerifySchedule",
    "WorkerPodStatus",
    "WorkerSpec",
]

TABLE_GLOB = r"^[^.\s]+\.[^.\s]+$"
TABLE_GLOB_MESSAGE = "must be a database.table glob: one '.', no spaces, * and ? as wildcards"
# Kafka topic names: letters, digits, '.', '_' and '-' (and not '.' or '..' alone).
TOPIC_PATTERN = r"^[A-Za-z0-9._-]+$"
# The placeholders a topic template may hold (ferry_runtime.rules.topic replaces them).
TOPIC_PLACEHOLDERS = ("{database}", "{table}")
# A MySQL identifier as Ferry writes it (database, table or column): 1-64 characters, no
# backquote (quoting), no NUL, no trailing space (MySQL refuses one).
IDENTIFIER_PATTERN = r"^[^`\x00]*[^`\x00 ]$"
# A label value (nodeSelector values).
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"


def _topic_rules(field: str) -> dict[str, Any]:
    placeholders = " || ".join(f"p == '{p}'" for p in TOPIC_PLACEHOLDERS)
    return cel(
        (
            f"self.findAll(r'\\{{[^}}]*\\}}').all(p, {placeholders})",
            f"{field}: unknown placeholder; the topic template may hold only {{database}} and "
            "{table}",
        ),
        (
            matches(r"^([A-Za-z0-9._-]|\{database\}|\{table\})+$"),
            f"{field} may hold only letters, digits, '.', '_', '-' and the placeholders "
            "{database} and {table}",
        ),
    )


IDENTIFIER_MESSAGE = "must be a MySQL name: 1-64 characters, no backquote, no trailing space"
# The same rule for the values of mapping[].columns and the items of mapping[].drop, without a
# regular expression: such a rule may run mapping's maxItems times the map's maxProperties,
# and the API server refuses a CRD whose rule could cost more than its budget (measured on
# v1.34: the regular expression is over it even at 512 columns; these two string tests fit at
# 1024). The NUL test would not fit as well: it stays a schema pattern (a NUL shows the regex).
IDENTIFIER_RULE = "!self.contains('`') && !self.endsWith(' ')"
NO_NUL_PATTERN = r"^[^\x00]*$"
# Columns per mapping entry (InnoDB allows 1017 per table): the most the rule above fits.
MAX_MAPPED_COLUMNS = 1024
# Resource names per requests/limits map: isQuantity() costs as if a value could be as long as
# a whole request (x-kubernetes-int-or-string has no maxLength), so at most 15 fit its budget.
MAX_RESOURCE_NAMES = 12


def _glob_items(field: str) -> dict[str, Any]:
    """The schema of a list of database.table globs, refusing with a message naming ``field``."""
    return {
        "items": {
            "type": "string",
            "maxLength": 512,
            **must_match(TABLE_GLOB, f"{field} entries {TABLE_GLOB_MESSAGE}"),
        }
    }


def _identifier(field: str, description: str) -> Any:
    return Field(
        default=None,
        min_length=1,
        max_length=64,
        description=description,
        json_schema_extra=must_match(IDENTIFIER_PATTERN, f"{field} {IDENTIFIER_MESSAGE}"),
    )


# The phases status.phase takes (the plugin, the operator's metrics and the docs list them).
Phase = Literal[
    "Pending", "Starting", "Snapshotting", "Running", "Paused", "Failed", "Completed", "Scheduled"
]
PHASES: tuple[str, ...] = get_args(Phase)


class SourceSpec(Model):
    """The MySQL/MariaDB source and the tables to read."""

    connector_ref: ConnectorRef | None = Field(
        default=None, description="The mysql Connector to read the binlog from."
    )
    include: list[str] | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="database.table globs to sync (* and ?); default: every table.",
        json_schema_extra=_glob_items("source.include"),
    )
    exclude: list[str] | None = Field(
        default=None,
        max_length=256,
        description="database.table globs left out, even when included.",
        json_schema_extra=_glob_items("source.exclude"),
    )
    server_id: int | None = Field(
        default=None,
        ge=1,
        le=2**32 - 1,
        description="Replica server id; default: derived from the task's uid.",
    )


class SchemaChangeRecordsSpec(Model):
    """A record for each DDL statement on a selected table, written to one topic."""

    topic: str = Field(
        min_length=1,
        max_length=249,
        description="Topic of the DDL records (letters, digits, '.', '_', '-'; no placeholders). "
        "It may be the rows' topic: records are keyed and partitioned by database.",
        json_schema_extra=cel(
            (
                f"{matches(TOPIC_PATTERN)} && self != '.' && self != '..'",
                "sink.kafka.schemaChanges.topic must be a Kafka topic name: letters, digits, "
                "'.', '_' and '-' (not '.' or '..' alone)",
            )
        ),
    )


class KafkaProducerSpec(Model):
    """Producer settings of the worker (librdkafka). acks and idempotence are not here:
    Ferry fixes acks=all and enable.idempotence (and a transactional.id with exactly-once)."""

    compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] | None = Field(
        default=None, description="compression.type of record batches; default: none."
    )
    linger: str | None = Field(
        default=None,
        max_length=32,
        description="linger.ms: how long the producer waits to fill a batch; default 5ms. "
        "0ms sends at once.",
        json_schema_extra=cel(
            (
                f"{matches(DURATION_PATTERN)} && duration(self) <= duration('900s')",
                "sink.kafka.producer.linger must be a duration from 0ms to 900s (0ms, 5ms, 1s)",
            )
        ),
    )
    batch_size: int | None = Field(
        default=None,
        ge=1,
        le=2_147_483_647,
        description="batch.size: the most bytes of one partition's record batch; default 1000000.",
    )
    max_message_bytes: int | None = Field(
        default=None,
        ge=1000,
        le=1_000_000_000,
        description="message.max.bytes: the largest record (key and value) the worker sends; "
        "a bigger row is a poison row (errorPolicy). Topics the worker creates get it as "
        "max.message.bytes. Default 1000000.",
    )
    request_timeout: str | None = duration_field(
        "sink.kafka.producer.requestTimeout",
        "request.timeout.ms: how long the producer waits for a broker's acknowledgement; "
        "default 30s.",
    )


class KafkaTopicsSpec(Model):
    """Partitions and replication factor of the data topics the worker creates."""

    partitions: int | None = Field(
        default=None, ge=1, le=10_000, description="Default: the broker's num.partitions."
    )
    replication_factor: int | None = Field(
        default=None,
        ge=1,
        le=32,
        description="Default: the broker's default.replication.factor. More than the "
        "cluster's brokers stops the task (TopicCreationFailed).",
    )


class AvroSpec(Model):
    """Settings of format avro."""

    subject_strategy: Literal["topicName", "recordName"] | None = Field(
        default=None,
        description="The registry subjects of a table's schemas: topicName (default: "
        "<topic>-key and <topic>-value) or recordName (the records' full names: "
        "ferry.<database>.<table>.Key and ferry.<database>.<table>.Envelope).",
    )


class KafkaSinkSpec(Model):
    """How events are written to Kafka."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "!has(self.avro) || (has(self.format) && self.format == 'avro')",
                "sink.kafka.avro needs sink.kafka.format avro",
                ".avro",
            )
        )
    )

    topic: str | None = Field(
        default=None,
        min_length=1,
        max_length=249,
        description="Topic name template: letters, digits, '.', '_', '-' and the placeholders "
        "{database} and {table} (after mapping), nothing else. Default: ferry.{database}.{table}.",
        json_schema_extra=_topic_rules("sink.kafka.topic"),
    )
    format: Literal["maxwell", "debezium", "avro"] | None = Field(
        default=None,
        description="Event format: maxwell (default) or debezium JSON, or avro (the Confluent "
        "wire format, schemas in the sink Connector's kafka.schemaRegistry; see docs/avro.md).",
    )
    avro: AvroSpec | None = Field(default=None, description="Settings of format avro.")
    partition_by: Literal["primaryKey", "table", "database"] | None = Field(
        default=None, description="Partition key; default: primaryKey."
    )
    transaction_topic: str | None = Field(
        default=None,
        min_length=1,
        max_length=249,
        description="Write Debezium-style transaction metadata here: a BEGIN and an END record "
        "(id, event_count, data_collections, ts_ms) around the rows of each source "
        "transaction, in the same Kafka transaction; with format debezium each row also "
        "carries transaction {id, total_order, data_collection_order}. A topic name (no "
        "placeholders). Default: none written.",
        json_schema_extra=cel(
            (
                f"{matches(TOPIC_PATTERN)} && self != '.' && self != '..'",
                "sink.kafka.transactionTopic must be a Kafka topic name: letters, digits, '.', "
                "'_' and '-' (not '.' or '..' alone)",
            )
        ),
    )
    schema_changes: SchemaChangeRecordsSpec | None = Field(
        default=None,
        description="DDL records (CREATE/ALTER/DROP/RENAME TABLE, TRUNCATE on selected tables) "
        "in the task's format (Maxwell table-create/table-alter/table-drop, or Debezium schema "
        "change events), in the same Kafka transaction as the rows around them. Unset: none.",
    )
    producer: KafkaProducerSpec | None = Field(
        default=None,
        description="Producer tuning (compression, batching, sizes, timeouts). acks=all and "
        "idempotence are fixed: exactly-once and ordering rest on them.",
    )
    topics: KafkaTopicsSpec | None = Field(
        default=None,
        description="How the worker creates a data topic that does not exist yet (with the "
        "Kafka admin API, not broker auto-create). An existing topic is used as it is.",
    )


class MySQLSinkSpec(Model):
    """How rows are written to another MySQL."""

    database: str | None = _identifier(
        "sink.mysql.database", "Write every table here; default: the source's database name."
    )
    schema_changes: Literal["stop", "evolve", "ignore"] | None = Field(
        default=None,
        description="What the source's DDL does to the target (Flink CDC's names): stop "
        "(default: nothing is applied; a row that does not fit stops the task), evolve (apply "
        "ADD/DROP/RENAME/CHANGE/MODIFY COLUMN, CREATE TABLE, RENAME TABLE and TRUNCATE under "
        "the mapping; needs ALTER and DROP grants), ignore (nothing is applied; rows keep "
        "only the columns the target has).",
    )


class SinkSpec(Model):
    """Where events go: exactly one of kafka and mysql, matching the connector's type."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            ("!(has(self.kafka) && has(self.mysql))", "set only one of sink.kafka and sink.mysql")
        )
    )

    connector_ref: ConnectorRef | None = Field(
        default=None, description="The Connector to write to (its type must match the block)."
    )
    kafka: KafkaSinkSpec | None = Field(default=None, description="Write to Kafka.")
    mysql: MySQLSinkSpec | None = Field(default=None, description="Write to MySQL.")


class Mapping(Model):
    """Renames and drops for the tables matching one glob."""

    table: str = Field(
        max_length=512,
        description="Source tables (database.table glob).",
        json_schema_extra=must_match(TABLE_GLOB, f"mapping[].table {TABLE_GLOB_MESSAGE}"),
    )
    target: str | None = _identifier(
        "mapping[].target", "New table name (1-64 characters, no backquote)."
    )
    columns: dict[str, str] | None = Field(
        default=None,
        max_length=MAX_MAPPED_COLUMNS,
        description="Column renames: old → new (new names: 1-64 characters, no backquote).",
        json_schema_extra={
            "maxProperties": MAX_MAPPED_COLUMNS,
            "additionalProperties": {
                "type": "string",
                "minLength": 1,
                "maxLength": 64,
                "pattern": NO_NUL_PATTERN,
                **cel((IDENTIFIER_RULE, f"mapping[].columns values {IDENTIFIER_MESSAGE}")),
            },
        },
    )
    drop: list[str] | None = Field(
        default=None,
        max_length=1024,
        description="Columns left out of events.",
        json_schema_extra={
            "items": {
                "type": "string",
                "minLength": 1,
                "maxLength": 64,
                "pattern": NO_NUL_PATTERN,
                **cel((IDENTIFIER_RULE, f"mapping[].drop entries {IDENTIFIER_MESSAGE}")),
            }
        },
    )


class Performance(Model):
    """Batching and snapshot chunking."""

    batch_size: int | None = Field(
        default=None, ge=1, le=100_000, description="Events per batch; default 500."
    )
    max_batch_delay: str | None = duration_field(
        "performance.maxBatchDelay", "Longest wait to fill a batch; default 500ms."
    )
    snapshot_chunk_size: int | None = Field(
        default=None, ge=1, le=1_000_000, description="Rows per snapshot chunk; default 10000."
    )
    snapshot_parallelism: int | None = Field(
        default=None,
        ge=1,
        le=16,
        description="Connections that read snapshot chunks at once, ahead of the delivery "
        "(snapshot+cdc; chunks are still delivered in binlog order); default 1. Up to "
        "snapshotParallelism + 1 chunks are held in the worker's memory.",
    )


class RestartPolicy(Model):
    """Retries of transient errors: the worker retries after a backoff with full jitter (a
    random wait between 0 and the capped exponential), so a shared outage does not make every
    worker retry at the same moment."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "!has(self.backoff) || !has(self.maxBackoff) || "
                f"!{matches(DURATION_PATTERN, 'self.backoff')} || "
                f"!{matches(DURATION_PATTERN, 'self.maxBackoff')} || "
                "duration(self.maxBackoff) >= duration(self.backoff)",
                "restartPolicy.maxBackoff must be at least restartPolicy.backoff",
                ".maxBackoff",
            ),
        )
    )

    max_retries: int | None = Field(
        default=None,
        ge=0,
        le=10_000,
        description="Consecutive failures allowed before the task stops (Failed, "
        "TooManyRestarts); the count starts again after resetAfter of healthy progress. "
        "The worker pod's restarts in a row (status.workerPod.restartStreak) are capped too, "
        "on their own. Default: unlimited (retry with backoff for ever).",
    )
    reset_after: str | None = duration_field(
        "restartPolicy.resetAfter",
        "Healthy progress after which the failure streak starts again at 0; default 10m.",
    )
    backoff: str | None = duration_field("restartPolicy.backoff", "First wait; default 1s.")
    multiplier: float | None = Field(
        default=None, ge=1.0, le=10.0, description="Growth of the wait per retry; default 2."
    )
    max_backoff: str | None = duration_field(
        "restartPolicy.maxBackoff", "Longest wait; default 5m."
    )


class ErrorPolicy(Model):
    """What happens to a row that cannot be delivered."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "!has(self.mode) || self.mode != 'deadLetter' || has(self.deadLetterTopic)",
                "errorPolicy.deadLetterTopic is required when mode is deadLetter",
            )
        )
    )

    mode: Literal["fail", "skip", "deadLetter"] | None = Field(
        default=None, description="fail (default), skip, or deadLetter."
    )
    dead_letter_topic: str | None = Field(
        default=None,
        min_length=1,
        max_length=249,
        description="Topic for dead letters (letters, digits, '.', '_', '-'; no placeholders).",
        json_schema_extra=cel(
            (
                f"{matches(TOPIC_PATTERN)} && self != '.' && self != '..'",
                "errorPolicy.deadLetterTopic must be a Kafka topic name: letters, digits, '.', "
                "'_' and '-' (not '.' or '..' alone)",
            )
        ),
    )


# One table by name (no globs, no backquote): database.table.
TABLE_NAME = r"^[^.\s`*?]+\.[^.\s`*?]+$"


class Heartbeat(Model):
    """Write a row into a source table at an interval (Debezium's heartbeat.action.query), so
    that the binlog moves on an idle source and lag is measured end to end."""

    interval: str | None = duration_field(
        "heartbeat.interval", "How often the worker upserts its row; default 10s."
    )
    table: str | None = Field(
        default=None,
        max_length=129,
        description="The source table (database.table, no globs) holding one row per task: "
        "(task VARCHAR(255) PRIMARY KEY, ts_ms BIGINT). Created when missing if the source "
        "user may; else the task stops with InsufficientPrivileges and the SQL to run. Its "
        "rows reach the sink only when source.include names it exactly. Default: "
        "ferry_meta.heartbeat.",
        json_schema_extra=must_match(
            TABLE_NAME, "heartbeat.table must be one database.table name: no globs, no spaces"
        ),
    )


class Alerts(Model):
    """Thresholds that make the task Degraded."""

    lag_threshold: str | None = duration_field(
        "alerts.lagThreshold", "Lag above this makes the task Degraded."
    )
    error_rate_threshold: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Errors per event above this fraction make the task Degraded.",
    )


class WorkerSpec(Model):
    """The worker pod."""

    resources: dict[str, dict[str, str | int]] | None = Field(
        default=None,
        description="Container resources: requests and limits (cpu, memory).",
        json_schema_extra={
            "properties": {
                key: {
                    "type": "object",
                    "description": f"Resource {key}.",
                    "maxProperties": MAX_RESOURCE_NAMES,
                    "additionalProperties": {
                        "x-kubernetes-int-or-string": True,
                        **cel(
                            (
                                "type(self) == int || isQuantity(self)",
                                f"worker.resources.{key} values must be quantities: a number "
                                "with an optional suffix (500m, 2, 1.5, 512Mi, 1Gi)",
                            )
                        ),
                    },
                }
                for key in ("requests", "limits")
            },
            "additionalProperties": None,
        },
    )
    image: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="Worker image override (a reference without spaces).",
        json_schema_extra=must_match(
            r"^[^\s]+$", "worker.image must be an image reference, without spaces"
        ),
    )
    node_selector: dict[str, str] | None = Field(
        default=None,
        description="Pod nodeSelector (label values: at most 63 characters).",
        json_schema_extra={
            "maxProperties": 64,
            "additionalProperties": {
                "type": "string",
                "maxLength": 63,
                **must_match(
                    LABEL_VALUE,
                    "worker.nodeSelector values must be label values: at most 63 letters, "
                    "digits, '-', '_' and '.', starting and ending with a letter or digit",
                ),
            },
        },
    )
    tolerations: list[dict[str, Any]] | None = Field(
        default=None,
        max_length=64,
        description="Pod tolerations.",
        json_schema_extra={
            "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        },
    )


class ResetPosition(Model):
    """Move the task's position once per nonce."""

    to: Position = Field(description="Where to restart reading from.")
    nonce: str = Field(min_length=1, max_length=253, description="Applied once per distinct nonce.")


# One MariaDB GTID: domain-server-sequence.
ONE_GTID_PATTERN = r"^[0-9]{1,10}-[0-9]{1,10}-[0-9]{1,20}$"


class SkipEventPosition(Model):
    """One binlog event: {file, pos} of a row event, or {gtid} of a transaction."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "has(self.file) != has(self.gtid)",
                "spec.skipEvent.position is exactly one of {file, pos} or {gtid}",
            ),
            (
                "has(self.file) == has(self.pos)",
                "spec.skipEvent.position: file and pos go together",
            ),
        )
    )

    file: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="Binlog file of the row event, e.g. binlog.000042.",
        json_schema_extra=cel(
            (
                matches(BINLOG_FILE_PATTERN),
                "spec.skipEvent.position.file must be a binlog file name such as "
                "binlog.000042, never a path",
            )
        ),
    )
    pos: int | None = Field(
        default=None,
        ge=4,
        description="The row event's position as Ferry reports it (status.lastErrors[]."
        "position of a PoisonRow): the offset right after the event, mysqlbinlog's "
        "end_log_pos.",
    )
    gtid: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="One MariaDB GTID (domain-server-sequence, e.g. 0-1-100): every row "
        "event of that transaction is skipped.",
        json_schema_extra=must_match(
            ONE_GTID_PATTERN,
            "spec.skipEvent.position.gtid must be one MariaDB GTID, domain-server-sequence "
            "(e.g. 0-1-100), not a list",
        ),
    )

    def to_worker(self) -> dict[str, Any]:
        """The shape ferry_runtime.config.SkipEvent's position accepts."""
        return self.model_dump(by_alias=True, exclude_none=True)


class SkipEvent(Model):
    """Skip one binlog event, once per nonce (GitOps-safe: re-applying does nothing)."""

    position: SkipEventPosition = Field(
        description="The event: {file, pos} as a PoisonRow error shows it, or {gtid}."
    )
    nonce: str = Field(min_length=1, max_length=253, description="Applied once per distinct nonce.")


class SnapshotRequest(Model):
    """Snapshot tables again while the binlog keeps flowing, once per nonce."""

    tables: list[str] = Field(
        min_length=1,
        max_length=256,
        description="database.table globs of the selected tables to read again (or, with "
        "cancel, whose re-read to stop).",
        json_schema_extra=_glob_items("snapshotRequest.tables"),
    )
    cancel: bool = Field(
        default=False,
        description="Stop re-reading these tables (a re-read started by an earlier nonce): "
        "their rows delivered so far stand, and their changes stream on.",
    )
    nonce: str = Field(min_length=1, max_length=253, description="Applied once per distinct nonce.")
    where: str | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        pattern=r"^[^;]*$",
        description="An SQL condition on the tables' columns limiting the rows read again "
        "(e.g. created_at > '2026-01-01'), added to every chunk read of these tables; no ';', "
        "at most 1000 characters. Rows outside it are not restated. See docs/snapshot.md.",
    )


class VerifyRequest(Model):
    """Compare the source with the sink chunk by chunk over the primary key, once per nonce
    (docs/verification.md)."""

    tables: list[str] | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="database.table globs of the selected tables to verify; default: all.",
        json_schema_extra=_glob_items("verifyRequest.tables"),
    )
    repair: bool | None = Field(
        default=None,
        description="MySQL sink only: rewrite the mismatched rows from the source.",
    )
    chunk_size: int | None = Field(
        default=None, ge=1, le=100_000, description="Rows per checksum chunk; default 1000."
    )
    nonce: str = Field(min_length=1, max_length=253, description="Applied once per distinct nonce.")

    def to_worker(self) -> dict[str, Any]:
        """The shape ferry_runtime.config.VerifyRequest accepts."""
        return self.model_dump(by_alias=True, exclude_none=True)


class VerifySchedule(Model):
    """Start a verification (as a spec.verifyRequest would) at each tick of a cron schedule
    (docs/verification.md#periodic-checks-verifyschedule)."""

    schedule: str = Field(
        min_length=1,
        max_length=100,
        description="A cron expression (5 fields: minute hour day-of-month month day-of-week, "
        "or @daily etc.), read in timeZone. Each tick starts a check with the nonce "
        "scheduled-<tick, UTC> unless one is still running or waiting to run (then the tick "
        "is skipped); spec.paused suspends the schedule.",
        json_schema_extra=cel(
            (matches(CRON_PATTERN), cron_message("spec.verifySchedule.schedule"))
        ),
    )
    time_zone: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="The IANA time zone the schedule is read in (e.g. Europe/Berlin); default UTC.",
        json_schema_extra=cel(
            (matches(TIME_ZONE_PATTERN), time_zone_message("spec.verifySchedule.timeZone"))
        ),
    )
    tables: list[str] | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="database.table globs of the selected tables to verify; default: all.",
        json_schema_extra=_glob_items("verifySchedule.tables"),
    )
    repair: bool | None = Field(
        default=None,
        description="MySQL sink only: rewrite the mismatched rows from the source.",
    )
    chunk_size: int | None = Field(
        default=None, ge=1, le=100_000, description="Rows per checksum chunk; default 1000."
    )

    def request(self, nonce: str) -> VerifyRequest:
        """The verifyRequest one tick starts."""
        return VerifyRequest(
            tables=self.tables, repair=self.repair, chunk_size=self.chunk_size, nonce=nonce
        )


class TaskFields(Model):
    """The fields a SyncTask and a TaskTemplate share."""

    source: SourceSpec | None = Field(default=None, description="What to read.")
    sink: SinkSpec | None = Field(default=None, description="Where to write.")
    mapping: list[Mapping] | None = Field(
        default=None, max_length=256, description="Table and column renames, column drops."
    )
    mode: Literal["snapshot+cdc", "cdc", "snapshot"] | None = Field(
        default=None,
        description="snapshot+cdc (default), cdc, or snapshot (ends in phase Completed).",
    )
    start_position: Position | None = Field(
        default=None, description="Where cdc starts without a checkpoint."
    )
    delivery: Literal["exactly-once", "at-least-once"] | None = Field(
        default=None, description="exactly-once (default) or at-least-once."
    )
    on_position_unavailable: Literal["fail", "resnapshot"] | None = Field(
        default=None,
        description="When the checkpoint's binlog was purged: fail (default; the task stops "
        "with PositionUnavailable) or resnapshot (snapshot every table again, then stream on).",
    )
    snapshot_new_tables: bool | None = Field(
        default=None,
        description="true: a table newly selected by a changed source.include/exclude is "
        "snapshotted alone while the other tables stream on, then streams. false (default): "
        "it only streams, from the task's current position. See docs/snapshot.md.",
    )
    performance: Performance | None = Field(default=None, description="Batching.")
    restart_policy: RestartPolicy | None = Field(default=None, description="Retries.")
    error_policy: ErrorPolicy | None = Field(default=None, description="Undeliverable rows.")
    alerts: Alerts | None = Field(default=None, description="Degraded thresholds.")
    heartbeat: Heartbeat | None = Field(
        default=None,
        description="Write a heartbeat row into the source at an interval (off when absent): "
        "the checkpoint moves on an idle source and a stalled stream shows as lag.",
    )
    worker: WorkerSpec | None = Field(default=None, description="The worker pod.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] | None = Field(
        default=None,
        description="The worker's log level; default INFO. Applied live: no restart.",
    )
    log_format: Literal["text", "json"] | None = Field(
        default=None,
        description="The worker's log lines: text (default) or json (one JSON object per "
        "line: time, level, logger, message and extra fields). Applied live: no restart.",
    )
    revision_history_limit: int | None = Field(
        default=None, ge=1, le=100, description="Config revisions kept; default 10."
    )
    start_timeout: str | None = duration_field(
        "startTimeout",
        "How long a started worker may take to report before the task is Stalled "
        "(reason StartTimeout); default 5m.",
    )
    # Scheduled runs and notifications (models in api/scheduling.py).
    schedule: str | None = schedule_field()
    time_zone: str | None = time_zone_field()
    notifications: list[Notification] | None = Field(
        default=None,
        max_length=10,
        description="Webhooks the operator POSTs JSON to when the task fails, stalls, "
        "recovers or completes; it retries with backoff and records delivery in "
        "status.notifications.",
    )


class SyncTaskSpec(TaskFields):
    """The desired sync task."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "has(self.templateRef) || (has(self.source) && has(self.source.connectorRef))",
                "spec.source.connectorRef is required (or a templateRef that sets it)",
                ".source",
            ),
            (
                "has(self.templateRef) || (has(self.sink) && has(self.sink.connectorRef))",
                "spec.sink.connectorRef is required (or a templateRef that sets it)",
                ".sink",
            ),
            (
                "has(self.templateRef) || (has(self.sink) && (has(self.sink.kafka)"
                " || has(self.sink.mysql)))",
                "spec.sink needs exactly one of kafka and mysql",
                ".sink",
            ),
            (
                "!has(self.resumeAt) || (has(self.paused) && self.paused)",
                "spec.resumeAt needs spec.paused: true (paused until then)",
                ".resumeAt",
            ),
            (
                "!has(self.mode) || self.mode != 'snapshot' || !has(self.startPosition)",
                "spec.startPosition does not apply to mode snapshot",
                ".startPosition",
            ),
            (
                "!has(self.verifyRequest) || !has(self.verifyRequest.repair)"
                " || !self.verifyRequest.repair || !has(self.sink) || !has(self.sink.kafka)",
                "spec.verifyRequest.repair needs a MySQL sink (a Kafka topic keeps its history)",
                ".verifyRequest",
            ),
            (
                "!has(self.verifySchedule) || !has(self.verifySchedule.repair)"
                " || !self.verifySchedule.repair || !has(self.sink) || !has(self.sink.kafka)",
                "spec.verifySchedule.repair needs a MySQL sink (a Kafka topic keeps its history)",
                ".verifySchedule",
            ),
            (
                "!has(self.verifySchedule) || !has(self.mode) || self.mode != 'snapshot'",
                "spec.verifySchedule needs a streaming task (mode snapshot+cdc or cdc): a "
                "mode: snapshot worker ends after its copy",
                ".verifySchedule",
            ),
            (
                "!has(self.schedule) || has(self.templateRef)"
                " || (has(self.mode) && self.mode == 'snapshot')",
                "spec.schedule needs spec.mode: snapshot (each tick runs one snapshot)",
                ".schedule",
            ),
            (
                "!has(self.timeZone) || has(self.schedule) || has(self.templateRef)",
                "spec.timeZone needs spec.schedule (it is the zone the schedule is read in)",
                ".timeZone",
            ),
        )
    )

    template_ref: LocalObjectRef | None = Field(
        default=None, description="A TaskTemplate whose spec.template supplies defaults."
    )
    paused: bool | None = Field(
        default=None, description="Scale the worker to 0 (it checkpoints first)."
    )
    resume_at: str | None = Field(
        default=None,
        description="With paused: true, run again from this time on (RFC 3339); "
        "the operator does not edit spec to do so.",
        json_schema_extra={"format": "date-time"},
    )
    reset_position: ResetPosition | None = Field(
        default=None, description="Move the position, once per nonce."
    )
    restart_nonce: str | None = Field(
        default=None, min_length=1, max_length=253, description="Change to restart the worker once."
    )
    snapshot_request: SnapshotRequest | None = Field(
        default=None, description="Snapshot tables again while streaming, once per nonce."
    )
    skip_event: SkipEvent | None = Field(
        default=None,
        description="Skip one binlog event (e.g. a poison row that stops the task), once per "
        "nonce; status.lastSkip and an EventSkipped Event record it.",
    )
    verify_request: VerifyRequest | None = Field(
        default=None,
        description="Compare the source with the sink, once per nonce; status.verification "
        "and an Event record the result.",
    )
    verify_schedule: VerifySchedule | None = Field(
        default=None,
        description="Compare the source with the sink periodically: a verification (as "
        "verifyRequest) at each tick of a cron schedule, never two at once; "
        "status.nextVerification and status.scheduledVerification record the ticks.",
    )


# Worker-owned objects may be sent empty ({}), which server-side apply stores as null.
_NULLABLE: dict[str, Any] = {"nullable": True}


class TableStatus(Model):
    """Snapshot progress of one table."""

    name: str = Field(description="database.table.")
    rows_done: int | None = Field(default=None, description="Rows copied.")
    rows_total: int | None = Field(default=None, description="Rows estimated.")
    state: str | None = Field(default=None, description="Pending, Running or Done.")


class Progress(Model):
    """Snapshot progress."""

    percent: float | None = Field(default=None, description="Percent done.")
    rows_done: int | None = Field(default=None, description="Rows copied.")
    rows_total: int | None = Field(default=None, description="Rows estimated.")
    eta: str | None = Field(
        default=None, description="Estimated end.", json_schema_extra={"nullable": True}
    )
    tables: list[TableStatus] | None = Field(default=None, description="Per table.")
    display: str | None = Field(
        default=None,
        description="Percent done as `kubectl get` shows it (`42%`); none without a snapshot.",
    )


class PositionStatus(Model):
    """The checkpointed position."""

    file: str | None = Field(default=None, description="Binlog file.")
    pos: int | None = Field(default=None, description="Offset in file.")
    gtid: str | None = Field(default=None, description="GTID position.")
    timestamp: str | None = Field(default=None, description="Time of the newest event.")
    display: str | None = Field(
        default=None,
        description="The position as `kubectl get` shows it: `binlog.000042:1234` (file:pos), "
        "else the GTID position (cut to 40 characters).",
    )


class Lag(Model):
    """Replication lag."""

    seconds: float | None = Field(default=None, description="Seconds behind the source.")
    display: str | None = Field(
        default=None, description="The lag as `kubectl get` shows it (`12m58s`)."
    )


class Throughput(Model):
    """Delivery rate."""

    events_per_second: float | None = Field(default=None, description="Events per second.")


class Counters(Model):
    """Totals since the task started, kept across worker restarts (stored with the
    checkpoint)."""

    events: int | None = Field(default=None, description="Events delivered.")
    errors: int | None = Field(default=None, description="Errors seen.")
    restarts: int | None = Field(
        default=None, description="Restarts of the worker's pipeline after transient errors."
    )
    restarts_since_start: int | None = Field(
        default=None,
        description="Of those, the restarts since the worker process started (for "
        "information: restartPolicy.maxRetries caps status.retry.streak and "
        "status.workerPod.restartStreak).",
    )
    resnapshots: int | None = Field(
        default=None,
        description="Recoveries by onPositionUnavailable: resnapshot (a purged binlog "
        "replaced by a new snapshot); status.lastResnapshot holds the last.",
    )


class Retry(Model):
    """The worker's restart streak (restartPolicy)."""

    streak: int | None = Field(
        default=None,
        description="Consecutive failures; 0 again after restartPolicy.resetAfter of healthy "
        "progress. Over restartPolicy.maxRetries the task stops (TooManyRestarts).",
    )
    next_retry_time: str | None = Field(
        default=None,
        description="When the next retry starts, while the worker waits (backoff with jitter).",
        json_schema_extra={"format": "date-time"},
    )


class ErrorEntry(Model):
    """One recent error."""

    time: str | None = Field(default=None, description="When.")
    reason: str | None = Field(default=None, description="CamelCase cause.")
    message: str | None = Field(default=None, description="What happened.")
    table: str | None = Field(
        default=None, description="Table involved.", json_schema_extra={"nullable": True}
    )
    position: str | None = Field(
        default=None, description="file:pos.", json_schema_extra={"nullable": True}
    )


class SkipStatus(Model):
    """The last skipEvent the worker applied (kept in its checkpoint)."""

    nonce: str | None = Field(default=None, description="The skipEvent's nonce.")
    position: str | None = Field(
        default=None, description="file:pos of the row event skipped (the last, for a GTID)."
    )
    gtid: str | None = Field(default=None, description="Its transaction's GTID, when known.")
    table: str | None = Field(default=None, description="The table(s) of the skipped event(s).")
    events: int | None = Field(default=None, description="Row events skipped.")
    time: str | None = Field(
        default=None, description="When.", json_schema_extra={"format": "date-time"}
    )


class VerificationKey(Model):
    """One mismatched row."""

    table: str | None = Field(default=None, description="The source table (database.table).")
    key: str | None = Field(default=None, description="Its primary key values, as JSON.")


class VerificationStatus(Model):
    """The last spec.verifyRequest: running, or its result (kept in the checkpoint)."""

    nonce: str | None = Field(default=None, description="The verifyRequest's nonce.")
    state: str | None = Field(default=None, description="Running, Completed or Failed.")
    start_time: str | None = Field(
        default=None, description="When it started.", json_schema_extra={"format": "date-time"}
    )
    time: str | None = Field(
        default=None, description="When it finished.", json_schema_extra={"format": "date-time"}
    )
    tables: list[str] | None = Field(default=None, description="Source tables compared.")
    chunks: int | None = Field(default=None, description="Primary-key chunks compared.")
    rows: int | None = Field(default=None, description="Source rows compared.")
    mismatched_rows: int | None = Field(
        default=None, description="Keys whose rows differ in the sink (drift)."
    )
    unsettled_rows: int | None = Field(
        default=None,
        description="Keys that kept changing through every re-check: not judged, not counted.",
    )
    repaired_rows: int | None = Field(
        default=None, description="Rows rewritten from the source (repair: true)."
    )
    sample_keys: list[VerificationKey] | None = Field(
        default=None, description="Up to 20 mismatched keys."
    )
    skipped_tables: list[str] | None = Field(
        default=None, description="Tables that could not be compared, with why."
    )
    message: str | None = Field(default=None, description="Why it failed.")


class ResnapshotStatus(Model):
    """The last onPositionUnavailable: resnapshot recovery (kept in the worker's checkpoint)."""

    time: str | None = Field(
        default=None,
        description="When the worker found the binlog purged and started a new snapshot.",
        json_schema_extra={"format": "date-time"},
    )
    position: str | None = Field(
        default=None, description="file:pos of the checkpoint whose binlog was gone."
    )
    finished_time: str | None = Field(
        default=None,
        description="When the new snapshot finished and streaming went on (absent while it runs).",
        json_schema_extra={"format": "date-time"},
    )


class WorkerPodStatus(Model):
    """Operator-owned: the newest worker pod and the restarts of all of them."""

    name: str | None = Field(default=None, description="The newest worker pod.")
    phase: str | None = Field(default=None, description="Its phase (Pending, Running, …).")
    restart_count: int | None = Field(
        default=None, description="Its container restarts, as the kubelet counts them."
    )
    restarts: int | None = Field(
        default=None, description="Restarts of the task's worker pods over the task's life."
    )
    restarts_since_start: int | None = Field(
        default=None, description="Of those, since the operator last started the worker."
    )
    restart_streak: int | None = Field(
        default=None,
        description="Of those, the restarts in a row: 0 again when the operator starts the "
        "worker, and once the worker has run restartPolicy.resetAfter since its pod last "
        "restarted and reports Streaming or Snapshotting. Over restartPolicy.maxRetries the "
        "task stops (TooManyRestarts).",
    )
    reason: str | None = Field(
        default=None,
        description="Why the pod does not run: CrashLoopBackOff, ImagePullBackOff, OOMKilled, "
        "Unschedulable, SecretNotFound, SecretKeyNotFound, FailedCreate, ….",
    )
    message: str | None = Field(default=None, description="What happened and what to do.")
    since: str | None = Field(
        default=None,
        description="When the worker last exited, for a crash loop or an OOM kill: a report "
        "after it comes from a worker that runs again.",
        json_schema_extra={"format": "date-time"},
    )
    summary: str | None = Field(
        default=None, description="Where the pod is, in words (`pod x is Pending, …`)."
    )


class SyncTaskStatus(Model):
    """Operator-owned: phase, observedGeneration, conditions, configRevision, scheduledResume,
    lastResetNonce, lastRestartNonce, lastSkipNonce, lastVerifyNonce, lastResnapshotAnnounced,
    lastKeylessRestartAnnounced, lastStartTime, workerPod. Worker-owned:
    the rest."""

    phase: Phase | None = Field(default=None, description="Where the task is in its life.")
    observed_generation: int | None = Field(
        default=None, description="The spec generation the status describes."
    )
    conditions: list[Condition] | None = Field(
        default=None,
        description="Ready, Reconciling, Stalled, Degraded; Recovering once the task has "
        "re-snapshotted after a purged binlog (onPositionUnavailable: resnapshot).",
    )
    config_revision: str | None = Field(
        default=None, description="The newest config revision (the ConfigMap <task>-r<N>)."
    )
    applied_revision: str | None = Field(
        default=None,
        description="Worker-owned: the config revision the running worker applies. It "
        "reaches configRevision without a restart when only live fields changed (rules, "
        "batching, logging: see docs/operations.md), after the pod's restart otherwise.",
    )
    scheduled_resume: str | None = Field(
        default=None,
        description="When a paused task resumes (from spec.resumeAt).",
        json_schema_extra={"format": "date-time"},
    )
    last_reset_nonce: str | None = Field(default=None, description="The reset applied last.")
    last_restart_nonce: str | None = Field(default=None, description="The restart done last.")
    last_skip_nonce: str | None = Field(
        default=None,
        description="The skip (status.lastSkip) the operator has announced with an "
        "EventSkipped Event.",
    )
    last_verify_nonce: str | None = Field(
        default=None,
        description="The verification (status.verification) the operator has announced with "
        "an Event.",
    )
    last_resnapshot_announced: str | None = Field(
        default=None,
        description="The time of the recovery (status.lastResnapshot) the operator has "
        "announced with a PositionUnavailableResnapshot Event.",
    )
    last_keyless_restart_announced: str | None = Field(
        default=None,
        description="The time of the newest KeylessSnapshotRestarted entry of "
        "status.lastErrors the operator has announced with an Event of that reason.",
    )
    last_start_time: str | None = Field(
        default=None,
        description="When the operator last started the worker (create, resume, new config, "
        "restart); worker fields reported before it are not used.",
        json_schema_extra={"format": "date-time"},
    )
    worker_state: str | None = Field(default=None, description="The worker's own state.")
    position: PositionStatus | None = Field(
        default=None, description="Checkpointed position.", json_schema_extra=_NULLABLE
    )
    lag: Lag | None = Field(
        default=None, description="Lag behind the source.", json_schema_extra=_NULLABLE
    )
    throughput: Throughput | None = Field(
        default=None, description="Delivery rate.", json_schema_extra=_NULLABLE
    )
    progress: Progress | None = Field(
        default=None, description="Snapshot progress.", json_schema_extra=_NULLABLE
    )
    counters: Counters | None = Field(
        default=None, description="Totals.", json_schema_extra=_NULLABLE
    )
    retry: Retry | None = Field(
        default=None, description="Restart streak and next retry.", json_schema_extra=_NULLABLE
    )
    last_errors: list[ErrorEntry] | None = Field(
        default=None, description="The newest 10.", json_schema_extra=_NULLABLE
    )
    last_skip: SkipStatus | None = Field(
        default=None,
        description="The last spec.skipEvent applied: what was skipped, where and when.",
        json_schema_extra=_NULLABLE,
    )
    verification: VerificationStatus | None = Field(
        default=None,
        description="The last spec.verifyRequest: running, or what it found.",
    )
    last_resnapshot: ResnapshotStatus | None = Field(
        default=None,
        description="The last recovery from a purged binlog (onPositionUnavailable: "
        "resnapshot): when, from which position, and when its new snapshot finished.",
        json_schema_extra=_NULLABLE,
    )
    worker_pod: WorkerPodStatus | None = Field(
        default=None,
        description="The worker's pod as the operator sees it (restarts, and why it does not "
        "run when it does not).",
        json_schema_extra=_NULLABLE,
    )
    selected_tables: int | None = Field(
        default=None,
        description="How many source tables spec.source.include/exclude select now "
        "(0: Degraded=True NoTablesSelected; re-checked as tables appear).",
    )
    heartbeat_time: str | None = Field(
        default=None,
        description="The worker's last report.",
        json_schema_extra={"format": "date-time"},
    )
    # Operator-owned: snapshot runs (reconcile/schedule.py).
    next_run: str | None = Field(
        default=None,
        description="The next tick of spec.schedule (none while paused).",
        json_schema_extra={"format": "date-time"},
    )
    active_run: ActiveRun | None = Field(
        default=None, description="The snapshot run going on now (mode: snapshot)."
    )
    last_run: RunStatus | None = Field(
        default=None, description="The last finished snapshot run (mode: snapshot)."
    )
    runs: list[RunStatus] | None = Field(
        default=None, max_length=10, description="The last 10 finished runs, newest first."
    )
    # Operator-owned: spec.verifySchedule (reconcile/verify_schedule.py).
    next_verification: str | None = Field(
        default=None,
        description="The next tick of spec.verifySchedule (none while paused).",
        json_schema_extra={"format": "date-time"},
    )
    scheduled_verification: ScheduledVerificationStatus | None = Field(
        default=None,
        description="What spec.verifySchedule did last: the last tick, the check it started, "
        "or why it skipped that tick. The check's result is in status.verification.",
    )
    # Owned by the notifier (field manager ferry-notifier).
    notifications: list[NotificationStatus] | None = Field(
        default=None, max_length=10, description="The last 10 notifications, newest first."
    )


class SyncTask(Resource):
    """A whole SyncTask manifest or API object (status is not parsed)."""

    spec: SyncTaskSpec = Field(description="The desired task.")
