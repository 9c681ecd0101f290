"""Pure parts of the reporter: which fields the worker writes, and secret scrubbing."""

from __future__ import annotations

from ferry_runtime import reporter
from ferry_runtime.checkpoint import ResnapshotRecord, SkipRecord, VerifyRecord
from ferry_runtime.status import StatusTracker


def test_worker_fields_are_the_worker_owned_status_fields_without_nulls() -> None:
    tracker = StatusTracker(clock=lambda: 1_800_000_000.0)
    tracker.set_state("Streaming")
    tracker.record_error("PoisonRow", "cannot decode row", table=None, position="b.1:4")
    assert "selectedTables" not in reporter.worker_fields(tracker.view())  # not checked yet
    assert "lastSkip" not in reporter.worker_fields(tracker.view())  # nothing skipped yet
    assert "verification" not in reporter.worker_fields(tracker.view())  # nothing verified
    tracker.set_selected_tables(3)
    tracker.set_applied_revision("orders-r2")
    tracker.record_verification(VerifyRecord("v1", 1_800_000_000.0, ("db.t",), 2, 10))
    tracker.record_skip(SkipRecord("n1", "b.1:400", None, ("db.t",), 1, 1_800_000_000.0))
    assert "lastResnapshot" not in reporter.worker_fields(tracker.view())  # never recovered
    tracker.record_resnapshot(ResnapshotRecord(1_800_000_000.0, "b.1:4"), new=True)
    fields = reporter.worker_fields(tracker.view())
    assert fields["lastResnapshot"] == {"time": "2027-01-15T08:00:00Z", "position": "b.1:4"}
    assert fields["counters"]["resnapshots"] == 1
    tracker.record_resnapshot(ResnapshotRecord(1_800_000_000.0, "b.1:4", 1_800_000_060.0))
    assert reporter.worker_fields(tracker.view())["lastResnapshot"]["finishedTime"] == (
        "2027-01-15T08:01:00Z"
    )
    assert tracker.resnapshots == 1  # a finished recovery is not counted again
    fields = reporter.worker_fields(tracker.view())
    assert set(fields) == set(reporter.WORKER_FIELDS)
    assert fields["lastSkip"] == {
        "nonce": "n1",
        "position": "b.1:400",
        "table": "db.t",
        "events": 1,
        "time": "2027-01-15T08:00:00Z",
    }
    assert fields["workerState"] == "Streaming"
    assert "state" not in fields  # phase is the operator's; the worker reports workerState
    assert fields["lastErrors"][0] == {
        "time": "2027-01-15T08:00:00Z",
        "reason": "PoisonRow",
        "message": "cannot decode row",
        "position": "b.1:4",
    }
    assert "eta" not in fields["progress"]


def test_redact_replaces_secrets_in_nested_strings() -> None:
    value = {"a": ["user x password hunter2", {"b": "hunter2hunter2"}], "n": 3, "e": ""}
    assert reporter.redact(value, ["hunter2", ""]) == {
        "a": ["user x password ***", {"b": "******"}],
        "n": 3,
        "e": "",
    }
