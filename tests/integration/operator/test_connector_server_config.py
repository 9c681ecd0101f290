"""Connector probing against MariaDB servers configured wrongly for CDC: binlog off, and
STATEMENT format. Each gets a throwaway mariadbd of its own (a few seconds to start), so the
shared test server is never reconfigured under other tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pymysql
import pytest
from tests.integration.operator.conftest import Ferry, OperatorProcess, mysql_connector, wait_until

pytestmark = [pytest.mark.kube, pytest.mark.mysql]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ScratchMariaDB:
    """A mariadbd started with the given server options, with the test env's `ferry` user."""

    def __init__(self, options: list[str], password: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="ferry-scratch-mariadb-"))
        self.port = free_port()
        self.password = password
        user = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout
        subprocess.run(
            [
                "mariadb-install-db",
                "--no-defaults",
                f"--user={user.strip()}",
                f"--datadir={self.dir / 'data'}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            capture_output=True,
            check=True,
        )
        mariadbd = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
        self.process = subprocess.Popen(
            [
                mariadbd,
                "--no-defaults",
                f"--user={user.strip()}",
                f"--datadir={self.dir / 'data'}",
                f"--socket={self.dir / 'mysqld.sock'}",
                "--bind-address=127.0.0.1",
                f"--port={self.port}",
                "--server-id=9",
                "--innodb-buffer-pool-size=16M",
                *options,
            ],
            stdout=subprocess.DEVNULL,
            stderr=(self.dir / "error.log").open("wb"),
        )
        wait_until(self._accepts_root, 60, "the scratch MariaDB to start")
        with self._root() as conn, conn.cursor() as cur:
            cur.execute("CREATE USER 'ferry'@'%%' IDENTIFIED BY %s", (password,))
            cur.execute(
                "GRANT SELECT, RELOAD, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO 'ferry'@'%'"
            )

    def _root(self) -> Any:
        return pymysql.connect(
            unix_socket=str(self.dir / "mysqld.sock"), user="root", autocommit=True
        )

    def _accepts_root(self) -> bool:
        try:
            self._root().close()
        except pymysql.MySQLError:
            return False
        return True

    @property
    def env(self) -> Any:
        """What `mysql_connector` reads from the test env, pointing at this server."""
        return SimpleNamespace(
            mysql={
                "host": "127.0.0.1",
                "port": self.port,
                "user": "ferry",
                "password": self.password,
            }
        )

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def scratch_mariadb(testenv: Any, mysql_connect: Any) -> Iterator[Any]:
    started: list[ScratchMariaDB] = []

    def start(*options: str) -> ScratchMariaDB:
        server = ScratchMariaDB(list(options), testenv.mysql["password"])
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def probed(ferry: Ferry, name: str) -> dict[str, Any]:
    result: dict[str, Any] = wait_until(
        lambda: ferry.condition("connectors", name) or None, 60, f"{name} to be probed"
    )
    return result


def test_binlog_off_is_named(
    ferry: Ferry, scratch_mariadb: Any, ferry_operator: OperatorProcess
) -> None:
    server = scratch_mariadb("--skip-log-bin")
    ferry.secret("db", server.password)
    ferry.create("connectors", mysql_connector("db", server.env))
    ready = probed(ferry, "db")
    assert ready["status"] == "False", ready
    assert "the binlog is off (log_bin=OFF)" in ready["message"], ready


def test_statement_format_is_named(
    ferry: Ferry, scratch_mariadb: Any, ferry_operator: OperatorProcess
) -> None:
    server = scratch_mariadb("--log-bin=binlog", "--binlog-format=STATEMENT")
    ferry.secret("db", server.password)
    ferry.create("connectors", mysql_connector("db", server.env))
    ready = probed(ferry, "db")
    assert ready["status"] == "False", ready
    assert "binlog_format" in ready["message"] and "STATEMENT" in ready["message"], ready
    assert "ROW" in ready["message"], ready
    # The server's facts are reported as found.
    assert ferry.get("connectors", "db")["status"]["server"]["binlogFormat"] == "STATEMENT"
