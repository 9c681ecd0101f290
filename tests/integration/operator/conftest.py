"""Fixtures for the operator's integration tests: the CRDs from crds/ installed in the test
control plane, and a client for the custom resources."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

REPO_ROOT = Path(__file__).resolve().parents[3]
CRDS = ["synctasks", "connectors", "tasktemplates"]


@pytest.fixture(scope="session")
def ferry_crds(kube_api: Any, testenv: Any) -> None:
    """Apply crds/ (server-side, so a changed schema replaces the old) and wait until served."""
    subprocess.run(
        [
            testenv.kubectl,
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            str(REPO_ROOT / "crds"),
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "KUBECONFIG": str(testenv.kubeconfig)},
    )
    extensions = client.ApiextensionsV1Api(kube_api)
    deadline = time.monotonic() + 30
    for plural in CRDS:
        while True:
            crd = extensions.read_custom_resource_definition(f"{plural}.ferry.dev")
            conditions = {c.type: c.status for c in (crd.status.conditions or [])}
            if conditions.get("Established") == "True":
                break
            assert time.monotonic() < deadline, f"{plural} CRD not established"
            time.sleep(0.2)


@pytest.fixture
def custom(kube_api: Any, ferry_crds: None) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube_api)
