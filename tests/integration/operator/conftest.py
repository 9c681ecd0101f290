"""Fixtures for the operator's integration tests: the CRDs from crds/ installed in the test
control plane, a client for the custom resources, and the operator as a child process
(``python -m ferry_operator.main --namespace NS``) watching the test's namespace."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
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


class OperatorProcess:
    """``python -m ferry_operator.main --namespace NS`` as a child process (restartable)."""

    def __init__(self, testenv: Any, namespace: str, log_path: Path) -> None:
        self.testenv, self.namespace, self.log_path = testenv, namespace, log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "KUBECONFIG": str(self.testenv.kubeconfig),
            "FERRY_RESYNC_SECONDS": "1",
            "FERRY_WAIT_SECONDS": "1",
            "FERRY_PROBE_SECONDS": "30",
        }
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ferry_operator.main", "--namespace", self.namespace],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """SIGKILL: an operator that dies mid-work."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def ferry_operator(
    testenv: Any, namespace: str, ferry_crds: None, tmp_path: Path
) -> Iterator[OperatorProcess]:
    process = OperatorProcess(testenv, namespace, tmp_path / "operator.log")
    process.start()
    yield process
    process.stop()


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except client.ApiException as error:
            if error.status != 404:
                raise
            last = None
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
