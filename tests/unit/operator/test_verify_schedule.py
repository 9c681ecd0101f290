"""spec.verifySchedule (reconcile/verify_schedule.py) and what decide() makes of it: the nonce
of a tick, next-tick computation in a time zone, start / skip / pause, which verifyRequest
the worker config carries (the schedule's or a newer one of the user's), the revision's
cause, and status shown by ``kubectl ferry status``."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from tests.unit.operator.builders import connectors, sync_task

from ferry_operator.api.synctask import SyncTaskSpec
from ferry_operator.context import Context
from ferry_operator.plugin import formatting
from ferry_operator.reconcile import schedule, synctask
from ferry_operator.reconcile import verify_schedule as ticks
from ferry_operator.render import objects

CTX = Context("shop", "orders", "uid-1", "resync")
T0 = datetime(2026, 12, 2, 1, 59, 30, tzinfo=UTC)
BERLIN = {"schedule": "0 3 * * *", "timeZone": "Europe/Berlin", "tables": ["shop.*"]}


def _spec(**fields: Any) -> SyncTaskSpec:
    return SyncTaskSpec.model_validate(fields)


def test_the_nonce_is_the_tick_in_utc() -> None:
    berlin = datetime(2026, 12, 2, 3, 0, tzinfo=schedule.parse("@daily", "Europe/Berlin").zone)
    assert ticks.nonce(berlin) == "scheduled-20261202T020000Z"
    assert ticks.nonce(datetime(2026, 7, 1, 0, 0, 5, tzinfo=UTC)) == "scheduled-20260701T000005Z"


@pytest.mark.parametrize(
    ("zone", "after", "expected"),
    [
        (None, "2026-12-02T01:59:30+00:00", "2026-12-02T03:00:00+00:00"),
        # 03:00 in Berlin: 02:00 UTC in winter, 01:00 UTC in summer.
        ("Europe/Berlin", "2026-12-02T01:59:30+00:00", "2026-12-02T02:00:00+00:00"),
        ("Europe/Berlin", "2026-07-01T12:00:00+00:00", "2026-07-02T01:00:00+00:00"),
        ("America/New_York", "2026-12-02T01:59:30+00:00", "2026-12-02T08:00:00+00:00"),
    ],
)
def test_next_verification_in_a_time_zone(zone: str | None, after: str, expected: str) -> None:
    spec = _spec(verifySchedule={"schedule": "0 3 * * *", **({"timeZone": zone} if zone else {})})
    plan = ticks.plan(spec, ticks.parse(spec), {}, paused=False, now=datetime.fromisoformat(after))
    assert plan.fields["nextVerification"] == expected.replace("+00:00", "Z")
    assert plan.events == [] and plan.request is None  # the first tick is still to come


@pytest.mark.parametrize(
    ("schedule_", "zone", "message"),
    [
        ("0 3 * * *", "Europe/Berln", "spec.verifySchedule.timeZone: unknown time zone"),
        ("0 3 * * * *", None, "spec.verifySchedule.schedule: '0 3 * * * *' is not a cron"),
    ],
)
def test_a_bad_schedule_names_the_field(schedule_: str, zone: str | None, message: str) -> None:
    spec = _spec(verifySchedule={"schedule": schedule_, **({"timeZone": zone} if zone else {})})
    with pytest.raises(schedule.ScheduleError, match=re.escape(message)):
        ticks.parse(spec)


def _due(before: dict[str, Any] | None = None, **status: Any) -> dict[str, Any]:
    """A status whose nextVerification (02:00Z) has come."""
    out = {"nextVerification": "2026-12-02T02:00:00Z", **status}
    if before is not None:
        out["scheduledVerification"] = before
    return out


NOW = datetime(2026, 12, 2, 2, 0, 3, tzinfo=UTC)


def test_a_tick_starts_a_check_with_the_schedules_request() -> None:
    spec = _spec(verifySchedule={**BERLIN, "chunkSize": 50})
    plan = ticks.plan(spec, ticks.parse(spec), _due(), paused=False, now=NOW)
    assert plan.request is not None
    assert plan.request.model_dump(by_alias=True, exclude_none=True) == {
        "tables": ["shop.*"],
        "chunkSize": 50,
        "nonce": "scheduled-20261202T020000Z",
    }
    assert plan.fields == {
        "nextVerification": "2026-12-03T02:00:00Z",
        "scheduledVerification": {
            "lastTick": "2026-12-02T02:00:00Z",
            "nonce": "scheduled-20261202T020000Z",
            "startTime": "2026-12-02T02:00:03Z",
        },
    }
    ((kind, reason, message),) = plan.events
    assert (kind, reason) == ("Normal", "VerificationScheduled")
    assert "scheduled-20261202T020000Z" in message and "'0 3 * * *' Europe/Berlin" in message


def test_the_same_tick_again_starts_the_same_check() -> None:
    """A reconcile whose status write was lost makes the same plan: the same nonce."""
    spec = _spec(verifySchedule=BERLIN)
    first = ticks.plan(spec, ticks.parse(spec), _due(), paused=False, now=NOW)
    again = ticks.plan(spec, ticks.parse(spec), _due(), paused=False, now=NOW + timedelta(1))
    assert first.request == again.request
    # and once recorded, the tick is not due any more: nothing new starts
    recorded = {**_due(), **first.fields}
    later = ticks.plan(spec, ticks.parse(spec), recorded, paused=False, now=NOW)
    assert later.events == [] and later.request == first.request


def test_a_tick_while_a_check_runs_or_waits_is_skipped() -> None:
    spec = _spec(verifySchedule=BERLIN)
    started = {"lastTick": "2026-12-01T02:00:00Z", "nonce": "scheduled-20261201T020000Z"}
    for verification, why in [
        ({"nonce": "scheduled-20261201T020000Z", "state": "Running"}, "is still running"),
        ({"nonce": "older", "state": "Completed"}, "has not started yet"),
    ]:
        status = _due(started, verification=verification)
        plan = ticks.plan(spec, ticks.parse(spec), status, paused=False, now=NOW)
        assert plan.request is not None and plan.request.nonce == "scheduled-20261201T020000Z"
        record = plan.fields["scheduledVerification"]
        assert record["skipped"] is True and record["skippedTicks"] == 1
        assert record["lastTick"] == "2026-12-02T02:00:00Z"
        assert record["nonce"] == "scheduled-20261201T020000Z"  # the running one stays
        assert why in record["message"] and plan.events[0][1] == "VerificationSkipped"
        assert plan.fields["nextVerification"] == "2026-12-03T02:00:00Z"
    # once it has finished, the next tick starts the next check and the skips are forgotten
    done = _due(
        {**started, "skipped": True, "skippedTicks": 3},
        verification={"nonce": "scheduled-20261201T020000Z", "state": "Failed"},
    )
    plan = ticks.plan(spec, ticks.parse(spec), done, paused=False, now=NOW)
    assert plan.request is not None and plan.request.nonce == "scheduled-20261202T020000Z"
    assert "skipped" not in plan.fields["scheduledVerification"]


def test_a_pending_verify_request_of_the_user_makes_the_tick_skip() -> None:
    spec = _spec(verifySchedule=BERLIN, verifyRequest={"nonce": "mine"})
    plan = ticks.plan(spec, ticks.parse(spec), _due(), paused=False, now=NOW)
    assert plan.request is not None and plan.request.nonce == "mine"
    assert plan.events[0][1] == "VerificationSkipped"


def test_paused_starts_nothing_and_shows_no_next_verification() -> None:
    spec = _spec(verifySchedule=BERLIN)
    plan = ticks.plan(spec, ticks.parse(spec), _due(), paused=True, now=NOW)
    assert plan.fields == {"nextVerification": None, "scheduledVerification": None}
    assert plan.events == [] and plan.request is None


def test_which_request_the_config_carries() -> None:
    started = {"nonce": "scheduled-20261202T020000Z", "requestNonce": "mine"}
    scheduled = _spec(verifySchedule=BERLIN, verifyRequest={"nonce": "mine"})
    assert ticks.current_request(scheduled, None) == scheduled.verify_request
    # the schedule's check came after the user's request: the schedule's stays
    found = ticks.current_request(scheduled, started)
    assert found is not None and found.nonce == started["nonce"] and found.tables == ["shop.*"]
    # a new nonce of the user's is newer
    newer = _spec(verifySchedule=BERLIN, verifyRequest={"nonce": "again"})
    assert ticks.current_request(newer, started) == newer.verify_request
    # the schedule removed: the old request of the user's never runs again
    assert ticks.current_request(_spec(verifyRequest={"nonce": "mine"}), started) is None


def test_cause_names_the_scheduled_nonce() -> None:
    assert ticks.cause({"verifyRequest": {"nonce": "v1"}}, "scheduled-X") == (
        "verifySchedule (nonce scheduled-X)"
    )
    assert ticks.cause({"verifyRequest": {"nonce": "scheduled-X"}}, "scheduled-X") is None
    assert ticks.cause({}, "v2") is None and ticks.cause({}, None) is None


# ---------------------------------------------------------------- decide()


def _task(spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    return sync_task(spec, status or {})


def _decide(
    task: dict[str, Any], now: datetime, revisions: list[dict[str, Any]] | None = None
) -> synctask.Plan:
    observed = synctask.Observed(task, None, connectors(), revisions or [], {}, now)
    return synctask.decide(CTX, observed)


def _revision(plan: synctask.Plan) -> dict[str, Any]:
    return next(obj for obj, _ in plan.apply if obj["kind"] == "ConfigMap")


def test_decide_a_tick_makes_a_revision_carrying_the_check() -> None:
    spec = {"verifySchedule": BERLIN}
    first = _decide(_task(spec), T0)
    assert first.status["nextVerification"] == "2026-12-02T02:00:00Z"
    assert first.wake_at == datetime(2026, 12, 2, 2, 0, tzinfo=UTC)  # woken at the tick
    r1 = _revision(first)
    assert "verifyRequest" not in yaml.safe_load(r1["data"][objects.WORKER_CONFIG_KEY])

    status = copy.deepcopy(first.status)
    tick = _decide(_task(spec, status), NOW, [r1])
    r2 = _revision(tick)
    config = yaml.safe_load(r2["data"][objects.WORKER_CONFIG_KEY])
    assert config["verifyRequest"]["nonce"] == "scheduled-20261202T020000Z"
    assert config["verifyRequest"]["tables"] == ["shop.*"]
    assert r2["metadata"]["annotations"]["ferry.dev/change-cause"] == (
        "verifySchedule (nonce scheduled-20261202T020000Z)"
    )
    assert "verifyRequest" not in yaml.safe_load(r2["data"][objects.SPEC_KEY])  # user's spec
    assert tick.status["scheduledVerification"]["nonce"] == "scheduled-20261202T020000Z"
    assert {e[1] for e in tick.events} >= {"VerificationScheduled", "RevisionCreated"}
    assert tick.status["configRevision"] == r2["metadata"]["name"]

    # the next reconcile renders the same config: no new revision
    again = _decide(_task(spec, copy.deepcopy(tick.status)), NOW + timedelta(seconds=5), [r1, r2])
    made = [obj["metadata"]["name"] for obj, _ in again.apply if obj["kind"] == "ConfigMap"]
    assert made == ["orders-worker-config"]  # the mounted one only, no new revision


def test_decide_refuses_a_schedule_on_a_snapshot_task_and_a_bad_zone() -> None:
    plan = _decide(_task({"verifySchedule": BERLIN, "mode": "snapshot"}), T0)
    assert plan.problem is not None and "spec.verifySchedule needs a streaming task" in (
        plan.problem.message
    )
    bad = _decide(_task({"verifySchedule": {"schedule": "@daily", "timeZone": "Mars/Base"}}), T0)
    assert bad.problem is not None
    assert "spec.verifySchedule.timeZone: unknown time zone" in bad.problem.message


def test_status_shows_the_next_and_the_last_scheduled_check() -> None:
    task: dict[str, Any] = {
        "metadata": {"name": "orders", "namespace": "shop"},
        "spec": {"verifySchedule": BERLIN},
        "status": {
            "nextVerification": "2026-12-03T02:00:00Z",
            "scheduledVerification": {
                "lastTick": "2026-12-02T02:00:00Z",
                "nonce": "scheduled-20261201T020000Z",
                "skipped": True,
                "skippedTicks": 1,
                "message": "skipped …",
            },
        },
    }
    text = formatting.status_panel(task, NOW)
    assert (
        "Verify next:  2026-12-03T02:00:00Z (verifySchedule '0 3 * * *' Europe/Berlin); "
        "tick 2026-12-02T02:00:00Z skipped (1 in a row): a check was still running or waiting"
        in text
    )
    started = copy.deepcopy(task)
    started["status"]["scheduledVerification"] = {
        "lastTick": "2026-12-02T02:00:00Z",
        "nonce": "scheduled-20261202T020000Z",
    }
    assert "tick 2026-12-02T02:00:00Z started scheduled-20261202T020000Z" in (
        formatting.status_panel(started, NOW)
    )
    paused = {**task, "spec": {"verifySchedule": BERLIN, "paused": True}, "status": {}}
    assert "Verify next:  - (paused)" in formatting.status_panel(paused, NOW)
    assert "Verify next" not in formatting.status_panel({"spec": {}, "status": {}}, NOW)
