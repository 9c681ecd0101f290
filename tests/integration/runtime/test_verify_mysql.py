"""spec.verifyRequest with a MySQL sink, on the real MariaDB: after a clean run it finds
nothing; rows changed on the target behind Ferry's back (through a table and column mapping)
are found exactly, key by key; repair: true rewrites them from the source; writes going on
during the check give no false positive, and drift among them is still found."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from tests.integration.runtime import test_sink_mysql
from tests.integration.runtime.test_sink_mysql import Sink
from tests.support import wait_until

pytestmark = [pytest.mark.mysql]
# The MySQL sink tests' fixtures: a target database, a sink user with the documented grants.
target, sink_user = test_sink_mysql.target, test_sink_mysql.sink_user
mysql_config, sink = test_sink_mysql.mysql_config, test_sink_mysql.sink

SOURCE = "id int PRIMARY KEY, name varchar(40) NOT NULL, qty int, price decimal(10,2), secret text"
# The mapping renames the table and qty, and drops secret.
TARGET = "id int PRIMARY KEY, name varchar(40) NOT NULL, amount int, price decimal(10,2)"
MAPPING = [
    {"table": "*.items", "target": "goods", "columns": {"qty": "amount"}, "drop": ["secret"]}
]


def _setup(sink: Sink, rows: int) -> None:
    sink.sql(f"CREATE TABLE `{sink.source}`.items ({SOURCE})")
    sink.sql(f"CREATE TABLE `{sink.target}`.goods ({TARGET})")
    sink.sql(
        f"INSERT INTO `{sink.source}`.items VALUES (%s, %s, %s, %s, %s)",
        [(i, f"n{i}", i % 17, f"{i}.25", "x") for i in range(1, rows + 1)],
        many=True,
    )


def _verify(sink: Sink, nonce: str, timeout: float = 60, **request: Any) -> dict[str, Any]:
    """A worker with verifyRequest {nonce, **request}: its finished status.verification."""
    config = sink.config(mapping=MAPPING, verifyRequest={"nonce": nonce, **request})
    worker = sink.run(config)
    running: list[dict[str, Any]] = []  # the views seen while it ran

    def done() -> Any:
        found = worker.tracker.view()["verification"]
        if found and found["nonce"] == nonce and found["state"] == "Running":
            running.append(found)
        return found if found and found["nonce"] == nonce and found["state"] != "Running" else None

    wait_until(done, timeout, f"verification {nonce}")
    result: dict[str, Any] = done()
    assert worker.stop() == 0
    for view in running:  # a running check says since when, and no result yet
        assert view["startTime"] <= result["time"] and "mismatchedRows" not in view
    return result


def _mapped(sink: Sink, database: str, table: str, qty: str) -> list[tuple[Any, ...]]:
    return list(sink.sql(f"SELECT id, name, {qty}, price FROM `{database}`.{table} ORDER BY id"))


def test_drift_on_the_target_is_found_exactly_and_repaired(sink: Sink) -> None:
    _setup(sink, 2500)
    items, other = f"{sink.source}.items", f"{sink.source}.other"
    for database in (sink.source, sink.target):
        sink.sql(f"CREATE TABLE `{database}`.other (k varchar(10) PRIMARY KEY, v int)")
        sink.sql(f"CREATE TABLE `{database}`.logs (line text)")  # no key: not compared
    sink.sql(f"INSERT INTO {other} VALUES ('a', 1), ('b', 2)")
    first = _verify(sink, "clean", chunkSize=300)  # the snapshot runs first, then the check
    assert first["state"] == "Completed", first
    assert first["tables"] == [items, other]
    assert (first["mismatchedRows"], first["rows"], first["chunks"]) == (0, 2502, 10)
    assert first["sampleKeys"] == []
    assert first["skippedTables"] == [
        f"{sink.source}.logs: no primary key (rows cannot be matched by key)"
    ]

    goods = f"`{sink.target}`.goods"
    sink.sql(f"UPDATE {goods} SET amount = amount + 1 WHERE id IN (7, 1500)")
    sink.sql(f"UPDATE {goods} SET name = 'changed' WHERE id = 2500")  # the last chunk
    sink.sql(f"DELETE FROM {goods} WHERE id = 301")  # a chunk's first row
    sink.sql(f"INSERT INTO {goods} VALUES (9999, 'extra', 1, 1.00)")  # past the last key
    sink.sql(f"UPDATE `{sink.source}`.items SET secret = 'dropped' WHERE id = 8")  # not compared
    sink.sql(f"UPDATE `{sink.target}`.other SET v = 5 WHERE k = 'b'")
    time.sleep(1)

    found = _verify(sink, "drift", chunkSize=300, tables=[items])  # only items
    assert found["tables"] == [items] and found["mismatchedRows"] == 5, found
    keys = sorted(int(k["key"].strip("[]")) for k in found["sampleKeys"])
    assert keys == [7, 301, 1500, 2500, 9999]
    assert {k["table"] for k in found["sampleKeys"]} == {items}
    assert found["repairedRows"] == 0 and _mapped(sink, sink.target, "goods", "amount")[6][2] == 8

    fixed = _verify(sink, "repair", chunkSize=300, repair=True)
    assert (fixed["mismatchedRows"], fixed["repairedRows"]) == (6, 6), fixed
    assert {"table": other, "key": '["b"]'} in fixed["sampleKeys"]
    wait_until(
        lambda: (
            _mapped(sink, sink.source, "items", "qty")
            == _mapped(sink, sink.target, "goods", "amount")
        ),
        30,
        "the target repaired",
    )
    assert sink.sql(f"SELECT v FROM `{sink.target}`.other WHERE k = 'b'") == ((2,),)
    done = _verify(sink, "after-repair")
    assert done["mismatchedRows"] == 0
    assert done["unsettledRows"] == 0  # nothing was written during the check

    # The same nonce again (a restart, a GitOps re-apply): the result stands, nothing runs.
    sink.sql(f"DELETE FROM {goods} WHERE id = 5")
    again = _verify(sink, "after-repair")
    assert again == done


class _Writer(threading.Thread):
    """Updates, inserts and deletes on the source as fast as one connection goes."""

    def __init__(self, sql: Callable[..., Any], database: str, rows: int) -> None:
        super().__init__(daemon=True)
        self.sql, self.db, self.rows = sql, database, rows
        self.done = threading.Event()
        self.count = 0

    def run(self) -> None:
        next_id = self.rows + 1
        while not self.done.is_set():
            key = 1 + (self.count * 7919) % self.rows
            hot = 1 + self.count % 5  # keys 1-5 change all the time
            items = f"`{self.db}`.items"
            self.sql(f"UPDATE {items} SET qty = qty + 1 WHERE id IN (%s, %s)", (key, hot))
            if self.count % 4 == 0:
                self.sql(f"INSERT INTO {items} VALUES (%s, 'new', 1, 1.00, NULL)", (next_id,))
                next_id += 1
            if self.count % 9 == 0:
                self.sql(f"DELETE FROM {items} WHERE id = %s", (next_id - 2,))
            self.count += 1


def test_writes_during_the_check_are_no_drift_and_real_drift_is_still_found(
    sink: Sink,
) -> None:
    _setup(sink, 4000)
    worker = sink.run(sink.config(mapping=MAPPING))
    sink.streaming(worker)
    assert worker.stop() == 0
    # Behind Ferry's back, on a key the writer never touches (it updates ids 1..4000 by a
    # stride, but this key is outside): the one drift to find among the moving rows.
    sink.sql(f"INSERT INTO `{sink.target}`.goods VALUES (-5, 'ghost', 0, 0)")
    writer = _Writer(sink.sql, sink.source, 4000)
    writer.start()
    try:
        time.sleep(1)
        found = _verify(sink, "busy", timeout=80, chunkSize=200)
    finally:
        writer.done.set()
        writer.join(10)
    assert writer.count > 200, writer.count
    assert found["state"] == "Completed", found
    assert found["mismatchedRows"] == 1, found
    assert found["sampleKeys"] == [{"table": f"{sink.source}.items", "key": "[-5]"}]
