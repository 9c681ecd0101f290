"""Smoke test: the test schema registry (Apicurio, tests/infra/registry.sh) speaks the
Confluent API, checks compatibility, and refuses requests without its credentials."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


def _call(registry: Any, method: str, path: str, body: Any = None, auth: bool = True) -> Any:
    headers = {"Content-Type": CONTENT_TYPE, **(registry.headers if auth else {})}
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(registry.url + path, data, headers, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _record(*fields: tuple[str, Any]) -> str:
    return json.dumps(
        {
            "type": "record",
            "name": "R",
            "fields": [{"name": n, "type": t, "default": None} for n, t in fields],
        }
    )


def test_register_evolve_and_refuse(schema_registry: Any) -> None:
    subject = f"smoke-{uuid.uuid4().hex[:8]}-value"
    first = _record(("a", ["null", "string"]))
    found = _call(schema_registry, "POST", f"/subjects/{subject}/versions", {"schema": first})
    assert _call(schema_registry, "GET", f"/schemas/ids/{found['id']}")["schema"]
    _call(schema_registry, "PUT", f"/config/{subject}", {"compatibility": "BACKWARD"})
    second = _record(("a", ["null", "string"]), ("b", ["null", "long"]))
    _call(schema_registry, "POST", f"/subjects/{subject}/versions", {"schema": second})
    assert _call(schema_registry, "GET", f"/subjects/{subject}/versions") == [1, 2]
    broken = _record(("a", ["null", "long"]))
    with pytest.raises(urllib.error.HTTPError) as refused:
        _call(schema_registry, "POST", f"/subjects/{subject}/versions", {"schema": broken})
    assert refused.value.code == 409


def test_requests_without_credentials_are_refused(schema_registry: Any) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        _call(schema_registry, "GET", "/subjects", auth=False)
    assert refused.value.code == 401
