"""The GitOps examples parse, have the kinds the docs promise, and point at paths that exist."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples" / "gitops"


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_argocd_applications_point_at_the_chart_and_an_example() -> None:
    apps = [d for p in sorted((EXAMPLES / "argocd").glob("*.yaml")) for d in documents(p)]
    assert {d["kind"] for d in apps} == {"Application"}
    paths = {d["spec"]["source"]["path"] for d in apps}
    assert "charts/ferry" in paths
    assert (REPO / "charts/ferry/Chart.yaml").exists()


def test_flux_has_a_helmrelease_and_kustomizations_in_order() -> None:
    docs = [d for p in sorted((EXAMPLES / "flux").rglob("*.yaml")) for d in documents(p)]
    kinds = [d["kind"] for d in docs]
    assert kinds.count("HelmRelease") == 1 and "GitRepository" in kinds
    kustomizations = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Kustomization"}
    assert kustomizations["shop-sync"]["spec"]["dependsOn"] == [{"name": "ferry-operator"}]
    operator_path = kustomizations["ferry-operator"]["spec"]["path"]
    assert (REPO / operator_path).is_dir()
    release = next(d for d in docs if d["kind"] == "HelmRelease")
    assert release["spec"]["chart"]["spec"]["chart"] == "./charts/ferry"
