"""Probe an endpoint for what a sync needs. MySQL/MariaDB: reachable with these credentials
(enough for a sink), and apart from that what reading its binlog as a source needs: binlog
on, ROW format, FULL row image, binlog_row_metadata and the replication grants. Kafka:
reachable, and transactions usable (a transactional producer initialises). Each probe
returns the missing things as sentences; the password is used to connect and never appears
in a message."""

from __future__ import annotations

import contextlib
import os
import re
import ssl
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ferry_runtime.tls import client_context

__all__ = ["ProbeResult", "ProbeTLS", "assess_mysql", "probe_kafka", "probe_mysql"]

TIMEOUT_SECONDS = 5
_AUTH_CODES = (1045, 1044, 1698)
_SSL_CONNECTION_ERROR = 2026


@dataclass(frozen=True)
class ProbeTLS:
    """TLS material read from the Connector's Secrets (PEM text), and where it came from:
    ``ca_source`` names the CA's Secret for messages (never its content)."""

    mode: str = "verify-identity"
    ca_pem: str | None = None
    cert_pem: str | None = None
    key_pem: str | None = None
    ca_source: str = "the system CAs"


@contextlib.contextmanager
def _pem_files(cert: str, key: str) -> Iterator[tuple[str, str]]:
    """The client certificate and key as files readable only by us, removed afterwards
    (ssl.SSLContext.load_cert_chain reads files only)."""
    with tempfile.TemporaryDirectory(prefix="ferry-probe-") as directory:
        paths = (os.path.join(directory, "tls.crt"), os.path.join(directory, "tls.key"))
        for path, text in zip(paths, (cert, key), strict=True):
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as out:
                out.write(text)
        yield paths


def _mysql_ssl(tls: ProbeTLS | None) -> dict[str, Any]:
    """pymysql.connect arguments for ``tls``: the worker's context (ferry_runtime.tls), from
    the PEM text of the Secrets instead of mounted files."""
    if tls is None or tls.mode == "disabled":
        return {"ssl_disabled": True}
    if tls.mode == "preferred":
        return {}
    if tls.cert_pem and tls.key_pem:
        with _pem_files(tls.cert_pem, tls.key_pem) as (cert, key):
            context = client_context(tls.mode, ca_pem=tls.ca_pem, cert_file=cert, key_file=key)
    else:
        context = client_context(tls.mode, ca_pem=tls.ca_pem)
    return {"ssl": context}


@dataclass(frozen=True)
class ProbeResult:
    """``missing`` is empty when the endpoint can be used at all (reachable, credentials
    work); ``source_missing`` (MySQL) what it lacks to be read as a binlog source, which a
    sink does not need; ``server`` is what was seen."""

    missing: list[str]
    reason: str = "Ready"
    server: dict[str, Any] = field(default_factory=dict)
    source_missing: list[str] = field(default_factory=list)
    source_reason: str = "Ready"


def _grants_cover(grants: list[str], privilege: str) -> bool:
    for grant in grants:
        head = grant.split(" ON ", 1)[0].upper()
        on = grant.split(" ON ", 1)[1] if " ON " in grant else ""
        if not on.strip().startswith("*.*"):
            continue
        if "ALL PRIVILEGES" in head or privilege in head:
            return True
    return False


def _connect_mysql(host: str, port: int, user: str, password: str, tls: ProbeTLS | None) -> Any:
    import pymysql

    return pymysql.connect(
        host=host,
        port=port,
        user=user,
        password=password,
        connect_timeout=TIMEOUT_SECONDS,
        read_timeout=TIMEOUT_SECONDS,
        **_mysql_ssl(tls),
    )


