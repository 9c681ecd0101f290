"""Connector probing against MariaDB servers configured wrongly for CDC: binlog off, and
STATEMENT format. Such a server is Ready (usable, e.g. as a MySQL sink) but not BinlogReady,
so a task reading from it waits and names why, while a task writing into it goes ahead. Each
gets a throwaway mariadbd of its own (a few seconds to start), so the shared test server is
never reconfigured under other tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.integration.operator.conftest import (
    Ferry,
    OperatorProcess,
    mysql_connector,
    task,
    wait_until,
)
from tests.integration.scratch import ScratchMariaDB

pytestmark = [pytest.mark.kube, pytest.mark.mysql, pytest.mark.kafka]


@pytest.fixture
def scratch_mariadb(testenv: Any, mysql_connect: Any) -> Iterator[Any]:
    started: list[ScratchMariaDB] = []

    def start(*options: str) -> ScratchMariaDB:
        server = ScratchMariaDB(list(options), testenv.mysql["password"])
        started.append(server)
        return server

    yield start
    for server in started:
        server.remove()


def probed(ferry: Ferry, name: str) -> dict[str, Any]:
    """The BinlogReady condition, once the probe wrote it."""
    result: dict[str, Any] = wait_until(
        lambda: ferry.condition("connectors", name, "BinlogReady") or None,
        60,
        f"{name} to be probed",
    )
    assert ferry.condition("connectors", name)["status"] == "True"  # Ready: it connects
    return result


def test_binlog_off_is_named_and_only_a_source_needs_it(
    ferry: Ferry, connectors: None, scratch_mariadb: Any, ferry_operator: OperatorProcess
) -> None:
    server = scratch_mariadb("--skip-log-bin")
    ferry.secret("plain", server.password)
    ferry.create("connectors", mysql_connector("plain", server.env, secret="plain"))
    binlog = probed(ferry, "plain")
    assert (binlog["status"], binlog["reason"]) == ("False", "BinlogNotUsable"), binlog
    assert "the binlog is off (log_bin=OFF)" in binlog["message"], binlog

    # Reading from it waits, and says why; writing into it (a MySQL sink) goes ahead.
    source = {"connectorRef": {"name": "plain"}, "include": ["shop.*"]}
    ferry.create("synctasks", task("reads", source=source))
    sink = {"connectorRef": {"name": "plain"}, "mysql": {"database": "copy"}}
    ferry.create("synctasks", task("writes", sink=sink))

    def waiting() -> str:
        ready = ferry.condition("synctasks", "reads")
        return str(ready.get("message", "")) if ready.get("reason") == "ConnectorNotReady" else ""

    message = wait_until(waiting, 60, "the reading task to wait for its Connector")
    assert "'plain' cannot be read as a binlog source: the binlog is off" in message
    wait_until(
        lambda: (ferry.get("synctasks", "writes").get("status") or {}).get("configRevision"),
        60,
        "the writing task to be rendered",
    )


def test_statement_format_is_named(
    ferry: Ferry, scratch_mariadb: Any, ferry_operator: OperatorProcess
) -> None:
    server = scratch_mariadb("--log-bin=binlog", "--binlog-format=STATEMENT")
    ferry.secret("db", server.password)
    ferry.create("connectors", mysql_connector("db", server.env))
    binlog = probed(ferry, "db")
    assert binlog["status"] == "False", binlog
    assert "binlog_format" in binlog["message"] and "STATEMENT" in binlog["message"], binlog
    assert "ROW" in binlog["message"], binlog
    # The server's facts are reported as found.
    assert ferry.get("connectors", "db")["status"]["server"]["binlogFormat"] == "STATEMENT"
