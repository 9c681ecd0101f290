"""Generate crds/*.yaml from the API models: ``python -m ferry_operator.crdgen [DIR]``.

The CRDs are the models' structural schemas plus what only a CRD has: names, short names, the
``ferry`` category, the status subresource and printer columns. A unit test fails when the
files in crds/ differ from :func:`render_all`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from ferry_operator.api import GROUP, VERSION, connector, synctask, tasktemplate
from ferry_operator.api.schema import structural

__all__ = ["CRDS", "CrdSpec", "main", "reference_markdown", "render", "render_all"]

AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
# A SyncTask's name is the value of the ferry.dev/task label on everything derived from it,
# and label values hold at most 63 characters. (<name>-worker and <name>-r<N> then stay far
# below the 253 of an object name.)
TASK_NAME_MAX = 63


def _ready(path: str) -> str:
    return f'.status.conditions[?(@.type=="Ready")].{path}'


class CrdSpec:
    """What one CRD is made of."""

    def __init__(
        self,
        kind: str,
        plural: str,
        short_names: list[str],
        spec: type[BaseModel],
        status: type[BaseModel],
        columns: list[dict[str, Any]],
        description: str,
        rules: list[dict[str, str]] | None = None,
    ) -> None:
        self.kind, self.plural, self.short_names = kind, plural, short_names
        self.spec, self.status, self.columns = spec, status, columns
        self.description = description
        self.rules = rules or []  # CEL rules on the whole object (they may read metadata.name)

    @property
    def file_name(self) -> str:
        return f"{GROUP}_{self.plural}.yaml"


CRDS = [
    CrdSpec(
        "SyncTask",
        "synctasks",
        ["st", "fst"],
        synctask.SyncTaskSpec,
        synctask.SyncTaskStatus,
        [
            {"name": "Ready", "type": "string", "jsonPath": _ready("status")},
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
            {"name": "Reason", "type": "string", "jsonPath": _ready("reason")},
            {
                "name": "Lag",
                "type": "string",
                "jsonPath": ".status.lag.display",
                "description": "How far behind the source (a duration).",
            },
            {
                "name": "Progress",
                "type": "string",
                "jsonPath": ".status.progress.display",
                "description": "Snapshot percent done.",
            },
            {
                "name": "Position",
                "type": "string",
                "jsonPath": ".status.position.display",
                "description": "The checkpoint's position: binlog file:offset (else its GTID).",
            },
            {
                "name": "Offset",
                "type": "integer",
                "jsonPath": ".status.position.pos",
                "priority": 1,
                "description": "Offset in that file.",
            },
            {
                "name": "LagSeconds",
                "type": "number",
                "jsonPath": ".status.lag.seconds",
                "priority": 1,
                "description": "Seconds behind the source.",
            },
            {
                "name": "Revision",
                "type": "string",
                "jsonPath": ".status.configRevision",
                "priority": 1,
            },
            {
                "name": "Failures",
                "type": "integer",
                "jsonPath": ".status.retry.streak",
                "priority": 1,
                "description": "Consecutive failures (restartPolicy.maxRetries caps them).",
            },
            AGE,
        ],
        "A MySQL/MariaDB change-data-capture task run by a Ferry worker.",
        [
            {
                "rule": f"self.metadata.name.size() <= {TASK_NAME_MAX}",
                "message": f"metadata.name: a SyncTask name is at most {TASK_NAME_MAX} "
                "characters, because it is the value of the ferry.dev/task label on the objects "
                "Ferry derives from it (Deployment <name>-worker, ConfigMaps <name>-r<N>)",
            }
        ],
    ),
    CrdSpec(
        "Connector",
        "connectors",
        ["fconn"],
        connector.ConnectorSpec,
        connector.ConnectorStatus,
        [
            {"name": "Type", "type": "string", "jsonPath": ".spec.type"},
            {"name": "Ready", "type": "string", "jsonPath": _ready("status")},
            {
                "name": "Binlog",
                "type": "string",
                "description": "MySQL: whether its binlog can be read (a source needs it).",
                "jsonPath": '.status.conditions[?(@.type=="BinlogReady")].status',
            },
            {"name": "Reason", "type": "string", "jsonPath": _ready("reason")},
            {
                "name": "Version",
                "type": "string",
                "jsonPath": ".status.server.version",
                "priority": 1,
            },
            AGE,
        ],
        "An endpoint (MySQL/MariaDB server or Kafka cluster) that SyncTasks use.",
    ),
    CrdSpec(
        "TaskTemplate",
        "tasktemplates",
        ["ftt"],
        tasktemplate.TaskTemplateSpec,
        tasktemplate.TaskTemplateStatus,
        [{"name": "Users", "type": "integer", "jsonPath": ".status.users"}, AGE],
        "Shared SyncTask fields; a SyncTask with spec.templateRef merges them under its own.",
    ),
]


def render(crd: CrdSpec) -> dict[str, Any]:
    """The CustomResourceDefinition object for one kind."""
    spec_schema = structural(crd.spec)
    spec_schema["description"] = crd.spec.__doc__ or crd.kind
    status_schema = structural(crd.status)
    status_schema["description"] = crd.status.__doc__ or "Status."
    singular = crd.kind.lower()
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{crd.plural}.{GROUP}",
            "labels": {"app.kubernetes.io/part-of": "ferry"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": crd.kind,
                "listKind": f"{crd.kind}List",
                "plural": crd.plural,
                "singular": singular,
                "shortNames": crd.short_names,
                "categories": ["ferry"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": crd.columns,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": crd.description,
                            "required": ["spec"],
                            **({"x-kubernetes-validations": crd.rules} if crd.rules else {}),
                            "properties": {
                                "apiVersion": {
                                    "type": "string",
                                    "description": "ferry.dev/v1alpha1.",
                                },
                                "kind": {"type": "string", "description": crd.kind + "."},
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": status_schema,
                            },
                        }
                    },
                }
            ],
        },
    }


class _NoAliasDumper(yaml.SafeDumper):
    """Writes repeated sub-schemas out in full (no &anchors), as kubectl users expect."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render_all() -> dict[str, str]:
    """File name → YAML text, for every CRD."""
    header = (
        "# Generated by `python -m ferry_operator.crdgen` from ferry_operator/api. Do not edit.\n"
    )
    return {
        crd.file_name: header
        + yaml.dump(render(crd), Dumper=_NoAliasDumper, sort_keys=False, width=100)
        for crd in CRDS
    }