def _mysql_failure(
    error: Exception, host: str, port: int, user: str, password: str, tls: ProbeTLS | None
) -> ProbeResult:
    """Why connecting failed, as one actionable sentence (TLS problems named as such)."""
    import pymysql

    code = error.args[0] if error.args and isinstance(error.args[0], int) else 0
    text = str(error.args[1]) if len(error.args) > 1 else str(error)
    lowered = text.lower()
    where = f"{host}:{port}"
    if "certificate verify failed" in lowered or "certificate_verify_failed" in lowered:
        source = tls.ca_source if tls else "the system CAs"
        detail = text.split("certificate verify failed", 1)[-1].strip(" :)")
        return ProbeResult(
            [
                f"the TLS certificate of {where} cannot be verified with the CA from {source}"
                + (f" ({detail})" if detail else "")
                + ": check spec.mysql.tls.caSecretRef and that the certificate names the host"
            ],
            "TLSVerificationFailed",
        )
    if code == _SSL_CONNECTION_ERROR or "ssl is required" in lowered:
        return ProbeResult(
            [f"{where} offers no TLS, but spec.mysql.tls.mode is {tls.mode if tls else '?'}"],
            "TLSUnavailable",
        )
    if "insecure transport" in lowered or "secure transport" in lowered:
        return ProbeResult(
            [f"{where} accepts TLS connections only: set spec.mysql.tls (e.g. mode: verify-ca "
             "with caSecretRef)"],
            "TLSRequired",
        )  # fmt: skip
    if code in _AUTH_CODES:
        if tls is None or tls.mode == "disabled":
            # A user created with REQUIRE SSL is refused like a wrong password without TLS:
            # ask again over TLS (unverified: only to tell the two apart) before saying so.
            with contextlib.suppress(pymysql.err.MySQLError, OSError):
                _connect_mysql(host, port, user, password, ProbeTLS("required")).close()
                return ProbeResult(
                    [
                        f"{where} accepts user {user!r} over TLS only (REQUIRE SSL): set "
                        "spec.mysql.tls (e.g. mode: verify-ca with caSecretRef)"
                    ],
                    "TLSRequired",
                )
        return ProbeResult(
            [f"access denied for user {user!r}: check the password in the Secret"],
            "AuthenticationFailed",
        )
    return ProbeResult([f"cannot connect to {where} (MySQL error {code})"], "Unreachable")


def probe_mysql(
    host: str, port: int, user: str, password: str, tls: ProbeTLS | None = None
) -> ProbeResult:
    import pymysql

    try:
        conn = _connect_mysql(host, port, user, password, tls)
    except pymysql.err.OperationalError as error:
        return _mysql_failure(error, host, port, user, password, tls)
    except ssl.SSLError as error:  # the CA or client certificate itself is unusable
        source = tls.ca_source if tls else "the system CAs"
        return ProbeResult(
            [f"the TLS settings cannot be used ({error.reason or 'bad PEM'}): check the CA "
             f"from {source} and spec.mysql.tls.clientCertSecretRef"],
            "TLSVerificationFailed",
        )  # fmt: skip
    with conn, conn.cursor() as cur:
        cur.execute("SELECT VERSION()")
        version = str(cur.fetchone()[0])
        cur.execute(
            "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('log_bin', 'binlog_format', "
            "'binlog_row_image', 'binlog_row_metadata', 'gtid_mode', 'gtid_domain_id')"
        )
        variables = {name.lower(): str(value) for name, value in cur.fetchall()}
        cur.execute("SHOW GRANTS FOR CURRENT_USER()")
        grants = [str(row[0]) for row in cur.fetchall()]
    return assess_mysql(user, version, variables, grants)


def assess_mysql(
    user: str, version: str, variables: dict[str, str], grants: list[str]
) -> ProbeResult:
    """What the server lacks to be read as a binlog source (pure: from what the probe read);
    it connected, so it is usable as a sink."""
    mariadb = "mariadb" in version.lower()
    server: dict[str, Any] = {
        "version": version,
        "flavor": "mariadb" if mariadb else "mysql",
        "logBin": variables.get("log_bin", "").upper() == "ON",
        "binlogFormat": variables.get("binlog_format"),
        "binlogRowImage": variables.get("binlog_row_image"),
        "binlogRowMetadata": variables.get("binlog_row_metadata"),
        "gtidMode": variables.get("gtid_mode") or variables.get("gtid_domain_id"),
    }
    missing = []
    if not server["logBin"]:
        missing.append("the binlog is off (log_bin=OFF): start the server with log_bin")
    if (server["binlogFormat"] or "").upper() != "ROW":
        missing.append(f"binlog_format is {server['binlogFormat']}, needs ROW")
    if (server["binlogRowImage"] or "").upper() != "FULL":
        missing.append(f"binlog_row_image is {server['binlogRowImage']}, needs FULL")
    metadata = (server["binlogRowMetadata"] or "").upper()
    if metadata and metadata != "FULL":
        missing.append(f"binlog_row_metadata is {metadata}, needs FULL (column names)")
    needed = ["REPLICATION SLAVE", "SELECT"]
    needed.append(
        "BINLOG MONITOR"
        if mariadb and _mariadb_has_binlog_monitor(version)
        else "REPLICATION CLIENT"
    )
    for privilege in needed:
        alternative = {"REPLICATION SLAVE": "REPLICATION REPLICA"}.get(privilege, privilege)
        if not (_grants_cover(grants, privilege) or _grants_cover(grants, alternative)):
            missing.append(
                f"user {user!r} lacks the {privilege} privilege (GRANT {privilege} ON *.*)"
            )
    reason = (
        "Ready"
        if not missing
        else ("MissingGrant" if all("privilege" in m for m in missing) else "BinlogNotUsable")
    )
    return ProbeResult([], "Ready", server, missing, reason)


