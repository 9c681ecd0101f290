"""Reconcile failures: the message a person reads, the backoff, once-per-change, and the
status written for them."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from kubernetes.client import ApiException

from ferry_operator.reconcile import failures, synctask


def _api_error(code: int, message: str) -> ApiException:
    error = ApiException(status=code, reason="Unprocessable Entity")
    error.body = json.dumps({"kind": "Status", "message": message})
    return error


def test_a_too_long_label_says_to_shorten_the_name() -> None:
    name = "x" * 70
    error = _api_error(
        422,
        f'ConfigMap "{name}-r1" is invalid: metadata.labels: Invalid value: "{name}": '
        "must be no more than 63 characters",
    )
    text = failures.describe(error)
    assert text.startswith("the API server refused a request (HTTP 422): ConfigMap")
    assert "recreate the task with a shorter name" in text


def test_forbidden_points_at_the_operators_permissions() -> None:
    text = failures.describe(_api_error(403, 'deployments.apps is forbidden: User "x"'))
    assert "(HTTP 403)" in text and "grant the operator's ServiceAccount" in text


def test_other_errors_give_their_type_and_first_line() -> None:
    assert failures.describe(KeyError("spec")) == "KeyError: 'spec'"
    assert failures.describe(RuntimeError("first\nsecond")) == "RuntimeError: first"
    assert failures.describe(ApiException(status=500, reason="Boom")) == (
        "the API server answered HTTP 500 Boom"
    )


def test_backoff_doubles_up_to_five_minutes() -> None:
    assert [failures.backoff_seconds(n, 5) for n in (1, 2, 3, 4)] == [5, 10, 20, 40]
    assert failures.backoff_seconds(20, 5) == failures.MAX_BACKOFF_SECONDS


def test_the_same_failure_is_a_change_once_and_backs_off() -> None:
    book = failures.Failures(base_delay=2)
    first = book.failed("u", "boom", now=100)
    assert first.changed and first.attempts == 1 and first.retry_at == 102
    assert not book.due("u", 101) and book.due("u", 102)
    again = book.failed("u", "boom", now=102)
    assert not again.changed and again.attempts == 2 and again.retry_at == 106
    third = book.failed("u", "boom", now=106)
    assert third.stalled and not third.changed
    other = book.failed("u", "another", now=110)
    assert other.changed and other.attempts == 1 and not other.stalled
    assert book.succeeded("u") == other
    assert book.succeeded("u") is None and book.due("u", 0)


def test_failure_status_keeps_other_fields_and_sets_reconcile_error() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    before = {
        "phase": "Running",
        "configRevision": "t-r2",
        "lastResetNonce": "n1",
        "counters": {"events": 5},  # the worker's: not the operator's to write
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "Running",
             "lastTransitionTime": "2026-01-01T00:00:00Z"},
            {"type": "Degraded", "status": "True", "reason": "LagAboveThreshold",
             "message": "lag 90s is above 1m"},
        ],
    }  # fmt: skip
    failure = failures.Failure("the API server refused a request", 1, 0.0, True)
    fields = synctask.failure_status(before, 7, failure, now)
    assert fields["phase"] == "Running"
    assert fields["configRevision"] == "t-r2" and fields["lastResetNonce"] == "n1"
    assert fields["observedGeneration"] == 7
    assert "counters" not in fields
    by_type = {c["type"]: c for c in fields["conditions"]}
    assert (by_type["Ready"]["status"], by_type["Ready"]["reason"]) == ("False", "ReconcileError")
    assert by_type["Ready"]["message"] == "reconcile failed: the API server refused a request"
    assert by_type["Ready"]["lastTransitionTime"] == "2026-01-02T03:04:05Z"
    assert by_type["Stalled"]["status"] == "False"
    assert by_type["Degraded"]["reason"] == "LagAboveThreshold"  # kept as it was

    repeated = failures.Failure("the API server refused a request", 3, 0.0, False)
    stalled = {c["type"]: c for c in synctask.failure_status({}, 1, repeated, now)["conditions"]}
    assert (stalled["Stalled"]["status"], stalled["Stalled"]["reason"]) == (
        "True",
        "ReconcileError",
    )
    assert "failed 3 times in a row" in stalled["Stalled"]["message"]
    assert synctask.failure_status({}, 1, repeated, now)["phase"] == "Pending"


def test_the_same_message_is_said_once_even_across_a_success() -> None:
    book = failures.Failures(base_delay=1)
    assert book.should_say("u", "boom", now=0)
    assert not book.should_say("u", "boom", now=5)
    book.succeeded("u")  # a resync that needed no write
    assert not book.should_say("u", "boom", now=10)
    assert book.should_say("u", "other", now=11)
    assert book.should_say("u", "other", now=11 + failures.REPEAT_AFTER_SECONDS)
    book.forget("u")
    assert book.should_say("u", "other", now=12 + failures.REPEAT_AFTER_SECONDS)
