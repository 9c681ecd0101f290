"""snapshotNewTables: a table added to include by a new config is snapshotted alone while
the task's other tables stream on, then streams; under concurrent writes to both, the new
table's consumer sees each key's snapshot row (or insert) first and every later change once,
in order, and the old table is not read again."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from tests.integration.runtime.conftest import Pipeline
from tests.integration.runtime.test_snapshot_chaos import Writer, check

pytestmark = [pytest.mark.mysql, pytest.mark.kafka]


def _updates(sql: Callable[..., Any], table: str, stop: threading.Event) -> list[int]:
    """Updates of the old table, each to a new value, until ``stop``."""
    done: list[int] = []
    value = 0
    while not stop.is_set():
        value += 1
        sql(f"UPDATE {table} SET v = %s WHERE id = %s", (value, 1 + value % 50))
        done.append(value)
        time.sleep(0.005)
    return done


@pytest.mark.timeout(180)
def test_a_newly_included_table_is_snapshotted_while_the_others_stream(
    pipeline: Pipeline,
) -> None:
    sql, db, database = pipeline.sql, pipeline.db, pipeline.database
    rows = 3_000
    sql(f"CREATE TABLE {db}.a (id int PRIMARY KEY, v int)")
    sql(f"INSERT INTO {db}.a SELECT seq, 0 FROM {db}.seq_1_to_50")
    sql(f"CREATE TABLE {db}.k (id int PRIMARY KEY, seq bigint)")
    sql(f"INSERT INTO {db}.k SELECT 2 * seq, 0 FROM {db}.seq_1_to_{rows}")
    performance = {"snapshotChunkSize": 50, "batchSize": 200}
    worker = pipeline.run(include=[f"{database}.a"], performance=performance)
    pipeline.wait_streaming(worker)

    writer = Writer(sql, f"{db}.k", rows)  # k changes before and while it is added
    writer.start()
    stop = threading.Event()
    values: list[list[int]] = []
    updater = threading.Thread(target=lambda: values.append(_updates(sql, f"{db}.a", stop)))
    updater.start()
    time.sleep(1)
    assert worker.stop() == 0

    worker = pipeline.run(
        include=[f"{database}.a", f"{database}.k"],
        performance=performance,
        snapshotNewTables=True,
    )

    def k_state() -> str:
        progress = worker.tracker.tables.get(f"{database}.k")
        return progress.state if progress is not None else ""

    pipeline.wait_until(lambda: k_state() == "Running", 30, "the snapshot of k")
    a_during = worker.tracker.events_by_table_op.get((f"{database}.a", "update"), 0)
    pipeline.wait_until(lambda: k_state() == "Done", 90, "k snapshotted")
    # a streamed on while k was read: its updates kept arriving during the snapshot.
    a_after = worker.tracker.events_by_table_op.get((f"{database}.a", "update"), 0)
    pipeline.wait_streaming(worker)
    time.sleep(1)
    writer.done.set()
    stop.set()
    writer.join()
    updater.join()
    pipeline.wait_caught_up(worker, 60, "the last changes")
    assert worker.stop() == 0

    tables = {t["name"]: t for t in worker.tracker.progress()["tables"]}
    assert set(tables) == {f"{database}.k"} or tables[f"{database}.a"]["rowsDone"] == 50
    assert a_after > a_during, (a_during, a_after)
    records = pipeline.records("k")
    verdict = check(records, writer.history)
    assert verdict.clean, f"{verdict}\n" + "\n".join(verdict.examples)
    assert Counter(v["type"] for _, v in records)["bootstrap-insert"] > 0
    source = {(r[0],): {"id": r[0], "seq": r[1]} for r in sql(f"SELECT id, seq FROM {db}.k")}
    assert pipeline.replay(records) == source

    a_records = pipeline.records("a")
    reads = Counter(v["data"]["id"] for _, v in a_records if v["type"] == "bootstrap-insert")
    assert set(reads.values()) == {1} and len(reads) == 50  # a is not read again
    updates = [v["data"]["v"] for _, v in a_records if v["type"] == "update"]
    assert sorted(updates) == values[0], "every update of a once"
