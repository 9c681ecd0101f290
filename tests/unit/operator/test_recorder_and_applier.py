"""Pure parts of the writers: condition transition times and the applier's skip rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ferry_operator import applier
from ferry_operator.recorder import conditions

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def test_transition_time_changes_only_with_the_status() -> None:
    first = conditions({"Ready": ("False", "Starting", "m")}, None, 1, T0)
    later = T0 + timedelta(minutes=5)
    same = conditions({"Ready": ("False", "Paused", "other")}, first, 2, later)
    assert same[0]["lastTransitionTime"] == "2030-01-01T00:00:00Z"
    assert (same[0]["reason"], same[0]["observedGeneration"]) == ("Paused", 2)
    flipped = conditions({"Ready": ("True", "Running", "")}, same, 2, later)
    assert flipped[0]["lastTransitionTime"] == "2030-01-01T00:05:00Z"


def _deployment(replicas: int) -> dict[str, object]:
    return {"kind": "Deployment", "metadata": {"name": "w"}, "spec": {"replicas": replicas}}


def test_replicas_and_worker_rbac_are_guarded_against_drift() -> None:
    assert not applier._drifted(_deployment(1), _deployment(1))
    assert applier._drifted(_deployment(1), _deployment(3))
    role = {"kind": "Role", "metadata": {"name": "w"}, "rules": [{"verbs": ["get"]}]}
    assert not applier._drifted(role, role)
    assert applier._drifted(role, {**role, "rules": [{"verbs": ["*"]}]})
    account = {"kind": "ServiceAccount", "metadata": {"name": "w"}}
    assert not applier._drifted(account, {**account, "automountServiceAccountToken": False})


def test_content_hash_is_stable_and_sensitive() -> None:
    assert applier.content_hash({"a": 1, "b": 2}) == applier.content_hash({"b": 2, "a": 1})
    assert applier.content_hash({"a": 1}) != applier.content_hash({"a": 2})
