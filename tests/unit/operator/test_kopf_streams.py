"""kopf_streams: each object kopf watches is slimmed to what the operator reads before kopf
holds it. (The owned objects and worker pods are not kopf's: test_owned_store.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from kopf._cogs.clients import watching
from kopf._cogs.structs.references import Resource
from tests.unit.operator.builders import MANAGED

from ferry_operator import kopf_streams


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

    secrets = asyncio.run(collect(Resource("", "v1", "secrets")))
    assert secrets == [
        {"type": None, "object": {"metadata": {"name": "a"}}},
        watching.Bookmark.LISTED,
        {"type": "MODIFIED", "object": {"metadata": {"name": "a"}}},
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
