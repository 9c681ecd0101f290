"""Config revisions: read the immutable ``<task>-r<N>`` ConfigMaps, diff them, plan a rollback.

The operator writes one ConfigMap per distinct rendered config, labelled
``ferry.dev/task: <task>`` and ``ferry.dev/revision: <N>``, holding the worker config and
the effective spec it came from; the key names are the renderer's own
(:func:`ferry_operator.render.objects.revision_configmap`). Everything here is pure: it
takes ConfigMaps as plain dicts (as the API returns them) and returns values.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

import yaml

from ferry_operator.plugin import mergepatch
from ferry_operator.plugin.errors import NotFoundError
from ferry_operator.plugin.lifecycle import Change
from ferry_operator.render import meta, objects

__all__ = [
    "LIFECYCLE_FIELDS",
    "TASK_LABEL",
    "Revision",
    "current_number",
    "diff",
    "find",
    "from_configmap",
    "rollback",
    "summary",
]

TASK_LABEL = meta.TASK_LABEL
# Fields a rollback keeps as they are now: they are actions and links, not configuration.
LIFECYCLE_FIELDS = (
    "paused",
    "resumeAt",
    "resetPosition",
    "restartNonce",
    "skipEvent",
    "verifyRequest",
    "templateRef",
)


@dataclass(frozen=True)
class Revision:
    """One config revision of a task."""

    number: int
    name: str
    created: str | None
    spec: dict[str, Any]
    config: str
    config_hash: str | None
    cause: str | None


def from_configmap(task: str, configmap: dict[str, Any]) -> Revision | None:
    """The revision a ConfigMap holds, or ``None`` when it is not one of ``task``'s."""
    metadata = configmap.get("metadata") or {}
    name = str(metadata.get("name", ""))
    match = re.fullmatch(rf"{re.escape(task)}-r(\d+)", name)
    labels = metadata.get("labels") or {}
    if not match or labels.get(TASK_LABEL) != task:
        return None
    annotations = metadata.get("annotations") or {}
    data = configmap.get("data") or {}
    number = labels.get(meta.REVISION) or match.group(1)
    spec_text = data.get(objects.SPEC_KEY)
    spec = yaml.safe_load(spec_text) if spec_text else {}
    return Revision(
        number=int(number),
        name=name,
        created=metadata.get("creationTimestamp"),
        spec=spec if isinstance(spec, dict) else {},
        config=str(data.get(objects.WORKER_CONFIG_KEY) or ""),
        config_hash=annotations.get(meta.CONFIG_HASH),
        cause=annotations.get(meta.CHANGE_CAUSE),
    )


def current_number(status: dict[str, Any]) -> int | None:
    """``status.configRevision`` as a number (the operator may write ``N`` or ``<task>-rN``)."""
    value = status.get("configRevision")
    if isinstance(value, int):
        return value
    match = re.search(r"(\d+)$", str(value or ""))
    return int(match.group(1)) if match else None


def find(task: str, revisions: list[Revision], number: int) -> Revision:
    """The revision with that number, or a NotFoundError listing the ones that exist."""
    for revision in revisions:
        if revision.number == number:
            return revision
    known = ", ".join(str(r.number) for r in sorted(revisions, key=lambda r: r.number)) or "none"
    raise NotFoundError(f"revision {number} of SyncTask {task!r} not found (revisions: {known})")


def _dump(value: Any) -> list[str]:
    return yaml.safe_dump(value, sort_keys=True, default_flow_style=False).splitlines()


def _config_lines(text: str) -> list[str]:
    # Normalise JSON or YAML text so that a key-order change is not a difference.
    try:
        return _dump(yaml.safe_load(text))
    except yaml.YAMLError:
        return text.splitlines()


def diff(old: Revision, new: Revision) -> str:
    """A unified diff of the effective spec and the worker config; empty when the same."""
    parts: list[str] = []
    for what, before, after in (
        ("spec", _dump(old.spec), _dump(new.spec)),
        ("worker config", _config_lines(old.config), _config_lines(new.config)),
    ):
        parts.extend(
            difflib.unified_diff(
                before,
                after,
                fromfile=f"{old.name} ({what})",
                tofile=f"{new.name} ({what})",
                lineterm="",
            )
        )
    return "\n".join(parts)


def rollback(spec: dict[str, Any], revision: Revision) -> Change:
    """Patch the task's spec back to the revision's, keeping its lifecycle fields."""
    if not revision.spec:
        raise NotFoundError(f"revision {revision.number} ({revision.name}) holds no spec")
    target = {k: v for k, v in revision.spec.items() if k not in LIFECYCLE_FIELDS}
    target.update({k: spec[k] for k in LIFECYCLE_FIELDS if k in spec})
    patch = mergepatch.diff(spec, target)
    if patch == {}:
        return Change(None, f"the spec already matches revision {revision.number}; nothing to do")
    return Change({"spec": patch}, f"rolled back to revision {revision.number}")


def summary(revision: Revision) -> dict[str, Any]:
    """The revision as plain data for ``-o json|yaml``."""
    return {
        "revision": revision.number,
        "name": revision.name,
        "created": revision.created,
        "configHash": revision.config_hash,
        "changeCause": revision.cause,
    }
