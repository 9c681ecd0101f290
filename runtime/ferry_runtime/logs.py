"""The worker's log lines: text or JSON lines, a level that can change while it runs, and no
secret in any line.

- ``text``: ``2026-12-03 04:00:00,000 INFO ferry.worker message``.
- ``json``: one object per line: ``time`` (RFC 3339, UTC), ``level``, ``logger``,
  ``message``, the record's extra fields (``log.info(..., extra={"table": t})``) and
  ``exception`` for a traceback.
- :class:`Redact` replaces the values of the secrets (passwords from the environment) with
  ``***`` in every line, whatever the format.

:func:`configure` may be called again at any time (``spec.logLevel``/``logFormat`` live).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any, Literal

__all__ = ["FORMATS", "LEVELS", "JsonFormatter", "Redact", "configure"]

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
REDACTED = "***"
# Attributes every LogRecord has: anything else on a record came in through ``extra``.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, extra fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_") and key not in out:
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exception"] = record.exc_text
        return json.dumps(out, default=str, ensure_ascii=False)


class Redact(logging.Filter):
    """Replace each secret's value with ``***`` in the message (and its arguments)."""

    def __init__(self, secrets: Collection[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        cleaned = message
        for secret in self.secrets:
            cleaned = cleaned.replace(secret, REDACTED)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The worker's own stderr handler (found again by :func:`configure`)."""


def configure(
    level: str | None = None,
    log_format: Literal["text", "json"] | None = None,
    secrets: Collection[str] | None = None,
) -> None:
    """Set the root level and the line format (None: INFO, text); idempotent. ``secrets``:
    values to redact (kept from the first call when not given again)."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, _Handler)), None)
    if handler is None:
        handler = _Handler(sys.stderr)
        root.handlers[:] = [handler]
    if secrets is not None:
        handler.filters[:] = [Redact(secrets)]
    formatter = JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    root.setLevel(level or "INFO")
    logging.getLogger("pymysqlreplication").setLevel(logging.WARNING)  # logs its settings
