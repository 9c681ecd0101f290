"""Fixtures for Ferry's tests: clients of the real services that tests/infra/up started.

Session-scoped clients read the env file written by ``tests/infra/up``; per-test fixtures
give each test its own namespace, database and topic names. A missing service skips the
test with the reason locally and fails it in CI (``CI=true``), so CI never passes silently
without the services it was meant to test against.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.support import testenv_values

REPO_ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@dataclass(frozen=True)
class TestEnv:
    """Where the test services listen, as written by tests/infra/up."""

    values: dict[str, str]

    def get(self, key: str) -> str | None:
        return self.values.get(key) or os.environ.get(key)

    @property
    def kubeconfig(self) -> str | None:
        return self.get("KUBECONFIG")

    @property
    def kubectl(self) -> str:
        return self.get("FERRY_KUBECTL") or "kubectl"

    @property
    def mysql(self) -> dict[str, Any]:
        return {
            "host": self.get("FERRY_MYSQL_HOST") or "127.0.0.1",
            "port": int(self.get("FERRY_MYSQL_PORT") or 13306),
            "user": self.get("FERRY_MYSQL_USER") or "ferry",
            "password": self.get("FERRY_MYSQL_PASSWORD") or "",
        }

    @property
    def mysql_admin(self) -> dict[str, Any]:
        return {**self.mysql, "user": self.get("FERRY_MYSQL_ADMIN_USER") or "ferry_admin"}

    @property
    def kafka_bootstrap(self) -> str:
        return self.get("FERRY_KAFKA_BOOTSTRAP") or "127.0.0.1:19092"


# Tests that seed the shared MariaDB's `shop` database (the examples' database, which their
# manifests name): they must never overlap, so they share one xdist group.
SHOP_TESTS = (
    "tests/e2e/test_node.py",
    "tests/e2e/test_node_live.py",
    "tests/integration/test_demo.py",
)


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the xdist_group markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """For scripts/test's pytest-xdist workers (``--dist loadgroup``):
    - the tests that seed `shop` go to one worker, one after another;
    - tests marked ``long`` come first: the workers take tests in this order, and a long one
      started last would be the run's tail."""
    for item in items:
        if item.nodeid.startswith(SHOP_TESTS):
            item.add_marker(pytest.mark.xdist_group("shop"))
    items.sort(key=lambda item: item.get_closest_marker("long") is None)  # stable


def service_missing(service: str, reason: str) -> None:
    """Skip locally, fail in CI: a CI run without its services must not look green."""
    message = f"{service} is not available: {reason}. Start it with tests/infra/up."
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def unique_name(prefix: str, request: pytest.FixtureRequest, max_len: int = 40) -> str:
    """A DNS-1123 and SQL-safe name derived from the test's name, unique per call."""
    stem = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")
    suffix = uuid.uuid4().hex[:6]
    return f"{prefix}-{stem[: max_len - len(prefix) - 8].strip('-')}-{suffix}"


@pytest.fixture(scope="session")
def testenv() -> TestEnv:
    return TestEnv(testenv_values())


# ---------------------------------------------------------------- secured listeners


@pytest.fixture
def secured(testenv: TestEnv) -> dict[str, str]:
    """The secured listeners' addresses, users and certificate files (tests/infra/secured.sh
    writes them into the env file)."""
    keys = [
        "FERRY_TLS_CA_FILE",
        "FERRY_TLS_OTHER_CA_FILE",
        "FERRY_TLS_CLIENT_CERT_FILE",
        "FERRY_TLS_CLIENT_KEY_FILE",
        "FERRY_MYSQL_TLS_USER",
        "FERRY_KAFKA_SASL_BOOTSTRAP",
        "FERRY_KAFKA_MTLS_BOOTSTRAP",
        "FERRY_KAFKA_SCRAM_USER",
        "FERRY_KAFKA_SCRAM_PASSWORD",
        "FERRY_KAFKA_PLAIN_USER",
        "FERRY_KAFKA_PLAIN_PASSWORD",
    ]
    values = {key: testenv.get(key) for key in keys}
    missing = [key for key, value in values.items() if not value]
    if missing:
        service_missing("the secured listeners", f"{missing} not in the env file")
    return {key: str(value) for key, value in values.items()}


# ---------------------------------------------------------------- Kubernetes


@pytest.fixture(scope="session")
def kube_api(testenv: TestEnv) -> Any:
    """An ApiClient for the test control plane (admin credentials)."""
    from kubernetes import client, config

    if not testenv.kubeconfig or not Path(testenv.kubeconfig).exists():
        service_missing("kube-apiserver", "no kubeconfig in the test env file")
    api_client = config.new_client_from_config(config_file=testenv.kubeconfig)
    try:
        client.VersionApi(api_client).get_code(_request_timeout=5)
    except Exception as error:  # any failure to reach it means the same to the test
        service_missing("kube-apiserver", f"{type(error).__name__}: {error}")
    return api_client


