"""The operator's log lines: each names its object, routine ones stay out of the way.

- kopf's lines about an object (its handlers' outcomes, retries, tracebacks) carry the
  object's ``[namespace/name]`` prefix; Ferry's own lines carry the reconciliation's
  context (:class:`ferry_operator.context.Context`).
- A timer that succeeded (the resync every 10 s per task, the Connector re-probe) is logged
  at DEBUG, not INFO: at INFO it was most of the log and said nothing.
- ``json`` gives one JSON object per line (kopf's JSON formatter: ``message``, ``severity``,
  ``timestamp`` and the object's reference under ``object``), for log pipelines.
"""

from __future__ import annotations

import logging
from typing import Literal

import kopf

__all__ = ["FORMATS", "LogFormat", "RoutineAtDebug", "configure"]

LogFormat = Literal["text", "json"]
FORMATS: tuple[LogFormat, ...] = ("text", "json")
# kopf's INFO lines that are routine for a periodic handler: "Timer 'synctask_resync'
# succeeded." (timers run every few seconds per object; failures stay at their level).
_ROUTINE_PREFIXES = ("Timer '",)
_ROUTINE_SUFFIXES = (" succeeded.",)


class RoutineAtDebug(logging.Filter):
    """Turn kopf's routine INFO lines into DEBUG ones; drop them unless DEBUG is on."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not isinstance(record.msg, str):
            return True
        message = record.msg
        if not (message.startswith(_ROUTINE_PREFIXES) and message.endswith(_ROUTINE_SUFFIXES)):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger().isEnabledFor(logging.DEBUG)


def configure(verbose: bool, level: str, log_format: LogFormat) -> None:
    """Set up the root handler (kopf's), the levels and the routine-line filter."""
    kopf.configure(
        verbose=verbose,
        log_format=kopf.LogFormat.JSON if log_format == "json" else kopf.LogFormat.FULL,
        log_prefix=True,  # "[namespace/name]" on kopf's lines about an object
        log_refkey="object" if log_format == "json" else None,
    )
    logging.getLogger("ferry_operator").setLevel("DEBUG" if verbose else level)
    objects = logging.getLogger("kopf.objects")
    if not any(isinstance(f, RoutineAtDebug) for f in objects.filters):
        objects.addFilter(RoutineAtDebug())
