"""A small client of the Confluent Schema Registry REST API (Confluent's registry, Apicurio's
``/apis/ccompat/v7``, Karapace): register a subject's schema and get its id, fetch a schema by
id. Standard library only (urllib): the two calls Ferry makes do not justify
confluent-kafka's ``schemaregistry`` extra, which brings httpx, attrs, cachetools and authlib.

Ids are cached per (subject, schema text), so encoding a row never calls the registry; the
registry is asked once per table shape (a new table, a DDL that changed its columns). Every
failure is a :class:`ferry_runtime.errors.WorkerError`: the registry refusing a schema
(HTTP 409, incompatible with the subject's compatibility level) is ``SchemaIncompatible``,
fatal; an unreachable registry is ``SchemaRegistryUnavailable``, retried. Messages name the
registry's URL without credentials and never hold the password.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from ferry_runtime import errors

__all__ = ["CONTENT_TYPE", "RegistryClient"]

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
TIMEOUT = 15.0


class RegistryClient:
    """Registers schemas under subjects; raises errors.WorkerError."""

    def __init__(
        self,
        url: str,
        username: str | None = None,
        password: str | None = None,
        timeout: float = TIMEOUT,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._password = password
        self._headers = {"Content-Type": CONTENT_TYPE, "Accept": CONTENT_TYPE}
        if username is not None:
            token = base64.b64encode(f"{username}:{password or ''}".encode()).decode("ascii")
            self._headers["Authorization"] = f"Basic {token}"
        self._ids: dict[tuple[str, str], int] = {}
        self._schemas: dict[int, str] = {}

    @property
    def headers(self) -> dict[str, str]:
        """The headers of every request (Authorization: Basic with credentials)."""
        return dict(self._headers)

    def register(self, subject: str, schema: str) -> int:
        """The id of ``schema`` under ``subject``, registering it (a new version) when the
        subject does not hold it yet. Cached: one request per (subject, schema)."""
        cached = self._ids.get((subject, schema))
        if cached is not None:
            return cached
        path = f"/subjects/{urllib.parse.quote(subject, safe='')}/versions"
        found = self._call("POST", path, {"schema": schema}, subject)
        schema_id = int(found["id"])
        self._ids[(subject, schema)] = schema_id
        self._schemas[schema_id] = schema
        return schema_id

    def schema(self, schema_id: int) -> str:
        """The schema text registered under ``schema_id`` (for readers and tests)."""
        if schema_id not in self._schemas:
            found = self._call("GET", f"/schemas/ids/{schema_id}", None, None)
            self._schemas[schema_id] = str(found["schema"])
        return self._schemas[schema_id]

    def _call(self, method: str, path: str, body: Any, subject: str | None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers=self._headers
        )
        where = f"the schema registry at {self.url}"
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return dict(json.loads(response.read() or b"{}"))
        except urllib.error.HTTPError as error:
            raise self._refused(error, where, subject) from None
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise errors.TransientError(
                "SchemaRegistryUnavailable",
                errors.scrub(f"{where} cannot be reached: {reason}", self._password),
            ) from None
        except ValueError as error:  # not JSON: not a schema registry
            raise errors.FatalError(
                "SchemaRegistryFailed",
                f"{where} answered {method} {path} with something that is not JSON ({error}). "
                "Check the Connector's kafka.schemaRegistry.url (a Confluent-compatible API).",
            ) from None

    def _refused(
        self, error: urllib.error.HTTPError, where: str, subject: str | None
    ) -> errors.WorkerError:
        try:
            detail = json.loads(error.read() or b"{}")
            message = str(detail.get("message") or detail.get("detail") or detail)
        except ValueError:
            message = error.reason
        message = errors.scrub(str(message)[:500], self._password)
        code = error.code
        if code == 409:
            return errors.FatalError(
                "SchemaIncompatible",
                f"{where} refused a new schema for subject {subject}: it is incompatible with "
                f"the subject's compatibility level ({message}). Nothing was written with it. "
                "Change the subject's compatibility in the registry, or revert the source "
                "change and restart the task (spec.restartNonce).",
            )
        if code in (401, 403):
            return errors.FatalError(
                "SchemaRegistryAuthFailed",
                f"{where} refused the credentials (HTTP {code}: {message}). Check the username "
                "and password in the Secret of the Connector's kafka.schemaRegistry.secretRef.",
            )
        if code == 422:
            return errors.FatalError(
                "SchemaInvalid",
                f"{where} refused the schema for subject {subject} as invalid ({message}).",
            )
        if code >= 500 or code == 429:
            return errors.TransientError(
                "SchemaRegistryUnavailable", f"{where} answered HTTP {code}: {message}"
            )
        return errors.FatalError(
            "SchemaRegistryFailed",
            f"{where} answered HTTP {code} ({message}). Check the Connector's "
            "kafka.schemaRegistry.url: it must be the Confluent-compatible API's base URL.",
        )
