"""Which notification events a reconcile fires, and their JSON payloads (pure).

An event fires on a change the operator records, compared with the status before it:

* ``Failed``: the phase becomes Failed;
* ``Stalled``: the Stalled condition becomes True (any phase);
* ``Recovered``: Ready becomes True while the task was Failed or Stalled before;
* ``Completed``: the phase becomes Completed (each finished snapshot run).

The notifier (ferry_operator/notifier.py) sends each to the ``spec.notifications`` entries
whose ``on`` lists it, after the status that records the change is written, so a change is
announced once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ferry_operator.api.synctask import SyncTaskSpec
from ferry_operator.recorder import ConditionValue, rfc3339

__all__ = ["Delivery", "deliveries", "fired", "payload"]


@dataclass(frozen=True)
class Delivery:
    """One POST to make: the spec.notifications entry (its index and Secret key) and the
    body. The URL itself is read by the notifier when it sends."""

    index: int
    secret: str
    key: str
    payload: dict[str, Any]


def _condition(status: dict[str, Any], kind: str) -> str | None:
    for condition in status.get("conditions") or []:
        if condition.get("type") == kind:
            return str(condition.get("status"))
    return None


def fired(before: dict[str, Any], phase: str, conditions: dict[str, ConditionValue]) -> list[str]:
    """The events the change from ``before`` (the recorded status) to ``phase`` and
    ``conditions`` (the new ones) fires, in a fixed order."""
    events = []
    was_failed = before.get("phase") == "Failed"
    was_stalled = _condition(before, "Stalled") == "True"
    if phase == "Failed" and not was_failed:
        events.append("Failed")
    if conditions["Stalled"][0] == "True" and not was_stalled:
        events.append("Stalled")
    ready = conditions["Ready"][0] == "True"
    if ready and (was_failed or was_stalled) and _condition(before, "Ready") != "True":
        events.append("Recovered")
    if phase == "Completed" and before.get("phase") != "Completed":
        events.append("Completed")
    return events


def payload(
    namespace: str,
    name: str,
    event: str,
    phase: str,
    conditions: dict[str, ConditionValue],
    now: datetime,
    last_run: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON body: task, namespace, event, phase, reason, message, time (and the run for
    Completed). The reason and message are the Stalled condition's for Stalled, else Ready's."""
    _, reason, message = conditions["Stalled" if event == "Stalled" else "Ready"]
    body: dict[str, Any] = {
        "task": name,
        "namespace": namespace,
        "event": event,
        "phase": phase,
        "reason": reason,
        "message": message,
        "time": rfc3339(now),
    }
    if event == "Completed" and last_run:
        body["run"] = last_run
    return body


def deliveries(
    spec: SyncTaskSpec,
    namespace: str,
    name: str,
    events: list[str],
    phase: str,
    conditions: dict[str, ConditionValue],
    now: datetime,
    last_run: dict[str, Any] | None = None,
) -> list[Delivery]:
    """One Delivery per event and spec.notifications entry that asks for it."""
    out = []
    for event in events:
        body = payload(namespace, name, event, phase, conditions, now, last_run)
        for index, notification in enumerate(spec.notifications or []):
            if event in notification.on:
                ref = notification.webhook.url_secret_ref
                out.append(Delivery(index, ref.name, ref.key, body))
    return out
