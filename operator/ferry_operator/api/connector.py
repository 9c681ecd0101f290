"""The Connector resource: an endpoint (a MySQL/MariaDB server or a Kafka cluster) that many
SyncTasks reuse. Credentials are Secret references, never values."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from ferry_operator.api.base import (
    DNS_SUBDOMAIN,
    HOST_PATTERN,
    KEY_MESSAGE,
    NAME_MESSAGE,
    SECRET_KEY,
    Condition,
    Model,
    Resource,
    SecretKeyRef,
    SecretRef,
    cel,
    must_match,
)

__all__ = [
    "SASL",
    "CASecretRef",
    "Connector",
    "ConnectorSpec",
    "ConnectorStatus",
    "KafkaEndpoint",
    "KafkaTLS",
    "MySQLEndpoint",
    "MySQLServerInfo",
    "MySQLTLS",
    "OffsetsTopic",
    "SchemaRegistry",
    "TLSFiles",
]


class CASecretRef(Model):
    """A key of a Secret holding CA certificates (PEM)."""

    name: str = Field(
        min_length=1,
        max_length=253,
        description="Name of the Secret.",
        json_schema_extra=must_match(DNS_SUBDOMAIN, f"name {NAME_MESSAGE}"),
    )
    key: str = Field(
        default="ca.crt",
        min_length=1,
        max_length=253,
        description="Key holding the PEM bundle; default ca.crt.",
        json_schema_extra=must_match(SECRET_KEY, f"key {KEY_MESSAGE}"),
    )


class TLSFiles(Model):
    """The certificates a TLS client uses: reach the worker as Secret volumes, never through
    its ConfigMap."""

    ca_secret_ref: CASecretRef | None = Field(
        default=None,
        description="CA bundle that signed the server's certificate; default: the system CAs.",
    )
    client_cert_secret_ref: SecretRef | None = Field(
        default=None,
        description="A kubernetes.io/tls Secret (tls.crt, tls.key): the client certificate "
        "presented to the server (mutual TLS).",
    )


class MySQLTLS(TLSFiles):
    """TLS towards the MySQL server: used by the probe and by every worker connection
    (snapshot, binlog, MySQL sink)."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "!has(self.mode) || !(self.mode in ['disabled', 'preferred']) || "
                "(!has(self.caSecretRef) && !has(self.clientCertSecretRef))",
                "tls.mode disabled and preferred use no certificates: remove "
                "tls.caSecretRef and tls.clientCertSecretRef, or choose required, verify-ca or "
                "verify-identity",
                ".mode",
            )
        )
    )

    mode: Literal["disabled", "preferred", "required", "verify-ca", "verify-identity"] = Field(
        default="verify-identity",
        description="disabled: no TLS; preferred: TLS when the server offers it, unverified, "
        "no certificates; required: "
        "TLS, server certificate not verified; verify-ca: TLS with a certificate signed by the "
        "CA; verify-identity (default): verify-ca and the certificate names the host.",
    )


class MySQLEndpoint(Model):
    """Where and how to reach a MySQL or MariaDB server."""

    host: str = Field(
        min_length=1,
        max_length=253,
        description="Host name or IP address (no scheme, no port).",
        json_schema_extra=must_match(
            HOST_PATTERN, "mysql.host must be a host name or an IP address: no scheme, port or path"
        ),
    )
    port: int = Field(default=3306, ge=1, le=65535, description="TCP port.")
    user: str = Field(min_length=1, max_length=80, description="User name.")
    password_secret_ref: SecretKeyRef = Field(description="Secret key holding the password.")
    tls: MySQLTLS | None = Field(
        default=None, description="TLS settings; default: no TLS (mode disabled)."
    )


class SASL(Model):
    """SASL authentication towards Kafka."""

    mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        description="SASL mechanism."
    )
    secret_ref: str = Field(
        min_length=1,
        max_length=253,
        description="Name of a Secret with keys 'username' and 'password'.",
        json_schema_extra=must_match(DNS_SUBDOMAIN, f"sasl.secretRef {NAME_MESSAGE}"),
    )


class KafkaTLS(TLSFiles):
    """TLS towards Kafka (securityProtocol SSL or SASL_SSL); the broker's name is verified."""


class OffsetsTopic(Model):
    """The compacted topic where every task writing to this Kafka keeps its checkpoint (one
    record per task; like Kafka Connect's offset.storage.topic, a setting of the cluster)."""

    name: str = Field(
        default="ferry.offsets",
        min_length=1,
        max_length=249,
        description="Topic name: letters, digits, '.', '_' and '-'. Changing it leaves the "
        "tasks' checkpoints behind in the old topic: they start again without one (a new "
        "snapshot, or startPosition).",
        json_schema_extra=cel(
            (
                "self.matches(r'^[A-Za-z0-9._-]+$') && self != '.' && self != '..'",
                "kafka.offsetsTopic.name must be a Kafka topic name: letters, digits, '.', "
                "'_' and '-' (not '.' or '..' alone)",
            )
        ),
    )
    partitions: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="Partitions when the worker creates it; default 1.",
    )
    replication_factor: int | None = Field(
        default=None,
        ge=1,
        le=32,
        description="Replication factor when the worker creates it; default: the broker's "
        "default.replication.factor.",
    )


