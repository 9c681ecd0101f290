"""Hot reload in a running ``ferry-worker`` process (ferry_runtime.live): its config file is
rewritten the way the kubelet updates a mounted ConfigMap (a new directory, one symlink swap)
while rows are written; the same process applies exclude/include, mapping, batchSize and the
log level and format at a transaction boundary, and with exactly-once delivery every change is
in Kafka once — before the change under the old rules, after it under the new ones."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.integration.runtime.conftest import Pipeline

pytestmark = [pytest.mark.mysql, pytest.mark.kafka]


class Mount:
    """A directory laid out as the kubelet lays out a ConfigMap volume: ``..data`` points at
    a timestamped directory; ``worker.yaml`` and ``revision`` point into ``..data``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir()
        self.generation = 0

    def write(self, config: dict[str, Any], revision: str) -> None:
        self.generation += 1
        target = self.root / f"..{self.generation}"
        target.mkdir()
        (target / "worker.yaml").write_text(yaml.safe_dump(config))
        (target / "revision").write_text(revision)
        link = self.root / "..data_tmp"
        link.symlink_to(target.name)
        os.replace(link, self.root / "..data")  # the one atomic swap
        for name in ("worker.yaml", "revision"):
            if not (self.root / name).is_symlink():
                (self.root / name).symlink_to(f"..data/{name}")

    @property
    def config_path(self) -> Path:
        return self.root / "worker.yaml"


class Writer(threading.Thread):
    """Single-row inserts and updates (one transaction each) over tables a, b and c, each
    with a unique ``seq``; logs (table, id, seq) in commit order."""

    def __init__(self, sql: Callable[..., Any], db: str) -> None:
        super().__init__(daemon=True)
        self.sql, self.db = sql, db
        self.log: list[tuple[str, int, int]] = []
        self.done = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        seq = 0
        while not self.done.is_set():
            for table in ("a", "b", "c"):
                seq += 1
                key = seq % 40  # 40 keys a table: inserts first, then updates
                self.sql(
                    f"INSERT INTO {self.db}.{table} VALUES (%s, %s) "
                    "ON DUPLICATE KEY UPDATE seq = VALUES(seq)",
                    (key, seq),
                )
                with self.lock:
                    self.log.append((table, key, seq))
            time.sleep(0.01)

    def mark(self) -> int:
        with self.lock:
            return len(self.log)


