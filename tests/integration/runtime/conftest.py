"""Helpers for the worker's integration tests: configs, running workers, reading topics.

Workers run against the real MariaDB and Kafka from tests/infra, either in a thread
(``run_worker``) or as a ``ferry-worker`` subprocess (``spawn_worker``) when a test needs to
SIGKILL or SIGTERM it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from tests.integration.scratch import CDC_OPTIONS, ScratchMariaDB
from tests.support import wait_until

from ferry_runtime import config as config_module
from ferry_runtime.status import StatusTracker
from ferry_runtime.worker import Worker

PASSWORD_ENV = "FERRY_TEST_SOURCE_PASSWORD"


def local_ports_to(port: int) -> set[int]:
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


def _key(raw: bytes | None) -> Any:
    try:
        return json.loads(raw) if raw is not None else None
    except ValueError:  # the offsets topic's keys are plain task ids
        return raw.decode()  # type: ignore[union-attr]


def read_topic(bootstrap: str, topic: str, committed: bool = True) -> list[tuple[Any, Any]]:
    """Every record of ``topic`` as (key, value) JSON, partition by partition."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{time.monotonic_ns()}",
            "isolation.level": "read_committed" if committed else "read_uncommitted",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        if metadata.topics[topic].error is not None:
            return []
        partitions = sorted(metadata.topics[topic].partitions)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        pending = set(partitions)
        out: list[tuple[Any, Any]] = []
        while pending:
            message = consumer.poll(15)
            assert message is not None, f"no EOF from {topic}"
            error = message.error()
            if error is not None:
                assert error.code() == KafkaError._PARTITION_EOF, error
                pending.discard(message.partition())
                continue
            value = message.value()
            out.append((_key(message.key()), None if value is None else json.loads(value)))
        return out
    finally:
        consumer.close()


def replay(records: list[tuple[Any, Any]]) -> dict[Any, dict[str, Any]]:
    """Rebuild table contents (by primary key) from Maxwell records."""
    rows: dict[Any, dict[str, Any]] = {}
    for _, value in records:
        key = tuple(value["primary_key"])
        if value["type"] == "delete":
            rows.pop(key, None)
        else:
            rows[key] = value["data"]
    return rows


@pytest.fixture
def source_password(testenv: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    password = str(testenv.mysql["password"])
    monkeypatch.setenv(PASSWORD_ENV, password)
    return password


@pytest.fixture
def make_config(
    testenv: Any, kafka_bootstrap: str, topic_prefix: str, database: str, source_password: str
) -> Callable[..., dict[str, Any]]:
    """``make_config(**overrides)``: a worker config dict for this test's database/topics."""
    server_ids = iter(range(10_000 + (os.getpid() % 1000) * 50, 1_000_000))

    def make(**overrides: Any) -> dict[str, Any]:
        data: dict[str, Any] = {
            "task": {"name": topic_prefix.replace(".", "-")[:60], "namespace": "test"},
            "source": {
                "host": testenv.mysql["host"],
                "port": testenv.mysql["port"],
                "user": testenv.mysql["user"],
                "passwordEnv": PASSWORD_ENV,
                "serverId": next(server_ids),
            },
            "include": [f"{database}.*"],
            "sink": {
                "kafka": {
                    "bootstrapServers": kafka_bootstrap,
                    "topic": f"{topic_prefix}.{{database}}.{{table}}",
                    "offsetsTopic": f"{topic_prefix}.offsets",
                }
            },
            "performance": {"maxBatchDelay": "100ms", "snapshotChunkSize": 1000},
            "restartPolicy": {"maxRetries": 3, "backoff": "200ms"},
            "reporting": {"port": 0},
        }
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key] = {**data[key], **value}
            else:
                data[key] = value
        return data

    return make


class WorkerThread:
    """A Worker running on a thread of the test process."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.tracker = StatusTracker()
        self.worker = Worker(config_module.parse(config), self.tracker)
        self.exit_code: int | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.exit_code = self.worker.run()

    def stop(self, timeout: float = 30) -> int | None:
        self.worker.stop()
        self.thread.join(timeout)
        return self.exit_code

    def join(self, timeout: float = 60) -> int | None:
        self.thread.join(timeout)
        return self.exit_code


@pytest.fixture
def run_worker() -> Iterator[Callable[[dict[str, Any]], WorkerThread]]:
    started: list[WorkerThread] = []

    def run(config: dict[str, Any]) -> WorkerThread:
        started.append(WorkerThread(config))
        return started[-1]

    yield run
    for worker in started:
        worker.stop()


class WorkerProcess:
    """``ferry-worker --config`` as a subprocess; its stderr goes to a file."""

    def __init__(
        self,
        config: dict[str, Any],
        directory: Path,
        env: dict[str, str],
        args: tuple[str, ...] = (),
        config_path: Path | None = None,
    ) -> None:
        self.config_path = config_path or directory / "worker.yaml"
        if config_path is None:
            self.config_path.write_text(yaml.safe_dump(config))
        self.stderr_path = directory / "stderr.txt"
        command = [sys.executable, "-m", "ferry_runtime.cli", "--config", str(self.config_path)]
        with self.stderr_path.open("w") as stderr:
            self.process = subprocess.Popen(
                [*command, *args],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                text=True,
                env={**os.environ, **env},
            )

    def output(self) -> str:
        return self.stderr_path.read_text()

    def wait(self, timeout: float = 60) -> int:
        return self.process.wait(timeout)

    def status(self) -> dict[str, Any] | None:
        """The worker's /status document, or None while it is not serving yet."""
        found = re.search(r"status on port (\d+)", self.output())
        if not found:
            return None
        url = f"http://127.0.0.1:{found.group(1)}/status"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                document: dict[str, Any] = json.loads(response.read())
                return document
        except OSError:
            return None


