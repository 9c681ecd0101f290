"""The operator's log lines: each names its object, routine ones stay out of the way.

- kopf's lines about an object (its handlers' outcomes, retries, tracebacks) carry the
  object's ``[namespace/name]`` prefix; Ferry's own lines carry the reconciliation's
  context (:class:`ferry_operator.context.Context`).
- A timer that succeeded (the Connector re-probe, a template's user count) and a watch-event
  handler that succeeded (every event of a task, its owned objects and pods, a Connector) are
  logged at DEBUG, not INFO: at INFO they were most of the log and said nothing.
- ``json`` gives one JSON object per line (kopf's JSON formatter: ``message``, ``severity``,
  ``timestamp`` and the object's reference under ``object``), for log pipelines.
- With ``FERRY_LOG_CONFIG`` (the chart mounts its ConfigMap there), :class:`LogConfig` reads
  ``level`` and ``format`` from that YAML file and :func:`watch` applies a change while the
  operator runs: the kubelet updates a mounted ConfigMap in place, so a new chart value
  changes the level without a restart.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import kopf
import yaml

__all__ = [
    "FORMATS",
    "LEVELS",
    "LogConfig",
    "LogFormat",
    "RoutineAtDebug",
    "apply",
    "configure",
    "read_config",
    "watch",
]

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
WATCH_SECONDS = 2.0
log = logging.getLogger(__name__)

LogFormat = Literal["text", "json"]
FORMATS: tuple[LogFormat, ...] = ("text", "json")
# kopf's INFO lines that are routine for a periodic or per-event handler: "Timer
# 'connector_reprobe' succeeded.", "Handler 'synctask_event' succeeded." (failures stay at
# their level; what a reconcile changed is Ferry's own INFO line).
_ROUTINE_PREFIXES = (
    "Timer '",
    "Handler 'synctask_event'",
    "Handler 'connector_event'",
    "Handler 'secret_event'",
    "Handler 'template_event'",
)
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


@dataclass(frozen=True)
class LogConfig:
    """The operator's level and line format."""

    level: str = "INFO"
    format: LogFormat = "text"


def read_config(path: str | Path, default: LogConfig | None = None) -> LogConfig:
    """``level`` and ``format`` from a YAML file (``{level: debug, format: json}``); what is
    missing, unknown or unreadable keeps ``default``'s value."""
    default = default or LogConfig()
    try:
        data: Any = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError):
        return default
    if not isinstance(data, dict):
        return default
    level = str(data.get("level") or default.level).upper()
    chosen = str(data.get("format") or default.format).lower()
    return LogConfig(
        level if level in LEVELS else default.level,
        "json" if chosen == "json" else "text" if chosen == "text" else default.format,
    )


def apply(config: LogConfig) -> None:
    """Make ``config`` the effective level and format (at once; callable any time)."""
    configure(config.level == "DEBUG", config.level, config.format)
    logging.getLogger().setLevel(config.level)


async def watch(path: str | Path, current: LogConfig, interval: float = WATCH_SECONDS) -> None:
    """Apply each change of the file at ``path`` until cancelled."""
    while True:
        await asyncio.sleep(interval)
        found = read_config(path, current)
        if found != current:
            apply(found)
            logging.getLogger("ferry_operator").warning(
                "log level %s, format %s (from %s)", found.level, found.format, path
            )
            current = found
