"""The operator's own watches of its owned objects (owned_store.py), against the real API
server: the store fills from a listing and follows the watch (creations, deletions, objects
without the task label left out); a watch whose version is too old (410 Gone) lists again
and drops what the new listing lacks; and, with the operator running, an owned object
deleted by hand wakes its task and is recreated, and a restarted operator resumes its tasks
from the store (no read or write of an owned object to decide they are fine). That a task
waits for the store to be filled is tested in tests/unit/operator/test_owned_store.py (here
the store fills before kopf's first SyncTask event anyway)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import kopf
import pytest
from kopf._cogs.clients import auth
from kopf._cogs.structs import credentials
from kubernetes import client
from tests.integration.operator.conftest import (
    Ferry,
    OperatorProcess,
    task,
    wait_until,
)
from tests.integration.operator.test_steady_state import at_revision, scrape, total

from ferry_operator import owned_store
from ferry_operator.render.meta import TASK_LABEL

pytestmark = [pytest.mark.kube]

Seen = list[tuple[str, str | None, str, str | None]]  # (plural, type, name, task)


def _configmap(ferry: Ferry, name: str, task_name: str | None) -> None:
    labels = {TASK_LABEL: task_name} if task_name else {}
    ferry.core.create_namespaced_config_map(
        ferry.ns,
        {"metadata": {"name": name, "labels": labels}, "data": {"config.yaml": "x: 1\n"}},
    )


def _names(store: owned_store.Store, plural: str, key: tuple[str, str]) -> list[str]:
    return sorted(b["metadata"]["name"] for b in store.lookup(plural).get(key, ()))


def _recorder(seen: Seen) -> owned_store.OnChange:
    def on_change(plural: str, type: str | None, body: Any, task_name: str | None) -> None:
        seen.append((plural, type, body["metadata"]["name"], task_name))

    return on_change


async def _login(kubeconfig: str) -> tuple[kopf.OperatorSettings, credentials.Vault]:
    """kopf's client and credentials, as kopf sets them up for its own tasks."""
    settings = kopf.OperatorSettings()
    info = kopf.login_with_kubeconfig(settings=settings, logger=logging.getLogger(__name__))
    assert info is not None
    vault = credentials.Vault()
    await vault.populate({"test": info})
    auth.vault_var.set(vault)
    return settings, vault


async def _until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.2)


