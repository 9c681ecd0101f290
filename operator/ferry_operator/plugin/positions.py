"""Parse what people type for positions and times, and make nonces.

``--to`` takes ``FILE:POS`` (``binlog.000042:1234``), ``gtid:SET``, an RFC 3339 time,
``earliest`` or ``latest`` and returns the SyncTask's position shape. ``skip`` takes
``--position FILE:POS`` (as status.lastErrors shows a poison row's) or ``--gtid GTID`` (one
MariaDB GTID). ``--resume-at`` takes an RFC 3339 time or a duration from now (``30m``,
``2h``, ``1d``).
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from ferry_operator.plugin.errors import UsageError

__all__ = [
    "format_time",
    "new_nonce",
    "parse_age",
    "parse_duration",
    "parse_event_gtid",
    "parse_event_position",
    "parse_position",
    "parse_resume_at",
    "parse_time",
]

_FILE_POS = re.compile(r"^(?P<file>[^:\s]+):(?P<pos>\d+)$")
# A binlog file name (never a path), as the CRD's schema allows it.
_BINLOG_FILE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\.[0-9]{6,}$")
_ONE_GTID = re.compile(r"^\d{1,10}-\d{1,10}-\d{1,20}$")
_RELATIVE = re.compile(r"^\+?(?P<amount>\d+)(?P<unit>s|m|h|d)$")
_UNIT = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_POSITION_HELP = "FILE:POS (binlog.000042:1234), gtid:SET, an RFC 3339 time, earliest or latest"


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, to the second: how Kubernetes writes times."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """An RFC 3339 time with a zone (``Z`` or an offset); a naive time is refused."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        raise UsageError(f"{text!r} is not an RFC 3339 time (e.g. 2026-01-31T18:00:00Z)") from None
    if moment.tzinfo is None:
        raise UsageError(f"{text!r} has no time zone; add Z or an offset such as +02:00")
    return moment


def parse_position(text: str) -> dict[str, Any]:
    """The CRD's position shape (``{file, pos}``, ``{gtid}``, ``{timestamp}`` or ``{at}``)
    of ``spec.resetPosition.to`` for what was typed after ``--to``."""
    value = text.strip()
    if value in {"earliest", "latest"}:
        return {"at": value}
    if value.lower().startswith("gtid:"):
        gtid = value[len("gtid:") :].strip()
        if not gtid:
            raise UsageError(f"--to {text!r}: the GTID after 'gtid:' is empty")
        return {"gtid": gtid}
    match = _FILE_POS.match(value)
    if match:
        pos = int(match.group("pos"))
        if pos < 4:
            raise UsageError(f"--to {text!r}: a binlog offset starts at 4")
        return {"file": match.group("file"), "pos": pos}
    if re.match(r"^\d{4}-\d{2}-\d{2}[Tt ]", value):
        return {"timestamp": format_time(parse_time(value))}
    raise UsageError(f"--to {text!r} is not a position; use {_POSITION_HELP}")


def parse_event_position(text: str) -> dict[str, Any]:
    """``--position FILE:POS`` of ``skip``: ``spec.skipEvent.position`` as ``{file, pos}``."""
    match = _FILE_POS.match(text.strip())
    if not match:
        raise UsageError(
            f"--position {text!r} is not FILE:POS (e.g. binlog.000042:1234, as a PoisonRow "
            "error in status.lastErrors shows it)"
        )
    file, pos = match.group("file"), int(match.group("pos"))
    if not _BINLOG_FILE.match(file):
        raise UsageError(
            f"--position {text!r}: {file!r} is not a binlog file name such as binlog.000042"
        )
    if pos < 4:
        raise UsageError(f"--position {text!r}: a binlog offset starts at 4")
    return {"file": file, "pos": pos}


def parse_event_gtid(text: str) -> dict[str, Any]:
    """``--gtid GTID`` of ``skip``: one MariaDB GTID, the transaction to skip."""
    value = text.strip()
    if value.lower().startswith("gtid:"):
        value = value[len("gtid:") :].strip()
    if not _ONE_GTID.match(value):
        raise UsageError(
            f"--gtid {text!r} is not one MariaDB GTID (domain-server-sequence, e.g. 0-1-100)"
        )
    return {"gtid": value}


def parse_resume_at(text: str, now: datetime) -> str:
    """``--resume-at``: an RFC 3339 time or a duration from ``now``; must be in the future."""
    match = _RELATIVE.match(text.strip())
    if match:
        moment = now + timedelta(**{_UNIT[match.group("unit")]: int(match.group("amount"))})
    else:
        try:
            moment = parse_time(text)
        except UsageError:
            raise UsageError(
                f"--resume-at {text!r} is neither an RFC 3339 time nor a duration (30m, 2h, 1d)"
            ) from None
    if moment <= now:
        raise UsageError(f"--resume-at {text!r} is in the past ({format_time(now)} now)")
    return format_time(moment)


def parse_duration(text: str, flag: str) -> timedelta:
    """A duration typed after ``flag`` (``30s``, ``5m``, ``2h``, ``1d``; ``0s``)."""
    match = _RELATIVE.match(text.strip())
    if not match:
        raise UsageError(f"{flag} {text!r} is not a duration (30s, 5m, 2h, 1d)")
    return timedelta(**{_UNIT[match.group("unit")]: int(match.group("amount"))})


def parse_age(text: str) -> timedelta:
    """``--older-than``: a duration (``30s``, ``5m``, ``2h``, ``1d``; ``0s`` for any)."""
    return parse_duration(text, "--older-than")


def new_nonce(now: datetime) -> str:
    """A fresh nonce that also tells a reader when it was made: ``20260131T180000Z-1a2b3c``."""
    return f"{now.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"
