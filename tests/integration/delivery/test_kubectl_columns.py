"""``kubectl get synctasks`` is a dashboard that tells the truth: its default columns, read
by the real kubectl from the real API server through the generated CRD's printer columns.
A stalled task shows READY False and its reason beside the phase, the lag as a duration and
the progress as a percentage, the position as file:offset."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest

pytestmark = pytest.mark.kube


def _kubectl_get(testenv: Any, namespace: str, *extra: str) -> list[list[str]]:
    kubectl = shutil.which(testenv.kubectl)
    assert kubectl, f"kubectl not found ({testenv.kubectl})"
    result = subprocess.run(
        [kubectl, "--kubeconfig", testenv.kubeconfig, "get", "synctasks", "-n", namespace,
         *extra],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result
    return [line.split() for line in result.stdout.splitlines()]


def test_default_columns_show_readiness_reason_lag_and_progress(
    testenv: Any, make_task: Any, namespace: str
) -> None:
    condition = {
        "type": "Ready", "status": "False", "reason": "HeartbeatMissing",
        "message": "no report from the worker for 41s",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }  # fmt: skip
    make_task(
        "orders",
        status={
            "phase": "Running",
            "conditions": [condition],
            "lag": {"seconds": 778.532, "display": "12m58s"},
            "progress": {"percent": 42.4, "display": "42%"},
            "position": {
                "file": "mysql-bin.000003",
                "pos": 1234,
                "gtid": "0-1-42",
                "display": "mysql-bin.000003:1234",
            },
        },
    )
    rows = _kubectl_get(testenv, namespace)
    assert rows[0] == [
        "NAME", "READY", "PHASE", "REASON", "LAG", "PROGRESS", "POSITION", "AGE",
    ]  # fmt: skip
    assert rows[1][:7] == [
        "orders", "False", "Running", "HeartbeatMissing", "12m58s", "42%",
        "mysql-bin.000003:1234",
    ]  # fmt: skip
    wide = _kubectl_get(testenv, namespace, "-o", "wide")
    assert wide[0][-5:] == ["OFFSET", "LAGSECONDS", "REVISION", "FAILURES", "AGE"]
    assert wide[1][7:9] == ["1234", "778.532"]
