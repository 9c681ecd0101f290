"""Fixtures for the delivery tests: Ferry's CRDs in the test control plane, a task factory,
and a way to run ``kubectl ferry`` in-process against it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from ferry_operator import kubectl_plugin

REPO_ROOT = Path(__file__).resolve().parents[3]
CRD_DIR = REPO_ROOT / "crds"
GROUP, VERSION, PLURAL = "ferry.dev", "v1alpha1", "synctasks"


def _crd_documents() -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted(CRD_DIR.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc and doc.get("kind") == "CustomResourceDefinition"
    ]


def _wait_established(extensions: client.ApiextensionsV1Api, name: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        crd = extensions.read_custom_resource_definition(name)
        conditions = (crd.status and crd.status.conditions) or []
        if any(c.type == "Established" and c.status == "True" for c in conditions):
            return
        time.sleep(0.2)
    raise AssertionError(f"CRD {name} not Established after 30 s")


MINIMAL_CRD: dict[str, Any] = {
    # Used only while crds/ is not generated yet: the real shapes, no schema.
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"{PLURAL}.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": PLURAL, "singular": "synctask", "kind": "SyncTask"},
        "versions": [
            {
                "name": VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            },
                            "status": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            },
                        },
                    }
                },
            }
        ],
    },
}


@pytest.fixture(scope="session")
def ferry_crds(kube_api: Any) -> list[str]:
    """Ferry's CRDs from crds/, created or updated in the test control plane."""
    extensions = client.ApiextensionsV1Api(kube_api)
    documents = _crd_documents()
    if not documents:
        documents = [MINIMAL_CRD]
    for doc in documents:
        name = doc["metadata"]["name"]
        try:
            existing = extensions.read_custom_resource_definition(name)
        except ApiException as error:
            if error.status != 404:
                raise
            extensions.create_custom_resource_definition(doc)
        else:
            # Leave an identical (or, without crds/, any) installed CRD alone.
            if doc is not MINIMAL_CRD:
                current = kube_api.sanitize_for_serialization(existing)
                if current.get("spec", {}).get("versions") != doc["spec"]["versions"]:
                    meta = {
                        **doc["metadata"],
                        "resourceVersion": existing.metadata.resource_version,
                    }
                    extensions.replace_custom_resource_definition(name, {**doc, "metadata": meta})
        _wait_established(extensions, name)
    return [doc["metadata"]["name"] for doc in documents]


def task_spec(**overrides: Any) -> dict[str, Any]:
    """A valid SyncTask spec (the connectors need not exist for the API server)."""
    return {
        "source": {"connectorRef": {"name": "shop-db"}, "include": ["shop.orders"]},
        "sink": {"connectorRef": {"name": "kafka"}, "kafka": {"topic": "ferry.{database}.{table}"}},
        "mode": "cdc",
        **overrides,
    }


@pytest.fixture
def objects(kube_api: Any) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube_api)


@pytest.fixture
def make_task(
    ferry_crds: list[str], objects: client.CustomObjectsApi, namespace: str
) -> Callable[..., dict[str, Any]]:
    """``make_task(name, status=None, **spec)`` creates a SyncTask and returns it."""

    def make(name: str, status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "SyncTask",
            "metadata": {"name": name, "labels": {"team": "shop"}},
            "spec": task_spec(**spec),
        }
        task: dict[str, Any] = objects.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, body
        )
        if status is not None:
            task = objects.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, PLURAL, name, {"status": status}
            )
        return task

    return make


@pytest.fixture
def get_task(objects: client.CustomObjectsApi, namespace: str) -> Callable[[str], dict[str, Any]]:
    def get(name: str) -> dict[str, Any]:
        task: dict[str, Any] = objects.get_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name
        )
        return task

    return get


class Ran:
    """The outcome of one ``kubectl ferry`` call."""

    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def __repr__(self) -> str:
        return f"Ran(code={self.code}, out={self.out!r}, err={self.err!r})"


@pytest.fixture
def ferry_runner(
    testenv: Any, namespace: str, capsys: pytest.CaptureFixture[str]
) -> Iterator[Callable[..., Ran]]:
    """``ferry("pause", "t1")`` runs ``kubectl ferry`` in-process in the test's namespace."""

    def run(*args: str) -> Ran:
        capsys.readouterr()
        try:
            code = kubectl_plugin.main([*args, "--kubeconfig", testenv.kubeconfig, "-n", namespace])
        except SystemExit as exit_:  # argparse's usage errors
            code = int(exit_.code or 0)
        captured = capsys.readouterr()
        return Ran(code, captured.out, captured.err)

    yield run


@pytest.fixture
def ferry(ferry_runner: Callable[..., Ran]) -> Callable[..., Ran]:
    """``ferry("pause", "t1")``: the runner above, under the short name the CLI tests use."""
    return ferry_runner