@pytest.fixture
def kubeconfig(testenv: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("KUBECONFIG", str(testenv.kubeconfig))
    return str(testenv.kubeconfig)


def test_the_store_fills_from_a_listing_then_follows_the_watch(
    ferry: Ferry, kubeconfig: str
) -> None:
    ns = ferry.ns
    _configmap(ferry, "t1-r1", "t1")
    _configmap(ferry, "not-ours", None)
    ferry.core.create_namespaced_service_account(
        ns, {"metadata": {"name": "t1-worker", "labels": {TASK_LABEL: "t1"}}}
    )
    seen: Seen = []
    store = owned_store.Store(on_change=_recorder(seen))

    async def run() -> None:
        settings, vault = await _login(kubeconfig)
        tasks = owned_store.start(store, settings, [ns])
        try:
            await _until(store.filled, 60, "the store filled")
            # the listing: Ferry's objects only, slim, by task and by name
            assert _names(store, "configmaps", (ns, "t1")) == ["t1-r1"]
            assert "data" not in store.lookup("configmaps")[(ns, "t1")][0]
            assert _names(store, "serviceaccounts", (ns, "t1-worker")) == ["t1-worker"]
            assert ("configmaps", None, "t1-r1", "t1") in seen
            assert not [s for s in seen if s[2] == "not-ours"]
            # then the watch: a creation and a deletion
            await asyncio.to_thread(_configmap, ferry, "t1-r2", "t1")
            await _until(
                lambda: _names(store, "configmaps", (ns, "t1")) == ["t1-r1", "t1-r2"], 30, "r2"
            )
            await asyncio.to_thread(ferry.core.delete_namespaced_service_account, "t1-worker", ns)
            await _until(
                lambda: (ns, "t1-worker") not in store.lookup("serviceaccounts"), 30, "deleted"
            )
            assert ("configmaps", "ADDED", "t1-r2", "t1") in seen
            assert ("serviceaccounts", "DELETED", "t1-worker", "t1") in seen
        finally:
            await owned_store.stop(tasks)
            await vault.close()

    asyncio.run(run())


def test_a_watch_too_old_for_the_api_server_lists_again(ferry: Ferry, kubeconfig: str) -> None:
    """410 Gone (a watch from resourceVersion 1): listed again at once — not after the
    failure back-off, set far beyond the wait — and what the new listing lacks is dropped
    and passed on as deleted."""
    ns = ferry.ns
    _configmap(ferry, "t2-r1", "t2")
    _configmap(ferry, "t2-r2", "t2")
    seen: Seen = []
    store = owned_store.Store(on_change=_recorder(seen))

    async def run() -> None:
        settings, vault = await _login(kubeconfig)
        tasks = owned_store.start(store, settings, [ns])
        await _until(store.filled, 60, "the store filled")
        await owned_store.stop(tasks)
        assert _names(store, "configmaps", (ns, "t2")) == ["t2-r1", "t2-r2"]
        # behind the store's back: one deleted, one made
        await asyncio.to_thread(ferry.core.delete_namespaced_config_map, "t2-r1", ns)
        await asyncio.to_thread(_configmap, ferry, "t2-r3", "t2")
        seen.clear()
        watcher = asyncio.create_task(
            owned_store.watch(store, "configmaps", ns, settings, since="1", backoff=600)
        )
        try:
            await _until(
                lambda: _names(store, "configmaps", (ns, "t2")) == ["t2-r2", "t2-r3"],
                60,
                "the store as listed again",
            )
        finally:
            await owned_store.stop([watcher])
            await vault.close()
        assert ("configmaps", "DELETED", "t2-r1", "t2") in seen
        assert ("configmaps", None, "t2-r3", "t2") in seen

    asyncio.run(run())


# ---------------------------------------------------------------- with the operator

PAUSED = {"paused": True}


def _role_uid(ferry: Ferry, name: str) -> str | None:
    try:
        return str(ferry.rbac.read_namespaced_role(f"{name}-worker", ferry.ns).metadata.uid)
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise


OWNED = ("configmaps", "serviceaccounts", "roles", "rolebindings", "deployments")


def _owned_requests(port: int) -> float:
    samples = scrape(port)
    return sum(
        total(samples, "ferry_operator_api_requests_total", resource=plural) for plural in OWNED
    )


@pytest.mark.mysql
@pytest.mark.kafka
def test_an_owned_object_deleted_by_hand_comes_back_and_a_restart_resumes_from_the_store(
    ferry: Ferry, connectors: None, event_operator: OperatorProcess, port: int
) -> None:
    ferry.create("synctasks", task("a", **PAUSED))
    ferry.create("synctasks", task("b", **PAUSED))
    for name in ("a", "b"):
        wait_until(partial(at_revision, ferry, name, f"{name}-r1"), 90, f"{name} at r1")
        wait_until(lambda name=name: _role_uid(ferry, name), 30, f"{name}'s Role")

    # --- deleted behind the operator's back: the store's watch wakes the task
    old = _role_uid(ferry, "a")
    ferry.rbac.delete_namespaced_role("a-worker", ferry.ns)
    wait_until(lambda: _role_uid(ferry, "a") not in (None, old), 30, "a's Role re-created")

    # --- a restart: every task resumed from the store, filled first (nothing read or written
    # of an owned object; an empty store would have each read afresh)
    time.sleep(3)  # the last writes' watch events
    event_operator.stop()
    event_operator.start()
    wait_until(lambda: "owned objects in memory" in event_operator.log(), 60, "the store filled")

    def resumed() -> bool:
        try:
            samples = scrape(port)
        except OSError:
            return False
        return total(samples, "ferry_operator_reconciles_total") >= 2

    wait_until(resumed, 90, "both tasks resumed")
    time.sleep(2)
    assert _owned_requests(port) == 0, event_operator.log()[-3000:]