@pytest.fixture(scope="session")
def ferry_crds(kube_api: Any) -> None:
    """Ferry's generated CRDs (crds/) server-side applied to the test control plane (a changed
    schema replaces the old) and established."""
    import yaml
    from kubernetes import client
    from tests.support import wait_until

    extensions = client.ApiextensionsV1Api(kube_api)
    for path in sorted((REPO_ROOT / "crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        name = crd["metadata"]["name"]
        extensions.patch_custom_resource_definition(
            name, crd, field_manager="ferry-tests", force=True,
            _content_type="application/apply-patch+yaml",
        )  # fmt: skip

        def established(name: str = name) -> bool:
            conditions = extensions.read_custom_resource_definition(name).status.conditions
            return any(c.type == "Established" and c.status == "True" for c in conditions or [])

        wait_until(established, 30, f"the CRD {name} to be established")


@pytest.fixture
def namespace(kube_api: Any, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards (without waiting)."""
    from kubernetes import client

    core = client.CoreV1Api(kube_api)
    name = unique_name("t", request, max_len=50)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    _drop_ferry_finalizers(kube_api, name)
    core.delete_namespace(name, propagation_policy="Background")


def _drop_ferry_finalizers(kube_api: Any, namespace: str) -> None:
    """The operator's finalizers off what is left of Ferry's objects in a test's namespace:
    its operator has stopped by now, so they would keep the namespace Terminating for good,
    and the namespace controller retrying it kept the API server busy (~1.3 of the 2 cores
    with ~65 such namespaces) for the rest of the run."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    custom = client.CustomObjectsApi(kube_api)
    for plural in ("synctasks", "connectors", "tasktemplates"):
        try:
            found = custom.list_namespaced_custom_object("ferry.dev", "v1alpha1", namespace, plural)
        except ApiException:  # Ferry's CRDs are not installed: nothing of it here
            return
        for item in found.get("items", []):
            if not item["metadata"].get("finalizers"):
                continue
            try:
                custom.patch_namespaced_custom_object(
                    "ferry.dev", "v1alpha1", namespace, plural, item["metadata"]["name"],
                    {"metadata": {"finalizers": None}},
                )  # fmt: skip
            except ApiException as error:
                if error.status != 404:  # gone meanwhile: nothing to drop
                    raise


# ---------------------------------------------------------------- MariaDB


@pytest.fixture(scope="session")
def mysql_connect(testenv: TestEnv) -> Callable[..., Any]:
    """``mysql_connect(admin=False, **overrides)`` opens a PyMySQL connection."""
    import pymysql

    def connect(admin: bool = False, **overrides: Any) -> Any:
        params = {**(testenv.mysql_admin if admin else testenv.mysql), **overrides}
        return pymysql.connect(autocommit=True, charset="utf8mb4", connect_timeout=5, **params)

    try:
        connect(admin=True).close()
    except Exception as error:
        service_missing("MariaDB", f"{type(error).__name__}: {error}")
    return connect


@pytest.fixture
def database(mysql_connect: Callable[..., Any], request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database for one test, dropped afterwards."""
    name = unique_name("t", request, max_len=60).replace("-", "_")
    with mysql_connect(admin=True) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    yield name
    with mysql_connect(admin=True) as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


# ---------------------------------------------------------------- Kafka


@pytest.fixture(scope="session")
def kafka_bootstrap(testenv: TestEnv) -> str:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": testenv.kafka_bootstrap})
    try:
        admin.list_topics(timeout=10)
    except Exception as error:
        service_missing("Kafka", f"{type(error).__name__}: {error}")
    return testenv.kafka_bootstrap


@dataclass(frozen=True)
class SchemaRegistryEnv:
    """The test schema registry: its Confluent-compatible base URL and its basic auth user
    (Apicurio requires it, tests/infra/registry.sh)."""

    url: str
    username: str
    password: str

    @property
    def headers(self) -> dict[str, str]:
        import base64

        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}


@pytest.fixture(scope="session")
def schema_registry(testenv: TestEnv) -> SchemaRegistryEnv:
    """The schema registry of format avro's tests (Apicurio, tests/infra/registry.sh)."""
    import urllib.request

    values = [testenv.get(key) for key in ("FERRY_SCHEMA_REGISTRY_URL", "FERRY_REGISTRY_USER")]
    url, username = values
    if not url or not username:
        service_missing("the schema registry", "FERRY_SCHEMA_REGISTRY_URL is not in the env file")
    password = testenv.get("FERRY_REGISTRY_PASSWORD") or ""
    registry = SchemaRegistryEnv(str(url), str(username), password)
    request = urllib.request.Request(f"{url}/subjects", headers=registry.headers)
    try:
        with urllib.request.urlopen(request, timeout=10):
            pass
    except OSError as error:
        service_missing("the schema registry", f"{type(error).__name__}: {error}")
    return registry


@pytest.fixture
def topic_prefix(request: pytest.FixtureRequest) -> str:
    """A prefix that makes this test's topic names its own."""
    return unique_name("t", request, max_len=60).replace("-", ".")
