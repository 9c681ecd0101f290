"""Connections to the source and binlog positions.

The password is read from the environment variable named by ``source.passwordEnv`` and goes
nowhere else: errors are classified by :func:`ferry_runtime.errors.from_mysql`, which scrubs it.
"""

from __future__ import annotations

import os
from typing import Any

import MySQLdb
import pymysql
from MySQLdb.constants import FIELD_TYPE

from ferry_runtime import errors, tls
from ferry_runtime.config import (
    BinlogFilePosition,
    GtidPosition,
    Position,
    SourceConfig,
    TimestampPosition,
)
from ferry_runtime.source import positions

__all__ = [
    "DRIVER_ERRORS",
    "binary_logs",
    "check_position",
    "connect",
    "connect_reader",
    "connection_settings",
    "gtid_position",
    "password",
    "reader",
    "resolve",
    "server_position",
]

PARSE_ERROR = 1064  # ER_PARSE_ERROR: a statement this server does not know

# What either driver raises for a server or connection error (args: code, message).
DRIVER_ERRORS = (pymysql.err.MySQLError, MySQLdb.MySQLError)


def password(source: SourceConfig) -> str:
    value = os.environ.get(source.password_env)
    if value is None:
        raise errors.FatalError(
            "InvalidConfig",
            f"source.passwordEnv: the environment variable {source.password_env} is not set; "
            "set it (from a Secret on Kubernetes).",
        )
    return value


def connection_settings(source: SourceConfig) -> dict[str, Any]:
    """Settings for PyMySQL and python-mysql-replication (``password`` holds the secret)."""
    return {
        "host": source.host,
        "port": source.port,
        "user": source.user,
        "password": password(source),
        "connect_timeout": int(source.connect_timeout.total_seconds()),
        "charset": "utf8mb4",
        **tls.pymysql_args(source.tls),
    }


def connect(source: SourceConfig, **extra: Any) -> pymysql.connections.Connection[Any]:
    settings = connection_settings(source)
    try:
        return pymysql.connect(autocommit=True, **settings, **extra)
    except pymysql.err.MySQLError as error:
        raise errors.from_mysql(
            error,
            f"connecting to {source.host}:{source.port} as {source.user}",
            settings["password"],
            source.tls,
        ) from None


# The reader's values: numbers as Python numbers; DECIMAL and temporal values as the server's
# text (already their JSON value: see types.converter); text decoded; binary data and BIT as
# bytes. (The text read PyMySQL gave before, with DECIMAL and temporal converters removed.)
_READER_CONVERSIONS: dict[int, Any] = {
    **dict.fromkeys(
        (FIELD_TYPE.TINY, FIELD_TYPE.SHORT, FIELD_TYPE.LONG, FIELD_TYPE.LONGLONG,
         FIELD_TYPE.INT24, FIELD_TYPE.YEAR),
        int,
    ),
    **dict.fromkeys((FIELD_TYPE.FLOAT, FIELD_TYPE.DOUBLE), float),
    **dict.fromkeys(
        (FIELD_TYPE.DECIMAL, FIELD_TYPE.NEWDECIMAL, FIELD_TYPE.DATE, FIELD_TYPE.TIME,
         FIELD_TYPE.DATETIME, FIELD_TYPE.TIMESTAMP, FIELD_TYPE.JSON),
        str,  # a type with a converter arrives decoded (JSON: MySQL's type; MariaDB's is text)
    ),
}  # fmt: skip


def connect_reader(source: SourceConfig) -> Any:
    """A connection for reading table rows in bulk (snapshot chunks): mysqlclient, whose C
    parser reads a row about 5x faster than PyMySQL (the snapshot's largest cost), with the
    values :data:`_READER_CONVERSIONS` describes. Same settings and TLS as :func:`connect`."""
    secret = password(source)
    try:
        return reader(
            source.host, source.port, source.user, secret, source.tls,
            int(source.connect_timeout.total_seconds()),
        )  # fmt: skip
    except MySQLdb.MySQLError as error:
        raise errors.from_mysql(
            error, f"connecting to {source.host}:{source.port} as {source.user}", secret,
            source.tls,
        ) from None  # fmt: skip


