"""Keeps this tree's SyncTask CRD on the shared test API server while a long test runs.

Several working trees may test against one API server, each applying its own CRDs at the
start of its session; one without this tree's newest fields makes the server prune them from
every object (spec.schedule, status.nextRun, …) in the middle of a test. While the guard
runs, it applies this tree's CRDs again whenever the server's SyncTask schema lacks a field
the test needs. On a server only this tree uses (CI), it never acts."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

CRDS = Path(__file__).resolve().parents[3] / "crds"
NAME = "synctasks.ferry.dev"


def _has(extensions: Any, spec_fields: tuple[str, ...], status_fields: tuple[str, ...]) -> bool:
    crd = extensions.read_custom_resource_definition(NAME)
    schema = crd.spec.versions[0].schema.open_apiv3_schema.properties
    return set(spec_fields) <= set(schema["spec"].properties) and set(status_fields) <= set(
        schema["status"].properties
    )


def _apply(extensions: Any) -> None:
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        extensions.patch_custom_resource_definition(
            crd["metadata"]["name"], crd, field_manager="ferry-tests", force=True,
            _content_type="application/apply-patch+yaml",
        )  # fmt: skip


@contextmanager
def guarded(
    api: Any, spec_fields: tuple[str, ...], status_fields: tuple[str, ...]
) -> Iterator[list[int]]:
    """Re-apply this tree's CRDs (every 0.5 s check) while inside; yields the count of
    re-applies, for the report."""
    extensions = client.ApiextensionsV1Api(api)
    stop = threading.Event()
    applied = [0]

    def loop() -> None:
        while not stop.wait(0.5):
            try:
                if not _has(extensions, spec_fields, status_fields):
                    _apply(extensions)
                    applied[0] += 1
            except Exception:  # the server is busy (re-initializing a CRD): try again
                continue

    if not _has(extensions, spec_fields, status_fields):
        _apply(extensions)
        applied[0] += 1
    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield applied
    finally:
        stop.set()
        thread.join(5)
