"""kubectl ferry warns before patching a task that Argo CD or Flux manages."""

from __future__ import annotations

from typing import Any

import pytest

from ferry_operator.plugin import gitops


def task(
    labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "metadata": {"name": "orders", "labels": labels or {}, "annotations": annotations or {}}
    }


@pytest.mark.parametrize(
    ("obj", "tool"),
    [
        (
            task(
                annotations={
                    "argocd.argoproj.io/tracking-id": "shop:ferry.dev/SyncTask:shop/orders"
                }
            ),
            "Argo CD",
        ),
        (task(labels={"kustomize.toolkit.fluxcd.io/name": "shop-sync"}), "Flux"),
        (task(labels={"helm.toolkit.fluxcd.io/name": "shop"}), "Flux"),
        (task(labels={"app.kubernetes.io/instance": "shop"}), None),
        ({"metadata": {}}, None),
    ],
)
def test_managed_by(obj: dict[str, Any], tool: str | None) -> None:
    assert gitops.managed_by(obj) == tool


def test_warning_names_the_tool_and_the_fields() -> None:
    obj = task(labels={"kustomize.toolkit.fluxcd.io/name": "shop-sync"})
    text = gitops.warning(obj, {"spec": {"resumeAt": None, "paused": True}})
    assert text == (
        "warning: SyncTask 'orders' is managed by Flux; commit spec.paused, spec.resumeAt to Git "
        "as well, or Flux will put Git's value back"
    )
    assert gitops.warning(task(), {"spec": {"paused": True}}) is None
