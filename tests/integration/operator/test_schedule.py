"""Scheduled snapshot runs (spec.schedule, spec.timeZone, spec.paused) against the real API
server, with the operator as a process and the test playing kubelet: a run starts at its
tick, a tick that comes while a run goes on is skipped (runs never overlap), a paused task
starts nothing and takes up the schedule at the next tick after it resumes, and a finished
run records start, end, duration and rows. Every minute ("* * * * *") is the shortest cron
schedule: the test takes about two minutes."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from ferry_operator.reconcile import health

from . import crdguard
from .conftest import Ferry, Kubelet, OperatorProcess, task, wait_until

pytestmark = [pytest.mark.kube, pytest.mark.mysql, pytest.mark.kafka]


@pytest.fixture(autouse=True)
def _crds_of_this_tree(kube_api: Any, ferry_crds: None) -> Iterator[None]:
    with crdguard.guarded(kube_api):
        yield


@pytest.fixture
def tasks_deleted_first(ferry: Ferry, ferry_operator: OperatorProcess) -> Iterator[None]:
    """The operator stops only after the test's SyncTasks and Connectors are gone (their
    finalizers). A 429 (a CRD being re-applied on the shared server) is waited out."""
    yield
    for plural in ("synctasks", "connectors"):

        def gone(plural: str = plural) -> bool:
            try:
                listed = ferry.custom.list_namespaced_custom_object(
                    "ferry.dev", "v1alpha1", ferry.ns, plural
                )
                for item in listed["items"]:
                    if not item["metadata"].get("deletionTimestamp"):
                        ferry.custom.delete_namespaced_custom_object(
                            "ferry.dev", "v1alpha1", ferry.ns, plural, item["metadata"]["name"]
                        )
            except client.ApiException as error:
                if error.status in (404, 429, 500, 503):
                    return False
                raise
            return not listed["items"]

        wait_until(gone, 90, f"the test's {plural} deleted")


def _status(ferry: Ferry, name: str) -> dict[str, Any]:
    return ferry.get("synctasks", name).get("status") or {}


def _deployment(ferry: Ferry, name: str) -> tuple[int, dict[str, str]]:
    deployment = ferry.deployment(name)
    container = deployment.spec.template.spec.containers[0]
    plain = {e.name: e.value for e in container.env or [] if e.value is not None}
    return deployment.spec.replicas, plain


def _now() -> datetime:
    return datetime.now(UTC)


def _wait_past(moment: datetime, extra: float = 0.0) -> None:
    delay = (moment - _now()).total_seconds() + extra
    if delay > 0:
        time.sleep(delay)


@pytest.mark.long
def test_runs_fire_on_time_never_overlap_and_paused_suspends(
    ferry: Ferry,
    testenv: Any,
    mysql_connect: Any,
    database: str,
    topic_prefix: str,
    connectors: None,
    ferry_operator: OperatorProcess,
    tasks_deleted_first: None,
    tmp_path: Path,
) -> None:
    with mysql_connect(admin=True) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE TABLE `{database}`.orders (id INT PRIMARY KEY, note VARCHAR(20))")
        cur.executemany(
            f"INSERT INTO `{database}`.orders VALUES (%s, %s)", [(i, f"n{i}") for i in range(7)]
        )
    spec = {
        "source": {"connectorRef": {"name": "db"}, "include": [f"{database}.orders"]},
        "sink": {
            "connectorRef": {"name": "kafka"},
            "kafka": {"topic": f"{topic_prefix}.{{table}}"},
        },
        "mode": "snapshot",
        "schedule": "* * * * *",
        "timeZone": "Europe/Berlin",
    }
    created = ferry.create("synctasks", {**task("nightly"), "spec": spec})
    assert created["spec"].get("schedule"), (
        "the API server pruned spec.schedule: the CRDs applied are not this tree's (another "
        "worktree applied its own); kubectl apply --server-side --force-conflicts -f crds/"
    )
    ferry.create("synctasks", {**task("held"), "spec": {**spec, "paused": True}})

    # Before its first tick: Scheduled (Ready), no worker, nextRun the next minute.
    status = wait_until(
        lambda: (s := _status(ferry, "nightly")).get("phase") == "Scheduled" and s, 60, "Scheduled"
    )
    tick1 = health.parse_time(status["nextRun"])
    assert tick1 is not None and tick1.second == 0 and tick1 > _now() - timedelta(seconds=5)
    ready = wait_until(
        lambda: (c := ferry.condition("synctasks", "nightly"))["status"] == "True" and c,
        20,
        "Ready while it waits",
    )
    assert ready["reason"] == "Scheduled" and "next run at" in ready["message"]
    assert _deployment(ferry, "nightly")[0] == 0
    held = wait_until(
        lambda: (s := _status(ferry, "held")).get("phase") == "Paused" and s, 30, "held Paused"
    )
    assert "nextRun" not in held and _deployment(ferry, "held")[0] == 0

    # The tick: the run starts on time, as one replica with the run's id.
    active = wait_until(
        lambda: _status(ferry, "nightly").get("activeRun"),
        (tick1 - _now()).total_seconds() + 30,
        "the first run",
    )
    started = _now()
    run_id = tick1.strftime("%Y%m%dT%H%M%SZ")
    assert active["id"] == run_id
    assert active["scheduledTime"] == tick1.strftime("%Y-%m-%dT%H:%M:%SZ")
    start = health.parse_time(active["start"])
    assert start is not None and timedelta(0) <= start - tick1 <= timedelta(seconds=10)
    assert (started - tick1) <= timedelta(seconds=15)
    assert _deployment(ferry, "nightly") == (1, {"FERRY_RUN": run_id})
    assert ferry.events("RunStarted")
    # The paused task let the tick pass: nothing started, nothing to run later.
    assert "activeRun" not in _status(ferry, "held") and _deployment(ferry, "held")[0] == 0
    ferry.patch_spec("synctasks", "held", {"paused": False})
    tick2 = tick1 + timedelta(minutes=1)
    wait_until(lambda: _status(ferry, "held").get("nextRun"), 30, "held's nextRun")
    assert health.parse_time(_status(ferry, "held")["nextRun"]) == tick2
    assert "activeRun" not in _status(ferry, "held")

    # The "kubelet" has not run nightly's worker: its run goes on past the next tick, which
    # is skipped — no second run, the same replica and run id.
    _wait_past(tick2, 3)
    skipped = wait_until(lambda: ferry.events("RunSkipped"), 20, "RunSkipped")
    assert f"run {run_id} is still going" in skipped[0].message
    assert _status(ferry, "nightly")["activeRun"]["id"] == run_id
    assert _deployment(ferry, "nightly") == (1, {"FERRY_RUN": run_id})
    # held took up the schedule at that tick.
    held_run = wait_until(lambda: _status(ferry, "held").get("activeRun"), 20, "held's run")
    assert held_run["id"] == tick2.strftime("%Y%m%dT%H%M%SZ")

    # Now the worker runs: the snapshot completes, the run is recorded, the worker scaled down.
    kubelet = Kubelet(ferry, testenv, tmp_path / "nightly")
    (tmp_path / "nightly").mkdir()
    kubelet.start("nightly")
    try:
        last = wait_until(lambda: _status(ferry, "nightly").get("lastRun"), 90, "lastRun")
    finally:
        kubelet.stop()
    status = _status(ferry, "nightly")
    assert last["id"] == run_id and last["result"] == "Completed" and last["rows"] == 7
    assert last["start"] == active["start"]
    end = health.parse_time(last["end"])
    assert (
        end is not None
        and end >= start
        and last["durationSeconds"] == int((end - start).total_seconds())
    )
    assert status["runs"] == [last]
    assert "activeRun" not in status
    assert status["phase"] == "Completed"
    assert health.parse_time(status["nextRun"]) > _now()
    wait_until(lambda: _deployment(ferry, "nightly")[0] == 0, 20, "scaled to 0 after the run")
    wait_until(lambda: ferry.events("RunCompleted"), 20, "the RunCompleted event")


def test_a_bad_schedule_or_time_zone_is_refused_naming_the_field(ferry: Ferry, custom: Any) -> None:
    base = task("bad")["spec"] | {"mode": "snapshot"}
    cases = [
        ({"schedule": "0 2 * *"}, "spec.schedule must be a cron expression of 5 fields"),
        ({"schedule": "61 * * * *"}, "spec.schedule must be a cron expression"),
        ({"schedule": "0 2 * * *", "timeZone": "Europe Berlin"}, "spec.timeZone must be an IANA"),
        ({"timeZone": "UTC"}, "spec.timeZone needs spec.schedule"),
        ({"schedule": "@daily", "mode": "cdc"}, "spec.schedule needs spec.mode: snapshot"),
    ]
    for extra, message in cases:
        with pytest.raises(client.ApiException) as refused:
            ferry.create("synctasks", {**task("bad"), "spec": {**base, **extra}})
        assert refused.value.status == 422
        assert message in refused.value.body, refused.value.body


def test_the_scheduled_snapshot_example_applies(testenv: Any, ferry: Ferry) -> None:
    example = Path(__file__).resolve().parents[3] / "examples" / "scheduled-snapshot"
    result = subprocess.run(
        [testenv.kubectl, "apply", "-n", ferry.ns, "--validate=strict", "-f", str(example)],
        env={**os.environ, "KUBECONFIG": str(testenv.kubeconfig)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "synctask.ferry.dev/shop-nightly created" in result.stdout
    spec = ferry.get("synctasks", "shop-nightly")["spec"]
    assert (spec["schedule"], spec["timeZone"]) == ("0 2 * * *", "Europe/Berlin")
    assert spec["notifications"][0]["webhook"]["urlSecretRef"] == {
        "name": "ops-webhook",
        "key": "url",
    }
