"""Fixtures for the delivery tests: Ferry's CRDs in the test control plane, a task factory,
and a way to run ``kubectl ferry`` in-process against it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client

from ferry_operator import kubectl_plugin

GROUP, VERSION, PLURAL = "ferry.dev", "v1alpha1", "synctasks"


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
    ferry_crds: None, objects: client.CustomObjectsApi, namespace: str
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
