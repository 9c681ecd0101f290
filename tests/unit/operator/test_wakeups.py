"""The wake-up schedule (wakeups.py), the health deadline (health.next_check) and what of a pod
wakes a task (pods.change_view)."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime, timedelta

from ferry_operator import wakeups
from ferry_operator.api.synctask import SyncTaskSpec
from ferry_operator.reconcile import health, pods

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_safety_net_is_jittered_within_twenty_percent() -> None:
    rng = random.Random(7)
    draws = [wakeups.safety_net(100.0, 300.0, rng) - 100.0 for _ in range(2000)]
    assert min(draws) >= 240.0 and max(draws) <= 360.0
    assert max(draws) - min(draws) > 100.0  # spread, not one instant for every task


def test_schedule_runs_the_earliest_once_and_collapses_wakeups() -> None:
    ran: list[tuple[tuple[str, str], str]] = []
    done = threading.Event()

    def run(key: tuple[str, str], trigger: str) -> None:
        ran.append((key, trigger))
        if len(ran) == 2:
            done.set()

    schedule = wakeups.Schedule(run, workers=1)
    now = time.monotonic()
    schedule.at(("ns", "a"), now + 60, "resync")
    schedule.sooner(("ns", "a"), now + 0.05, "pods")  # earlier: replaces
    schedule.sooner(("ns", "a"), now + 0.2, "deployments")  # later: ignored
    schedule.at(("ns", "b"), now + 0.1, "deadline")
    schedule.at(("ns", "c"), now + 0.1, "resync")
    schedule.forget(("ns", "c"))
    assert done.wait(5)
    time.sleep(0.3)
    assert ran == [(("ns", "a"), "pods"), (("ns", "b"), "deadline")]
    assert len(schedule) == 0


def test_dependents_follow_what_each_task_uses() -> None:
    deps = wakeups.Dependents()
    deps.record(("ns", "t1"), {("connectors", "db"), ("tasktemplates", "defaults")})
    deps.record(("ns", "t2"), {("connectors", "db")})
    assert deps.users("ns", "connectors", "db") == ["t1", "t2"]
    assert deps.users("ns", "tasktemplates", "defaults") == ["t1"]
    deps.record(("ns", "t1"), {("connectors", "db")})  # no longer uses the template
    assert deps.users("ns", "tasktemplates", "defaults") == []
    deps.forget(("ns", "t2"))
    assert deps.users("ns", "connectors", "db") == ["t1"]
    assert deps.users("other", "connectors", "db") == []


def check(status: dict[str, object], **kwargs: object) -> datetime | None:
    options: dict[str, object] = {"problem": None, "paused": False, "phase": "Running"}
    options.update(kwargs)
    return health.next_check(SyncTaskSpec(), status, now=NOW, **options)  # type: ignore[arg-type]


def test_a_reporting_worker_is_checked_when_its_heartbeat_would_go_missing() -> None:
    status = {
        "lastStartTime": stamp(NOW - timedelta(minutes=5)),
        "workerState": "Streaming",
        "heartbeatTime": stamp(NOW - timedelta(seconds=5)),
    }
    assert check(status) == NOW + timedelta(seconds=26)
    # Already missing: nothing to wait for (its next report is a watch event).
    stale = {**status, "heartbeatTime": stamp(NOW - timedelta(minutes=2))}
    assert check(stale) is None


def test_a_started_worker_that_never_reported_is_checked_at_its_start_timeout() -> None:
    status = {"lastStartTime": stamp(NOW - timedelta(minutes=1))}
    assert check(status, phase="Starting") == NOW + timedelta(minutes=4, seconds=1)
    spec = SyncTaskSpec.model_validate({"startTimeout": "2m"})
    found = health.next_check(spec, status, problem=None, paused=False, phase="Starting", now=NOW)
    assert found == NOW + timedelta(minutes=1, seconds=1)


def test_steady_states_need_no_wakeup() -> None:
    assert check({}, paused=True) is None
    assert check({"workerState": "Completed"}, phase="Completed") is None
    streak = {"workerPod": {"restartStreak": 3}}
    assert check(streak, phase="Failed") is None  # stopped for too many restarts
    assert check(streak) == NOW + health.STREAK_CHECK
    waiting = health.Problem("ConnectorNotReady", "…", False)
    assert check({}, problem=waiting) == NOW + health.WAITING_CHECK
    assert check({}, problem=health.Problem("InvalidSpec", "…", True)) is None


def pod(waiting: str, message: str = "", restarts: int = 0) -> dict[str, object]:
    return {
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {"nodeName": "node"},
        "status": {
            "phase": "Pending",
            "containerStatuses": [
                {
                    "name": "worker",
                    "restartCount": restarts,
                    "ready": False,
                    "state": {"waiting": {"reason": waiting, "message": message}},
                }
            ],
        },
    }


def test_the_image_pull_flip_is_no_change_but_a_crash_loop_is() -> None:
    pulling = pods.change_view(pod("ErrImagePull", "pull access denied"))
    backing_off = pods.change_view(pod("ImagePullBackOff", 'Back-off pulling image "x"'))
    assert pulling == backing_off
    crash = pods.change_view(pod("CrashLoopBackOff", "back-off 10s", restarts=1))
    assert crash != backing_off
    assert pods.change_view(pod("CrashLoopBackOff", "back-off 20s", restarts=2)) != crash


def test_a_task_paused_until_resume_at_is_woken_then_and_runs() -> None:
    """spec.resumeAt is a wake-up of the schedule (no kopf daemon): the paused task's next look
    is at that moment, and the reconcile then finds it running."""
    from tests.unit.operator.builders import connectors, sync_task

    from ferry_operator.context import Context
    from ferry_operator.reconcile import synctask

    task = sync_task()
    resume = NOW + timedelta(hours=2)
    task["spec"].update(paused=True, resumeAt=stamp(resume))
    ctx = Context("shop", "orders", "uid-1", "create")
    paused = synctask.decide(ctx, synctask.Observed(task, None, connectors(), [], {}, NOW))
    assert paused.status["phase"] == "Paused" and paused.wake_at == resume
    later = synctask.Observed(task, None, connectors(), [], {}, resume)
    assert synctask.decide(ctx, later).status["phase"] != "Paused"
