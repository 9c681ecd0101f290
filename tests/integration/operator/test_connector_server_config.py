"""Connector probing against MariaDB servers configured wrongly for CDC: binlog off, and
STATEMENT format. Each gets a throwaway mariadbd of its own (a few seconds to start), so the
shared test server is never reconfigured under other tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.integration.operator.conftest import Ferry, OperatorProcess, mysql_connector, wait_until
from tests.integration.scratch import ScratchMariaDB

pytestmark = [pytest.mark.kube, pytest.mark.mysql]


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
