"""Transient errors: a lost MySQL connection is retried from the checkpoint, counted and shown
in status, and loses or repeats nothing."""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.integration.runtime.conftest import Pipeline

pytestmark = [pytest.mark.mysql, pytest.mark.kafka]


def _local_ports_to(port: int) -> set[int]:
    """Local ports of this process's TCP connections to ``port`` (from /proc)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            found = re.match(r"socket:\[(\d+)\]", os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            continue
        if found:
            inodes.add(found.group(1))
    ports = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, inode = fields[1], fields[2], fields[9]
        if inode in inodes and int(remote.split(":")[1], 16) == port:
            ports.add(int(local.split(":")[1], 16))
    return ports


def test_lost_mysql_connection_is_retried_counted_and_loses_nothing(
    pipeline: Pipeline,
    testenv: Any,
) -> None:
    sql, table = pipeline.sql, f"{pipeline.db}.t"
    sql(f"CREATE TABLE {table} (id int PRIMARY KEY)")
    worker = pipeline.run(mode="cdc")
    pipeline.wait_streaming(worker)
    sql(f"INSERT INTO {table} VALUES (1), (2)")
    pipeline.wait_until(lambda: worker.tracker.events >= 2, 30, "the first events")

    ours = _local_ports_to(testenv.mysql["port"])
    dumps = [
        row[0]
        for row in sql("SHOW PROCESSLIST")
        if row[4] == "Binlog Dump" and int(str(row[2]).rsplit(":", 1)[-1]) in ours
    ]
    assert len(dumps) == 1, dumps
    sql(f"INSERT INTO {table} VALUES (3)")
    sql(f"KILL CONNECTION {dumps[0]}")
    sql(f"INSERT INTO {table} VALUES (4)")

    pipeline.wait_until(lambda: worker.tracker.events >= 4, 60, "events after the retry")
    assert worker.tracker.restarts >= 1
    assert worker.tracker.errors_by_reason.get("ConnectionLost", 0) >= 1
    assert any(e["reason"] == "ConnectionLost" for e in worker.tracker.view()["lastErrors"])
    assert worker.tracker.state == "Streaming"
    records = pipeline.records("t")
    assert Counter(v["data"]["id"] for _, v in records) == {1: 1, 2: 1, 3: 1, 4: 1}


def test_unreachable_source_is_retried_with_backoff_then_fails_with_the_reason(
    make_config: Callable[..., dict[str, Any]], run_worker: Callable[..., Any]
) -> None:
    import time

    config = make_config(restartPolicy={"maxRetries": 2, "backoff": "300ms", "multiplier": 2})
    config["source"]["port"] = 1  # nothing listens there
    started = time.monotonic()
    worker = run_worker(config)
    assert worker.join(60) == 1
    elapsed = time.monotonic() - started
    assert worker.worker.failure.reason == "ConnectionLost"
    assert worker.tracker.restarts == 2
    assert worker.tracker.errors_by_reason == {"ConnectionLost": 3}
    assert elapsed >= 0.3 + 0.6  # backoff, then backoff x multiplier
    assert worker.tracker.state == "Failed"
