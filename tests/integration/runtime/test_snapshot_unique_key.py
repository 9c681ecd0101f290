"""Tables without a primary key. One with a UNIQUE key over NOT NULL columns is chunked,
resumed and keyed on that key: under the chaos test's writer and SIGKILLs inside its
snapshot, every key's records stay in step with its history, as for a primary key. One with
neither is read in one pass; when a crash cuts that pass short, the restart is said in
status.lastErrors (KeylessSnapshotRestarted, with the table) and in the log."""

from __future__ import annotations

import random
import signal
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from tests.integration.runtime.conftest import Pipeline
from tests.integration.runtime.test_snapshot_chaos import (
    Writer,
    _rows_done,
    _status,
    _wait_chunk,
    _wait_started,
    _wait_streaming,
    check,
)

pytestmark = [pytest.mark.mysql, pytest.mark.kafka]


@pytest.mark.timeout(300)
def test_a_unique_key_stands_in_for_the_primary_key_across_sigkills(
    pipeline: Pipeline, spawn_worker: Callable[..., Any]
) -> None:
    rows, kills, streaming_kills = 3_000, 8, 2
    sql, table = pipeline.sql, f"{pipeline.db}.k"
    # No primary key: a unique key over a nullable column does not qualify, one over NOT
    # NULL columns does (the keyless test shows the nullable one alone leaves no key).
    sql(
        f"CREATE TABLE {table} (id int NOT NULL, seq bigint, KEY by_seq (seq), "
        "UNIQUE KEY nullable_seq_id (seq, id), UNIQUE KEY by_id (id))"
    )
    sql(f"INSERT INTO {table} SELECT 2 * seq, 0 FROM {pipeline.db}.seq_1_to_{rows}")
    config = pipeline.config(performance={"snapshotChunkSize": 50, "batchSize": 200})
    writer = Writer(sql, table, rows)
    writer.start()
    worker = first = spawn_worker(config)
    chaos = random.Random(7)
    phases: Counter[str] = Counter()
    rows_done = 0
    started = time.monotonic()
    for kill in range(kills):
        _wait_started(pipeline, worker)
        if kill < kills - streaming_kills and _status(worker).get("state") != "Streaming":
            _wait_chunk(pipeline, worker, max(rows_done, _rows_done(worker)))
            time.sleep(chaos.uniform(0, 0.2))
        else:
            _wait_streaming(pipeline, worker)
            time.sleep(chaos.uniform(0, 0.5))
        status = _status(worker)
        phases[str(status.get("state"))] += 1
        rows_done = max(rows_done, int((status.get("progress") or {}).get("rowsDone") or 0))
        worker.process.send_signal(signal.SIGKILL)
        worker.wait()
        worker = spawn_worker(config)
    writer.done.set()
    writer.join()
    target = pipeline.server_position()

    def caught_up() -> bool:
        status = _status(worker)
        position = status.get("position") or {}
        at = (position.get("file"), position.get("pos") or 0)
        return status.get("state") == "Streaming" and bool(position) and at >= target

    pipeline.wait_until(caught_up, 120, "catching up")
    worker.process.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0, worker.output()
    assert "its unique key by_id (id) stands in for it" in first.output()
    records = pipeline.records("k")
    verdict = check(records, writer.history)
    summary = (
        f"{kills} SIGKILLs by state {dict(phases)}; {len(records)} records, {verdict.keys} "
        f"keys: {verdict.duplicated} duplicated, {verdict.lost} lost, {verdict.bad_first} bad "
        f"first; {time.monotonic() - started:.0f}s"
    )
    print(summary)
    assert phases["Snapshotting"] >= kills - streaming_kills - 2, summary
    assert verdict.clean, summary + "\n" + "\n".join(verdict.examples)
    assert all(v["primary_key"] == [v["data"]["id"]] for _, v in records)  # keyed by id
    source = {(r[0],): {"id": r[0], "seq": r[1]} for r in sql(f"SELECT id, seq FROM {table}")}
    assert pipeline.replay(records) == source, summary


@pytest.mark.timeout(180)
def test_a_keyless_pass_cut_short_says_that_it_starts_over(
    pipeline: Pipeline, spawn_worker: Callable[..., Any]
) -> None:
    sql, table, name = pipeline.sql, f"{pipeline.db}.nokey", f"{pipeline.database}.nokey"
    sql(f"CREATE TABLE {table} (id int, note varchar(20), UNIQUE KEY maybe_null (id))")
    sql(f"INSERT INTO {table} SELECT seq, 'x' FROM {pipeline.db}.seq_1_to_30000")
    config = pipeline.config(performance={"snapshotChunkSize": 50, "batchSize": 200})
    worker = spawn_worker(config)
    _wait_started(pipeline, worker)
    pipeline.wait_until(lambda: _rows_done(worker) > 0, 60, "the first rows of the pass")
    assert _status(worker).get("state") == "Snapshotting", "the pass ended too soon"
    worker.process.send_signal(signal.SIGKILL)
    worker.wait()
    assert "KeylessSnapshotRestarted" not in worker.output()  # a first pass is no restart

    worker = spawn_worker(config)
    _wait_streaming(pipeline, worker, timeout=90)
    errors = _status(worker).get("lastErrors") or []
    worker.process.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0, worker.output()
    restarted = [e for e in errors if e["reason"] == "KeylessSnapshotRestarted"]
    assert len(restarted) == 1, errors
    assert restarted[0]["table"] == name
    assert "starts over in a new consistent read" in restarted[0]["message"]
    assert f"KeylessSnapshotRestarted: the snapshot of {name}" in worker.output()
    # The table did not change: the restarted pass skipped what was delivered, no more.
    reads = Counter(v["data"]["id"] for _, v in pipeline.records("nokey"))
    assert len(reads) == 30_000 and set(reads.values()) == {1}
