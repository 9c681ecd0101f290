"""Keeps this tree's SyncTask fields in the CRD of the shared test API server while a long
test runs.

Several working trees may test against one API server, each applying its own CRDs at the
start of its pytest session (server-side apply, field manager ``ferry-tests``); one without
this tree's newest fields makes the server prune them from every object it stores or serves
(spec.schedule, status.nextRun, …) in the middle of a test. The guard applies this tree's
CRDs, united with the server's, under a field manager of its own (``GUARD``): server-side
apply never removes a field another manager still owns, so the next ``ferry-tests`` apply
leaves them. It also watches the CRDs and applies again if a property goes missing. On a
server only this tree uses (CI), it changes nothing."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, watch

CRDS = Path(__file__).resolve().parents[3] / "crds"
GUARD = "ferry-tests-guard"


def _union(server: Any, mine: Any) -> tuple[Any, bool]:
    """``mine`` with the properties only ``server`` has added (recursively); and whether the
    server lacked any of mine."""
    if not isinstance(server, dict) or not isinstance(mine, dict):
        return mine, False
    out = copy.deepcopy(mine)
    lacked = False
    for key, value in mine.items():
        if key not in server:
            lacked = True
        elif isinstance(value, dict):
            out[key], deeper = _union(server[key], value)
            lacked = lacked or deeper
    if "properties" in server and "properties" in mine:
        for key, value in server["properties"].items():
            out["properties"].setdefault(key, value)
    return out, lacked


def _schema(crd: dict[str, Any]) -> Any:
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def _fix(extensions: Any, api: Any, mine: dict[str, Any]) -> bool:
    name = mine["metadata"]["name"]
    server = api.sanitize_for_serialization(extensions.read_custom_resource_definition(name))
    schema, lacked = _union(_schema(server), _schema(mine))
    owned = any(m.get("manager") == GUARD for m in server["metadata"].get("managedFields") or [])
    if not lacked and owned:
        return False
    desired = copy.deepcopy(mine)
    desired["spec"]["versions"][0]["schema"]["openAPIV3Schema"] = schema
    extensions.patch_custom_resource_definition(
        name, desired, field_manager=GUARD, force=True,
        _content_type="application/apply-patch+yaml",
    )  # fmt: skip
    return True


@contextmanager
def guarded(api: Any) -> Iterator[list[int]]:
    """While inside, put this tree's properties back as soon as a CRD loses them; yields the
    count of re-applies."""
    extensions = client.ApiextensionsV1Api(api)
    mine = [yaml.safe_load(p.read_text()) for p in sorted(CRDS.glob("ferry.dev_*.yaml"))]
    stop = threading.Event()
    applied = [0]

    def check() -> None:
        for crd in mine:
            if _fix(extensions, api, crd):
                applied[0] += 1

    def loop() -> None:
        while not stop.is_set():
            try:
                check()
                for _ in watch.Watch().stream(
                    extensions.list_custom_resource_definition, timeout_seconds=2
                ):
                    check()
                    if stop.is_set():
                        break
            except Exception:  # the server is busy (re-initializing a CRD): try again
                stop.wait(0.1)

    check()
    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield applied
    finally:
        stop.set()
        thread.join(5)
