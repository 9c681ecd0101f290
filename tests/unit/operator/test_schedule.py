"""Scheduled snapshot runs (reconcile/schedule.py) and what decide() makes of them: next-run
computation with time zones and DST, the run plan (start, skip, finish, pause), the Deployment
and the status it leads to."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.unit.operator.builders import connectors, sync_task

from ferry_operator.api.synctask import SyncTaskSpec
from ferry_operator.context import Context
from ferry_operator.reconcile import schedule, synctask

CTX = Context("shop", "orders", "uid-1", "resync")
T0 = datetime(2026, 12, 2, 1, 59, 30, tzinfo=UTC)


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@pytest.mark.parametrize(
    ("expression", "zone", "after", "expected"),
    [
        ("0 2 * * *", None, "2026-12-02T01:59:30+00:00", "2026-12-02T02:00:00+00:00"),
        ("0 2 * * *", None, "2026-12-02T02:00:00+00:00", "2026-12-03T02:00:00+00:00"),
        # 02:00 in Berlin is 01:00 UTC in winter, 00:00 UTC in summer.
        ("0 2 * * *", "Europe/Berlin", "2026-12-02T00:30:00+00:00", "2026-12-02T01:00:00+00:00"),
        ("0 2 * * *", "Europe/Berlin", "2026-07-01T12:00:00+00:00", "2026-07-02T00:00:00+00:00"),
        # Spring forward: 02:00 does not exist on 2026-03-29; the run is at 03:00 CEST.
        ("0 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00+00:00", "2026-03-29T01:00:00+00:00"),
        # Fall back: 02:30 happens twice on 2026-10-25; it fires once, the first time.
        ("30 2 * * *", "Europe/Berlin", "2026-10-25T00:30:00+00:00", "2026-10-26T01:30:00+00:00"),
        ("*/15 * * * *", "Asia/Kolkata", "2026-12-02T01:59:30+00:00", "2026-12-02T02:00:00+00:00"),
        ("@hourly", None, "2026-12-02T01:59:30+00:00", "2026-12-02T02:00:00+00:00"),
        (
            "0 9 * * MON",
            "America/New_York",
            "2026-12-02T00:00:00+00:00",
            "2026-12-07T14:00:00+00:00",
        ),
    ],
)
def test_next_run(expression: str, zone: str | None, after: str, expected: str) -> None:
    cron = schedule.parse(expression, zone)
    assert schedule.next_run(cron, _utc(after)) == _utc(expected)


@pytest.mark.parametrize(
    ("expression", "zone", "message"),
    [
        ("0 2 * * *", "Europe/Berln", "spec.timeZone: unknown time zone 'Europe/Berln'"),
        ("0 2 * * * *", None, "spec.schedule: '0 2 * * * *' is not a cron expression of 5 fields"),
        ("0 2 * *", None, "spec.schedule: '0 2 * *' is not a cron expression of 5 fields"),
        ("0 25 * * *", None, "spec.schedule: '0 25 * * *' is not a cron expression"),
    ],
)
def test_a_bad_schedule_names_the_field(expression: str, zone: str | None, message: str) -> None:
    with pytest.raises(schedule.ScheduleError, match=message.replace("*", r"\*")):
        schedule.parse(expression, zone)


SPEC = SyncTaskSpec.model_validate({"mode": "snapshot", "schedule": "0 2 * * *"})
CRON = schedule.parse("0 2 * * *", None)


def test_a_tick_starts_a_run_with_its_id() -> None:
    now = T0 + timedelta(seconds=40)  # 02:00:10
    plan = schedule.plan(
        SPEC, CRON, {"nextRun": "2026-12-02T02:00:00Z"}, paused=False, stop_worker=False, now=now
    )
    assert plan.wants_worker and plan.run == "20261202T020000Z"
    assert plan.fields["activeRun"] == {
        "id": "20261202T020000Z",
        "scheduledTime": "2026-12-02T02:00:00Z",
        "start": "2026-12-02T02:00:10Z",
    }
    assert plan.fields["nextRun"] == "2026-12-03T02:00:00Z"
    assert [e[1] for e in plan.events] == ["RunStarted"]


def test_before_the_tick_nothing_runs_and_next_run_is_shown() -> None:
    plan = schedule.plan(SPEC, CRON, {}, paused=False, stop_worker=False, now=T0)
    assert not plan.wants_worker and plan.run is None
    assert plan.fields["nextRun"] == "2026-12-02T02:00:00Z" and plan.fields["activeRun"] is None
    assert plan.events == []


def test_a_tick_during_a_run_is_skipped() -> None:
    active = {"id": "20261201T020000Z", "start": "2026-12-01T02:00:01Z"}
    status = {"nextRun": "2026-12-02T02:00:00Z", "activeRun": active}
    plan = schedule.plan(
        SPEC, CRON, status, paused=False, stop_worker=False, now=T0 + timedelta(minutes=1)
    )
    assert plan.wants_worker and plan.run == "20261201T020000Z"
    assert plan.fields["activeRun"] == active
    assert plan.fields["nextRun"] == "2026-12-03T02:00:00Z"
    assert (
        plan.events[0][1] == "RunSkipped" and "20261201T020000Z is still going" in plan.events[0][2]
    )


def test_paused_starts_nothing_and_shows_no_next_run() -> None:
    status = {"nextRun": "2026-12-02T02:00:00Z", "lastRun": {"id": "20261201T020000Z"}}
    plan = schedule.plan(
        SPEC, CRON, status, paused=True, stop_worker=False, now=T0 + timedelta(hours=1)
    )
    assert not plan.wants_worker and plan.run == "20261201T020000Z"  # the template stays
    assert plan.fields["nextRun"] is None and plan.fields["activeRun"] is None


def _finished_status(state: str) -> dict[str, Any]:
    return {
        "nextRun": "2026-12-03T02:00:00Z",
        "activeRun": {
            "id": "R1",
            "scheduledTime": "2026-12-02T02:00:00Z",
            "start": "2026-12-02T02:00:01Z",
        },
        "lastStartTime": "2026-12-02T02:00:01Z",
        "workerState": state,
        "heartbeatTime": "2026-12-02T02:01:24Z",
        "progress": {"rowsDone": 1234},
        "lastErrors": [{"reason": "PositionUnavailable", "message": "gone"}],
        "runs": [{"id": f"OLD{i}"} for i in range(10)],
    }


def test_a_finished_run_is_recorded_and_the_history_bounded() -> None:
    now = datetime(2026, 12, 2, 2, 1, 25, tzinfo=UTC)
    plan = schedule.plan(
        SPEC, CRON, _finished_status("Completed"), paused=False, stop_worker=False, now=now
    )
    assert not plan.wants_worker and plan.run == "R1"
    record = {
        "id": "R1",
        "scheduledTime": "2026-12-02T02:00:00Z",
        "start": "2026-12-02T02:00:01Z",
        "end": "2026-12-02T02:01:24Z",
        "duration": "1m23s",
        "durationSeconds": 83,
        "rows": 1234,
        "result": "Completed",
    }
    assert plan.fields["lastRun"] == record and plan.fields["activeRun"] is None
    assert plan.fields["runs"][0] == record and len(plan.fields["runs"]) == schedule.HISTORY
    assert plan.fields["runs"][-1] == {"id": "OLD8"}
    assert plan.events[0][:2] == ("Normal", "RunCompleted")


def test_a_failed_run_keeps_why() -> None:
    now = datetime(2026, 12, 2, 2, 1, 25, tzinfo=UTC)
    plan = schedule.plan(
        SPEC, CRON, _finished_status("Failed"), paused=False, stop_worker=False, now=now
    )
    assert plan.fields["lastRun"]["result"] == "Failed"
    assert plan.fields["lastRun"]["reason"] == "PositionUnavailable"
    assert plan.events[0][:2] == ("Warning", "RunFailed")


def test_a_report_of_the_previous_worker_does_not_end_the_run() -> None:
    status = {**_finished_status("Completed"), "heartbeatTime": "2026-12-02T02:00:00Z"}
    plan = schedule.plan(
        SPEC, CRON, status, paused=False, stop_worker=False, now=T0 + timedelta(minutes=2)
    )
    assert plan.fields["activeRun"]["id"] == "R1" and plan.wants_worker


# ---------------------------------------------------------------- decide()


def _task(spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    return sync_task({"mode": "snapshot", **spec}, status or {})


def _decide(
    task: dict[str, Any], now: datetime, owned: dict[str, Any] | None = None
) -> synctask.Plan:
    observed = synctask.Observed(task, None, connectors(), [], owned or {}, now)
    return synctask.decide(CTX, observed)


def _deployment(plan: synctask.Plan) -> dict[str, Any]:
    return next(obj for obj, _ in plan.apply if obj["kind"] == "Deployment")


def test_decide_scheduled_task_waits_then_runs_then_scales_down() -> None:
    spec = {"schedule": "0 2 * * *", "timeZone": "Europe/Berlin"}
    waiting = _decide(_task(spec), T0 - timedelta(hours=2))  # 23:59:30 UTC, 00:59 Berlin
    assert waiting.status["phase"] == "Scheduled"
    assert waiting.status["nextRun"] == "2026-12-02T01:00:00Z"
    ready = next(c for c in waiting.status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True" and "next run at 2026-12-02T01:00:00Z" in ready["message"]
    assert _deployment(waiting)["spec"]["replicas"] == 0

    status = copy.deepcopy(waiting.status)
    now = datetime(2026, 12, 2, 1, 0, 2, tzinfo=UTC)
    running = _decide(_task(spec, status), now, {"Deployment": _deployment(waiting)})
    deployment = _deployment(running)
    assert deployment["spec"]["replicas"] == 1
    template = deployment["spec"]["template"]
    assert template["metadata"]["annotations"]["ferry.dev/run"] == "20261202T010000Z"
    assert {"name": "FERRY_RUN", "value": "20261202T010000Z"} in template["spec"]["containers"][0][
        "env"
    ]
    assert running.status["activeRun"]["id"] == "20261202T010000Z"
    assert running.status["lastStartTime"] == "2026-12-02T01:00:02Z"
    assert running.status["phase"] == "Starting"

    done_status = {
        **copy.deepcopy(running.status),
        "workerState": "Completed",
        "heartbeatTime": "2026-12-02T01:00:30Z",
        "progress": {"rowsDone": 5},
    }
    later = datetime(2026, 12, 2, 1, 0, 31, tzinfo=UTC)
    done = _decide(_task(spec, done_status), later, {"Deployment": deployment})
    assert _deployment(done)["spec"]["replicas"] == 0
    assert _deployment(done)["spec"]["template"] == template  # scale only: no new pod template
    assert done.status["phase"] == "Completed"
    assert done.status["lastRun"]["rows"] == 5 and done.status["lastRun"]["duration"] == "28s"
    assert done.status.get("activeRun") is None
    assert [n.payload["event"] for n in done.notifications] == []  # none configured


def test_decide_unscheduled_snapshot_records_its_run() -> None:
    first = _decide(_task({}), T0)
    assert first.status["activeRun"] == {"start": "2026-12-02T01:59:30Z"}
    assert _deployment(first)["spec"]["replicas"] == 1
    status = {
        **copy.deepcopy(first.status),
        "workerState": "Completed",
        "heartbeatTime": "2026-12-02T02:00:40Z",
        "progress": {"rowsDone": 9},
    }
    done = _decide(_task({}, status), T0 + timedelta(minutes=2), {"Deployment": _deployment(first)})
    assert done.status["lastRun"] == {
        "start": "2026-12-02T01:59:30Z",
        "end": "2026-12-02T02:00:40Z",
        "duration": "1m10s",
        "durationSeconds": 70,
        "rows": 9,
        "result": "Completed",
    }
    assert done.status["phase"] == "Completed"
    assert _deployment(done)["spec"]["replicas"] == 1  # unchanged for unscheduled tasks


def test_decide_a_schedule_the_template_gives_a_cdc_task_is_refused() -> None:
    plan = _decide(_task({"schedule": "0 2 * * *", "mode": "cdc"}), T0)
    assert plan.status["phase"] == "Failed"
    assert plan.problem is not None and plan.problem.message.startswith("spec.schedule needs")


def test_decide_an_unknown_zone_fails_naming_the_field() -> None:
    plan = _decide(_task({"schedule": "0 2 * * *", "timeZone": "Mars/Olympus"}), T0)
    assert plan.status["phase"] == "Failed"
    assert plan.problem is not None and "spec.timeZone: unknown time zone" in plan.problem.message
