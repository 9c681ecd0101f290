"""What the worker's pods and Deployment say, mapped to reasons (pure): pod objects shaped as
the API server returns them (status written by the kubelet, the scheduler, the controllers)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ferry_operator.api.synctask import SyncTaskSpec
from ferry_operator.reconcile import pods
from ferry_operator.reconcile.health import assess

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def pod(
    name: str = "orders-worker-7d9f-abcde",
    created: str = "2026-03-01T11:50:00Z",
    phase: str = "Running",
    state: dict[str, Any] | None = None,
    last: dict[str, Any] | None = None,
    restarts: int = 0,
    conditions: list[dict[str, Any]] | None = None,
    node: str | None = "node-1",
) -> dict[str, Any]:
    container = {"name": "worker", "image": "ferry.local/ferry-worker:dev",
                 "restartCount": restarts, "state": state or {"running": {}},
                 "lastState": {"terminated": last} if last else {}}  # fmt: skip
    return {
        "metadata": {"name": name, "namespace": "shop", "creationTimestamp": created},
        "spec": {
            "nodeName": node,
            "containers": [
                {
                    "name": "worker",
                    "image": "ferry.local/ferry-worker:dev",
                    "resources": {"limits": {"memory": "64Mi"}},
                }
            ],
        },
        "status": {
            "phase": phase,
            "containerStatuses": [container],
            "conditions": conditions or [],
        },
    }


def waiting(reason: str, message: str = "") -> dict[str, Any]:
    return {"waiting": {"reason": reason, "message": message}}


def test_crash_loop_names_restarts_and_exit_code() -> None:
    found = pods.trouble(
        None, [pod(state=waiting("CrashLoopBackOff"), last={"exitCode": 1}, restarts=4)], {}
    )
    assert found is not None and found.reason == "CrashLoopBackOff"
    assert "4 restarts, last exit code 1" in found.message
    assert "kubectl logs orders-worker-7d9f-abcde --previous" in found.message


def test_oom_names_the_limit() -> None:
    looping = pod(state=waiting("CrashLoopBackOff"), last={"reason": "OOMKilled"}, restarts=2)
    found = pods.trouble(None, [looping], {})
    assert found is not None and found.reason == "OOMKilled"
    assert "memory limit of 64Mi" in found.message
    assert "spec.worker.resources.limits.memory" in found.message
    killed = pod(state={"terminated": {"reason": "OOMKilled", "exitCode": 137}}, restarts=0)
    found = pods.trouble(None, [killed], {})
    assert found is not None and found.reason == "OOMKilled" and "(0 restarts" in found.message


def test_image_pull_names_the_image() -> None:
    for reason in ("ErrImagePull", "ImagePullBackOff"):
        found = pods.trouble(None, [pod(state=waiting(reason, "not found"), phase="Pending")], {})
        assert found is not None and found.reason == "ImagePullBackOff"
        assert f"ferry.local/ferry-worker:dev ({reason}: not found)" in found.message


def test_missing_secret_key_lists_the_keys_present() -> None:
    message = "couldn't find key passwd in Secret shop/db"
    broken = pod(state=waiting("CreateContainerConfigError", message), phase="Pending")
    assert pods.missing_secret_key([broken]) == ("shop", "db")
    found = pods.trouble(None, [broken], {"db": ["password", "user"]})
    assert found is not None and found.reason == "SecretKeyNotFound"
    assert "Secret shop/db has no key 'passwd' (it has: password, user)" in found.message
    unread = pods.trouble(None, [broken], {})
    assert unread is not None and "its keys could not be read" in unread.message
    gone = pod(state=waiting("CreateContainerConfigError", 'secret "db" not found'))
    found = pods.trouble(None, [gone], {})
    assert found is not None and found.reason == "SecretNotFound"
    assert "Secret db does not exist in namespace shop" in found.message


def test_unschedulable_quotes_the_scheduler() -> None:
    pending = pod(phase="Pending", state=waiting("ContainerCreating"), node=None, conditions=[
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
         "message": "0/1 nodes are available: 1 Insufficient memory."}])  # fmt: skip
    found = pods.trouble(None, [pending], {})
    assert found is not None and found.reason == "Unschedulable"
    assert "0/1 nodes are available: 1 Insufficient memory." in found.message
    assert pods.pod_summary([pending], None) == (
        "pod orders-worker-7d9f-abcde is Pending, not scheduled to a node yet"
    )


def test_deployment_that_cannot_create_its_pod() -> None:
    deployment = {"status": {"conditions": [
        {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
         "message": 'pods "x" is forbidden: exceeded quota: q'}]}}  # fmt: skip
    found = pods.trouble(deployment, [], {})
    message = (
        'the worker\'s pod cannot be created: pods "x" is forbidden: exceeded quota: q; check '
        "spec.worker.resources against the namespace's ResourceQuota and LimitRange"
    )
    assert found == pods.Trouble("FailedCreate", message)
    assert pods.pod_summary([], deployment) == "no worker pod exists (the Deployment has 0)"


def test_healthy_or_starting_pods_are_no_trouble() -> None:
    assert pods.trouble(None, [pod()], {}) is None
    assert pods.trouble(None, [pod(state=waiting("ContainerCreating"))], {}) is None
    assert pods.trouble(None, [], {}) is None


def test_an_image_pull_message_stays_while_the_kubelet_flips_its_words() -> None:
    pulling = [pod(state=waiting("ErrImagePull", "failed to resolve reference"), phase="Pending")]
    first = pods.worker_pod_status(None, None, pulling, {}, new_start=True)
    assert first is not None and "failed to resolve reference" in first["message"]
    backing_off = [pod(state=waiting("ImagePullBackOff", 'Back-off pulling image "x"'),
                       phase="Pending")]  # fmt: skip
    assert pods.worker_pod_status(first, None, backing_off, {}, False) == first
    assert first["summary"] == "pod orders-worker-7d9f-abcde is Pending"


def test_the_newest_pod_speaks() -> None:
    old = pod(name="a", created="2026-03-01T10:00:00Z", state=waiting("CrashLoopBackOff"))
    new = pod(name="b", created="2026-03-01T11:00:00Z")
    assert pods.trouble(None, [old, new], {}) is None


def test_restarts_add_up_over_pods_and_since_the_last_start() -> None:
    first = pods.worker_pod_status(None, None, [pod(name="a", restarts=2)], {}, new_start=True)
    assert first is not None
    assert (first["restarts"], first["restartsSinceStart"], first["restartCount"]) == (2, 2, 2)
    again = pods.worker_pod_status(first, None, [pod(name="a", restarts=5)], {}, False)
    assert again is not None and (again["restarts"], again["restartsSinceStart"]) == (5, 5)
    replaced = pods.worker_pod_status(again, None, [pod(name="b", restarts=1)], {}, True)
    assert replaced is not None
    assert (replaced["restarts"], replaced["restartsSinceStart"]) == (6, 1)
    gone = pods.worker_pod_status(replaced, None, [], {}, False)  # scaled to 0: kept
    assert gone is not None and (gone["restarts"], gone["name"]) == (6, "b")
    assert pods.worker_pod_status(None, None, [], {}, False) is None


def test_the_restart_streak_starts_again_after_reset_after_of_running() -> None:
    """The pod's restarts in a row follow the worker's own rule (status.retry.streak): 0 again
    once the worker has run restartPolicy.resetAfter since its last restart and says it runs;
    restartsSinceStart keeps counting."""
    up = {"running": {"startedAt": "2026-03-01T11:50:00Z"}}  # 10 minutes before NOW
    crashed = pods.worker_pod_status(None, None, [pod(state=up, restarts=3)], {}, True)
    assert crashed is not None and crashed["restartStreak"] == 3

    def later(previous: Any, runs: bool, after: timedelta, restarts: int = 3) -> Any:
        return pods.worker_pod_status(
            previous, None, [pod(state=up, restarts=restarts)], {}, False,
            reset_after=after, worker_runs=runs, now=NOW,
        )  # fmt: skip

    assert later(crashed, True, timedelta(minutes=11))["restartStreak"] == 3  # not long enough
    assert later(crashed, False, timedelta(minutes=10))["restartStreak"] == 3  # not reporting
    healed = later(crashed, True, timedelta(minutes=10))
    assert (healed["restartStreak"], healed["restartsSinceStart"], healed["restarts"]) == (0, 3, 3)
    # A restart after that is the first of a new streak; the others keep counting.
    again = pods.worker_pod_status(healed, None, [pod(restarts=4)], {}, False)
    assert (again["restartStreak"], again["restartsSinceStart"], again["restarts"]) == (1, 4, 4)
    # A crash-looping pod (not running) never resets, however long ago it started.
    looping = pod(state=waiting("CrashLoopBackOff"), restarts=5)
    assert pods.running_since(looping) is None
    stays = pods.worker_pod_status(
        again, None, [looping], {}, False, reset_after=timedelta(0), worker_runs=True, now=NOW
    )
    assert stays is not None and stays["restartStreak"] == 2
    # A new start (new config, resume, restartNonce) starts every per-start count again.
    fresh = pods.worker_pod_status(stays, None, [pod(name="c")], {}, True)
    assert fresh is not None and (fresh["restartStreak"], fresh["restartsSinceStart"]) == (0, 0)


def test_the_restart_limit_reads_the_streak_so_restarts_far_apart_never_stop_it() -> None:
    status = {
        "lastStartTime": "2026-03-01T11:59:00Z",
        "heartbeatTime": "2026-03-01T11:59:50Z",
        "workerState": "Streaming",
        "workerPod": {"restartsSinceStart": 9, "restartStreak": 1},
    }
    assert not _assess(status, restartPolicy={"maxRetries": 3}).stop_worker
    status["workerPod"]["restartStreak"] = 4
    verdict = _assess(status, restartPolicy={"maxRetries": 3})
    assert verdict.stop_worker and "restarted 4 times in a row" in verdict.conditions["Ready"][2]


def _assess(status: dict[str, Any], **spec: Any) -> Any:
    return assess(SyncTaskSpec.model_validate(spec), status, problem=None, paused=False,
                  resume_at=None, now=NOW)  # fmt: skip


def test_pod_trouble_is_ready_false_and_stalled_with_its_reason() -> None:
    status: dict[str, Any] = {
        "lastStartTime": "2026-03-01T11:59:00Z",
        "workerPod": {"reason": "CrashLoopBackOff", "message": "exits", "restarts": 3},
    }
    verdict = _assess(status)
    assert verdict.phase == "Starting"
    assert verdict.conditions["Ready"] == ("False", "CrashLoopBackOff", "exits")
    assert verdict.conditions["Stalled"] == ("True", "CrashLoopBackOff", "exits")
    # The worker's own reason is more precise: it wins.
    status.update(workerState="Failed", heartbeatTime="2026-03-01T11:59:30Z",
                  lastErrors=[{"reason": "AuthenticationFailed", "message": "denied"}])  # fmt: skip
    status["workerPod"]["restartsSinceStart"] = 3
    assert _assess(status).conditions["Ready"][1:] == (
        "AuthenticationFailed",
        "denied (pod: CrashLoopBackOff, 3 restarts)",
    )


def test_pod_restarts_count_towards_the_restart_limit() -> None:
    status = {
        "lastStartTime": "2026-03-01T11:59:00Z",
        "heartbeatTime": "2026-03-01T11:59:50Z",
        "workerState": "Streaming",
        "counters": {"restartsSinceStart": 3},
        "workerPod": {"restartsSinceStart": 4},
    }
    verdict = _assess(status, restartPolicy={"maxRetries": 3})
    assert verdict.stop_worker and verdict.conditions["Stalled"][1] == "TooManyRestarts"
    assert "restarted 4 times" in verdict.conditions["Ready"][2]
    # Each kind against the limit on its own: 3 retries in the process, then 4 pod restarts.
    assert not _assess(status, restartPolicy={"maxRetries": 4}).stop_worker


def test_a_worker_that_never_reports_is_stalled_after_start_timeout() -> None:
    started = (NOW - timedelta(seconds=301)).strftime("%Y-%m-%dT%H:%M:%SZ")
    summary = "pod orders-worker-1 is Pending, not scheduled to a node yet"
    status = {"lastStartTime": started, "workerPod": {"summary": summary}}
    verdict = _assess(status)
    assert verdict.conditions["Stalled"][:2] == ("True", "StartTimeout")
    assert (
        "has not reported 301s after it was started (spec.startTimeout 5m)"
        in (verdict.conditions["Ready"][2])
    )
    assert summary in verdict.conditions["Ready"][2]
    assert _assess(status, startTimeout="10m").conditions["Ready"][1] == "Starting"
    just_started = {**status, "lastStartTime": NOW.strftime("%Y-%m-%dT%H:%M:%SZ")}
    assert _assess(just_started).conditions["Stalled"][0] == "False"


def test_a_worker_that_reports_after_its_last_exit_runs_now() -> None:
    fresh = (NOW - timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    status: dict[str, Any] = {
        "lastStartTime": "2026-03-01T11:50:00Z",
        "workerState": "Streaming",
        "heartbeatTime": fresh,
        "workerPod": {"reason": "CrashLoopBackOff", "message": "exits",
                      "since": "2026-03-01T11:58:00Z"},
    }  # fmt: skip
    assert _assess(status).conditions["Ready"][:2] == ("True", "Running")
    status["workerPod"]["since"] = "2026-03-01T11:59:59Z"  # it exited after that report
    assert _assess(status).conditions["Ready"][1] == "CrashLoopBackOff"
    # A pod that never ran (the image) is no worker: a fresh report comes from elsewhere
    # (a worker run by hand), and it is what runs.
    status["workerPod"] = {"reason": "ImagePullBackOff", "message": "cannot pull"}
    assert _assess(status).conditions["Ready"][0] == "True"
    status["heartbeatTime"] = "2026-03-01T11:55:00Z"  # silent for 5 min
    assert _assess(status).conditions["Ready"][1] == "ImagePullBackOff"


def test_crash_loop_records_when_the_worker_last_exited() -> None:
    last = {"exitCode": 1, "finishedAt": "2026-03-01T11:59:00Z"}
    looping = pod(state=waiting("CrashLoopBackOff"), last=last, restarts=3)
    status = pods.worker_pod_status(None, None, [looping], {}, new_start=False)
    assert status is not None and status["since"] == "2026-03-01T11:59:00Z"


def test_an_image_without_the_worker_command_is_a_crash_loop_that_names_the_image() -> None:
    """What the kubelet reports when the runtime cannot exec the container's command."""
    said = (
        "failed to create containerd task: failed to create shim task: OCI runtime create "
        'failed: runc create failed: unable to start container process: exec: "ferry-worker": '
        "executable file not found in $PATH: unknown"
    )
    last = {"reason": "StartError", "exitCode": 128, "message": said,
            "finishedAt": "2026-03-01T11:59:00Z"}  # fmt: skip
    found = pods.trouble(None, [pod(state=waiting("CrashLoopBackOff"), last=last, restarts=2)], {})
    assert found is not None and found.reason == "CrashLoopBackOff"
    assert "cannot start its command (2 restarts, exit code 128:" in found.message
    assert 'exec: "ferry-worker": executable file not found' in found.message
    assert "ferry.local/ferry-worker:dev must be a Ferry worker image" in found.message
    assert found.since == "2026-03-01T11:59:00Z"
