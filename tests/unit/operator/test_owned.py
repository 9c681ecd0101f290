"""owned.py, the one table of the kinds a task owns: each row names real client methods, the
watches and indexes derive from it, and the change view ignores what the operator writes."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from ferry_operator import cache, owned
from ferry_operator.kube import Clients
from ferry_operator.render import objects
from ferry_operator.render.meta import Owner


def _clients() -> Clients:
    api = client.ApiClient(client.Configuration())
    return Clients(
        api,
        client.CoreV1Api(api),
        client.AppsV1Api(api),
        client.RbacAuthorizationV1Api(api),
        client.CustomObjectsApi(api),
    )


def test_each_kind_names_its_read_and_apply_methods() -> None:
    clients = _clients()
    for kind in owned.KINDS:
        read, patch = kind.read(clients), kind.patch(clients)
        assert callable(read) and callable(patch), kind.kind
        suffix = read.__name__.removeprefix("read_namespaced_")
        assert patch.__name__ == f"patch_namespaced_{suffix}", kind.kind


def test_the_watches_and_indexes_come_from_the_table() -> None:
    assert [k.kind for k in owned.KINDS] == [
        "ConfigMap",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "Deployment",
    ]
    assert [*(k.selector for k in owned.KINDS), ("", "v1", "pods")] == cache.OWNED_KINDS
    assert cache.OWNED_INDEXES == {
        "ServiceAccount": "ferry_serviceaccounts",
        "Role": "ferry_roles",
        "RoleBinding": "ferry_rolebindings",
        "Deployment": "ferry_deployments",
    }


def test_views_and_slim_copies() -> None:
    owner = Owner("orders", "shop", "uid-1")
    role: dict[str, Any] = objects.role(owner)
    kind = owned.BY_KIND["Role"]
    assert kind.view(role) == role["rules"]
    hashed = {**role, "metadata": {**role["metadata"], "annotations": {"ferry.dev/x": "1"}}}
    assert kind.view(hashed) == kind.view(role)  # the operator's own annotation wakes nothing
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "orders-worker-config", "managedFields": [{"manager": "m"}]},
        "data": {"worker.yaml": "big"},
    }
    slim = owned.slim(owned.BY_KIND["ConfigMap"], configmap)
    assert slim == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "orders-worker-config"},
    }
    deployment = {
        "kind": "Deployment",
        "metadata": {"name": "orders-worker"},
        "spec": {
            "replicas": 0,
            "template": {"metadata": {"annotations": {"a": "b"}}, "spec": {"containers": []}},
        },
        "status": {"replicas": 1},
    }
    assert owned.slim(owned.BY_KIND["Deployment"], deployment)["spec"] == {
        "replicas": 0,
        "template": {"metadata": {"annotations": {"a": "b"}}},
    }
    assert owned.BY_KIND["Deployment"].view(deployment) == [0, 1, []]