@pytest.fixture
def spawn_worker(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """``spawn_worker(config, env=None, args=(), config_path=None)`` starts a worker process
    (killed after the test); ``config_path``: a config file the test wrote itself."""
    processes: list[WorkerProcess] = []

    def spawn(
        config: dict[str, Any],
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
        config_path: Path | None = None,
    ) -> WorkerProcess:
        directory = tmp_path / f"worker-{len(processes)}"
        directory.mkdir()
        processes.append(WorkerProcess(config, directory, env or {}, args, config_path))
        return processes[-1]

    yield spawn
    for worker in processes:
        if worker.process.poll() is None:
            worker.process.kill()
            worker.process.wait()


@pytest.fixture
def scratch(testenv: Any, mysql_connect: Any) -> Iterator[ScratchMariaDB]:
    """A mariadbd of this test's own, set up for CDC, for tests that restart or purge their
    source (never the shared server). ``mysql_connect`` first: the shared server must be up."""
    server = ScratchMariaDB(list(CDC_OPTIONS), testenv.mysql["password"])
    yield server
    server.remove()


@pytest.fixture
def admin_sql(mysql_connect: Callable[..., Any]) -> Iterator[Callable[..., Any]]:
    """``admin_sql(statement, args=None, many=False)`` on one autocommit admin connection."""
    conn = mysql_connect(admin=True)
    lock = threading.Lock()

    def execute(sql: str, args: Any = None, many: bool = False) -> Any:
        with lock, conn.cursor() as cursor:
            if many:
                cursor.executemany(sql, args)
            else:
                cursor.execute(sql, args)
            return cursor.fetchall()

    yield execute
    conn.close()


class Helpers:
    """Plain helper functions, handed to tests as the ``helpers`` fixture (importlib mode
    does not let test modules import conftest)."""

    wait_until = staticmethod(wait_until)
    read_topic = staticmethod(read_topic)
    replay = staticmethod(replay)


@pytest.fixture
def helpers() -> type[Helpers]:
    return Helpers


class Pipeline:
    """One test's pipeline on the shared servers: its database (``db`` is it quoted), SQL as
    admin, worker configs and in-process runs, and its topics."""

    wait_until = staticmethod(wait_until)
    replay = staticmethod(replay)

    def __init__(
        self,
        database: str,
        sql: Callable[..., Any],
        make_config: Callable[..., dict[str, Any]],
        run_worker: Callable[[dict[str, Any]], WorkerThread],
        bootstrap: str,
        topic_prefix: str,
    ) -> None:
        self.database, self.db, self.sql = database, f"`{database}`", sql
        self.config, self.start = make_config, run_worker
        self.bootstrap, self.topic_prefix = bootstrap, topic_prefix

    def run(self, **overrides: Any) -> WorkerThread:
        """A worker on this test's config with ``overrides`` (see make_config)."""
        return self.start(self.config(**overrides))

    def records(self, table: str, committed: bool = True) -> list[tuple[Any, Any]]:
        """Every record of ``table``'s topic, as (key, value) JSON."""
        return read_topic(self.bootstrap, f"{self.topic_prefix}.{self.database}.{table}", committed)

    def server_position(self) -> tuple[str, int]:
        file, pos = self.sql("SHOW MASTER STATUS")[0][:2]
        return str(file), int(pos)

    def wait_caught_up(self, worker: WorkerThread, timeout: float = 60, what: str = "") -> None:
        """Until the worker delivered up to the server's position *as of now* (the shared
        server keeps moving with other tests' writes, so "equal to the current one" may never
        hold, and the server's idle heartbeat may never come)."""
        target = self.server_position()

        def reached() -> bool:
            position = worker.tracker.position
            return bool(position) and (position["file"], position["pos"]) >= target

        wait_until(reached, timeout, what or "the worker to catch up")

    def wait_streaming(self, worker: WorkerThread, timeout: float = 60) -> None:
        wait_until(lambda: worker.tracker.state == "Streaming", timeout, "streaming")


@pytest.fixture
def pipeline(
    database: str,
    admin_sql: Callable[..., Any],
    make_config: Callable[..., dict[str, Any]],
    run_worker: Callable[[dict[str, Any]], WorkerThread],
    kafka_bootstrap: str,
    topic_prefix: str,
) -> Pipeline:
    return Pipeline(database, admin_sql, make_config, run_worker, kafka_bootstrap, topic_prefix)
