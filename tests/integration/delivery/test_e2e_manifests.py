"""The kind suite's manifests (tests/e2e/manifests) are accepted by the real API server with
Ferry's CRDs, so the suite that cannot run here at least applies valid objects."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.kube
MANIFESTS = Path(__file__).resolve().parents[2] / "e2e" / "manifests"


@pytest.mark.parametrize("name", ["services.yaml", "synctask.yaml"])
def test_e2e_manifests_pass_server_side_dry_run(
    name: str, ferry_crds: None, namespace: str, testenv: Any
) -> None:
    env = {**os.environ, "KUBECONFIG": testenv.kubeconfig}
    result = subprocess.run(
        [
            testenv.kubectl,
            "apply",
            "--dry-run=server",
            "-n",
            namespace,
            "-f",
            str(MANIFESTS / name),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("(server dry run)") >= 3
