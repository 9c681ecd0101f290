"""spec.verifySchedule against the real API server and MariaDB (MySQL sink), with the operator
as a process and the test playing kubelet: a tick starts a verification on time (a config
revision carrying the nonce scheduled-<tick>, a VerificationScheduled Event), a tick that comes
while that check has not finished is skipped (never a second check), the check's result lands
in status.verification, a paused task starts nothing and shows no next tick, and
nextVerification is the schedule's next tick in its time zone. Every minute ("* * * * *") is
the shortest cron schedule: the test takes about three minutes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ferry_operator.reconcile import health

from . import crdguard
from .conftest import (
    Ferry,
    Kubelet,
    OperatorProcess,
    delete_ferry_objects,
    mysql_connector,
    task,
    wait_until,
)
from .test_verify import target  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.kube, pytest.mark.mysql]


@pytest.fixture(autouse=True)
def _crds_of_this_tree(kube_api: Any, ferry_crds: None) -> Iterator[None]:
    with crdguard.guarded(kube_api):
        yield


def _now() -> datetime:
    return datetime.now(UTC)


def _status(ferry: Ferry, name: str = "orders") -> dict[str, Any]:
    return ferry.get("synctasks", name).get("status") or {}


def _wait_past(moment: datetime, extra: float = 0.0) -> None:
    delay = (moment - _now()).total_seconds() + extra
    if delay > 0:
        time.sleep(delay)


def _nonce(tick: datetime) -> str:
    return "scheduled-" + tick.strftime("%Y%m%dT%H%M%SZ")


def _tick(ferry: Ferry, name: str = "orders") -> datetime:
    found = wait_until(lambda: _status(ferry, name).get("nextVerification"), 60, "nextVerification")
    tick = health.parse_time(found)
    assert tick is not None
    return tick


def _next_3am_new_york(after: datetime) -> datetime:
    """03:00 America/New_York after ``after``, computed without croniter."""
    zone = ZoneInfo("America/New_York")
    local = after.astimezone(zone)
    candidate = local.replace(hour=3, minute=0, second=0, microsecond=0)
    if candidate <= local:
        candidate = (candidate + timedelta(days=1)).replace(hour=3)
    return candidate.astimezone(UTC)


@pytest.mark.long
def test_scheduled_checks_fire_on_time_never_overlap_and_pause(
    ferry: Ferry,
    testenv: Any,
    mysql_connect: Callable[..., Any],
    database: str,
    target: str,  # noqa: F811
    ferry_operator: OperatorProcess,
    kubelet: Kubelet,
) -> None:
    def sql(statement: str) -> list[Any]:
        with mysql_connect(admin=True) as conn, conn.cursor() as cur:
            cur.execute(statement)
            return list(cur.fetchall())

    sql(f"CREATE TABLE `{database}`.notes (id int PRIMARY KEY, v varchar(20))")
    sql(f"CREATE TABLE `{target}`.notes (id int PRIMARY KEY, v varchar(20))")
    sql(f"INSERT INTO `{database}`.notes VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    ferry.secret("db", testenv.mysql["password"])
    ferry.create("connectors", mysql_connector("db", testenv))
    ferry.create(
        "connectors", mysql_connector("replica", testenv, user=testenv.mysql_admin["user"])
    )
    source = {"connectorRef": {"name": "db"}, "include": [f"{database}.notes"]}
    sink = {"connectorRef": {"name": "replica"}, "mysql": {"database": target}}
    ferry.create("synctasks", task("orders", source=source, sink=sink))
    # A second task, never run: its nextVerification is 03:00 New York time.
    ferry.create(
        "synctasks",
        task(
            "nightly",
            source=source,
            sink=sink,
            verifySchedule={"schedule": "0 3 * * *", "timeZone": "America/New_York"},
        ),
    )
    nightly = _tick(ferry, "nightly")
    assert nightly == _next_3am_new_york(_now()), nightly

    wait_until(lambda: _status(ferry).get("configRevision") == "orders-r1", 60, "r1")
    kubelet.start("orders")
    wait_until(lambda: _status(ferry).get("phase") == "Running", 90, "Running")
    wait_until(lambda: len(sql(f"SELECT id FROM `{target}`.notes")) == 3, 60, "the snapshot")
    sql(f"UPDATE `{target}`.notes SET v = 'tampered' WHERE id = 2")  # behind Ferry's back

    # The schedule is added: it only sets the next tick (no check, no new revision yet).
    every_minute = {"schedule": "* * * * *", "timeZone": "Asia/Kolkata", "chunkSize": 2}
    patched = ferry.patch_spec("synctasks", "orders", {"verifySchedule": every_minute})
    assert patched["spec"].get("verifySchedule"), "the API server pruned spec.verifySchedule"
    tick1 = _tick(ferry)
    assert tick1.second == 0 and tick1 > _now() - timedelta(seconds=2)
    assert ferry.revisions("orders") == ["orders-r1"]
    assert "scheduledVerification" not in _status(ferry)

    # The first tick: a check starts on time, as a config revision carrying its nonce.
    started = wait_until(
        lambda: (_status(ferry).get("scheduledVerification") or {}).get("nonce"),
        (tick1 - _now()).total_seconds() + 30,
        "the first scheduled check",
    )
    assert started == _nonce(tick1)
    record = _status(ferry)["scheduledVerification"]
    assert record["lastTick"] == tick1.strftime("%Y-%m-%dT%H:%M:%SZ")
    start = health.parse_time(record["startTime"])
    assert start is not None and timedelta(0) <= start - tick1 <= timedelta(seconds=15)
    assert health.parse_time(_status(ferry)["nextVerification"]) == tick1 + timedelta(minutes=1)
    (event,) = wait_until(lambda: ferry.events("VerificationScheduled"), 20, "the Event")
    assert _nonce(tick1) in event.message
    wait_until(lambda: ferry.revisions("orders")[-1:] == ["orders-r2"], 30, "r2")
    revision = ferry.core.read_namespaced_config_map("orders-r2", ferry.ns)
    assert revision.metadata.annotations["ferry.dev/change-cause"] == (
        f"verifySchedule (nonce {_nonce(tick1)})"
    )
    assert f"nonce: {_nonce(tick1)}" in revision.data["worker.yaml"]

    # The worker still runs r1 (the test's kubelet does not roll it): the check has not
    # started when the next tick comes, so that tick is skipped, not a second check.
    tick2 = tick1 + timedelta(minutes=1)
    _wait_past(tick2, 2)
    skipped = wait_until(lambda: ferry.events("VerificationSkipped"), 20, "VerificationSkipped")
    assert f"verification {_nonce(tick1)} has not started yet" in skipped[0].message
    record = _status(ferry)["scheduledVerification"]
    assert (record["nonce"], record["skipped"], record["skippedTicks"]) == (
        _nonce(tick1), True, 1,
    )  # fmt: skip
    assert ferry.revisions("orders")[-1:] == ["orders-r2"]  # no new check, no new revision
    assert len(ferry.events("VerificationScheduled")) == 1

    # Now the worker runs r2: the scheduled check finds the tampered row.
    kubelet.stop()
    kubelet.start("orders")
    found = wait_until(
        lambda: (
            (v := _status(ferry).get("verification") or {}).get("state") == "Completed"
            and v.get("nonce") == _nonce(tick1)
            and v
        ),
        90,
        "the scheduled check's result",
    )
    assert (found["mismatchedRows"], found["rows"], found["chunks"]) == (1, 3, 2)
    assert found["sampleKeys"] == [{"table": f"{database}.notes", "key": "[2]"}]
    wait_until(lambda: ferry.events("DriftFound"), 30, "the DriftFound Event")

    # Paused: no next tick, and a tick that passes starts nothing.
    ferry.patch_spec("synctasks", "orders", {"paused": True})
    wait_until(lambda: "nextVerification" not in _status(ferry), 30, "nextVerification cleared")
    before = _status(ferry)["scheduledVerification"]
    revisions = ferry.revisions("orders")
    _wait_past(_now().replace(second=0, microsecond=0) + timedelta(minutes=1), 4)
    assert _status(ferry)["scheduledVerification"] == before
    assert ferry.revisions("orders") == revisions
    assert len(ferry.events("VerificationScheduled")) == 1

    # Resumed: the schedule goes on from the next tick (the passed ones are not run later).
    ferry.patch_spec("synctasks", "orders", {"paused": False})
    resumed = _tick(ferry)
    assert resumed > _now() - timedelta(seconds=2)
    assert resumed - _now() <= timedelta(seconds=61)
    kubelet.stop()
    delete_ferry_objects(ferry)  # while the operator runs: its finalizers let them go
