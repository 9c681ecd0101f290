"""A task's config revisions (immutable ConfigMaps ``<task>-r<N>``): which one is current, a
new one when the rendered config changed (with the cause of the change), and the ones beyond
spec.revisionHistoryLimit to prune. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from ferry_operator.api.synctask import SyncTaskSpec
from ferry_operator.reconcile import verify_schedule as verify_ticks
from ferry_operator.reconcile.synctask.observe import Observed, revision_number
from ferry_operator.render import changes, meta, objects
from ferry_operator.render.meta import Owner
from ferry_operator.render.worker_config import stored_spec
from ferry_runtime.config import WorkerConfig

__all__ = ["DEFAULT_HISTORY", "Revisions", "cause", "plan"]

DEFAULT_HISTORY = 10
Event = tuple[str, str, str]  # (type, reason, message)


@dataclass(frozen=True)
class Revisions:
    """The current revision's name, a new revision to create, the old ones to delete."""

    current: str
    create: dict[str, Any] | None = None
    delete: list[dict[str, Any]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


def _generations(observed: Observed) -> dict[str, str]:
    """The generations a revision is rendered from, kept on it to explain the next one."""
    out = {meta.TASK_GENERATION: str(observed.task["metadata"].get("generation"))}
    if observed.template is not None:
        out[meta.TEMPLATE_GENERATION] = str(observed.template["metadata"].get("generation"))
    return out


def cause(
    observed: Observed,
    previous: dict[str, Any] | None,
    spec: SyncTaskSpec,
    digest: str,
    config: WorkerConfig,
) -> str:
    """Why a new revision: from what differs from the previous one, not from what woke us.
    Names the changed fields (``performance.batchSize: 500 → 2000``); a config equal to an
    older revision's is ``rollback to rN``."""
    if previous is None:
        return "created"
    old_spec = yaml.safe_load(previous.get("data", {}).get(objects.SPEC_KEY) or "{}") or {}
    old_nonce = (old_spec.get("resetPosition") or {}).get("nonce")
    if spec.reset_position and spec.reset_position.nonce != old_nonce:
        return f"resetPosition (nonce {spec.reset_position.nonce})"
    old_skip = (old_spec.get("skipEvent") or {}).get("nonce")
    if spec.skip_event and spec.skip_event.nonce != old_skip:
        return f"skipEvent (nonce {spec.skip_event.nonce})"
    old_config = yaml.safe_load(previous.get("data", {}).get(objects.WORKER_CONFIG_KEY) or "{}")
    rendered = config.verify_request.nonce if config.verify_request else None
    scheduled = verify_ticks.cause(old_config or {}, rendered)
    if scheduled is not None:
        return scheduled
    old_verify = (old_spec.get("verifyRequest") or {}).get("nonce")
    if spec.verify_request and spec.verify_request.nonce != old_verify:
        return f"verifyRequest (nonce {spec.verify_request.nonce})"
    for older in reversed(observed.revisions[:-1]):
        if (older["metadata"].get("annotations") or {}).get(meta.CONFIG_HASH) == digest:
            return f"rollback to r{revision_number(older)}"
    fields = changes.describe(old_spec, stored_spec(spec))
    before = previous["metadata"].get("annotations") or {}
    now = _generations(observed)
    if spec.template_ref and before.get(meta.TEMPLATE_GENERATION) != now.get(
        meta.TEMPLATE_GENERATION
    ):
        changed = f"TaskTemplate {spec.template_ref.name} changed"
        return f"{changed}: {fields}" if fields else changed
    if fields:
        return fields
    if before.get(meta.TASK_GENERATION) != now[meta.TASK_GENERATION]:
        return f"spec changed (generation {now[meta.TASK_GENERATION]})"
    return "a Connector changed"


def plan(
    owner: Owner, observed: Observed, spec: SyncTaskSpec, config: WorkerConfig, digest: str
) -> Revisions:
    """The current revision: the newest one when its hash matches, else a new one; and the
    revisions beyond revisionHistoryLimit to delete."""
    latest = observed.revisions[-1] if observed.revisions else None
    latest_hash = (latest or {}).get("metadata", {}).get("annotations", {}).get(meta.CONFIG_HASH)
    if latest is not None and latest_hash == digest:
        current, create, events = latest["metadata"]["name"], None, []
        kept = observed.revisions
    else:
        number = (revision_number(latest) if latest else 0) + 1
        why = cause(observed, latest, spec, digest, config)
        create = objects.revision_configmap(
            owner, number, config, stored_spec(spec), digest, why, _generations(observed)
        )
        current = create["metadata"]["name"]
        kept = [*observed.revisions, create]
        events = [("Normal", "RevisionCreated", f"config revision {current}: {why}")]
    limit = spec.revision_history_limit or DEFAULT_HISTORY
    delete = kept[:-limit] if len(kept) > limit else []
    return Revisions(current, create, delete, events)