def _mariadb_has_binlog_monitor(version: str) -> bool:
    match = re.match(r"(\d+)\.(\d+)", version)
    return match is not None and (int(match.group(1)), int(match.group(2))) >= (10, 5)


def probe_kafka(
    bootstrap: str, settings: dict[str, str], tls: ProbeTLS | None = None
) -> ProbeResult:
    """``settings``: security.protocol and the SASL settings; ``tls``: CA and client
    certificate (PEM, given to librdkafka in memory)."""
    from confluent_kafka import KafkaError, KafkaException, Producer
    from confluent_kafka.admin import AdminClient

    common: dict[str, Any] = {"bootstrap.servers": bootstrap, **settings}
    if tls is not None:
        if tls.ca_pem:
            common["ssl.ca.pem"] = tls.ca_pem
        if tls.cert_pem and tls.key_pem:
            common["ssl.certificate.pem"] = tls.cert_pem
            common["ssl.key.pem"] = tls.key_pem
    seen: list[KafkaError] = []
    lock = threading.Lock()

    def on_error(error: KafkaError) -> None:
        with lock:
            seen.append(error)

    common["error_cb"] = on_error
    common["log_level"] = 0  # the errors reach on_error; no librdkafka lines in our log
    admin = AdminClient(common)
    try:
        admin.list_topics(timeout=TIMEOUT_SECONDS)
    except KafkaException as error:
        admin.poll(0)  # serve the queued error callbacks
        with lock:
            errors = [*seen, error.args[0]] if error.args else list(seen)
        return _kafka_failure(bootstrap, settings, tls, errors)
    producer = Producer(
        {
            **common,
            "transactional.id": f"ferry-probe-{uuid.uuid4().hex[:12]}",
            "transaction.timeout.ms": 10_000,
        }
    )
    try:
        producer.init_transactions(TIMEOUT_SECONDS * 2)
    except KafkaException as error:
        return ProbeResult(
            [f"Kafka transactions are not usable: {error.args[0].str()}"], "TransactionsUnavailable"
        )
    return ProbeResult([])


def _kafka_failure(
    bootstrap: str, settings: dict[str, str], tls: ProbeTLS | None, errors: list[Any]
) -> ProbeResult:
    """Why Kafka could not be listed: SASL refused, TLS unverifiable, or unreachable. Built
    from error codes and our own words; librdkafka's text is not repeated."""
    from confluent_kafka import KafkaError

    codes = {getattr(e, "code", lambda: None)() for e in errors}
    texts = " ".join(str(getattr(e, "str", lambda: "")()) for e in errors).lower()
    if KafkaError._AUTHENTICATION in codes or "authentication failed" in texts:
        user = settings.get("sasl.username", "")
        mechanism = settings.get("sasl.mechanism", "")
        return ProbeResult(
            [f"Kafka at {bootstrap} refused the SASL credentials of user {user!r} "
             f"({mechanism}): check the username and password in spec.kafka.sasl.secretRef"],
            "AuthenticationFailed",
        )  # fmt: skip
    if "certificate verify failed" in texts or "broker certificate could not be verified" in texts:
        source = tls.ca_source if tls else "the system CAs"
        return ProbeResult(
            [f"the TLS certificate of Kafka at {bootstrap} cannot be verified with the CA from "
             f"{source}: check spec.kafka.tls.caSecretRef and that the certificate names the "
             "host"],
            "TLSVerificationFailed",
        )  # fmt: skip
    if KafkaError._SSL in codes or "ssl handshake failed" in texts or "bad certificate" in texts:
        return ProbeResult(
            [f"the TLS handshake with Kafka at {bootstrap} failed: check securityProtocol, "
             "spec.kafka.tls (a listener with mutual TLS needs clientCertSecretRef)"],
            "TLSHandshakeFailed",
        )  # fmt: skip
    return ProbeResult([f"Kafka at {bootstrap} is unreachable"], "Unreachable")
