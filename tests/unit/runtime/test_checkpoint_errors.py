"""The checkpoint record round-trips; errors are classified and never carry a password."""

from __future__ import annotations

import pymysql

from ferry_runtime import checkpoint, errors
from ferry_runtime.checkpoint import (
    Checkpoint,
    Counters,
    ResnapshotRecord,
    SnapshotState,
    TableState,
)


def test_checkpoint_round_trip() -> None:
    state = Checkpoint(
        position={"file": "binlog.000003", "pos": 1234},
        reset_nonce="n1",
        snapshot=SnapshotState(
            position={"file": "binlog.000002", "pos": 4},
            tables={
                "db.a": TableState(True, [10], 10),
                "db.b": TableState(False, ["k", 2], 5, restate=True, where="id > 1"),
            },
            planned=True,
        ),
        time=12.5,
        snapshot_nonce="again-1",
        counters=Counters(7, 2, 1, resnapshots=1),
        resnapshot=ResnapshotRecord(11.0, "binlog.000001:4", finished=12.0),
        selection={"include": ["db.*"], "exclude": ["db.tmp_*"]},
    )
    assert checkpoint.decode(checkpoint.encode(state, "ns.task")) == state
    assert checkpoint.decode(checkpoint.encode(Checkpoint(), "t")) == Checkpoint()
    assert checkpoint.format_position(state.position) == "binlog.000003:1234"


def test_mysql_errors_are_classified() -> None:
    denied = pymysql.err.OperationalError(
        1045, "Access denied for user 'ferry'@'x' (using password: YES)"
    )
    assert isinstance(errors.from_mysql(denied, "connect"), errors.FatalError)
    assert errors.from_mysql(denied, "connect").reason == "AuthenticationFailed"
    purged = pymysql.err.OperationalError(
        1236, "Could not find first log file name in binary log index file"
    )
    assert errors.from_mysql(purged, "binlog").reason == "PositionUnavailable"
    privileges = pymysql.err.OperationalError(
        1227, "Access denied; you need the REPLICATION SLAVE privilege"
    )
    assert errors.from_mysql(privileges, "binlog").reason == "InsufficientPrivileges"
    lost = pymysql.err.OperationalError(2013, "Lost connection to MySQL server during query")
    assert isinstance(errors.from_mysql(lost, "binlog"), errors.TransientError)


def test_messages_never_hold_the_password() -> None:
    error = pymysql.err.OperationalError(1045, "bad login hunter2 password=hunter2")
    message = errors.from_mysql(error, "connect", secret="hunter2").message
    assert "hunter2" not in message
    assert "s3cret" not in errors.scrub("password: s3cret")


def test_scrubbing_keeps_the_rest_of_the_message() -> None:
    message = "Access denied for user 'ferry'@'10.0.0.7' (using password: YES)"
    assert errors.scrub(message) == message
    assert errors.scrub("(using password: NO)") == "(using password: NO)"
    assert errors.scrub("dsn host=db password=s3cret port=1") == "dsn host=db password=*** port=1"
    assert errors.scrub("pwd: s3cret, then") == "pwd: ***, then"
    assert errors.scrub("(password=s3cret)") == "(password=***)"
    denied = pymysql.err.OperationalError(1045, message)
    assert "(using password: YES)" in errors.from_mysql(denied, "connect").message