def _rows(node: dict[str, Any], path: str) -> list[str]:
    rows = []
    required = set(node.get("required", []))
    for name, sub in node.get("properties", {}).items():
        where = f"{path}.{name}"
        kind = sub.get("type", "any")
        if kind == "array":
            kind = f"[]{sub.get('items', {}).get('type', 'any')}"
        facts = [f"`{v}`" for v in sub.get("enum", [])]
        for key in ("format", "pattern", "minimum", "maximum", "minLength", "minItems", "default"):
            if key in sub:
                facts.append(f"{key}: `{sub[key]}`")
        if name in required:
            facts.append("required")
        text = " ".join(str(sub.get("description", "")).split()).replace("|", "\\|")
        cells = ", ".join(facts).replace("|", "\\|")
        rows.append(f"| `{where}` | {kind} | {text} | {cells} |")
        rows += _rows(sub, where)
        if isinstance(sub.get("items"), dict):
            rows += _rows(sub["items"], f"{where}[]")
    return rows


def reference_markdown() -> str:
    """The field reference of every kind (docs/api.md embeds it; a test keeps it current)."""
    out = []
    for crd in CRDS:
        schema = render(crd)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        out += [f"### {crd.kind}", "", crd.description, ""]
        out += ["| Field | Type | Description | Validation |", "|---|---|---|---|"]
        out += _rows(schema["properties"]["spec"], "spec")
        out += _rows(schema["properties"]["status"], "status")
        rules = [f"- `metadata.name`: {rule['message']}" for rule in crd.rules]
        for node_path, node in _validated(schema["properties"]["spec"], "spec"):
            rules += [f"- `{node_path}`: {v['message']}" for v in node["x-kubernetes-validations"]]
        if rules:
            out += ["", "Cross-field rules (CEL, checked by the API server):", "", *rules]
        out.append("")
    return "\n".join(out)


def _validated(node: dict[str, Any], path: str) -> list[tuple[str, dict[str, Any]]]:
    found = [(path, node)] if node.get("x-kubernetes-validations") else []
    for name, sub in node.get("properties", {}).items():
        found += _validated(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        found += _validated(node["items"], f"{path}[]")
    return found


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    target = Path(args[0]) if args else Path(__file__).resolve().parents[2] / "crds"
    target.mkdir(parents=True, exist_ok=True)
    for name, text in render_all().items():
        (target / name).write_text(text)
        print(f"wrote {target / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
