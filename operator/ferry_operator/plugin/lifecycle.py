"""Decide the spec merge patch for each lifecycle verb, or that nothing needs to change.

Pure functions of the task's current spec. Every change is a patch of ``spec`` fields
only (``paused``, ``resumeAt``, ``restartNonce``, ``resetPosition``, ``skipEvent``,
``snapshotRequest``, ``verifyRequest``): the
operator acts on those, exactly as it would on a ``kubectl apply`` of the same fields. A
verb whose effect is already in place returns no patch, so a repeated call writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ferry_operator.plugin import mergepatch

__all__ = [
    "Change",
    "pause",
    "reset_position",
    "restart",
    "resume",
    "skip_event",
    "snapshot_request",
    "verify_request",
]


@dataclass(frozen=True)
class Change:
    """What a verb decided: a merge patch for the SyncTask (``None``: no write) and why."""

    patch: dict[str, Any] | None
    message: str

    @property
    def changed(self) -> bool:
        return self.patch is not None


def _spec_patch(fields: dict[str, Any]) -> dict[str, Any]:
    return {"spec": fields}


def pause(spec: dict[str, Any], resume_at: str | None) -> Change:
    """``paused: true``, with ``resumeAt`` set to ``resume_at`` or removed."""
    until = f" until {resume_at}" if resume_at else ""
    if spec.get("paused") is True and spec.get("resumeAt") == resume_at:
        return Change(None, f"already paused{until}")
    fields: dict[str, Any] = {"paused": True}
    if resume_at is not None or "resumeAt" in spec:
        fields["resumeAt"] = resume_at
    return Change(_spec_patch(fields), f"paused{until}")


def resume(spec: dict[str, Any]) -> Change:
    """``paused: false`` and no ``resumeAt``."""
    if spec.get("paused") is not True and "resumeAt" not in spec:
        return Change(None, "already running (not paused)")
    fields: dict[str, Any] = {"paused": False}
    if "resumeAt" in spec:
        fields["resumeAt"] = None
    return Change(_spec_patch(fields), "resumed")


def restart(spec: dict[str, Any], nonce: str) -> Change:
    """A new ``restartNonce``: the operator restarts the worker once per distinct nonce."""
    if spec.get("restartNonce") == nonce:
        return Change(None, f"restartNonce is already {nonce!r}; nothing to do")
    return Change(_spec_patch({"restartNonce": nonce}), f"restart requested (nonce {nonce})")


def reset_position(spec: dict[str, Any], to: dict[str, Any], nonce: str) -> Change:
    """``resetPosition: {to, nonce}``: the worker moves there once per distinct nonce."""
    target = {"to": to, "nonce": nonce}
    current = spec.get("resetPosition")
    if current == target:
        return Change(None, f"resetPosition with nonce {nonce!r} is already set; nothing to do")
    patch = mergepatch.diff(current if isinstance(current, dict) else {}, target)
    return Change(
        _spec_patch({"resetPosition": patch}), f"position reset requested (nonce {nonce})"
    )


def skip_event(spec: dict[str, Any], position: dict[str, Any], nonce: str) -> Change:
    """``skipEvent: {position, nonce}``: the worker skips that event once per distinct nonce."""
    target = {"position": position, "nonce": nonce}
    current = spec.get("skipEvent")
    if current == target:
        return Change(None, f"skipEvent with nonce {nonce!r} is already set; nothing to do")
    patch = mergepatch.diff(current if isinstance(current, dict) else {}, target)
    where = position.get("gtid") or f"{position.get('file')}:{position.get('pos')}"
    return Change(_spec_patch({"skipEvent": patch}), f"skip of {where} requested (nonce {nonce})")


def snapshot_request(
    spec: dict[str, Any],
    tables: list[str],
    nonce: str,
    cancel: bool = False,
    where: str | None = None,
) -> Change:
    """``snapshotRequest: {tables, nonce[, cancel][, where]}``: the worker reads those tables
    again while streaming (only the rows matching ``where``, when given), or stops re-reading
    them, once per distinct nonce."""
    # cancel always spelled out: the API server defaults it to false.
    target: dict[str, Any] = {"tables": tables, "cancel": cancel, "nonce": nonce}
    if where is not None:
        target["where"] = where
    current = spec.get("snapshotRequest")
    if current == target:
        return Change(None, f"snapshotRequest with nonce {nonce!r} is already set; nothing to do")
    # The whole request is replaced: a merge would keep an old cancel: true.
    what = "cancel of the re-read" if cancel else "re-snapshot"
    return Change(
        _spec_patch({"snapshotRequest": target}),
        f"{what} of {', '.join(tables)} requested (nonce {nonce})",
    )


def verify_request(
    spec: dict[str, Any],
    nonce: str,
    tables: list[str] | None = None,
    repair: bool = False,
    chunk_size: int | None = None,
) -> Change:
    """``verifyRequest: {nonce[, tables, repair, chunkSize]}``: the worker compares the source
    with the sink once per distinct nonce."""
    target: dict[str, Any] = {"nonce": nonce}
    if tables:
        target["tables"] = tables
    if repair:
        target["repair"] = True
    if chunk_size is not None:
        target["chunkSize"] = chunk_size
    if spec.get("verifyRequest") == target:
        return Change(None, f"verifyRequest with nonce {nonce!r} is already set; nothing to do")
    # The whole request is replaced: a merge would keep an old repair: true or tables.
    what = "verification and repair" if repair else "verification"
    of = ", ".join(tables) if tables else "every selected table"
    return Change(
        _spec_patch({"verifyRequest": target}), f"{what} of {of} requested (nonce {nonce})"
    )
