"""The Connector resource: an endpoint (a MySQL/MariaDB server or a Kafka cluster) that many
SyncTasks reuse. Credentials are Secret references, never values."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from ferry_operator.api.base import Condition, Model, Resource, SecretKeyRef, cel

__all__ = [
    "SASL",
    "Connector",
    "ConnectorSpec",
    "ConnectorStatus",
    "KafkaEndpoint",
    "MySQLEndpoint",
    "MySQLServerInfo",
    "MySQLTLS",
]


class MySQLTLS(Model):
    """TLS towards the MySQL server."""

    enabled: bool = Field(default=True, description="Use TLS for the connection.")
    verify: bool = Field(default=True, description="Verify the server certificate and name.")
    ca_secret_ref: SecretKeyRef | None = Field(
        default=None, description="Secret key holding the CA bundle (PEM)."
    )


class MySQLEndpoint(Model):
    """Where and how to reach a MySQL or MariaDB server."""

    host: str = Field(min_length=1, max_length=253, description="Host name or IP address.")
    port: int = Field(default=3306, ge=1, le=65535, description="TCP port.")
    user: str = Field(min_length=1, max_length=80, description="User name.")
    password_secret_ref: SecretKeyRef = Field(description="Secret key holding the password.")
    tls: MySQLTLS | None = Field(default=None, description="TLS settings; default: no TLS.")


class SASL(Model):
    """SASL authentication towards Kafka."""

    mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        description="SASL mechanism."
    )
    secret_ref: str = Field(
        min_length=1,
        max_length=253,
        description="Name of a Secret with keys 'username' and 'password'.",
    )


class KafkaEndpoint(Model):
    """Where and how to reach a Kafka cluster."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "!has(self.sasl) || self.securityProtocol.startsWith('SASL_')",
                "sasl needs securityProtocol SASL_PLAINTEXT or SASL_SSL",
            )
        )
    )

    bootstrap_servers: str = Field(
        min_length=1,
        max_length=4096,
        pattern=r"^[^\s,]+:[0-9]+(,[^\s,]+:[0-9]+)*$",
        description="Comma-separated host:port list.",
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="Kafka security.protocol."
    )
    sasl: SASL | None = Field(default=None, description="SASL settings.")


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


class Connector(Resource):
    """A whole Connector manifest or API object (status is not parsed)."""

    spec: ConnectorSpec = Field(description="The endpoint.")
