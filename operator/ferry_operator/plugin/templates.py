"""TaskTemplates at the terminal (pure): build a SyncTask that uses one (``create``), and make
one from an existing task (``template-from``).

A task made by ``create`` refers to its template (``spec.templateRef``) and holds only its own
fields (``source.include``/``exclude``), so a later change of the template re-renders it, as
for any task with a templateRef. Before it is sent, the effective spec (template ⊕ task, the
operator's one merge rule) is checked for what the operator would refuse: no connector, no
sink block, no tables.

``template-from`` keeps the fields a TaskTemplate may hold (``TaskFields``) and drops the rest:
the link to a template (its fields are merged in instead), the lifecycle fields and nonces, and
what belongs to the one task (its tables, start position and replica server id).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml
from pydantic import ValidationError

from ferry_operator.api.synctask import SyncTaskSpec, TaskFields
from ferry_operator.api.tasktemplate import TaskTemplateSpec
from ferry_operator.plugin.errors import UsageError
from ferry_operator.render.merge import deep_merge

__all__ = [
    "API_VERSION",
    "TASK_ONLY_FIELDS",
    "build_task",
    "dump",
    "effective_spec",
    "parse_labels",
    "split_globs",
    "template_from",
]

API_VERSION = "ferry.dev/v1alpha1"


def _aliases(model: type[TaskFields]) -> set[str]:
    return {field.alias or name for name, field in model.model_fields.items()}


# templateRef and the lifecycle fields (paused, resumeAt, nonces, …): a SyncTask has them, a
# TaskTemplate's template does not. Derived from the models, so a new one is dropped too.
TASK_ONLY_FIELDS = tuple(sorted(_aliases(SyncTaskSpec) - _aliases(TaskFields)))
# Fields of TaskFields that belong to one task: a template shared by several must not set them.
PER_TASK = {"source": ("include", "serverId"), "startPosition": None}


def dump(manifest: Mapping[str, Any]) -> str:
    """A manifest as YAML in the order people write it (apiVersion, kind, metadata, spec)."""
    return yaml.safe_dump(dict(manifest), sort_keys=False).rstrip()


def split_globs(values: Sequence[str] | None) -> list[str]:
    """``--include a.b --include c.*,d.e`` → ``["a.b", "c.*", "d.e"]`` (each once, in order)."""
    found = [part.strip() for value in values or () for part in value.split(",")]
    return list(dict.fromkeys(part for part in found if part))


def parse_labels(values: Sequence[str] | None) -> dict[str, str]:
    """``--label team=shop`` (repeatable) → ``{"team": "shop"}``."""
    labels: dict[str, str] = {}
    for value in values or ():
        key, sep, val = value.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--label {value!r} is not KEY=VALUE (e.g. --label team=shop)")
        labels[key.strip()] = val.strip()
    return labels


def _validation_message(error: ValidationError, prefix: str) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{prefix}.{where}: {first['msg']}" if where else f"{prefix}: {first['msg']}"


def effective_spec(template: Mapping[str, Any], spec: Mapping[str, Any]) -> dict[str, Any]:
    """The TaskTemplate object's ``spec.template`` ⊕ ``spec`` (the task wins; maps merge)."""
    shared = (template.get("spec") or {}).get("template") or {}
    return deep_merge(shared, spec)


def build_task(
    name: str,
    namespace: str,
    template: Mapping[str, Any],
    include: Sequence[str],
    exclude: Sequence[str],
    labels: Mapping[str, str],
) -> dict[str, Any]:
    """The SyncTask manifest ``create`` sends: ``templateRef`` plus the task's own tables.
    Refused (UsageError) when the merged spec lacks what every task needs."""
    template_name = str((template.get("metadata") or {}).get("name", ""))
    source: dict[str, Any] = {}
    if include:
        source["include"] = list(include)
    if exclude:
        source["exclude"] = list(exclude)
    spec: dict[str, Any] = {"templateRef": {"name": template_name}}
    if source:
        spec["source"] = source
    merged = effective_spec(template, spec)
    try:
        SyncTaskSpec.model_validate(merged)
    except ValidationError as error:
        raise UsageError(_validation_message(error, "spec")) from None
    where = f"TaskTemplate {template_name!r}"
    if not (merged.get("source") or {}).get("include"):
        raise UsageError(f"--include is required: {where} sets no source.include")
    for part in ("source", "sink"):
        if not ((merged.get(part) or {}).get("connectorRef") or {}).get("name"):
            raise UsageError(f"{where} sets no spec.template.{part}.connectorRef")
    sink = merged.get("sink") or {}
    if ("kafka" in sink) == ("mysql" in sink):
        raise UsageError(f"{where}: spec.template.sink needs exactly one of kafka and mysql")
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        metadata["labels"] = dict(labels)
    return {"apiVersion": API_VERSION, "kind": "SyncTask", "metadata": metadata, "spec": spec}


def _drop_per_task(fields: dict[str, Any]) -> dict[str, Any]:
    out = dict(fields)
    for key, nested in PER_TASK.items():
        if nested is None:
            out.pop(key, None)
        elif isinstance(out.get(key), dict):
            kept = {k: v for k, v in out[key].items() if k not in nested}
            if kept:
                out[key] = kept
            else:
                out.pop(key)
    return out


def template_from(
    task: Mapping[str, Any], template: Mapping[str, Any] | None, name: str
) -> dict[str, Any]:
    """A TaskTemplate manifest named ``name`` holding ``task``'s shared settings (its
    template's merged in, when it has one). No status, labels, annotations or nonces."""
    meta = task.get("metadata") or {}
    spec = dict(task.get("spec") or {})
    if template is not None:
        spec = effective_spec(template, spec)
    fields = _drop_per_task({k: v for k, v in spec.items() if k not in TASK_ONLY_FIELDS})
    try:
        TaskTemplateSpec.model_validate({"template": fields})
    except ValidationError as error:  # a task the API server took holds nothing else
        raise UsageError(_validation_message(error, "spec")) from None
    return {
        "apiVersion": API_VERSION,
        "kind": "TaskTemplate",
        "metadata": {"name": name, "namespace": meta.get("namespace")},
        "spec": {"template": fields},
    }
