"""Pure decisions: what a MySQL server lacks, and a task's phase and conditions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ferry_operator.api.synctask import SyncTaskSpec
from ferry_operator.reconcile.health import Problem, assess
from ferry_operator.reconcile.probe import assess_mysql

GOOD = {
    "log_bin": "ON",
    "binlog_format": "ROW",
    "binlog_row_image": "FULL",
    "binlog_row_metadata": "FULL",
}
GRANTS = ["GRANT SELECT, RELOAD, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO `ferry`@`%`"]
VERSION = "10.11.6-MariaDB"
NOW = datetime(2030, 1, 1, tzinfo=UTC)


def test_a_complete_server_is_ready() -> None:
    result = assess_mysql("ferry", VERSION, GOOD, GRANTS)
    assert result.missing == [] and result.source_missing == []
    assert result.server["binlogFormat"] == "ROW"


def test_binlog_off_is_named_and_the_server_stays_usable_as_a_sink() -> None:
    result = assess_mysql("ferry", VERSION, {**GOOD, "log_bin": "OFF"}, GRANTS)
    assert (result.missing, result.reason) == ([], "Ready")  # it connected: a sink can write
    assert result.source_reason == "BinlogNotUsable"
    assert any("binlog is off" in m for m in result.source_missing)


def test_statement_format_and_minimal_image_are_named() -> None:
    variables = {**GOOD, "binlog_format": "STATEMENT", "binlog_row_image": "MINIMAL"}
    result = assess_mysql("ferry", VERSION, variables, GRANTS)
    assert "binlog_format is STATEMENT, needs ROW" in result.source_missing
    assert "binlog_row_image is MINIMAL, needs FULL" in result.source_missing


def test_missing_grants_are_named() -> None:
    result = assess_mysql("app", VERSION, GOOD, ["GRANT SELECT ON *.* TO `app`@`%`"])
    assert result.source_reason == "MissingGrant"
    assert any("REPLICATION SLAVE" in m for m in result.source_missing)
    assert any("BINLOG MONITOR" in m for m in result.source_missing)
    granted = assess_mysql("r", "8.0.36", GOOD, ["GRANT ALL PRIVILEGES ON *.* TO `r`@`%`"])
    assert granted.source_missing == []


def test_blocking_problems() -> None:
    spec = SyncTaskSpec()
    waiting = assess(
        spec,
        {},
        problem=Problem("ConnectorNotReady", "m", False),
        paused=False,
        resume_at=None,
        now=NOW,
    )
    assert waiting.phase == "Pending"
    assert waiting.conditions["Reconciling"][0] == "True"
    failed = assess(
        spec, {}, problem=Problem("InvalidSpec", "m", True), paused=False, resume_at=None, now=NOW
    )
    assert (failed.phase, failed.conditions["Stalled"][:2]) == ("Failed", ("True", "InvalidSpec"))


def test_paused_is_not_ready_with_reason_paused() -> None:
    result = assess(SyncTaskSpec(), {}, problem=None, paused=True, resume_at=NOW, now=NOW)
    assert result.phase == "Paused"
    assert result.conditions["Ready"][:2] == ("False", "Paused")
    assert "until" in result.conditions["Ready"][2]


def test_worker_state_lag_and_heartbeat() -> None:
    spec = SyncTaskSpec.model_validate({"alerts": {"lagThreshold": "30s"}})
    fresh = (NOW - timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    running = {"workerState": "Streaming", "heartbeatTime": fresh, "lag": {"seconds": 3}}
    ok = assess(spec, running, problem=None, paused=False, resume_at=None, now=NOW)
    assert (ok.phase, ok.conditions["Ready"][0], ok.conditions["Degraded"][0]) == (
        "Running",
        "True",
        "False",
    )
    lagging = assess(
        spec,
        {**running, "lag": {"seconds": 90}},
        problem=None,
        paused=False,
        resume_at=None,
        now=NOW,
    )
    assert lagging.conditions["Degraded"][:2] == ("True", "LagAboveThreshold")
    old = (NOW - timedelta(seconds=31)).strftime("%Y-%m-%dT%H:%M:%SZ")
    silent = assess(
        spec, {**running, "heartbeatTime": old}, problem=None, paused=False, resume_at=None, now=NOW
    )
    assert silent.conditions["Stalled"][:2] == ("True", "HeartbeatMissing")


def test_a_failure_streak_over_max_retries_stops_the_worker() -> None:
    spec = SyncTaskSpec.model_validate({"restartPolicy": {"maxRetries": 2}})
    result = assess(
        spec, {"retry": {"streak": 3}}, problem=None, paused=False, resume_at=None, now=NOW
    )
    assert result.stop_worker
    assert result.conditions["Stalled"][:2] == ("True", "TooManyRestarts")
    assert "failed 3 times in a row" in result.conditions["Ready"][2]


def test_recovered_errors_do_not_count_only_the_streak_does() -> None:
    """Issue 11: 11 recovered errors weeks apart must not stop a healthy task."""
    spec = SyncTaskSpec.model_validate({"restartPolicy": {"maxRetries": 10}})
    status = {"workerState": "Streaming", "counters": {"restarts": 11}, "retry": {"streak": 0}}
    result = assess(spec, status, problem=None, paused=False, resume_at=None, now=NOW)
    assert (result.phase, result.stop_worker) == ("Running", False)


def test_max_retries_unset_means_unlimited() -> None:
    spec = SyncTaskSpec.model_validate({})
    status = {"workerState": "Streaming", "retry": {"streak": 500}}
    result = assess(spec, status, problem=None, paused=False, resume_at=None, now=NOW)
    assert result.stop_worker is False


def test_a_worker_stopped_for_its_streak_keeps_its_reason() -> None:
    spec = SyncTaskSpec.model_validate({"restartPolicy": {"maxRetries": 10}})
    message = "11 consecutive failures, more than restartPolicy.maxRetries (10); the last: ..."
    status = {
        "workerState": "Failed",
        "retry": {"streak": 11},
        "lastErrors": [{"reason": "TooManyRestarts", "message": message}],
    }
    result = assess(spec, status, problem=None, paused=False, resume_at=None, now=NOW)
    assert result.stop_worker
    assert result.conditions["Ready"] == ("False", "TooManyRestarts", message)


def test_worker_fields_from_before_the_last_start_are_ignored() -> None:
    spec = SyncTaskSpec.model_validate({"restartPolicy": {"maxRetries": 2}})
    before = (NOW - timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%SZ")
    status = {
        "workerState": "Failed",
        "counters": {"restarts": 9},
        "heartbeatTime": before,
        "lastStartTime": (NOW - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    result = assess(spec, status, problem=None, paused=False, resume_at=None, now=NOW)
    assert (result.phase, result.stop_worker) == ("Starting", False)
    assert result.conditions["Stalled"][0] == "False"


def test_a_selection_that_matches_nothing_is_degraded_naming_the_patterns() -> None:
    from datetime import UTC, datetime

    from ferry_operator.api.synctask import SyncTaskSpec
    from ferry_operator.reconcile.health import assess

    spec = SyncTaskSpec.model_validate(
        {"source": {"include": ["shop.it[ems"], "exclude": ["*.tmp_*"]}}
    )
    now = datetime(2026, 1, 1, tzinfo=UTC)
    status = {"workerState": "Streaming", "heartbeatTime": "2026-01-01T00:00:00Z",
              "selectedTables": 0}  # fmt: skip
    verdict = assess(spec, status, problem=None, paused=False, resume_at=None, now=now)
    assert verdict.phase == "Running"
    degraded = verdict.conditions["Degraded"]
    assert degraded[:2] == ("True", "NoTablesSelected")
    assert "spec.source.include [shop.it[ems] (exclude: *.tmp_*) matches no table" in degraded[2]
    status["selectedTables"] = 2
    verdict = assess(spec, status, problem=None, paused=False, resume_at=None, now=now)
    assert verdict.conditions["Degraded"][0] == "False"


def test_a_missing_secret_or_key_is_named_with_the_keys_present() -> None:
    from ferry_operator.reconcile.connector import missing_secret

    where = "spec.mysql.passwordSecretRef"
    gone = missing_secret(where, "db", "password", None)
    assert gone is not None and gone.reason == "SecretNotFound"
    assert gone.missing == ["spec.mysql.passwordSecretRef: Secret 'db' not found"]
    keyless = missing_secret(where, "db", "password", {"user": "eA==", "passwd": "eA=="})
    assert keyless is not None and keyless.reason == "SecretKeyNotFound"
    assert keyless.missing == [
        "spec.mysql.passwordSecretRef: Secret 'db' has no key 'password' (it has: passwd, user)"
    ]
    assert missing_secret(where, "db", "password", {"password": "eA=="}) is None
    empty = missing_secret(where, "db", "password", {})
    assert empty is not None and "(it has: no keys)" in empty.missing[0]
