"""The reconciliation context: who is being reconciled and why, passed first to every step and
prefixed to every log line."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Context"]


@dataclass(frozen=True)
class Context:
    """One reconciliation of one object."""

    namespace: str
    name: str
    uid: str
    trigger: str  # create, update, resume, resync, template/<name>, delete, probe, …

    def __str__(self) -> str:
        return f"[{self.namespace}/{self.name} {self.trigger}]"
