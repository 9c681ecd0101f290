"""The worker's errors and the one place that classifies a client exception.

Hierarchy::

    WorkerError                 reason (CamelCase, stable) + a message saying what to do
    ├── TransientError          retried with the restart policy's backoff
    │     reasons: ConnectionLost, SinkUnavailable, SchemaRegistryUnavailable
    ├── FatalError              the worker exits non-zero with the reason
    │     reasons: PositionUnavailable, InvalidPosition, InsufficientPrivileges,
    │              AuthenticationFailed, InvalidConfig, NotSupported, Fenced, SinkFailed,
    │              TLSVerificationFailed, TLSUnavailable, TooManyRestarts,
    │              TopicCreationFailed, SchemaIncompatible, SchemaRegistryAuthFailed,
    │              SchemaRegistryFailed, SchemaInvalid
    └── PoisonRow               one row cannot be converted; the error policy decides

Messages never hold a password: they are built here from error codes and the safe parts
of the client's message (host, port, user, file names).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = [
    "FatalError",
    "PoisonRow",
    "TransientError",
    "WorkerError",
    "from_kafka",
    "from_mysql",
    "scrub",
    "tls_problem",
]


class WorkerError(Exception):
    """An error with a stable CamelCase ``reason`` and an actionable message."""

    recorded = False  # True: already in status.lastErrors (with its table and position)

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


class TransientError(WorkerError):
    """Worth retrying: a connection dropped, a broker is down."""


class FatalError(WorkerError):
    """Retrying cannot help; a person has to act."""


class PoisonRow(WorkerError):
    """One row could not be turned into an event. ``position``: the binlog row event's
    ("file:pos", the offset after it), or a snapshot row's read position (``snapshot``)."""

    def __init__(
        self, message: str, table: str, position: str | None, snapshot: bool = False
    ) -> None:
        super().__init__("PoisonRow", message)
        self.table = table
        self.position = position
        self.snapshot = snapshot


# ``password=value`` / ``pwd: value``: the value goes (up to a space, less closing punctuation
# at its end), the separator and the rest of the message stay; MySQL's own
# "(using password: YES)" / "NO" says whether one was sent, not what it is.
_SECRETISH = re.compile(
    r"(password|passwd|pwd)(\s*[=:]\s*)(?!(?:YES|NO)\b)(\S*[^\s,;.)\]}'\"])", re.IGNORECASE
)


def scrub(text: str, *secrets: str | None) -> str:
    """Remove known secrets and ``password=...`` fragments from a message, keeping the rest of
    it as it was."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _SECRETISH.sub(r"\1\2***", text)


# MySQL/MariaDB client and server error codes we act on.
_AUTH = {1045, 1698}
_PRIVILEGES = {1044, 1142, 1143, 1227, 1370}
_POSITION = {1236}
_CONNECTION = {2002, 2003, 2005, 2006, 2013, 2055, 1040, 1053, 1152, 1158, 1159, 1160, 1161}


_SSL_CONNECTION_ERROR = 2026  # CR_SSL_CONNECTION_ERROR


# How the drivers say a certificate was not accepted: Python's ssl (PyMySQL), and MariaDB's
# client library (mysqlclient, the snapshot's readers) with OpenSSL's own words.
_UNVERIFIED = (
    "certificate verify failed",
    "certificate_verify_failed",
    "self-signed certificate",
    "self signed certificate",
    "unable to get local issuer certificate",
    "validation of ssl server certificate failed",
    "certificate has expired",
)


def tls_problem(code: int | None, detail: str, where: str, tls: Any) -> WorkerError | None:
    """A TLS failure as its own reason, naming the CA in use; None when not about TLS.
    ``tls``: the client's ferry_runtime.config.TLSFiles, or None."""
    low = detail.lower()
    ca_file = getattr(tls, "ca_file", None)
    ca = f"the CA in {ca_file}" if ca_file else "the system CAs"
    if any(sign in low for sign in _UNVERIFIED):
        return FatalError(
            "TLSVerificationFailed",
            f"{where}: the server's TLS certificate cannot be verified with {ca} ({detail}). "
            "Check the CA (caSecretRef) and that the certificate names the host.",
        )
    if code == _SSL_CONNECTION_ERROR or "ssl is required" in low:
        return FatalError("TLSUnavailable", f"{where}: TLS failed ({detail}).")
    return None


def from_mysql(
    error: BaseException, where: str, secret: str | None = None, tls: Any = None
) -> WorkerError:
    """Classify a PyMySQL / python-mysql-replication exception (``tls``: the connection's
    TLS settings, named in a TLS failure)."""
    code = error.args[0] if error.args and isinstance(error.args[0], int) else None
    detail = scrub(str(error.args[1]) if len(error.args) > 1 else str(error), secret)
    problem = tls_problem(code, detail, where, tls) if tls is not None else None
    if problem is not None:
        return problem
    if code in _AUTH:
        return FatalError(
            "AuthenticationFailed",
            f"{where}: the server refused the user or password ({detail}). Check source.user "
            "and the Secret behind source.passwordEnv.",
        )
    if code in _PRIVILEGES:
        return FatalError(
            "InsufficientPrivileges",
            f"{where}: missing privilege ({detail}). Grant SELECT, RELOAD, REPLICATION SLAVE "
            "and BINLOG MONITOR (MariaDB) or REPLICATION CLIENT (MySQL) to the source user.",
        )
    if code in _POSITION:
        return FatalError(
            "PositionUnavailable",
            f"{where}: the binlog position is no longer on the server ({detail}). The binlog "
            "was purged or the position is invalid; set resetPosition (e.g. to earliest, with "
            "a new nonce) and consider a new snapshot.",
        )
    if code in _CONNECTION or code is None:
        return TransientError("ConnectionLost", f"{where}: {detail}")
    return TransientError("SourceError", f"{where}: MySQL error {code}: {detail}")


_FENCED = {
    "_FENCED",
    "PRODUCER_FENCED",
    "INVALID_PRODUCER_EPOCH",
    "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
}


def from_kafka(error: BaseException, where: str) -> WorkerError:
    """Classify a confluent-kafka exception (KafkaException wraps a KafkaError)."""
    kafka_error = error.args[0] if error.args else None
    name = getattr(kafka_error, "name", lambda: "")()
    text = getattr(kafka_error, "str", lambda: str(error))()
    if name in _FENCED:
        return FatalError(
            "Fenced",
            f"{where}: another worker with the same task id took over ({text}). Only one "
            "worker per task may run.",
        )
    fatal = getattr(kafka_error, "fatal", lambda: False)()
    if fatal:
        return FatalError("SinkFailed", f"{where}: {name}: {text}")
    return TransientError("SinkUnavailable", f"{where}: {name or type(error).__name__}: {text}")
