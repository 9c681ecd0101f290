"""RBAC is enough: the operator's own end-to-end tests (tests/integration/operator/
test_synctask.py), re-run here with the operator process authenticated as the Helm chart's
ServiceAccount — a real token from the TokenRequest API, in the chart's most restrictive
mode (``watchNamespaces``: Roles in the test's namespace only). A denied call fails the
test, or its log shows the 403 and teardown fails it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
import yaml
from kubernetes import client
from tests.integration.delivery.test_helm_chart import CHART, chart_crds, helm, kube_env, run
from tests.integration.operator import conftest as operator_conftest
from tests.integration.operator import test_end_to_end, test_synctask
from tests.integration.operator.conftest import OperatorProcess

pytestmark = [pytest.mark.kube, pytest.mark.mysql, pytest.mark.kafka]
__all__ = ["chart_crds", "helm", "kube_env"]  # fixtures, re-exported for this module
# This module's own: the operator as the chart's ServiceAccount.
OWN = {"ferry_operator"}


def _collect(*modules: ModuleType) -> dict[str, Any]:
    """The operator suites' fixtures and tests, to be collected here, so that they run with
    this module's ``ferry_operator``."""
    found: dict[str, Any] = {}
    for module in modules:
        for name, obj in vars(module).items():
            is_fixture = type(obj).__name__ == "FixtureFunctionDefinition"
            if (is_fixture and name not in OWN) or (name.startswith("test_") and callable(obj)):
                found[name] = obj
    return found


globals().update(_collect(operator_conftest, test_synctask, test_end_to_end))


def service_account_kubeconfig(admin_kubeconfig: str, token: str, path: Path) -> Path:
    admin = yaml.safe_load(Path(admin_kubeconfig).read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
    cluster = next(c for c in admin["clusters"] if c["name"] == context["context"]["cluster"])
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [cluster],
                "users": [{"name": "chart-sa", "user": {"token": token}}],
                "contexts": [
                    {
                        "name": "chart-sa",
                        "context": {"cluster": cluster["name"], "user": "chart-sa"},
                    }
                ],
                "current-context": "chart-sa",
            }
        )
    )
    path.chmod(0o600)
    return path


@pytest.fixture
def ferry_operator(
    helm: str,
    kube_env: dict[str, str],
    chart_crds: None,
    kube_api: Any,
    testenv: Any,
    namespace: str,
    tmp_path: Path,
) -> Iterator[OperatorProcess]:
    # The release in a namespace of its own, as in a real install (ferry-system watching shop);
    # the test's namespace then holds only what the operator creates.
    release = f"rel-{uuid.uuid4().hex[:6]}"
    home = f"{namespace[:50]}-op"
    core = client.CoreV1Api(kube_api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=home)))
    run(
        [
            helm,
            "install",
            release,
            str(CHART),
            "-n",
            home,
            "--set",
            f"peering.name={release}",
            "--set",
            f"watchNamespaces={{{namespace}}}",
        ],
        kube_env,
    )
    account = f"{release}-ferry"
    token = core.create_namespaced_service_account_token(
        account,
        home,
        client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
        ),
    ).status.token
    kubeconfig = service_account_kubeconfig(
        testenv.kubeconfig, token, tmp_path / "chart-sa.kubeconfig"
    )
    process = OperatorProcess(
        SimpleNamespace(kubeconfig=str(kubeconfig)), namespace, tmp_path / "operator.log"
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()
        run([helm, "uninstall", release, "-n", home], kube_env)
        core.delete_namespace(home, propagation_policy="Background")
    log = process.log()
    denied = [line for line in log.splitlines() if "forbidden" in line.lower() or " 403" in line]
    assert not denied, "the operator was denied as the chart's ServiceAccount:\n" + "\n".join(
        denied[:20]
    )
    assert os.path.getsize(tmp_path / "operator.log") > 0
