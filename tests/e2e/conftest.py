"""The end-to-end suite: Ferry's own images as pods, installed with its Helm chart.

The ``node`` fixture is the cluster the suite runs on:
- by default the test environment's real node (tests/infra: kubelet + containerd beside the
  control plane, images built from the Dockerfile with buildah). It runs here and in CI, and
  never skips in CI: without the node the tests fail;
- with ``FERRY_E2E_CLUSTER=kind``, a kind cluster, for users with a Docker engine: the same
  tests, with the images built by docker and loaded into kind. Only kind's own bootstrap may
  skip (no Docker engine: every machine this project is developed and CI-tested on).

Either way MariaDB and Kafka are tests/infra's, reached from pods at the env file's
``FERRY_POD_HOST`` (the host's address on the ``ferry0`` bridge).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import service_missing
from tests.e2e.node import Node
from tests.support import testenv_values

REPO = Path(__file__).resolve().parents[2]
KIND_VERSION = "v0.30.0"
CACHE = Path(os.environ.get("FERRY_TESTENV_CACHE", Path.home() / ".cache/ferry-testenv"))
NO_DOCKER = (
    "no Docker engine here (`docker info` {why}): the end-to-end suite on kind needs one for "
    "kind's node containers and to build the images. Skipped by design, also in CI, where the "
    "same suite runs on the test environment's own node."
)
# kind's default pod range (10.244.0.0/16) holds the host's ferry0 address, where pods reach
# tests/infra's MariaDB and Kafka: kind's pods get another range, so that address leaves the
# kind node by its default route and lands on the host.
KIND_CONFIG = """\
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
networking:
  podSubnet: 10.245.0.0/16
"""


def docker_engine_problem() -> str | None:
    """Why Docker cannot be used, or None when an engine answers."""
    docker = shutil.which("docker")
    if docker is None:
        return "failed: no docker command"
    try:
        result = subprocess.run([docker, "info"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "timed out"
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        return f"failed: {lines[-1] if lines else f'exit {result.returncode}'}"
    return None


def sh(
    *args: str, env: dict[str, str] | None = None, timeout: float = 900, stdin: str | None = None
) -> str:
    result = subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, env=env, input=stdin
    )
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} failed ({result.returncode}):\n{result.stderr[-4000:]}"
        )
    return result.stdout


def kind_binary() -> str:
    """kind from the Go module proxy, built once into the test cache."""
    found = shutil.which("kind")
    if found:
        return found
    bin_dir = CACHE / f"kind-{KIND_VERSION}" / "bin"
    if not (bin_dir / "kind").exists():
        sh(
            "go",
            "install",
            f"sigs.k8s.io/kind@{KIND_VERSION}",
            env={**os.environ, "GOBIN": str(bin_dir)},
        )
    return str(bin_dir / "kind")


def kind_node(base: dict[str, str], workdir: Path) -> Iterator[Node]:
    """A kind cluster holding the images docker built from the current source, as a Node."""
    why = docker_engine_problem()
    if why is not None:
        pytest.skip(NO_DOCKER.format(why=why))
    kind = kind_binary()
    name = f"ferry-e2e-{uuid.uuid4().hex[:6]}"
    kubeconfig, config = workdir / "kubeconfig", workdir / "kind.yaml"
    config.write_text(KIND_CONFIG)
    sh(kind, "create", "cluster", "--name", name, "--config", str(config),
       "--kubeconfig", str(kubeconfig), "--wait", "180s")  # fmt: skip
    try:
        for target in ("operator", "worker"):
            tag = f"ferry.local/ferry-{target}:dev"  # the tags tests/infra/build-images gives
            sh("docker", "build", "--target", target, "-t", tag, str(REPO), timeout=1800)
            sh(kind, "load", "docker-image", tag, "--name", name)
        yield Node({**base, "KUBECONFIG": str(kubeconfig), "FERRY_NODE": f"{name}-control-plane"})
    finally:
        subprocess.run(
            [kind, "delete", "cluster", "--name", name], capture_output=True, timeout=300
        )


@pytest.fixture(scope="session")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """The cluster the suite runs on, Ready, holding images built from the current source."""
    values = testenv_values()
    if os.environ.get("FERRY_E2E_CLUSTER") == "kind":
        if "FERRY_POD_HOST" not in values:
            service_missing("MariaDB and Kafka for pods", "tests/infra/up has not run")
        yield from kind_node(values, tmp_path_factory.mktemp("kind"))
        return
    if "FERRY_NODE" not in values:
        service_missing("the node", "the env file names no node (tests/infra/up node)")
    found = Node(values)
    try:
        ready = found.kubectl(
            "get", "node", values["FERRY_NODE"],
            "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
        )  # fmt: skip
    except AssertionError as error:
        service_missing("the node", str(error))
    if ready != "True":
        service_missing("the node", f"node {values['FERRY_NODE']} is not Ready ({ready})")
    # Rebuilds and imports the images only if the source changed since the last build.
    sh(str(REPO / "tests/infra/build-images"), "--import", timeout=1800)
    yield found
