"""Fixtures for the operator's integration tests: the CRDs from crds/ installed in the test
control plane, a client for the custom resources, and the operator as a child process
(``python -m ferry_operator.main --namespace NS``) watching the test's namespace."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

REPO_ROOT = Path(__file__).resolve().parents[3]
GROUP, VERSION = "ferry.dev", "v1alpha1"


@pytest.fixture
def custom(kube_api: Any, ferry_crds: None) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube_api)


class OperatorProcess:
    """``python -m ferry_operator.main --namespace NS`` as a child process (restartable)."""

    def __init__(
        self, testenv: Any, namespace: str, log_path: Path, env: dict[str, str] | None = None
    ) -> None:
        self.testenv, self.namespace, self.log_path = testenv, namespace, log_path
        self.extra_env = env or {}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "KUBECONFIG": str(self.testenv.kubeconfig),
            # The safety-net resync; FERRY_TEST_RESYNC_SECONDS=300 (the default) runs a test on
            # watch events alone.
            "FERRY_RESYNC_SECONDS": os.environ.get("FERRY_TEST_RESYNC_SECONDS", "1"),
            "FERRY_WAIT_SECONDS": "1",
            "FERRY_PROBE_SECONDS": "30",
            **self.extra_env,
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


class Ferry:
    """Small helpers over the clients for one namespace."""

    def __init__(self, api: Any, namespace: str) -> None:
        self.ns = namespace
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.rbac = client.RbacAuthorizationV1Api(api)
        self.api = api

    def create(self, plural: str, obj: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.ns, plural, obj
        )
        return result

    def get(self, plural: str, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.ns, plural, name
        )
        return result

    def patch_spec(self, plural: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.ns, plural, name, {"spec": spec}
        )
        return result

    def condition(self, plural: str, name: str, kind: str = "Ready") -> dict[str, Any]:
        status = self.get(plural, name).get("status") or {}
        return next((c for c in status.get("conditions") or [] if c["type"] == kind), {})

    def revisions(self, task: str) -> list[str]:
        items = self.core.list_namespaced_config_map(
            self.ns, label_selector=f"ferry.dev/task={task},ferry.dev/revision"
        ).items
        return sorted((cm.metadata.name for cm in items), key=lambda n: int(n.rsplit("-r", 1)[1]))

    def deployment(self, task: str) -> Any:
        return self.apps.read_namespaced_deployment(f"{task}-worker", self.ns)

    def events(self, reason: str) -> list[Any]:
        return [e for e in self.core.list_namespaced_event(self.ns).items if e.reason == reason]

    def secret(self, name: str, password: str) -> None:
        self.core.create_namespaced_secret(
            self.ns,
            client.V1Secret(
                metadata=client.V1ObjectMeta(name=name), string_data={"password": password}
            ),
        )


@pytest.fixture
def ferry(kube_api: Any, namespace: str, ferry_crds: None) -> Ferry:
    return Ferry(kube_api, namespace)


def delete_ferry_objects(ferry: Ferry) -> None:
    """Delete the namespace's SyncTasks and Connectors and wait until they are gone (with
    the operator running: it removes its finalizers)."""
    for plural in ("synctasks", "connectors"):
        for item in ferry.custom.list_namespaced_custom_object(GROUP, VERSION, ferry.ns, plural)[
            "items"
        ]:
            name = item["metadata"]["name"]
            ferry.custom.delete_namespaced_custom_object(GROUP, VERSION, ferry.ns, plural, name)
        wait_until(
            lambda plural=plural: (
                not ferry.custom.list_namespaced_custom_object(GROUP, VERSION, ferry.ns, plural)[
                    "items"
                ]
            ),
            60,
            f"{plural} gone",
        )


@pytest.fixture
def port() -> int:
    """A free port for the operator's HTTP endpoint (metrics, health)."""
    from tests.integration.scratch import free_port

    return free_port()


@pytest.fixture
def event_operator(
    testenv: Any, namespace: str, ferry_crds: None, tmp_path: Path, port: int, ferry: Ferry
) -> Iterator[OperatorProcess]:
    """The operator with no safety-net resync and no Connector re-probe within a test (both
    600 s): what it does is driven by watch events and its startup. On the way out it
    deletes the tasks and Connectors while it still runs (it removes its finalizers)."""
    quiet = "600"
    process = OperatorProcess(
        testenv,
        namespace,
        tmp_path / "operator.log",
        env={"FERRY_RESYNC_SECONDS": quiet, "FERRY_PROBE_SECONDS": quiet,
             "FERRY_HTTP_PORT": str(port)},
    )  # fmt: skip
    process.start()
    yield process
    delete_ferry_objects(ferry)
    process.stop()


