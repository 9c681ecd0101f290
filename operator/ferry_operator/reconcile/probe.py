"""Probe an endpoint for what a sync needs. MySQL/MariaDB: reachable with these credentials
(enough for a sink), and apart from that what reading its binlog as a source needs: binlog
on, ROW format, FULL row image, binlog_row_metadata and the replication grants. Kafka:
reachable, and transactions usable (a transactional producer initialises). Each probe
returns the missing things as sentences; the password is used to connect and never appears
in a message."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ProbeResult", "assess_mysql", "probe_kafka", "probe_mysql"]

TIMEOUT_SECONDS = 5


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


def probe_mysql(host: str, port: int, user: str, password: str) -> ProbeResult:
    import pymysql

    try:
        conn = pymysql.connect(
            host=host,
            port=port,
            user=user,
            password=password,
            connect_timeout=TIMEOUT_SECONDS,
            read_timeout=TIMEOUT_SECONDS,
        )
    except pymysql.err.OperationalError as error:
        code = error.args[0] if error.args else 0
        if code in (1045, 1044):
            return ProbeResult(
                [f"access denied for user {user!r}: check the password in the Secret"],
                "AuthenticationFailed",
            )
        return ProbeResult([f"cannot connect to {host}:{port} (MySQL error {code})"], "Unreachable")
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


def probe_kafka(bootstrap: str, settings: dict[str, str]) -> ProbeResult:
    from confluent_kafka import KafkaException, Producer
    from confluent_kafka.admin import AdminClient

    common: dict[str, str | int | float | bool] = {"bootstrap.servers": bootstrap, **settings}
    try:
        AdminClient(common).list_topics(timeout=TIMEOUT_SECONDS)
    except KafkaException:
        return ProbeResult([f"Kafka at {bootstrap} is unreachable"], "Unreachable")
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
