"""The source MariaDB restarted mid-stream: the worker retries with backoff, counts and shows
the error, resumes from its checkpoint, and delivers every change exactly once. The server is
a private mariadbd (tests/integration/scratch.py), so the shared one is never restarted."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from tests.integration.scratch import ScratchMariaDB

pytestmark = [pytest.mark.mysql, pytest.mark.kafka]


def test_source_restart_mid_stream_loses_and_repeats_nothing(
    scratch: ScratchMariaDB,
    make_config: Callable[..., dict[str, Any]],
    run_worker: Callable[..., Any],
    kafka_bootstrap: str,
    topic_prefix: str,
    helpers: Any,
) -> None:
    with scratch.root() as conn, conn.cursor() as cur:
        cur.execute("CREATE DATABASE shop")
        cur.execute("CREATE TABLE shop.t (id INT PRIMARY KEY, note VARCHAR(20))")
        cur.executemany("INSERT INTO shop.t VALUES (%s, 'before')", [(i,) for i in range(1, 201)])

    config = make_config(
        include=["shop.*"],
        restartPolicy={"maxRetries": 20, "backoff": "200ms", "maxBackoff": "2s"},
    )
    config["source"] = {**config["source"], "host": "127.0.0.1", "port": scratch.port}
    worker = run_worker(config)
    helpers.wait_until(lambda: worker.tracker.events >= 200, 60, "the snapshot")

    # Writes keep coming on one side of the restart and the other.
    def write(first: int, last: int) -> None:
        with scratch.root() as conn, conn.cursor() as cur:
            for i in range(first, last + 1):
                cur.execute("INSERT INTO shop.t VALUES (%s, 'live')", (i,))
                cur.execute("UPDATE shop.t SET note = 'updated' WHERE id = %s", (i - 200,))

    writer = threading.Thread(target=write, args=(201, 400))
    writer.start()
    writer.join()
    scratch.stop_server()
    time.sleep(2)  # the worker sees the connection drop and backs off
    scratch.start_server()
    write(401, 600)

    expected = 200 + 2 * 400  # snapshot rows, then an insert and an update per live row
    helpers.wait_until(lambda: worker.tracker.events >= expected, 120, "every change")
    assert worker.tracker.restarts >= 1
    assert worker.tracker.errors_by_reason.get("ConnectionLost", 0) >= 1, worker.tracker.view()
    assert worker.tracker.state == "Streaming"

    records = helpers.read_topic(kafka_bootstrap, f"{topic_prefix}.shop.t")
    per_change = Counter((v["type"], v["data"]["id"]) for _, v in records)
    assert all(count == 1 for count in per_change.values()), per_change.most_common(3)
    assert len(records) == expected
    final = helpers.replay(records)
    assert len(final) == 600
    assert sum(1 for row in final.values() if row["note"] == "updated") == 400


def test_binlog_purged_below_the_checkpoint_exits_with_position_unavailable(
    scratch: ScratchMariaDB,
    make_config: Callable[..., dict[str, Any]],
    spawn_worker: Callable[..., Any],
    helpers: Any,
) -> None:
    with scratch.root() as conn, conn.cursor() as cur:
        cur.execute("CREATE DATABASE shop")
        cur.execute("CREATE TABLE shop.t (id INT PRIMARY KEY)")
        cur.execute("INSERT INTO shop.t VALUES (1), (2), (3)")
    config = make_config(include=["shop.*"])
    config["source"] = {**config["source"], "host": "127.0.0.1", "port": scratch.port}
    worker = spawn_worker(config)
    helpers.wait_until(
        lambda: ((worker.status() or {}).get("counters") or {}).get("events", 0) >= 3,
        60,
        "the snapshot",
    )
    worker.process.terminate()
    assert worker.wait(30) == 0, worker.output()  # checkpoint committed in binlog.000001

    # While the worker is away, the server rotates and purges the file it stopped in.
    with scratch.root() as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO shop.t VALUES (4)")
        cur.execute("FLUSH BINARY LOGS")
    scratch.purge_all_but_the_newest()

    restarted = spawn_worker(config)
    assert restarted.wait(60) == 1, restarted.output()
    assert "failed: PositionUnavailable:" in restarted.output()
    assert "resetPosition" in restarted.output()  # says what to do
    assert scratch.password not in restarted.output()


def test_on_position_unavailable_resnapshot_recovers_a_purged_binlog_with_complete_data(
    scratch: ScratchMariaDB,
    make_config: Callable[..., dict[str, Any]],
    spawn_worker: Callable[..., Any],
    kafka_bootstrap: str,
    topic_prefix: str,
    helpers: Any,
) -> None:
    with scratch.root() as conn, conn.cursor() as cur:
        cur.execute("CREATE DATABASE shop")
        cur.execute("CREATE TABLE shop.t (id INT PRIMARY KEY, note VARCHAR(20))")
        cur.execute("INSERT INTO shop.t VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    config = make_config(include=["shop.*"], onPositionUnavailable="resnapshot")
    config["source"] = {**config["source"], "host": "127.0.0.1", "port": scratch.port}

    def status(worker: Any) -> dict[str, Any]:
        return worker.status() or {}

    worker = spawn_worker(config)
    helpers.wait_until(lambda: status(worker).get("state") == "Streaming", 60, "streaming")
    worker.process.terminate()
    assert worker.wait(30) == 0, worker.output()

    # While the worker is away: changes, then the binlog holding them is purged.
    with scratch.root() as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO shop.t VALUES (4, 'd'), (5, 'e')")
        cur.execute("UPDATE shop.t SET note = 'a2' WHERE id = 1")
        cur.execute("DELETE FROM shop.t WHERE id = 2")
        cur.execute("FLUSH BINARY LOGS")
    scratch.purge_all_but_the_newest()

    restarted = spawn_worker(config)
    helpers.wait_until(lambda: status(restarted).get("state") == "Streaming", 60, "resnapshot")
    with scratch.root() as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO shop.t VALUES (6, 'streamed after it')")
    helpers.wait_until(
        lambda: len(helpers.read_topic(kafka_bootstrap, f"{topic_prefix}.shop.t")) >= 3 + 4 + 1,
        60,
        "the new snapshot and the insert after it",
    )
    records = helpers.read_topic(kafka_bootstrap, f"{topic_prefix}.shop.t")
    errors = status(restarted)["lastErrors"]
    recovered = status(restarted)
    restarted.process.terminate()
    assert restarted.wait(30) == 0, restarted.output()

    # The recovery is counted and recorded beside the checkpoint: a later worker shows it
    # as it was (one recovery, finished), and does not count it again.
    last = recovered["lastResnapshot"]
    assert recovered["counters"]["resnapshots"] == 1, recovered["counters"]
    purged_file = last["position"].split(":")[0]
    assert f"binlog {purged_file} is not on the server" in errors[0]["message"], (last, errors)
    assert last["finishedTime"] >= last["time"], last
    again = spawn_worker(config)
    helpers.wait_until(lambda: status(again).get("state") == "Streaming", 60, "streaming again")
    assert status(again)["counters"]["resnapshots"] == 1
    assert status(again)["lastResnapshot"] == last
    again.process.terminate()
    assert again.wait(30) == 0, again.output()

    # The first snapshot (1, 2, 3), then the new one holding the purged changes, then the
    # insert streamed after it; replaying the new snapshot on gives the source.
    kinds = [(v["type"], v["data"]["id"]) for _, v in records]
    assert kinds == [("bootstrap-insert", i) for i in (1, 2, 3, 1, 3, 4, 5)] + [("insert", 6)]
    with scratch.root() as conn, conn.cursor() as cur:
        cur.execute("SELECT id, note FROM shop.t")
        source = {(row[0],): {"id": row[0], "note": row[1]} for row in cur.fetchall()}
    assert helpers.replay(records[3:]) == source
    assert [e["reason"] for e in errors] == ["PositionUnavailable"]
    assert "Re-snapshotting (onPositionUnavailable: resnapshot)" in errors[0]["message"]
