"""The README's demo runs to completion (short mode) and shows the status table."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.kube, pytest.mark.mysql, pytest.mark.kafka, pytest.mark.node]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def demo_removed_afterwards(testenv: Any) -> Iterator[None]:
    """The demo leaves its operator and worker running as pods, as it says; the tests after
    this one do not need them streaming beside them."""
    yield
    env = {**os.environ, "KUBECONFIG": testenv.kubeconfig}
    kubectl, helm = testenv.kubectl, testenv.get("FERRY_HELM") or "helm"
    for command in (
        # Tasks and Connectors while the operator is there to lift their finalizers (kopf
        # puts one on every object with a timer): else the namespace hangs in Terminating.
        [kubectl, "delete", "synctasks", "--all", "-n", "ferry-demo", "--wait", "--timeout=120s"],
        [kubectl, "delete", "connectors", "--all", "-n", "ferry-demo", "--wait", "--timeout=60s"],
        [helm, "uninstall", "ferry", "-n", "ferry-system", "--wait", "--timeout", "120s"],
        [kubectl, "delete", "namespace", "ferry-demo", "ferry-system", "--wait=false"],
    ):
        subprocess.run(command, env=env, capture_output=True, timeout=180)


@pytest.mark.long
def test_demo_short_mode(
    kube_api: object, mysql_connect: object, kafka_bootstrap: str, demo_removed_afterwards: None
) -> None:
    result = subprocess.run(
        [str(REPO / "scripts/demo"), "--short"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    header = r"NAME\s+READY\s+PHASE\s+REASON\s+LAG\s+PROGRESS\s+POSITION\s+AGE"
    assert re.search(header, output), output[-4000:]
    assert re.search(r"shop-orders\s+True\s+Running\s+.*100%\s+binlog\.\d+", output), output[-4000:]
    # 5000 + 2 snapshot rows, then 1 insert, 10 updates, 10 deletes, 1 insert streamed.
    assert "5024 events" in output, output[-4000:]
    assert "shop.order_items" in output and "5000/5000" in output
