"""Smoke test: the test MariaDB writes a row-based binlog that python-mysql-replication reads
with real column names and correct unsigned values (needs binlog_row_metadata=FULL)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent

pytestmark = pytest.mark.mysql


def binlog_position(conn: Any) -> tuple[str, int]:
    with conn.cursor() as cur:
        cur.execute("SHOW MASTER STATUS")
        file, pos = cur.fetchone()[:2]
    return str(file), int(pos)


def _images(row: dict[str, Any]) -> dict[str, Any]:
    """The row images of one binlog row, without the library's bookkeeping keys."""
    return {key: row[key] for key in ("values", "before_values", "after_values") if key in row}


def test_server_is_configured_for_row_based_cdc(mysql_connect: Callable[..., Any]) -> None:
    with mysql_connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT @@log_bin, @@binlog_format, @@binlog_row_image, @@binlog_row_metadata")
        assert cur.fetchone() == (1, "ROW", "FULL", "FULL")


def test_replication_user_holds_exactly_the_sync_grants(mysql_connect: Callable[..., Any]) -> None:
    with mysql_connect() as conn, conn.cursor() as cur:
        cur.execute("SHOW GRANTS")
        grants = " ".join(row[0] for row in cur.fetchall())
    for privilege in ("SELECT", "RELOAD", "REPLICATION SLAVE", "BINLOG MONITOR"):
        assert privilege in grants
    assert "ALL PRIVILEGES" not in grants


def test_rows_come_back_from_the_binlog(
    mysql_connect: Callable[..., Any], database: str, testenv: Any
) -> None:
    with mysql_connect(admin=True, database=database) as conn, conn.cursor() as cur:
        cur.execute(
            "CREATE TABLE item (id INT UNSIGNED PRIMARY KEY, big BIGINT UNSIGNED,"
            " tiny TINYINT UNSIGNED, name VARCHAR(40)) CHARACTER SET utf8mb4"
        )
        file, pos = binlog_position(conn)
        cur.execute(
            "INSERT INTO item VALUES (4000000000, 18446744073709551615, 255, %s)",
            ("caf\u00e9 \U0001f6a2",),
        )
        cur.execute("UPDATE item SET tiny = 200, name = 'renamed' WHERE id = 4000000000")
        cur.execute("DELETE FROM item WHERE id = 4000000000")

    stream = BinLogStreamReader(
        connection_settings=testenv.mysql,
        server_id=4242,
        log_file=file,
        log_pos=pos,
        resume_stream=True,
        blocking=False,
        only_schemas=[database],
        only_events=[WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent],
    )
    try:
        events = [(type(event).__name__, [_images(row) for row in event.rows]) for event in stream]
    finally:
        stream.close()

    inserted = {
        "id": 4000000000,
        "big": 18446744073709551615,
        "tiny": 255,
        "name": "caf\u00e9 \U0001f6a2",
    }
    updated = {**inserted, "tiny": 200, "name": "renamed"}
    assert events == [
        ("WriteRowsEvent", [{"values": inserted}]),
        ("UpdateRowsEvent", [{"before_values": inserted, "after_values": updated}]),
        ("DeleteRowsEvent", [{"values": updated}]),
    ]
