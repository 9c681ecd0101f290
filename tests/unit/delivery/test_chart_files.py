"""The Helm chart ships exactly the generated CRDs, and its values schema matches values.yaml."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "ferry"


def test_chart_crds_are_the_generated_crds() -> None:
    generated = {p.name: p.read_bytes() for p in (REPO / "crds").glob("*.yaml")}
    shipped = {p.name: p.read_bytes() for p in (CHART / "crds").glob("ferry.dev_*.yaml")}
    assert generated, "crds/ is empty: run python -m ferry_operator.crdgen"
    assert shipped == generated, "charts/ferry/crds/ differs from crds/: run charts/sync-crds"


def test_chart_has_kopf_peering_crds() -> None:
    docs = list(yaml.safe_load_all((CHART / "crds" / "kopf.dev_peerings.yaml").read_text()))
    assert {d["spec"]["names"]["kind"] for d in docs} == {"ClusterKopfPeering", "KopfPeering"}


def test_every_value_is_in_the_schema_with_a_description() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def walk(value: object, node: dict[str, object], path: str) -> None:
        assert "description" in node or path == "", f"{path}: no description in the schema"
        if isinstance(value, dict) and "properties" in node:
            properties = node["properties"]
            assert isinstance(properties, dict)
            for key, item in value.items():
                assert key in properties, f"{path}.{key} is not in values.schema.json"
                walk(item, properties[key], f"{path}.{key}")

    walk(values, schema, "")


def test_dashboard_is_valid_json_with_panels() -> None:
    dashboard = json.loads((CHART / "files" / "dashboard.json").read_text())
    assert dashboard["uid"] == "ferry-synctasks"
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert any("ferry_synctask_lag_seconds" in e for e in exprs)
