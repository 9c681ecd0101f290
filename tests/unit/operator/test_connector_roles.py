"""A MySQL Connector's two conditions: Ready (reachable, credentials work: enough for a
sink) and BinlogReady (its binlog can be read: a source needs it too)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ferry_operator.api.synctask import SyncTaskSpec
from ferry_operator.reconcile import connector, probe, synctask

NOW = datetime(2030, 1, 1, tzinfo=UTC)
MYSQL_SPEC = {"type": "mysql", "mysql": {"host": "db", "user": "u", "passwordSecretRef": {}}}


def _decided(result: probe.ProbeResult, spec: dict[str, Any]) -> dict[str, tuple[str, str]]:
    body = {"metadata": {"generation": 1}, "spec": spec}
    fields = connector.decide(connector.Observed(body, result, NOW))
    return {c["type"]: (c["status"], c["reason"]) for c in fields["conditions"]}


def test_a_mysql_connector_reports_reachability_and_binlog_readiness_apart() -> None:
    no_binlog = probe.ProbeResult([], "Ready", {}, ["the binlog is off"], "BinlogNotUsable")
    assert _decided(no_binlog, MYSQL_SPEC) == {
        "Ready": ("True", "Ready"),
        "BinlogReady": ("False", "BinlogNotUsable"),
    }
    denied = probe.ProbeResult(["access denied"], "AuthenticationFailed")
    assert _decided(denied, MYSQL_SPEC) == {
        "Ready": ("False", "AuthenticationFailed"),
        "BinlogReady": ("Unknown", "NotProbed"),
    }
    kafka = {"type": "kafka", "kafka": {"bootstrapServers": "k:9092"}}
    assert _decided(probe.ProbeResult([]), kafka) == {"Ready": ("True", "Ready")}


def _status(binlog: str) -> dict[str, Any]:
    return {
        "conditions": [
            {"type": "Ready", "status": "True", "message": "ok"},
            {"type": "BinlogReady", "status": binlog, "message": "the binlog is off"},
        ]
    }


def _problem(source_binlog: str, sink_binlog: str) -> synctask.Problem | None:
    spec = SyncTaskSpec.model_validate(
        {
            "source": {"connectorRef": {"name": "src"}, "include": ["shop.*"]},
            "sink": {"connectorRef": {"name": "dst"}, "mysql": {}},
        }
    )
    observed = synctask.Observed(
        {"metadata": {"namespace": "shop"}},
        None,
        {"src": {"status": _status(source_binlog)}, "dst": {"status": _status(sink_binlog)}},
        [],
        {},
        NOW,
    )
    return synctask.connector_problem(spec, observed)


def test_only_the_source_connector_needs_a_readable_binlog() -> None:
    assert _problem("True", "False") is None  # a MySQL sink without a binlog is fine
    problem = _problem("False", "True")
    assert problem is not None and problem.reason == "ConnectorNotReady"
    assert "'src' cannot be read as a binlog source: the binlog is off" in problem.message
