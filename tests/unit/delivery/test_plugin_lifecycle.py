"""kubectl ferry: each lifecycle verb patches only spec fields, and nothing when already done."""

from __future__ import annotations

from typing import Any

from ferry_operator.plugin import lifecycle, mergepatch

BASE: dict[str, Any] = {"source": {"connectorRef": {"name": "db"}}, "mode": "cdc"}


def after(spec: dict[str, Any], change: lifecycle.Change) -> dict[str, Any]:
    assert change.patch is not None and set(change.patch) == {"spec"}
    result: dict[str, Any] = mergepatch.apply({"spec": spec}, change.patch)["spec"]
    return result


def test_pause_sets_paused_and_a_second_pause_is_a_no_op() -> None:
    change = lifecycle.pause(BASE, None)
    paused = after(BASE, change)
    assert paused == {**BASE, "paused": True}
    again = lifecycle.pause(paused, None)
    assert again.patch is None and again.message == "already paused"


def test_pause_with_resume_at_sets_and_replaces_it() -> None:
    paused = after(BASE, lifecycle.pause(BASE, "2026-02-01T00:00:00Z"))
    assert paused["resumeAt"] == "2026-02-01T00:00:00Z" and paused["paused"] is True
    assert lifecycle.pause(paused, "2026-02-01T00:00:00Z").patch is None
    # Pausing without a time drops the scheduled resume: paused until resumed by hand.
    indefinite = after(paused, lifecycle.pause(paused, None))
    assert "resumeAt" not in indefinite and indefinite["paused"] is True


def test_resume_clears_paused_and_resume_at() -> None:
    paused = {**BASE, "paused": True, "resumeAt": "2026-02-01T00:00:00Z"}
    resumed = after(paused, lifecycle.resume(paused))
    assert resumed == {**BASE, "paused": False}
    again = lifecycle.resume(resumed)
    assert again.patch is None and "already running" in again.message


def test_restart_sets_the_nonce_once() -> None:
    restarted = after(BASE, lifecycle.restart(BASE, "n1"))
    assert restarted["restartNonce"] == "n1"
    assert lifecycle.restart(restarted, "n1").patch is None
    assert after(restarted, lifecycle.restart(restarted, "n2"))["restartNonce"] == "n2"


def test_reset_position_replaces_the_whole_position() -> None:
    first = after(BASE, lifecycle.reset_position(BASE, {"file": "b.000001", "pos": 4}, "a"))
    assert first["resetPosition"] == {"to": {"file": "b.000001", "pos": 4}, "nonce": "a"}
    second = after(first, lifecycle.reset_position(first, {"gtid": "0-1-5"}, "b"))
    # No stale file/pos left beside the gtid: the CRD allows exactly one kind of position.
    assert second["resetPosition"] == {"to": {"gtid": "0-1-5"}, "nonce": "b"}
    assert lifecycle.reset_position(second, {"gtid": "0-1-5"}, "b").patch is None


def test_merge_patch_diff_round_trips() -> None:
    current = {"a": 1, "b": {"c": 2, "d": [1, 2]}, "e": "x"}
    target = {"a": 1, "b": {"c": 3, "d": [1]}, "f": {"g": 0}}
    patch = mergepatch.diff(current, target)
    assert patch == {"b": {"c": 3, "d": [1]}, "e": None, "f": {"g": 0}}
    assert mergepatch.apply(current, patch) == target
    assert mergepatch.diff(target, target) == {}


def test_snapshot_request_replaces_the_whole_request_once_per_nonce() -> None:
    first = lifecycle.snapshot_request({}, ["shop.orders"], "s1")
    request = {"tables": ["shop.orders"], "cancel": False, "nonce": "s1"}
    assert first.patch == {"spec": {"snapshotRequest": request}}
    assert not lifecycle.snapshot_request(
        {"snapshotRequest": request}, ["shop.orders"], "s1"
    ).changed
    cancel = lifecycle.snapshot_request({"snapshotRequest": request}, ["shop.*"], "s2", cancel=True)
    assert cancel.patch == {
        "spec": {"snapshotRequest": {"tables": ["shop.*"], "cancel": True, "nonce": "s2"}}
    }
    assert "cancel of the re-read of shop.*" in cancel.message
