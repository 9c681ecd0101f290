"""The Events a running task announces once: a spec nonce acted on (resetPosition,
restartNonce), a resume, and what its worker reported (a skipped event, a finished
verification, a re-snapshot, a restart of a keyless table), each with the status field that
remembers it was said. Pure."""

from __future__ import annotations

from typing import Any

from ferry_operator.api.synctask import SyncTaskSpec
from ferry_operator.reconcile import recovery

__all__ = ["Event", "announcements", "skip_announcement", "verify_announcement"]

Event = tuple[str, str, str]  # (type, reason, message)


def announcements(
    spec: SyncTaskSpec, status: dict[str, Any], paused: bool
) -> tuple[dict[str, Any], list[Event]]:
    """The status fields that remember what is announced now, and the Events."""
    fields: dict[str, Any] = {}
    events: list[Event] = []
    if spec.reset_position and status.get("lastResetNonce") != spec.reset_position.nonce:
        fields["lastResetNonce"] = spec.reset_position.nonce
        events.append(
            ("Normal", "PositionReset", f"reset position once (nonce {spec.reset_position.nonce})")
        )
    if spec.restart_nonce and status.get("lastRestartNonce") != spec.restart_nonce:
        fields["lastRestartNonce"] = spec.restart_nonce
        events.append(("Normal", "Restarted", f"restarted the worker (nonce {spec.restart_nonce})"))
    if not paused and status.get("phase") == "Paused":
        events.append(("Normal", "Resumed", "the worker runs again"))
    skipped = skip_announcement(status)
    if skipped is not None:
        fields["lastSkipNonce"], message = skipped
        events.append(("Normal", "EventSkipped", message))
    verified = verify_announcement(status)
    if verified is not None:
        fields["lastVerifyNonce"], event = verified
        events.append(event)
    recovered = recovery.announcement(status)
    if recovered is not None:
        fields["lastResnapshotAnnounced"], message = recovered
        events.append(("Warning", recovery.EVENT_REASON, message))
    restarted = recovery.keyless(status)
    if restarted is not None:
        fields["lastKeylessRestartAnnounced"], messages = restarted
        events.extend(("Warning", recovery.KEYLESS_REASON, text) for text in messages)
    return fields, events


def skip_announcement(status: dict[str, Any]) -> tuple[str, str] | None:
    """The worker's status.lastSkip not announced yet: (its nonce, the Event's message)."""
    last = status.get("lastSkip") or {}
    nonce = last.get("nonce")
    if not nonce or nonce == status.get("lastSkipNonce"):
        return None
    events = last.get("events") or 0
    what = f"{events} row event{'s' if events != 1 else ''}"
    of = f" of {last['table']}" if last.get("table") else ""
    gtid = f" (GTID {last['gtid']})" if last.get("gtid") else ""
    where = last.get("position") or "?"
    return nonce, f"skipped {what}{of} at {where}{gtid} once (spec.skipEvent nonce {nonce})"


def verify_announcement(status: dict[str, Any]) -> tuple[str, Event] | None:
    """The worker's finished status.verification not announced yet: (its nonce, the Event):
    Verified (Normal) with no drift, DriftFound or VerificationFailed (Warning) otherwise."""
    found = status.get("verification") or {}
    nonce = found.get("nonce")
    if not nonce or found.get("state") in (None, "Running"):
        return None
    if nonce == status.get("lastVerifyNonce"):
        return None
    if found.get("state") == "Failed":
        message = f"verification (verifyRequest nonce {nonce}) failed: {found.get('message')}"
        return nonce, ("Warning", "VerificationFailed", message)
    tables, chunks = len(found.get("tables") or []), found.get("chunks") or 0
    mismatched, unsettled = found.get("mismatchedRows") or 0, found.get("unsettledRows") or 0
    summary = (
        f"compared {tables} table(s) in {chunks} chunk(s) (verifyRequest nonce {nonce}): "
        f"{mismatched} mismatched row(s)"
    )
    if unsettled:
        summary += f", {unsettled} still changing (not judged)"
    if found.get("repairedRows"):
        summary += f", {found['repairedRows']} repaired"
    if not mismatched:
        return nonce, ("Normal", "Verified", summary)
    keys = ", ".join(
        f"{k.get('table')} {k.get('key')}" for k in (found.get("sampleKeys") or [])[:5]
    )
    return nonce, ("Warning", "DriftFound", f"{summary}; e.g. {keys}")
