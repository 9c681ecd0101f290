"""Throwaway servers for tests that must break or reconfigure a server: a private mariadbd
(a few seconds to start) that can be stopped and started again on the same data and port,
so the shared test services are never disturbed under other tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pymysql
from tests.support import wait_until

__all__ = ["CDC_OPTIONS", "ScratchKafka", "ScratchMariaDB", "free_port", "wait_until"]

# What a CDC source needs (as tests/infra/up starts the shared server).
CDC_OPTIONS = (
    "--log-bin=binlog",
    "--binlog-format=ROW",
    "--binlog-row-image=FULL",
    "--binlog-row-metadata=FULL",
)


def _terminate(process: subprocess.Popen[bytes] | None, grace: float) -> None:
    """SIGTERM, and SIGKILL if it is still running after ``grace`` seconds."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ScratchMariaDB:
    """A private mariadbd with the given server options and a `ferry` user holding the sync
    grants (password given). ``stop_server()``/``start_server()`` restart it in place."""

    def __init__(self, options: list[str], password: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="ferry-scratch-mariadb-"))
        self.port = free_port()
        self.password = password
        self.options = options
        who = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True)
        self.os_user = who.stdout.strip()
        subprocess.run(
            [
                "mariadb-install-db",
                "--no-defaults",
                f"--user={self.os_user}",
                f"--datadir={self.dir / 'data'}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            capture_output=True,
            check=True,
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.start_server()
        with self.root() as conn, conn.cursor() as cur:
            cur.execute("CREATE USER 'ferry'@'%%' IDENTIFIED BY %s", (password,))
            cur.execute(
                "GRANT SELECT, RELOAD, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO 'ferry'@'%'"
            )

    def start_server(self) -> None:
        mariadbd = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
        self.process = subprocess.Popen(
            [
                mariadbd,
                "--no-defaults",
                f"--user={self.os_user}",
                f"--datadir={self.dir / 'data'}",
                f"--socket={self.dir / 'mysqld.sock'}",
                "--bind-address=127.0.0.1",
                f"--port={self.port}",
                "--server-id=9",
                "--innodb-buffer-pool-size=16M",
                *self.options,
            ],
            stdout=subprocess.DEVNULL,
            stderr=(self.dir / "error.log").open("ab"),
        )
        wait_until(self._accepts_root, 60, "the scratch MariaDB to start")

    def stop_server(self) -> None:
        _terminate(self.process, 30)

    def root(self) -> Any:
        return pymysql.connect(
            unix_socket=str(self.dir / "mysqld.sock"), user="root", autocommit=True
        )

    def _accepts_root(self) -> bool:
        try:
            self.root().close()
        except pymysql.MySQLError:
            return False
        return True

    @property
    def env(self) -> Any:
        """What the tests' connector and config helpers read, pointing at this server."""
        return SimpleNamespace(
            mysql={
                "host": "127.0.0.1",
                "port": self.port,
                "user": "ferry",
                "password": self.password,
            }
        )

    def purge_all_but_the_newest(self) -> str:
        """Rotate, then PURGE every binlog but the new one, as a DBA would; its name."""
        with self.root() as conn, conn.cursor() as cur:
            cur.execute("FLUSH BINARY LOGS")
            cur.execute("SHOW MASTER STATUS")
            newest = str(cur.fetchone()[0])
            # The server keeps a file a dump thread still reads, and a stopped worker's dump
            # thread lingers until the server next writes to its closed socket: end them.
            cur.execute(
                "SELECT id FROM information_schema.processlist WHERE command = 'Binlog Dump'"
            )
            for (thread,) in cur.fetchall():
                cur.execute(f"KILL CONNECTION {thread}")

            def purged() -> bool:
                # Right after a rotation the server keeps the old file until InnoDB's binlog
                # checkpoint moves on (a moment later): PURGE then silently keeps it.
                cur.execute(f"PURGE BINARY LOGS TO '{newest}'")
                cur.execute("SHOW BINARY LOGS")
                return [row[0] for row in cur.fetchall()] == [newest]

            wait_until(purged, 30, "the purge of the older binlogs")
        return newest

    def remove(self) -> None:
        self.stop_server()
        shutil.rmtree(self.dir, ignore_errors=True)


REPO = Path(__file__).resolve().parents[2]


def _kafka_libs() -> Path:
    """The jars tests/infra/up fetched (their cache directory is keyed by version)."""
    versions = dict(
        line.split("=", 1)
        for line in (REPO / "tests/infra/versions.env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    cache = os.environ.get("FERRY_TESTENV_CACHE") or Path.home() / ".cache/ferry-testenv"
    return Path(cache) / f"kafka-{versions['KAFKA_VERSION'].strip()}/libs"


class ScratchKafka:
    """A private single-node KRaft broker on its own ports; ``stop_server()`` and
    ``start_server()`` restart it on the same data."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="ferry-scratch-kafka-"))
        self.port, controller = free_port(), free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.classpath = f"{_kafka_libs()}/*"
        self.properties = self.dir / "server.properties"
        self.properties.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{controller}",
                    f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{controller}",
                    f"advertised.listeners=PLAINTEXT://{self.bootstrap}",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    f"log.dirs={self.dir / 'data'}",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=1",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "transaction.state.log.num.partitions=1",
                    "group.initial.rebalance.delay.ms=0",
                ]
            )
            + "\n"
        )
        java = ["java", "-Xmx384m", "-cp", self.classpath]
        cluster = subprocess.run(
            [*java, "kafka.tools.StorageTool", "random-uuid"], capture_output=True, text=True
        ).stdout.strip()
        subprocess.run(
            [*java, "kafka.tools.StorageTool", "format", "--cluster-id", cluster,
             "--config", str(self.properties)],
            capture_output=True,
            check=True,
        )  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None
        self.start_server()

    def start_server(self) -> None:
        self.process = subprocess.Popen(
            ["java", "-Xmx512m", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
             "-cp", self.classpath, "kafka.Kafka", str(self.properties)],
            stdout=subprocess.DEVNULL,
            stderr=(self.dir / "server.log").open("ab"),
        )  # fmt: skip
        wait_until(self._listening, 90, "the scratch Kafka broker to listen")

    def _listening(self) -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def stop_server(self) -> None:
        _terminate(self.process, 60)

    def remove(self) -> None:
        self.stop_server()
        shutil.rmtree(self.dir, ignore_errors=True)
