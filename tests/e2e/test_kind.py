"""The end-to-end suite on kind, for users with a Docker engine: tests/e2e/test_node.py run
again with ``FERRY_E2E_CLUSTER=kind`` (images built by docker and loaded into a fresh kind
cluster; MariaDB and Kafka are tests/infra's). Only kind's bootstrap skips: without a Docker
engine, as on every machine this project is developed and CI-tested on, where the same suite
runs on the test environment's own node."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from tests.e2e.conftest import NO_DOCKER, REPO, docker_engine_problem

pytestmark = pytest.mark.timeout(3600)


def test_the_node_suite_passes_on_kind() -> None:
    why = docker_engine_problem()
    if why is not None:
        pytest.skip(NO_DOCKER.format(why=why))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/e2e/test_node.py"],
        cwd=REPO,
        env={**os.environ, "FERRY_E2E_CLUSTER": "kind"},
        capture_output=True,
        text=True,
        timeout=3500,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout.splitlines()[-1]
