"""Smoke tests: the test control plane is a real kube-apiserver with CRDs, CEL validation,
the status subresource and watches, and a controller manager that garbage-collects and
turns Deployments into ReplicaSets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException
from tests.support import wait_until

pytestmark = pytest.mark.kube

GROUP, VERSION, PLURAL = "smoke.ferry.dev", "v1", "widgets"

WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"{PLURAL}.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": PLURAL, "singular": "widget", "kind": "Widget"},
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
                                "properties": {
                                    "min": {"type": "integer"},
                                    "max": {"type": "integer"},
                                },
                                "x-kubernetes-validations": [
                                    {
                                        "rule": "self.min <= self.max",
                                        "message": "min must not exceed max",
                                    }
                                ],
                            },
                            "status": {
                                "type": "object",
                                "properties": {"phase": {"type": "string"}},
                            },
                        },
                    }
                },
            }
        ],
    },
}


@pytest.fixture(scope="module")
def widget_crd(kube_api: Any) -> Iterator[None]:
    extensions = client.ApiextensionsV1Api(kube_api)
    try:
        extensions.create_custom_resource_definition(WIDGET_CRD)
    except ApiException as error:
        if error.status != 409:
            raise

    def established() -> bool:
        crd = extensions.read_custom_resource_definition(f"{PLURAL}.{GROUP}")
        return any(
            c.type == "Established" and c.status == "True" for c in crd.status.conditions or []
        )

    wait_until(established, 30, "the CRD to be established")
    yield


def widget(name: str, low: int, high: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"min": low, "max": high},
    }


def test_cel_rule_refuses_a_violating_object(
    kube_api: Any, widget_crd: None, namespace: str
) -> None:
    custom = client.CustomObjectsApi(kube_api)
    with pytest.raises(ApiException) as refused:
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, widget("bad", 5, 1)
        )
    assert refused.value.status == 422
    assert "min must not exceed max" in refused.value.body
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, widget("good", 1, 5))


def test_status_subresource_and_watch(kube_api: Any, widget_crd: None, namespace: str) -> None:
    custom = client.CustomObjectsApi(kube_api)
    created = custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, widget("w", 1, 2)
    )
    version = created["metadata"]["resourceVersion"]

    patched = custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, "w", {"status": {"phase": "Running"}}
    )
    assert patched["status"] == {"phase": "Running"}
    # The status subresource ignores spec changes, and the main resource ignores status.
    assert patched["metadata"]["generation"] == created["metadata"]["generation"]

    events = watch.Watch().stream(
        custom.list_namespaced_custom_object,
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        resource_version=version,
        timeout_seconds=10,
    )
    first = next(events)
    assert first["type"] == "MODIFIED"
    assert first["object"]["status"] == {"phase": "Running"}


def test_owned_configmap_is_garbage_collected(kube_api: Any, namespace: str) -> None:
    core = client.CoreV1Api(kube_api)
    owner = core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"))
    )
    reference = client.V1OwnerReference(
        api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid
    )
    core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="owned", owner_references=[reference]),
            data={"k": "v"},
        ),
    )
    core.delete_namespaced_config_map("owner", namespace)

    def owned_is_gone() -> bool:
        try:
            core.read_namespaced_config_map("owned", namespace)
        except ApiException as error:
            return error.status == 404
        return False

    wait_until(owned_is_gone, 60, "the garbage collector to delete the owned ConfigMap")


def test_deployment_gets_a_replicaset(kube_api: Any, namespace: str) -> None:
    apps = client.AppsV1Api(kube_api)
    labels = {"app": "smoke"}
    apps.create_namespaced_deployment(
        namespace,
        client.V1Deployment(
            metadata=client.V1ObjectMeta(name="smoke"),
            spec=client.V1DeploymentSpec(
                replicas=1,
                selector=client.V1LabelSelector(match_labels=labels),
                strategy=client.V1DeploymentStrategy(type="Recreate"),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels=labels),
                    spec=client.V1PodSpec(
                        containers=[client.V1Container(name="main", image="example.invalid/none")]
                    ),
                ),
            ),
        ),
    )

    def replicaset() -> Any:
        items = apps.list_namespaced_replica_set(namespace, label_selector="app=smoke").items
        return items[0] if items else None

    owned = wait_until(replicaset, 60, "the deployment controller to create a ReplicaSet")
    assert owned.metadata.owner_references[0].name == "smoke"
    assert owned.spec.replicas == 1
