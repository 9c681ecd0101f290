"""Pure parts of the operator's cheap steady state: request labels for the API request counter,
the watch-fed Cache lookups, and the check that decides whether cached copies suffice."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from tests.unit.operator.builders import as_applied, connectors, sync_task

from ferry_operator import cache
from ferry_operator import owned as owned_kinds
from ferry_operator.applier import needs_apply
from ferry_operator.context import Context
from ferry_operator.kube import request_labels
from ferry_operator.reconcile import synctask
from ferry_operator.render import meta

HOST = "https://127.0.0.1:6443"


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/apis/ferry.dev/v1alpha1/namespaces/shop/synctasks/orders", ("get", "synctasks")),
        ("GET", "/apis/ferry.dev/v1alpha1/namespaces/shop/synctasks", ("list", "synctasks")),
        ("GET", "/apis/ferry.dev/v1alpha1/synctasks", ("list", "synctasks")),
        (
            "PATCH",
            "/apis/ferry.dev/v1alpha1/namespaces/shop/synctasks/orders/status",
            ("patch", "synctasks/status"),
        ),
        (
            "GET",
            "/api/v1/namespaces/shop/configmaps?labelSelector=ferry.dev%2Ftask%3Dorders",
            ("list", "configmaps"),
        ),
        ("GET", "/api/v1/namespaces/shop/configmaps?watch=true", ("watch", "configmaps")),
        ("DELETE", "/api/v1/namespaces/shop/configmaps/orders-r1", ("delete", "configmaps")),
        ("GET", "/api/v1/namespaces/shop/secrets/db", ("get", "secrets")),
        (
            "PATCH",
            "/apis/apps/v1/namespaces/shop/deployments/orders-worker/scale",
            ("patch", "deployments/scale"),
        ),
        (
            "GET",
            "/apis/rbac.authorization.k8s.io/v1/namespaces/shop/roles/orders-worker",
            ("get", "roles"),
        ),
        ("POST", "/api/v1/namespaces/shop/events", ("create", "events")),
        ("GET", "/api/v1/namespaces", ("list", "namespaces")),
        ("GET", "/api/v1/namespaces/shop", ("get", "namespaces")),
    ],
)
def test_request_labels_name_verb_and_resource_as_the_api_server_does(
    method: str, path: str, expected: tuple[str, str]
) -> None:
    assert request_labels(method, HOST + path) == expected


def test_cache_lookups_and_secret_names() -> None:
    connector = {"metadata": {"name": "db"}, "spec": {}}
    lookup = cache.Cache(
        connectors={("shop", "db"): [connector]},
        templates={},
        revisions={("shop", "orders"): [{"n": 2}, {"n": 1}]},
        owned={kind: {} for kind in cache.OWNED_INDEXES},
    )
    assert lookup.connector("shop", "db") == connector
    assert lookup.connector("other", "db") is None
    assert lookup.template("shop", "t") is None
    assert lookup.revisions_of("shop", "orders") == [{"n": 2}, {"n": 1}]
    assert lookup.revisions_of("shop", "none") == []
    assert lookup.owned_object("Role", "shop", "orders-worker") is None
    spec = {"mysql": {"passwordSecretRef": {"name": "db-pass", "key": "password"}}}
    assert cache.secret_names(spec) == {"db-pass"}
    assert cache.secret_names({"kafka": {"sasl": {"secretRef": "k"}}}) == {"k"}
    # A changed CA or client certificate re-probes the Connector as a password does.
    tls = {"caSecretRef": {"name": "ca"}, "clientCertSecretRef": {"name": "client"}}
    assert cache.secret_names({"kafka": {"sasl": {"secretRef": "k"}, "tls": tls}}) == {
        "k",
        "ca",
        "client",
    }
    assert cache.secret_names({"mysql": {"tls": {"caSecretRef": {"name": "db-ca"}}}}) == {"db-ca"}
    assert cache.secret_names({"kafka": {}}) == set()
    kwargs = {"ferry_connector_secrets": {("shop", "db-pass"): ["db", "db2", "db"]}}
    assert cache.connectors_using(kwargs, "shop", "db-pass") == ["db", "db2"]
    assert cache.connectors_using(kwargs, "shop", "other") == []


def test_trimmed_copies_drop_managed_fields_and_optionally_data() -> None:
    body: dict[str, Any] = {
        "metadata": {"name": "x", "managedFields": [{"manager": "m"}]},
        "data": {"k": "v"},
    }
    kept = cache.trimmed(body)
    assert kept == {"metadata": {"name": "x"}, "data": {"k": "v"}}
    assert "data" not in cache.trimmed(body, keep_data=False)
    kept["metadata"]["name"] = "changed"
    assert body["metadata"]["name"] == "x"  # a private copy


# ---------------------------------------------------------------- the steady-state check

CTX = Context("shop", "orders", "uid-1", "resync")


def _observed(
    revisions: list[dict[str, Any]], owned: dict[str, dict[str, Any] | None]
) -> synctask.Observed:
    return synctask.Observed(
        sync_task(), None, connectors(), revisions, owned, datetime(2026, 1, 1, tzinfo=UTC)
    )


def _steady() -> tuple[list[dict[str, Any]], dict[str, dict[str, Any] | None]]:
    first = synctask.decide(CTX, _observed([], {}))
    assert synctask.writes_objects(first)  # nothing exists yet
    applied = [as_applied(desired) for desired, _ in first.apply]
    revisions = [obj for obj in applied if meta.REVISION in obj["metadata"]["labels"]]
    owned: dict[str, dict[str, Any] | None] = {
        obj["kind"]: obj for obj in applied if obj not in revisions
    }
    return revisions, owned


def test_copies_of_what_was_applied_mean_nothing_to_write() -> None:
    revisions, owned = _steady()
    assert len(revisions) == 1 and set(owned) == {
        "ConfigMap",  # <task>-worker-config, the one the pod mounts
        "Deployment",
        "ServiceAccount",
        "Role",
        "RoleBinding",
    }
    plan = synctask.decide(CTX, _observed(revisions, owned))
    assert not synctask.writes_objects(plan)
    assert plan.status["configRevision"] == meta.revision_name("orders", 1)


def _decided(observed: synctask.Observed) -> tuple[Any, ...]:
    """A plan without the observed copies it carries beside each desired object."""
    plan = synctask.decide(CTX, observed)
    desired = [d for d, _ in plan.apply]
    writes = synctask.writes_objects(plan)
    return desired, plan.delete, plan.status, plan.events, plan.problem, plan.wake_at, writes


def test_slim_copies_decide_as_the_full_objects_do() -> None:
    """The cache keeps of an owned object only what a reconcile reads (owned.slim): the plan
    from slim copies equals the plan from the objects as the API server returns them, also
    with a rollout in trouble and a scaled Deployment."""
    revisions, owned = _steady()
    deployment = copy.deepcopy(owned["Deployment"])
    assert deployment is not None
    deployment["metadata"]["managedFields"] = [{"manager": "kube-controller-manager"}]
    deployment["status"] = {
        "replicas": 1,
        "conditions": [{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                        "message": "quota exceeded"}],
    }  # fmt: skip
    for full in ({**owned, "Deployment": deployment}, owned):
        slim = {
            kind: owned_kinds.slim(owned_kinds.BY_KIND[kind], body) if body else None
            for kind, body in full.items()
        }
        assert "template" not in (slim["Deployment"] or {})["spec"].get("template", {}).get(
            "spec", {}
        )
        assert "managedFields" not in (slim["Deployment"] or {})["metadata"]
        assert _decided(_observed(revisions, slim)) == _decided(_observed(revisions, full))
    scaled = copy.deepcopy(deployment)
    scaled["spec"]["replicas"] = 2
    slim_scaled = owned_kinds.slim(owned_kinds.BY_KIND["Deployment"], scaled)
    assert slim_scaled["spec"]["replicas"] == 2 and "containers" not in str(slim_scaled)
    assert synctask.writes_objects(
        synctask.decide(CTX, _observed(revisions, {**owned, "Deployment": slim_scaled}))
    )


def test_a_deleted_role_or_a_scaled_deployment_needs_a_write() -> None:
    revisions, owned = _steady()
    assert synctask.writes_objects(
        synctask.decide(CTX, _observed(revisions, {**owned, "Role": None}))
    )
    scaled = copy.deepcopy(owned["Deployment"])
    assert scaled is not None
    scaled["spec"]["replicas"] = 3
    plan = synctask.decide(CTX, _observed(revisions, {**owned, "Deployment": scaled}))
    assert synctask.writes_objects(plan)
    assert needs_apply(plan.apply[-1][0], scaled)


def test_a_missing_revision_copy_needs_a_write_so_it_is_decided_on_fresh_reads() -> None:
    _, owned = _steady()
    plan = synctask.decide(CTX, _observed([], owned))
    assert synctask.writes_objects(plan)
    assert any(desired["kind"] == "ConfigMap" for desired, _ in plan.apply)


def test_a_pod_that_restarted_long_ago_and_runs_again_is_not_stopped() -> None:
    """decide() feeds the pod's restart streak spec.restartPolicy.resetAfter and whether the
    worker reports that it runs: 3 old restarts under maxRetries 2 stop the worker only while
    it has not run resetAfter since."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    task = sync_task()
    task["spec"]["restartPolicy"] = {"maxRetries": 2, "resetAfter": "5m"}
    first = synctask.decide(CTX, synctask.Observed(task, None, connectors(), [], {}, now))
    applied = [as_applied(desired) for desired, _ in first.apply]
    revisions = [obj for obj in applied if obj["kind"] == "ConfigMap"]
    owned: dict[str, dict[str, Any] | None] = {
        obj["kind"]: obj for obj in applied if obj["kind"] != "ConfigMap"
    }
    task["status"] = {
        "lastStartTime": "2025-12-31T23:00:00Z",
        "workerState": "Streaming",
        "heartbeatTime": "2025-12-31T23:59:55Z",
        "workerPod": {"name": "w", "restartCount": 3, "restarts": 3, "restartsSinceStart": 3,
                      "restartStreak": 3},
    }  # fmt: skip

    def plan(started: str) -> synctask.Plan:
        container = {"name": "worker", "restartCount": 3,
                     "state": {"running": {"startedAt": started}}}  # fmt: skip
        pod = {"metadata": {"name": "w", "creationTimestamp": "2025-12-31T23:00:00Z"},
               "spec": {"nodeName": "n"},
               "status": {"phase": "Running", "containerStatuses": [container]}}  # fmt: skip
        observed = synctask.Observed(task, None, connectors(), revisions, owned, now, [pod])
        return synctask.decide(CTX, observed)

    recent = plan("2025-12-31T23:57:00Z")  # up for 3 minutes
    assert recent.status["workerPod"]["restartStreak"] == 3
    assert recent.status["phase"] == "Failed"
    deployment = next(obj for obj, _ in recent.apply if obj["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 0
    healed = plan("2025-12-31T23:54:00Z")  # up for 6 minutes, reporting: a new streak
    assert healed.status["workerPod"]["restartStreak"] == 0
    assert healed.status["workerPod"]["restartsSinceStart"] == 3
    assert healed.status["phase"] == "Running"
    deployment = next(obj for obj, _ in healed.apply if obj["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 1
