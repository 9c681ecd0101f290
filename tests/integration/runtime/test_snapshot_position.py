"""The snapshot's binlog position is exact, both ways of taking it: every row committed
before it is in the snapshot and every row committed after it is in the binlog after it,
while another connection keeps inserting. The read-lock way is MySQL's; it runs here on
MariaDB (the only server installable on these machines), which proves the statements and
their order, not MySQL itself."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.row_event import WriteRowsEvent

from ferry_runtime.source.snapshot import Snapshot

pytestmark = pytest.mark.mysql


class Inserter(threading.Thread):
    """Inserts ids 1, 2, 3, ... one autocommitted transaction each, until stopped."""

    def __init__(self, connect: Callable[..., Any], table: str) -> None:
        super().__init__(daemon=True)
        self.conn, self.table = connect(admin=True), table
        self.last = 0
        self.done = threading.Event()

    def run(self) -> None:
        with self.conn.cursor() as cursor:
            while not self.done.is_set():
                cursor.execute(f"INSERT INTO {self.table} VALUES (%s)", (self.last + 1,))
                self.last += 1
        self.conn.close()


def _inserted_after(testenv: Any, database: str, position: dict[str, Any]) -> list[int]:
    """The ids of the rows inserted into ``database`` after ``position``, from the binlog."""
    settings = {k: testenv.mysql[k] for k in ("host", "port", "user", "password")}
    stream = BinLogStreamReader(
        connection_settings=settings, server_id=4242, blocking=False, resume_stream=True,
        log_file=position["file"], log_pos=position["pos"], is_mariadb=False,
        only_events=[WriteRowsEvent], only_schemas=[database],
    )  # fmt: skip
    try:
        return [row["values"]["id"] for event in stream for row in event.rows]
    finally:
        stream.close()


@pytest.mark.parametrize("read_lock", [False, True], ids=["snapshot-variables", "read-lock"])
def test_the_snapshot_position_splits_concurrent_inserts_exactly(
    read_lock: bool, database: str, mysql_connect: Callable[..., Any], testenv: Any
) -> None:
    table = f"`{database}`.t"
    with mysql_connect(admin=True) as conn, conn.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {table} (id int PRIMARY KEY)")
    inserter = Inserter(mysql_connect, table)
    inserter.start()
    time.sleep(0.5)
    with mysql_connect() as conn:  # the least-privilege user a worker runs as
        snapshot = Snapshot(conn)
        position = snapshot.begin(read_lock=read_lock)
        time.sleep(0.3)  # rows committed now are not in the snapshot
        with conn.cursor() as cursor:
            cursor.execute(f"SELECT id FROM {table}")
            seen = {row[0] for row in cursor.fetchall()}
        snapshot.end()
    time.sleep(0.3)
    inserter.done.set()
    inserter.join()

    after = _inserted_after(testenv, database, position)
    assert seen and after, (len(seen), len(after))
    assert seen.isdisjoint(after)
    assert seen | set(after) == set(range(1, inserter.last + 1))
    assert after == sorted(after)  # each id once, in commit order
