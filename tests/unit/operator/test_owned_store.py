"""owned_store: what the store keeps of each owned object and worker pod (what the reconciles
and the change views read, nothing more), how it is looked up, and a listing that lacks an
object it held (a relisting after 410 Gone) passing it on as deleted. The watches themselves
run against the API server: tests/integration/operator/test_owned_store.py."""

from __future__ import annotations

from typing import Any

from tests.unit.operator.builders import MANAGED, sync_task, task_objects

from ferry_operator import cache, owned, owned_store
from ferry_operator.context import Context
from ferry_operator.reconcile import pods


def _pod(name: str = "orders-worker-abc") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop", "uid": "uid-p",
                     "labels": {cache.TASK_LABEL: "orders"}, "managedFields": MANAGED,
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {
            "nodeName": "node-1",
            "volumes": [{"name": "config", "configMap": {"name": "orders-worker-config"}}],
            "containers": [{"name": "worker", "image": "ferry:dev", "env": [{"name": "A"}],
                            "resources": {"limits": {"memory": "64Mi"}}}],
        },
        "status": {
            "phase": "Running",
            "containerStatuses": [{"name": "worker", "restartCount": 2, "ready": True,
                                   "state": {"running": {"startedAt": "2026-01-01T00:01:00Z"}}}],
        },
    }  # fmt: skip


def test_owned_objects_are_kept_slim_and_looked_up_as_the_reconciles_read_them() -> None:
    seen: list[tuple[str, str | None, str, str | None]] = []
    store = owned_store.Store(
        lambda p, t, b, task: seen.append((p, t, b["metadata"]["name"], task))
    )
    served = task_objects()
    assert {body["kind"] for body in served} == {kind.kind for kind in owned.KINDS}
    for body in served:
        kind = owned.BY_KIND[body["kind"]]
        store.apply(kind.plural, None, body)
    store.apply("pods", None, _pod())
    found = cache.Cache(
        connectors={},
        templates={},
        revisions=store.lookup("configmaps"),
        owned={kind.kind: store.lookup(kind.plural) for kind in owned.PER_TASK},
        pods=store.lookup("pods"),
    )
    for body in served:
        kind = owned.BY_KIND[body["kind"]]
        if kind.index is None:
            [kept] = [
                c
                for c in found.revisions_of("shop", "orders")
                if c["metadata"]["name"] == body["metadata"]["name"]
            ]
        else:
            kept = found.owned_object(kind.kind, "shop", body["metadata"]["name"])
        assert kept == owned.slim(kind, body) and kind.view(kept) == kind.view(body)
        assert "managedFields" not in kept["metadata"]
        if body["kind"] in ("ConfigMap", "Deployment"):  # the data, the pod spec: not kept
            assert "data" not in kept and "containers" not in str(kept)
    [pod] = found.pods_of("shop", "orders")
    assert pod == cache.pod_view(_pod()) and pods.change_view(pod) == pods.change_view(_pod())
    assert "env" not in str(pod) and "volumes" not in str(pod)
    assert ("pods", None, "orders-worker-abc", "orders") in seen


def test_a_listing_that_lacks_an_object_drops_it_as_deleted() -> None:
    seen: list[tuple[str, str | None, str, str | None]] = []
    store = owned_store.Store(
        lambda p, t, b, task: seen.append((p, t, b["metadata"]["name"], task))
    )
    store.apply("pods", None, _pod("orders-worker-a"))
    store.apply("pods", None, _pod("orders-worker-b"))
    other = _pod("orders-worker-c")
    other["metadata"]["namespace"] = "elsewhere"
    store.apply("pods", None, other)
    seen.clear()
    store.relisted("pods", "shop", {("shop", "orders-worker-b")})  # "a" is gone
    assert [p["metadata"]["name"] for p in store.lookup("pods")[("shop", "orders")]] == [
        "orders-worker-b"
    ]
    assert ("elsewhere", "orders") in store.lookup("pods")  # another namespace's listing
    assert seen == [("pods", "DELETED", "orders-worker-a", "orders")]


def test_an_object_that_loses_its_task_label_leaves_the_store_and_readiness_waits() -> None:
    store = owned_store.Store()
    store.expect("pods", "shop")
    store.expect("configmaps", "shop")
    store.apply("pods", "ADDED", _pod())
    unlabelled = _pod()
    unlabelled["metadata"]["labels"] = {}
    store.apply("pods", "MODIFIED", unlabelled)
    assert ("shop", "orders") not in store.lookup("pods") and len(store) == 0
    store.listed("pods", "shop")
    assert not store.filled() and not store.wait_filled(0.01)
    store.listed("configmaps", "shop")
    assert store.filled()


def test_what_is_watched_is_owned_pys_table() -> None:
    assert set(owned_store._WATCHED) == set(owned_store._SLIM) == {p for *_, p in owned.WATCHED}


def test_scopes_watch_the_namespaces_given_or_all() -> None:
    assert owned_store.scopes([]) == [None]
    assert owned_store.scopes(["a", "b", "a"]) == ["a", "b"]
    assert owned_store.scopes(["a", "team-*"]) == [None]  # a kopf pattern: every namespace


def test_a_task_is_not_decided_before_the_store_is_filled(monkeypatch: Any) -> None:
    """The SyncTasks' readiness: until every owned kind is listed, a task's reconcile waits
    (here FERRY_STORE_WAIT_SECONDS, shortened) and is then left to a wake-up with its
    trigger, deciding nothing (it would find its owned objects missing and read them)."""
    from ferry_operator import handlers

    store = owned_store.Store()
    store.expect("deployments", "shop")  # a kind not listed yet
    monkeypatch.setattr(handlers, "STORE", store)
    monkeypatch.setattr(handlers, "STORE_WAIT_SECONDS", 0.05)
    body = sync_task()
    ctx = Context("shop", "orders", "uid-1", "resume")
    key = ("shop", "orders")
    try:
        handlers._reconcile_in(ctx, body, cache.Cache({}, {}, {}, {}), False, body)
        due = handlers.WAKEUPS.due(key)
        assert due is not None and due[1] == "resume"
        assert handlers.FAILURES.succeeded("uid-1") is None  # no reconcile, no failure
    finally:
        handlers.WAKEUPS.forget(key)
