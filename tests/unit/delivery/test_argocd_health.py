"""The Argo CD health check (gitops/argocd/health.lua) run in Lua 5.1, as Argo CD's
gopher-lua runs it, against the SyncTask status fixtures in gitops/argocd/health_test.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lupa.lua51 as lua51  # in the test extra: a missing one fails, never skips
import pytest
import yaml

ARGOCD = Path(__file__).resolve().parents[3] / "gitops" / "argocd"
HEALTH_LUA = (ARGOCD / "health.lua").read_text()
CASES = yaml.safe_load((ARGOCD / "health_test.yaml").read_text())["tests"]
CONNECTOR = ARGOCD / "connector"
CONNECTOR_LUA = (CONNECTOR / "health.lua").read_text()
CONNECTOR_CASES = yaml.safe_load((CONNECTOR / "health_test.yaml").read_text())["tests"]
PHASES = {
    "Pending",
    "Starting",
    "Snapshotting",
    "Running",
    "Paused",
    "Failed",
    "Completed",
    "Scheduled",
}


def to_lua(lua: Any, value: Any) -> Any:
    """JSON-shaped Python data as Lua tables (lists 1-based), as Argo CD hands ``obj`` over."""
    if isinstance(value, dict):
        return lua.table_from({key: to_lua(lua, item) for key, item in value.items()})
    if isinstance(value, list):
        return lua.table(*(to_lua(lua, item) for item in value))
    return value


def health(obj: dict[str, Any], script: str = HEALTH_LUA) -> dict[str, str]:
    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = to_lua(lua, obj)
    result = lua.execute(script)
    return {"status": result["status"], "message": result["message"]}


@pytest.mark.parametrize("case", CASES, ids=[Path(c["inputPath"]).stem for c in CASES])
def test_health_of_each_fixture(case: dict[str, Any]) -> None:
    obj = yaml.safe_load((ARGOCD / case["inputPath"]).read_text())
    assert health(obj) == case["healthStatus"]


def test_every_phase_and_the_lagging_generation_have_a_fixture() -> None:
    fixtures = [yaml.safe_load((ARGOCD / c["inputPath"]).read_text()) for c in CASES]
    phases = {(f.get("status") or {}).get("phase") for f in fixtures}
    assert phases >= PHASES
    statuses = {c["healthStatus"]["status"] for c in CASES}
    assert statuses == {"Healthy", "Progressing", "Degraded", "Suspended"}


def test_paused_is_suspended_even_with_a_stale_degraded_condition() -> None:
    obj = {
        "metadata": {"generation": 1},
        "status": {
            "phase": "Paused",
            "observedGeneration": 1,
            "conditions": [{"type": "Degraded", "status": "True", "reason": "LagOverThreshold"}],
        },
    }
    assert health(obj)["status"] == "Suspended"


@pytest.mark.parametrize(
    "case", CONNECTOR_CASES, ids=[Path(c["inputPath"]).stem for c in CONNECTOR_CASES]
)
def test_connector_health_of_each_fixture(case: dict[str, Any]) -> None:
    obj = yaml.safe_load((CONNECTOR / case["inputPath"]).read_text())
    assert health(obj, CONNECTOR_LUA) == case["healthStatus"]


def test_argocd_cm_embeds_the_same_lua() -> None:
    data = yaml.safe_load((ARGOCD / "argocd-cm.yaml").read_text())["data"]
    assert data["resource.customizations.health.ferry.dev_SyncTask"] == HEALTH_LUA
    assert data["resource.customizations.health.ferry.dev_Connector"] == CONNECTOR_LUA
