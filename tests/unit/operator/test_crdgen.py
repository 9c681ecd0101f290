"""crds/ is exactly what the generator writes, and the schemas are complete and structural."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ferry_operator import crdgen
from ferry_operator.api import base
from ferry_operator.api.schema import SchemaError, structural

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_crds_directory_matches_the_generator() -> None:
    for name, text in crdgen.render_all().items():
        path = REPO_ROOT / "crds" / name
        assert path.exists(), f"{path} missing: run python -m ferry_operator.crdgen"
        assert path.read_text() == text, f"{path} is stale: run python -m ferry_operator.crdgen"


def _walk(node: dict[str, Any], where: str) -> list[str]:
    """Paths of properties without a description or without a type."""
    problems = []
    for name, sub in node.get("properties", {}).items():
        path = f"{where}.{name}"
        if not sub.get("description"):
            problems.append(f"{path}: no description")
        if "type" not in sub and not sub.get("x-kubernetes-preserve-unknown-fields"):
            problems.append(f"{path}: no type")
        problems += _walk(sub, path)
    if isinstance(node.get("items"), dict):
        problems += _walk(node["items"], f"{where}[]")
    return problems


@pytest.mark.parametrize("crd", crdgen.CRDS, ids=lambda c: c.kind)
def test_every_field_is_typed_and_described(crd: crdgen.CrdSpec) -> None:
    schema = crdgen.render(crd)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert _walk(schema["properties"]["spec"], "spec") == []
    assert _walk(schema["properties"]["status"], "status") == []
    text = yaml.safe_dump(schema)
    for forbidden in ("$ref", "anyOf", "$defs", "title:"):
        assert forbidden not in text


def test_synctask_crd_has_names_columns_and_status() -> None:
    crd = crdgen.render(crdgen.CRDS[0])
    assert crd["spec"]["names"]["shortNames"] == ["st", "fst"]
    assert crd["spec"]["names"]["categories"] == ["ferry"]
    version = crd["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    shown = [c["name"] for c in version["additionalPrinterColumns"] if not c.get("priority")]
    assert shown == ["Ready", "Phase", "Reason", "Lag", "Progress", "Position", "Age"]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["properties"]["resumeAt"]["format"] == "date-time"
    assert spec["x-kubernetes-validations"]


def test_a_field_without_description_is_refused() -> None:
    class Bare(base.Model):
        x: int = 1

    with pytest.raises(SchemaError, match=r"Bare\.x has no description"):
        structural(Bare)


def test_docs_api_md_holds_the_current_field_reference() -> None:
    text = (REPO_ROOT / "docs" / "api.md").read_text()
    assert crdgen.reference_markdown() in text, "docs/api.md is stale: regenerate its Fields part"