def mysql_connector(
    name: str, testenv: Any, user: str | None = None, secret: str = "db"
) -> dict[str, Any]:
    mysql = testenv.mysql
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Connector",
        "metadata": {"name": name},
        "spec": {
            "type": "mysql",
            "mysql": {
                "host": mysql["host"],
                "port": mysql["port"],
                "user": user or mysql["user"],
                "passwordSecretRef": {"name": secret, "key": "password"},
            },
        },
    }


def kafka_connector(name: str, bootstrap: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Connector",
        "metadata": {"name": name},
        "spec": {"type": "kafka", "kafka": {"bootstrapServers": bootstrap}},
    }


def task(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SyncTask",
        "metadata": {"name": name},
        "spec": {
            "source": {"connectorRef": {"name": "db"}, "include": ["shop.*"]},
            "sink": {"connectorRef": {"name": "kafka"}, "kafka": {}},
            **spec,
        },
    }


@pytest.fixture
def connectors(ferry: Ferry, testenv: Any, kafka_bootstrap: str, mysql_connect: Any) -> None:
    """A Ready mysql Connector 'db' and kafka Connector 'kafka'."""
    ferry.secret("db", testenv.mysql["password"])
    ferry.create("connectors", mysql_connector("db", testenv))
    ferry.create("connectors", kafka_connector("kafka", kafka_bootstrap))


class Kubelet:
    """Plays kubelet for a task's worker Deployment (for tests of operator ↔ worker
    interplay that need no image; tests/e2e runs the real pods): runs its one container as a
    local process — the config from the mounted ConfigMap, env from the secretKeyRefs, Secret
    volumes written as files under ``root`` where the Deployment mounts them."""

    def __init__(self, ferry: Ferry, testenv: Any, root: Path) -> None:
        self.ferry, self.testenv, self.root = ferry, testenv, root
        self.process: subprocess.Popen[bytes] | None = None
        self.log = root / "worker.log"

    def _secret(self, name: str) -> dict[str, str]:
        data = self.ferry.core.read_namespaced_secret(name, self.ferry.ns).data or {}
        return {key: base64.b64decode(value).decode() for key, value in data.items()}

    def start(self, task_name: str) -> None:
        pod = self.ferry.deployment(task_name).spec.template.spec
        container = pod.containers[0]
        volumes = {v.name: v for v in pod.volumes}
        config_text = ""
        for mount in container.volume_mounts:
            volume = volumes[mount.name]
            if volume.config_map is not None:
                configmap = self.ferry.core.read_namespaced_config_map(
                    volume.config_map.name, self.ferry.ns
                )
                config_text = configmap.data["worker.yaml"]
            elif volume.secret is not None:
                target = self.root / mount.mount_path.lstrip("/")
                target.mkdir(parents=True, exist_ok=True)
                data = self._secret(volume.secret.secret_name)
                for item in volume.secret.items:
                    (target / item.path).write_text(data[item.key])
        config = yaml.safe_load(
            config_text.replace("/etc/ferry-tls/", f"{self.root}/etc/ferry-tls/")
        )
        config["reporting"] |= {"port": 0, "interval": "1s"}
        path = self.root / "worker.yaml"
        path.write_text(yaml.safe_dump(config))
        env = {"KUBECONFIG": str(self.testenv.kubeconfig)}
        for variable in container.env:
            if variable.value is not None:  # e.g. FERRY_RUN of a scheduled snapshot run
                env[variable.name] = variable.value
                continue
            ref = variable.value_from.secret_key_ref
            env[variable.name] = self._secret(ref.name)[ref.key]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ferry_runtime.cli", "--config", str(path), "--no-watch"],
            env={**os.environ, **env},
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )

    def fetch(self, path: str) -> str:
        port = re.search(r"status on port (\d+)", self.log.read_text())
        assert port, self.log.read_text()
        url = f"http://127.0.0.1:{port.group(1)}{path}"
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())

    def stop(self) -> None:
        """SIGTERM, as a pod deletion: the worker flushes and checkpoints first."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)
        self.process = None


@pytest.fixture
def kubelet(ferry: Ferry, testenv: Any, tmp_path: Path) -> Iterator[Kubelet]:
    runner = Kubelet(ferry, testenv, tmp_path)
    yield runner
    runner.stop()
