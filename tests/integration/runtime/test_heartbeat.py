"""spec.heartbeat on a real MariaDB (a private one: the shared server is never idle, and this
test freezes its server) and Kafka: a source user without the grant is stopped with the SQL
to run; with it, the worker's beats move the checkpoint on an idle source, keep the lag near
0, never reach the sink, and make a stalled stream show as lag. Without heartbeat the same
stall reads as lag 0 and the checkpoint stays put, so the measure comes from the beats."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from tests.integration.runtime.conftest import WorkerThread, read_topic
from tests.integration.scratch import ScratchMariaDB
from tests.support import wait_until

from ferry_runtime import heartbeat

pytestmark = [pytest.mark.mysql, pytest.mark.kafka]

# Above the server's own heartbeat (1 s of silence), which still comes between the beats.
INTERVAL = 2.0
STALL = 6.0


@contextmanager
def frozen(server: ScratchMariaDB) -> Iterator[None]:
    """SIGSTOP the server: its connections stay open and say nothing (a stalled stream)."""
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.process.pid, signal.SIGCONT)


def _max_lag(worker: WorkerThread, seconds: float) -> float:
    deadline, worst = time.monotonic() + seconds, 0.0
    while time.monotonic() < deadline:
        worst = max(worst, worker.tracker.lag_seconds())
        time.sleep(0.1)
    return worst


def _positions(worker: WorkerThread, seconds: float) -> set[tuple[str, int]]:
    seen: set[tuple[str, int]] = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        position = worker.tracker.position
        if position:
            seen.add((position["file"], position["pos"]))
        time.sleep(0.1)
    return seen


def test_heartbeat_keeps_lag_true_on_an_idle_source(
    scratch: ScratchMariaDB,
    make_config: Callable[..., dict[str, Any]],
    run_worker: Callable[[dict[str, Any]], WorkerThread],
    kafka_bootstrap: str,
    topic_prefix: str,
) -> None:
    with scratch.root() as conn, conn.cursor() as cur:
        cur.execute("CREATE DATABASE shop")
        cur.execute("CREATE TABLE shop.t (id int PRIMARY KEY)")
    source = {"host": "127.0.0.1", "port": scratch.port}
    table = "ferry_meta.heartbeat"

    def config(name: str, **extra: Any) -> dict[str, Any]:
        data = make_config(mode="cdc", include=["shop.*", "ferry_meta.*"], **extra)
        data["source"].update(source)
        data["task"]["name"] = f"{data['task']['name'][:50]}-{name}"
        return data

    beating = config("beat", heartbeat={"interval": f"{INTERVAL}s", "table": table})

    # The source user may not create the table: stopped at once, with the SQL to run.
    refused = run_worker(beating)
    assert refused.join(60) == 1
    failure = refused.worker.failure
    assert failure is not None and failure.reason == "InsufficientPrivileges", failure
    setup = heartbeat.setup_sql(table, "ferry")
    assert setup in failure.message
    with scratch.root() as conn, conn.cursor() as cur:
        for statement in setup.split("; "):
            cur.execute(statement)

    worker = run_worker(beating)
    wait_until(lambda: worker.tracker.state == "Streaming", 60, "streaming")
    wait_until(lambda: worker.tracker.last_heartbeat_delivered is not None, 30, "a beat")

    # Idle: every beat moves the checkpoint, and lag stays near 0.
    assert len(_positions(worker, 3 * INTERVAL)) >= 3, "the checkpoint did not move with beats"
    assert _max_lag(worker, 2 * INTERVAL) < 0.5, worker.tracker.view()["lag"]
    with scratch.root() as conn, conn.cursor() as cur:
        cur.execute("SELECT task, ts_ms FROM ferry_meta.heartbeat")
        ((task, ts_ms),) = cur.fetchall()
    assert task == worker.worker.task_id and ts_ms / 1000 > time.time() - 5 * INTERVAL
    # include ferry_meta.* is a glob, not the table's name: no heartbeat row is data.
    assert read_topic(kafka_bootstrap, f"{topic_prefix}.ferry_meta.heartbeat") == []

    # A stalled stream: nothing arrives, the server says nothing, the beats show it.
    with frozen(scratch):
        stalled = _max_lag(worker, STALL)
    assert stalled >= STALL - INTERVAL - 1, stalled
    wait_until(lambda: worker.tracker.lag_seconds() < 0.5, 40, "the lag to come back")
    assert worker.stop() == 0

    # Without heartbeat: the checkpoint stays where it is, and the same stall reads as 0.
    plain = run_worker(config("plain"))
    wait_until(lambda: plain.tracker.state == "Streaming", 60, "streaming")
    wait_until(lambda: plain.tracker.caught_up, 30, "caught up (the server's heartbeat)")
    assert len(_positions(plain, 2 * INTERVAL)) == 1
    with frozen(scratch):
        assert _max_lag(plain, STALL / 2) == 0.0
    assert plain.stop() == 0