def _per_key(records: list[tuple[Any, Any]]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = defaultdict(list)
    for _, value in records:
        out[value["data"]["id"]].append(value["data"]["seq"])
    return out


def _logged(log: list[tuple[str, int, int]], table: str) -> dict[int, list[int]]:
    out: dict[int, list[int]] = defaultdict(list)
    for name, key, seq in log:
        if name == table:
            out[key].append(seq)
    return out


@pytest.mark.timeout(300)
def test_live_changes_apply_in_the_same_process_and_lose_or_double_nothing(
    pipeline: Pipeline, spawn_worker: Callable[..., Any], tmp_path: Path
) -> None:
    db = pipeline.db
    for table in ("a", "b", "c"):
        pipeline.sql(f"CREATE TABLE {db}.{table} (id int PRIMARY KEY, seq bigint)")
    name = pipeline.database
    before = pipeline.config(
        mode="cdc",
        exclude=[f"{name}.c"],
        performance={"maxBatchDelay": "200ms", "batchSize": 1000},
    )
    mount = Mount(tmp_path / "config")
    mount.write(before, "t-r1")
    worker = spawn_worker(
        before,
        args=("--revision-file", str(mount.root / "revision")),
        config_path=mount.config_path,
    )
    pipeline.wait_until(
        lambda: (worker.status() or {}).get("state") == "Streaming", 60, "streaming"
    )
    assert (worker.status() or {})["appliedRevision"] == "t-r1"
    pid = worker.process.pid
    writer = Writer(pipeline.sql, db)
    writer.start()
    time.sleep(3)  # rows under the first rules

    after = pipeline.config(
        mode="cdc",
        exclude=[f"{name}.b"],  # b stops, c starts (it streams from here: no snapshot)
        mapping=[{"table": f"{name}.a", "target": "a_v2"}],  # a's rows go to a new topic
        performance={"maxBatchDelay": "200ms", "batchSize": 7},
        logLevel="DEBUG",
        logFormat="json",
    )
    after["source"]["serverId"] = before["source"]["serverId"]  # the same restart part
    mount.write(after, "t-r2")
    pipeline.wait_until(
        lambda: (worker.status() or {}).get("appliedRevision") == "t-r2", 30, "t-r2 applied"
    )
    applied = writer.mark()  # every change after this one is under the new rules
    time.sleep(3)  # rows under the new rules
    writer.done.set()
    writer.join()
    target = pipeline.server_position()
    pipeline.wait_until(
        lambda: (
            tuple((worker.status() or {}).get("position", {}).get(k) for k in ("file", "pos"))
            >= target
        ),
        60,
        "caught up",
    )
    status = worker.status() or {}
    assert worker.process.poll() is None and worker.process.pid == pid  # never restarted
    assert status["counters"]["restarts"] == 0
    worker.process.terminate()
    assert worker.wait(30) == 0, worker.output()
    output = worker.output()
    assert output.count("status on port") == 1  # one process start, one status server

    # a: every change once, in order per key: under its old name, then under the new one.
    old_a, new_a = _per_key(pipeline.records("a")), _per_key(pipeline.records("a_v2"))
    written_a = _logged(writer.log, "a")
    assert old_a and new_a, "rows under both names: the change came mid-stream"
    for key, seqs in written_a.items():
        assert old_a.get(key, []) + new_a.get(key, []) == seqs, key
    # b: exactly the changes before the boundary, then nothing.
    got_b, written_b = _per_key(pipeline.records("b")), _logged(writer.log, "b")
    assert got_b and sum(map(len, got_b.values())) < sum(map(len, written_b.values()))
    late_b = _logged(writer.log[applied:], "b")
    for key, seqs in written_b.items():
        got = got_b.get(key, [])
        assert got == seqs[: len(got)], key  # a prefix: no loss, no double, no reorder
        assert not set(got) & set(late_b.get(key, [])), key
    # c: was excluded; every change after the boundary is there, once.
    got_c, written_c = _per_key(pipeline.records("c")), _logged(writer.log, "c")
    late_c = _logged(writer.log[applied:], "c")
    assert late_c
    for key, seqs in written_c.items():
        got = got_c.get(key, [])
        assert len(got) >= len(late_c.get(key, [])), key
        assert got == seqs[len(seqs) - len(got) :], key  # a suffix: from the boundary on

    # The log: the reload named what changed; after it, JSON lines at DEBUG.
    lines = output.splitlines()
    reload_line = next(i for i, line in enumerate(lines) if "t-r2 applied live" in line)
    assert "mapping" in lines[reload_line] and "performance.batchSize" in lines[reload_line]
    later = [json.loads(line) for line in lines[reload_line:] if line.startswith("{")]
    assert later and {"time", "level", "logger", "message"} <= set(later[0])
    assert any(line["level"] == "DEBUG" for line in later)


def test_a_restart_field_is_not_applied_live(
    pipeline: Pipeline, spawn_worker: Callable[..., Any], tmp_path: Path
) -> None:
    config = pipeline.config(mode="cdc")
    mount = Mount(tmp_path / "config")
    mount.write(config, "t-r1")
    worker = spawn_worker(
        config,
        args=("--revision-file", str(mount.root / "revision")),
        config_path=mount.config_path,
    )
    pipeline.wait_until(
        lambda: (worker.status() or {}).get("state") == "Streaming", 60, "streaming"
    )
    changed = {**config, "sink": {"kafka": {**config["sink"]["kafka"], "format": "debezium"}}}
    mount.write(changed, "t-r2")
    pipeline.wait_until(
        lambda: "need a new worker process (revision t-r2)" in worker.output(), 20, "the notice"
    )
    assert (worker.status() or {})["appliedRevision"] == "t-r1"
    worker.process.terminate()
    assert worker.wait(30) == 0