class SchemaRegistry(Model):
    """The Confluent-compatible schema registry where tasks with sink.kafka.format avro
    register their schemas (Confluent Schema Registry, Apicurio's /apis/ccompat/v7,
    Karapace)."""

    url: str = Field(
        min_length=1,
        max_length=2048,
        description="Base URL of the registry's Confluent-compatible API "
        "(http://registry:8081, https://apicurio:8080/apis/ccompat/v7). No credentials in "
        "it: they come from secretRef.",
        json_schema_extra=must_match(
            r"^https?://[^\s/@?#]+(/[^\s@?#]*)?$",
            "kafka.schemaRegistry.url must be an http:// or https:// URL without user info, "
            "query or fragment (credentials go in kafka.schemaRegistry.secretRef)",
        ),
    )
    secret_ref: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        description="Name of a Secret with keys 'username' and 'password': HTTP basic auth "
        "towards the registry. Unset: no authentication.",
        json_schema_extra=must_match(DNS_SUBDOMAIN, f"schemaRegistry.secretRef {NAME_MESSAGE}"),
    )


class KafkaEndpoint(Model):
    """Where and how to reach a Kafka cluster."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "!has(self.sasl) || self.securityProtocol.startsWith('SASL_')",
                "kafka.sasl needs securityProtocol SASL_PLAINTEXT or SASL_SSL",
                ".sasl",
            ),
            (
                "!self.securityProtocol.startsWith('SASL_') || has(self.sasl)",
                "securityProtocol SASL_PLAINTEXT and SASL_SSL need kafka.sasl "
                "(mechanism and secretRef)",
                ".securityProtocol",
            ),
            (
                "!has(self.tls) || self.securityProtocol.endsWith('SSL')",
                "kafka.tls needs securityProtocol SSL or SASL_SSL",
                ".tls",
            ),
        )
    )

    bootstrap_servers: str = Field(
        min_length=1,
        max_length=4096,
        description="Comma-separated host:port list.",
        json_schema_extra=must_match(
            r"^[^\s,]+:[0-9]+(,[^\s,]+:[0-9]+)*$",
            "kafka.bootstrapServers must be host:port pairs separated by commas, without "
            "spaces (kafka-0.kafka:9092,kafka-1.kafka:9092)",
        ),
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="Kafka security.protocol."
    )
    sasl: SASL | None = Field(default=None, description="SASL settings.")
    tls: KafkaTLS | None = Field(
        default=None,
        description="CA and client certificate for SSL and SASL_SSL; default: the system CAs, "
        "no client certificate.",
    )
    offsets_topic: OffsetsTopic | None = Field(
        default=None,
        description="The checkpoint topic of the tasks writing here; default ferry.offsets, "
        "1 partition. An existing topic is used as it is.",
    )
    schema_registry: SchemaRegistry | None = Field(
        default=None,
        description="The schema registry of the tasks writing here with format avro; "
        "required by them.",
    )


class ConnectorSpec(Model):
    """The desired endpoint."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "self.type == 'mysql' ? has(self.mysql) && !has(self.kafka)"
                " : has(self.kafka) && !has(self.mysql)",
                "set exactly the block matching type: mysql for type mysql, kafka for type kafka",
            )
        )
    )

    type: Literal["mysql", "kafka"] = Field(description="The kind of endpoint.")
    mysql: MySQLEndpoint | None = Field(default=None, description="For type mysql.")
    kafka: KafkaEndpoint | None = Field(default=None, description="For type kafka.")


class MySQLServerInfo(Model):
    """What the last probe found on the MySQL server."""

    version: str | None = Field(default=None, description="Server version string.")
    flavor: str | None = Field(default=None, description="mysql or mariadb.")
    log_bin: bool | None = Field(default=None, description="Whether the binlog is on.")
    binlog_format: str | None = Field(default=None, description="binlog_format.")
    binlog_row_image: str | None = Field(default=None, description="binlog_row_image.")
    binlog_row_metadata: str | None = Field(default=None, description="binlog_row_metadata.")
    gtid_mode: str | None = Field(default=None, description="gtid_mode (MySQL) or gtid domain.")


class ConnectorStatus(Model):
    """Written by the operator after probing the endpoint."""

    observed_generation: int | None = Field(
        default=None, description="The generation the status describes."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description=(
            "Ready: the endpoint is usable (reachable, credentials work). BinlogReady (mysql): "
            "its binlog can be read, which a source needs and a sink does not."
        ),
    )
    server: MySQLServerInfo | None = Field(default=None, description="MySQL probe results.")
    last_probe_time: str | None = Field(
        default=None,
        description="When it was last probed.",
        json_schema_extra={"format": "date-time"},
    )
    secret_versions: dict[str, str] | None = Field(
        default=None,
        description="resourceVersion of each Secret the last probe read (name → version): "
        "when one changes, the workers using this Connector roll to take it. Never the data.",
    )


class Connector(Resource):
    """A whole Connector manifest or API object (status is not parsed)."""

    spec: ConnectorSpec = Field(description="The endpoint.")