def reader(
    host: str, port: int, user: str, secret: str, tls_files: Any, connect_timeout: int = 10
) -> Any:
    """The reader connection of :func:`connect_reader` to any MySQL server (a MySQL sink's
    rows are compared with the source's by verifyRequest); raises MySQLdb's errors."""
    return MySQLdb.connect(
        host=host,
        port=port,
        user=user,
        password=secret,
        connect_timeout=connect_timeout,
        charset="utf8mb4",
        autocommit=True,
        conv=_READER_CONVERSIONS,
        **tls.mysqlclient_args(tls_files),
    )


def _rows(conn: Any, sql: str) -> list[tuple[Any, ...]]:
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql)
            return list(cursor.fetchall())
    except DRIVER_ERRORS as error:
        raise errors.from_mysql(error, sql) from None


def server_position(conn: Any) -> dict[str, Any]:
    """The server's current binlog position: SHOW MASTER STATUS, or on MySQL 8.4+, where
    that statement is gone, SHOW BINARY LOG STATUS."""
    try:
        with conn.cursor() as cursor:
            cursor.execute("SHOW MASTER STATUS")
            rows = list(cursor.fetchall())
    except (pymysql.err.ProgrammingError, MySQLdb.ProgrammingError) as error:
        if error.args[0] != PARSE_ERROR:
            raise errors.from_mysql(error, "SHOW MASTER STATUS") from None
        rows = _rows(conn, "SHOW BINARY LOG STATUS")
    if not rows:
        raise errors.FatalError(
            "BinlogDisabled", "the source has no binary log; enable log_bin with binlog_format=ROW"
        )
    return {"file": rows[0][0], "pos": int(rows[0][1])}


def binary_logs(conn: Any) -> list[tuple[str, int]]:
    return [(str(row[0]), int(row[1])) for row in _rows(conn, "SHOW BINARY LOGS")]


def check_position(conn: Any, position: dict[str, Any]) -> None:
    """Raise PositionUnavailable when ``position`` is not on the server any more."""
    logs = dict(binary_logs(conn))
    size = logs.get(position["file"])
    if size is None:
        oldest = min(logs) if logs else "none"
        raise errors.FatalError(
            "PositionUnavailable",
            f"binlog {position['file']} is not on the server (oldest: {oldest}); it was purged "
            "or never existed. Set resetPosition with a new nonce (e.g. to: earliest) and "
            "re-snapshot if the data must be complete.",
        )
    if position["pos"] > size:
        raise errors.FatalError(
            "InvalidPosition",
            f"position {position['file']}:{position['pos']} is past the end of that file "
            f"({size} bytes). Set resetPosition with a new nonce.",
        )


def resolve(conn: Any, position: Position) -> dict[str, Any]:
    """A config Position → a concrete {file, pos} (see :mod:`.positions` for gtid and
    timestamp)."""
    if position == "latest":
        return server_position(conn)
    if position == "earliest":
        logs = binary_logs(conn)
        return {"file": logs[0][0], "pos": 4}
    if isinstance(position, BinlogFilePosition):
        resolved = {"file": position.file, "pos": position.pos}
        check_position(conn, resolved)
        return resolved
    if isinstance(position, GtidPosition):
        return positions.after_gtids(conn, position.gtid)
    if isinstance(position, TimestampPosition):
        return positions.at_time(conn, position.timestamp)
    raise errors.FatalError("InvalidConfig", f"unknown position {position!r}")


def gtid_position(conn: Any, position: dict[str, Any]) -> dict[int, positions.Gtid] | None:
    """MariaDB: the GTID position at a binlog coordinate (the last GTID of each domain before
    it, as BINLOG_GTID_POS says; the server reads that binlog up to the coordinate). None
    where the server cannot say: MySQL, or a coordinate it does not know."""
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT BINLOG_GTID_POS(%s, %s)", (position["file"], position["pos"]))
            row = cursor.fetchone()
    except pymysql.err.MySQLError:
        return None
    if row is None or row[0] is None:
        return None
    return {gtid.domain: gtid for gtid in positions.parse_gtids(str(row[0]), one_per_domain=False)}
