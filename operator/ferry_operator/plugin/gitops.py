"""Notice when a SyncTask is managed by Argo CD or Flux, to warn before patching its spec:
the GitOps tool would put Git's value back (self-heal, or its next reconcile)."""

from __future__ import annotations

from typing import Any

__all__ = ["managed_by", "warning"]

# What each tool writes on the objects it applies: Argo CD's annotation tracking (its
# default since 3.0) and Flux's kustomize-controller and helm-controller labels.
_MARKERS = (
    ("annotations", "argocd.argoproj.io/tracking-id", "Argo CD"),
    ("labels", "kustomize.toolkit.fluxcd.io/name", "Flux"),
    ("labels", "helm.toolkit.fluxcd.io/name", "Flux"),
)


def managed_by(task: dict[str, Any]) -> str | None:
    """``"Argo CD"``, ``"Flux"`` or ``None``."""
    meta = task.get("metadata") or {}
    for where, key, tool in _MARKERS:
        if key in (meta.get(where) or {}):
            return tool
    return None


def warning(task: dict[str, Any], patch: dict[str, Any]) -> str | None:
    """The warning to print when ``patch`` changes a GitOps-managed task's spec."""
    tool = managed_by(task)
    if tool is None:
        return None
    name = (task.get("metadata") or {}).get("name", "?")
    fields = ", ".join(f"spec.{key}" for key in sorted(patch.get("spec") or {}))
    return (
        f"warning: SyncTask {name!r} is managed by {tool}; commit {fields} to Git as well, "
        f"or {tool} will put Git's value back"
    )
