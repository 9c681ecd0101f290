"""kopf_streams: each watched object is slimmed to what the operator reads before kopf holds
it; what the handlers, the cache and the change views read of it is the same as of the
whole object."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from kopf._cogs.clients import watching
from kopf._cogs.structs.references import Resource
from tests.unit.operator.builders import as_applied, connectors, sync_task

from ferry_operator import cache, kopf_streams, owned
from ferry_operator.context import Context
from ferry_operator.reconcile import pods, synctask

MANAGED = [{"manager": "kube-controller-manager", "fieldsV1": {"f:status": {}}}]


def _served(desired: dict[str, Any]) -> dict[str, Any]:
    """An object as the API server returns it after the applier wrote ``desired``."""
    found = as_applied(desired)
    found["metadata"].update(uid="uid-x", resourceVersion="42", managedFields=MANAGED)
    return found


def _task_objects() -> list[dict[str, Any]]:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    observed = synctask.Observed(sync_task(), None, connectors(), [], {}, now)
    plan = synctask.decide(Context("shop", "orders", "uid-1", "create"), observed)
    return [_served(desired) for desired, _ in plan.apply]


def test_owned_objects_keep_what_the_cache_and_the_change_views_read() -> None:
    served = _task_objects()
    assert {body["kind"] for body in served} == {kind.kind for kind in owned.KINDS}
    for body in served:
        if body["kind"] == "Deployment":
            body["status"] = {
                "replicas": 1,
                "conditions": [{"type": "ReplicaFailure", "status": "True", "reason": "Quota"}],
            }
        kind = owned.BY_KIND[body["kind"]]
        slim = kopf_streams.slimmer(*kind.selector)(body)
        assert owned.slim(kind, slim) == owned.slim(kind, body)  # what the cache keeps
        assert kind.view(slim) == kind.view(body)  # what wakes the task
        assert slim["metadata"]["uid"] == "uid-x" and slim["metadata"]["resourceVersion"] == "42"
        assert "managedFields" not in slim["metadata"]
        assert slim["metadata"]["labels"] == body["metadata"]["labels"]
        assert slim["metadata"]["annotations"] == body["metadata"]["annotations"]
        if body["kind"] in ("ConfigMap", "Deployment"):  # the data, the pod spec: not kept
            assert len(str(slim)) < len(str(body)) / 2
            assert "data" not in slim and "containers" not in str(slim)


def test_worker_pods_keep_what_status_and_the_change_view_read() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "orders-worker-abc", "namespace": "shop", "uid": "uid-p",
                     "labels": {cache.TASK_LABEL: "orders"}, "managedFields": MANAGED,
                     "creationTimestamp": "2026-01-01T00:00:00Z",
                     "deletionTimestamp": "2026-01-01T00:05:00Z"},
        "spec": {
            "nodeName": "node-1",
            "volumes": [{"name": "config", "configMap": {"name": "orders-worker-config"}}],
            "containers": [{"name": "worker", "image": "ferry:dev", "env": [{"name": "A"}],
                            "resources": {"limits": {"memory": "64Mi"}}}],
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "PodScheduled", "status": "True"}],
            "containerStatuses": [{"name": "worker", "restartCount": 2, "ready": True,
                                   "state": {"running": {"startedAt": "2026-01-01T00:01:00Z"}},
                                   "lastState": {"terminated": {"exitCode": 1}}}],
        },
    }  # fmt: skip
    slim = kopf_streams.slimmer(*owned.POD_SELECTOR)(pod)
    assert cache.pod_view(slim) == cache.pod_view(pod)
    assert pods.change_view(slim) == pods.change_view(pod)
    assert slim["metadata"]["labels"] == pod["metadata"]["labels"]
    assert "managedFields" not in slim["metadata"]
    assert "volumes" not in slim["spec"] and "env" not in str(slim)
    slim["status"]["phase"] = "Failed"
    assert pod["status"]["phase"] == "Running"  # a private copy


def test_secrets_keep_their_metadata_and_others_all_but_managed_fields() -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "data": {"p": "c2VjcmV0"},
              "metadata": {"name": "db", "namespace": "shop",
                           "managedFields": MANAGED}}  # fmt: skip
    assert kopf_streams.slimmer("", "v1", "secrets")(secret) == {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": "db", "namespace": "shop"},
    }
    task = {"kind": "SyncTask", "metadata": {"name": "orders", "managedFields": MANAGED,
            "annotations": {"ferry.dev/last-handled-configuration": "{}"}},
            "spec": {"paused": True}, "status": {"phase": "Paused"}}  # fmt: skip
    slim = kopf_streams.slimmer("ferry.dev", "v1alpha1", "synctasks")(task)
    assert slim == {**task, "metadata": {k: v for k, v in task["metadata"].items()
                                         if k != "managedFields"}}  # fmt: skip
    assert "managedFields" in task["metadata"]  # the event's object is replaced, not edited


def test_the_wrapped_watch_slims_object_events_only() -> None:
    async def original(*, resource: Any, **_: Any) -> AsyncIterator[Any]:
        yield {"type": None, "object": {"metadata": {"name": "a", "managedFields": MANAGED},
                                        "data": {"k": "v"}}}  # fmt: skip
        yield watching.Bookmark.LISTED
        yield {"type": "MODIFIED", "object": {"metadata": {"name": "a"}, "data": {"k": "w"}}}
        yield {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "7"}}}
        yield {"type": "ERROR", "object": {"code": 410}}

    async def collect(resource: Resource) -> list[Any]:
        wrapped = kopf_streams._wrap(original)
        return [event async for event in wrapped(resource=resource, namespace=None)]

    configmaps = asyncio.run(collect(Resource("", "v1", "configmaps")))
    assert configmaps == [
        {"type": None, "object": {"apiVersion": None, "kind": "ConfigMap",
                                  "metadata": {"name": "a"}}},
        watching.Bookmark.LISTED,
        {"type": "MODIFIED", "object": {"apiVersion": None, "kind": "ConfigMap",
                                        "metadata": {"name": "a"}}},
        {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "7"}}},
        {"type": "ERROR", "object": {"code": 410}},
    ]  # fmt: skip
    namespaces = asyncio.run(collect(Resource("", "v1", "namespaces")))
    assert namespaces[0]["object"] == {"metadata": {"name": "a"}, "data": {"k": "v"}}


def test_install_wraps_kopfs_watch_once() -> None:
    assert kopf_streams.install()
    wrapped = watching.continuous_watch
    assert getattr(wrapped, "__ferry_slimmed__", False)
    assert kopf_streams.install()
    assert watching.continuous_watch is wrapped
