"""Text for people: the task table, the status panel, progress bars, history and stats.

Pure functions of SyncTask objects as the API returns them (plain dicts) and of ``now``;
a missing field shows as ``-`` rather than failing, since a new task has no status yet.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from ferry_operator.api.synctask import PHASES
from ferry_operator.plugin import revisions
from ferry_operator.plugin.errors import NotFoundError
from ferry_runtime.status import position_display

__all__ = [
    "PHASES",
    "age",
    "bar",
    "duration",
    "eta",
    "find_table",
    "history_table",
    "list_table",
    "percent",
    "phase_counts",
    "position",
    "progress_view",
    "stats_table",
    "status_panel",
    "table",
    "table_progress",
    "updated",
]

NONE = "-"


def _parse(moment: str) -> datetime | None:
    try:
        return datetime.fromisoformat(moment.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return None


def duration(seconds: float | None) -> str:
    """``0s``, ``42s``, ``3m05s``, ``2h07m``, ``3d04h``: compact, like kubectl."""
    if seconds is None:
        return NONE
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def age(timestamp: str | None, now: datetime) -> str:
    """How long ago ``timestamp`` (RFC 3339) was, in kubectl's AGE style (``5m``, ``3d``)."""
    moment = _parse(timestamp) if timestamp else None
    if moment is None:
        return NONE
    seconds = max(0, int((now - moment).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size or (unit == "m" and seconds >= size):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def position(value: Any) -> str:
    """The POSITION column: ``binlog.000042:1234`` (the worker's ``display``, else worked
    out the same way), a GTID cut short, or a time; ``-`` when unknown."""
    if not isinstance(value, dict):
        return str(value) if value else NONE
    shown = value.get("display") or position_display(value)
    return str(shown or value.get("timestamp") or value.get("at") or NONE)


def _full_position(value: Any) -> str:
    """The status panel's position: the column's, and the whole GTID beside it."""
    shown = position(value)
    gtid = value.get("gtid") if isinstance(value, dict) else None
    return f"{shown} (GTID {gtid})" if gtid and gtid != shown else shown


def percent(progress: Any) -> str:
    if not isinstance(progress, dict) or progress.get("percent") is None:
        return NONE
    return f"{float(progress['percent']):.0f}%"


def _ready(status: dict[str, Any]) -> dict[str, Any]:
    found = [c for c in status.get("conditions") or [] if c.get("type") == "Ready"]
    return found[0] if found else {}


def updated(status: dict[str, Any], now: datetime) -> str:
    """``updated 3s ago``: when the worker last reported; ``never updated`` before that."""
    heartbeat = status.get("heartbeatTime")
    moment = _parse(heartbeat) if isinstance(heartbeat, str) else None
    if moment is None:
        return "never updated"
    return f"updated {duration((now - moment).total_seconds())} ago"


def eta(progress: dict[str, Any], now: datetime) -> str:
    """The snapshot's end relative to ``now``: ``41s``, ``2h07m``; ``done`` at 100 %."""
    if progress.get("percent") == 100:
        return "done"
    value = progress.get("eta")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return duration(value)  # seconds (older workers)
    moment = _parse(value) if isinstance(value, str) else None
    if moment is None:
        return NONE
    return duration(max(0.0, (moment - now).total_seconds()))


def _lag(status: dict[str, Any]) -> str:
    lag = status.get("lag")
    return duration(lag.get("seconds")) if isinstance(lag, dict) else NONE


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Left-aligned columns three spaces apart, as ``kubectl get`` prints them."""
    lines = [list(headers), *(list(row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(headers))]
    return "\n".join(
        "   ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def list_table(tasks: Sequence[dict[str, Any]], now: datetime, all_namespaces: bool) -> str:
    """``kubectl ferry list``: the columns of ``kubectl get synctasks`` (NAME, READY, PHASE,
    REASON, LAG, PROGRESS, POSITION, AGE), with the position's offset."""
    headers = ["NAME", "READY", "PHASE", "REASON", "LAG", "PROGRESS", "POSITION", "AGE"]
    rows = []
    for task in tasks:
        meta, status = task.get("metadata") or {}, task.get("status") or {}
        ready = _ready(status)
        row = [
            meta.get("name", NONE),
            str(ready.get("status") or NONE),
            status.get("phase") or "Pending",
            str(ready.get("reason") or NONE),
            _lag(status),
            percent(status.get("progress")),
            position(status.get("position")),
            age(meta.get("creationTimestamp"), now),
        ]
        rows.append([meta.get("namespace", NONE), *row] if all_namespaces else row)
    return table(["NAMESPACE", *headers] if all_namespaces else headers, rows)


def _condition_lines(conditions: Sequence[dict[str, Any]], now: datetime) -> list[str]:
    rows = [
        [
            str(c.get("type", NONE)),
            str(c.get("status", NONE)),
            str(c.get("reason") or NONE),
            age(c.get("lastTransitionTime"), now),
            str(c.get("message") or ""),
        ]
        for c in conditions
    ]
    return table(["TYPE", "STATUS", "REASON", "AGE", "MESSAGE"], rows).splitlines()


def status_panel(task: dict[str, Any], now: datetime) -> str:
    """``kubectl ferry status``: phase, conditions, position, counters and the last errors."""
    meta, spec, status = (
        task.get("metadata") or {},
        task.get("spec") or {},
        task.get("status") or {},
    )
    counters = status.get("counters") or {}
    throughput = status.get("throughput") or {}
    generation, observed = meta.get("generation"), status.get("observedGeneration")
    resume = status.get("scheduledResume") or spec.get("resumeAt")
    lines = [
        f"SyncTask:     {meta.get('namespace', NONE)}/{meta.get('name', NONE)}",
        f"Phase:        {status.get('phase') or 'Pending'}"
        + (f" (resumes at {resume})" if spec.get("paused") and resume else ""),
        f"Generation:   {generation if generation is not None else NONE}"
        f" (observed {observed if observed is not None else NONE})",
        f"Revision:     {status.get('configRevision') or NONE}{_applied(status)}",
        f"Position:     {_full_position(status.get('position'))}",
        f"Lag:          {_lag(status)}",
        f"Throughput:   {throughput.get('eventsPerSecond', NONE)} events/s",
        f"Progress:     {percent(status.get('progress'))}"
        + (
            f" (ETA {eta(status['progress'], now)})"
            if isinstance(status.get("progress"), dict) and status["progress"].get("tables")
            else ""
        ),
        f"Counters:     events {counters.get('events', 0)}, errors {counters.get('errors', 0)}, "
        f"restarts {counters.get('restarts', 0)}",
        f"Heartbeat:    {status.get('heartbeatTime') or NONE} ({updated(status, now)})",
        *_skip_line(status.get("lastSkip")),
        *verification_lines(status.get("verification")),
        *verify_schedule_lines(spec, status),
        "",
        "Conditions:",
    ]
    conditions = status.get("conditions") or []
    lines += (
        ["  " + line for line in _condition_lines(conditions, now)] if conditions else ["  none"]
    )
    errors = status.get("lastErrors") or []
    lines += ["", f"Last errors ({len(errors)}):"]
    for error in errors:
        where = " ".join(
            part
            for part in (
                str(error.get("reason") or ""),
                str(error.get("table") or ""),
                position(error.get("position")) if error.get("position") else "",
            )
            if part
        )
        prefix = f"{where}: " if where else ""
        lines.append(f"  {error.get('time', NONE)}  {prefix}{error.get('message', '')}")
    if not errors:
        lines.append("  none")
    return "\n".join(lines)


def verification_lines(found: Any) -> list[str]:
    """``Verification:`` (status.verification) and up to 5 mismatched keys, or nothing."""
    if not isinstance(found, dict) or not found.get("nonce"):
        return []
    nonce, state = found["nonce"], found.get("state") or NONE
    if state == "Running":
        return [f"Verification: running since {found.get('startTime') or NONE}, nonce {nonce}"]
    if state == "Failed":
        return [f"Verification: failed at {found.get('time') or NONE}, nonce {nonce}: "
                f"{found.get('message') or NONE}"]  # fmt: skip
    tables = len(found.get("tables") or [])
    line = (
        f"Verification: {found.get('mismatchedRows') or 0} mismatched row(s) in {tables} "
        f"table(s), {found.get('rows') or 0} row(s) in {found.get('chunks') or 0} chunk(s)"
    )
    if found.get("unsettledRows"):
        line += f", {found['unsettledRows']} still changing"
    if found.get("repairedRows"):
        line += f", {found['repairedRows']} repaired"
    lines = [f"{line} at {found.get('time') or NONE}, nonce {nonce}"]
    for key in (found.get("sampleKeys") or [])[:5]:
        lines.append(f"  mismatch: {key.get('table')} {key.get('key')}")
    for skipped in found.get("skippedTables") or []:
        lines.append(f"  not compared: {skipped}")
    return lines


def verify_schedule_lines(spec: dict[str, Any], status: dict[str, Any]) -> list[str]:
    """``Verify next:`` (spec.verifySchedule, status.nextVerification and what the last tick
    did), or nothing without a schedule."""
    found = spec.get("verifySchedule")
    if not isinstance(found, dict):
        return []
    zone = f" {found['timeZone']}" if found.get("timeZone") else ""
    line = f"Verify next:  {status.get('nextVerification') or NONE}"
    line += (
        " (paused)" if spec.get("paused") else f" (verifySchedule {found.get('schedule')!r}{zone})"
    )
    last = status.get("scheduledVerification") or {}
    if last.get("lastTick") and last.get("skipped"):
        line += (
            f"; tick {last['lastTick']} skipped ({last.get('skippedTicks') or 1} in a row): a "
            "check was still running or waiting"
        )
    elif last.get("lastTick"):
        line += f"; tick {last['lastTick']} started {last.get('nonce') or NONE}"
    return [line]


def _skip_line(skip: Any) -> list[str]:
    """``Last skip:`` (spec.skipEvent applied), or nothing when no event was ever skipped."""
    if not isinstance(skip, dict) or not skip.get("nonce"):
        return []
    events = skip.get("events") or 0
    what = f"{events} row event{'s' if events != 1 else ''}"
    of = f" of {skip['table']}" if skip.get("table") else ""
    gtid = f", GTID {skip['gtid']}" if skip.get("gtid") else ""
    return [
        f"Last skip:    {skip.get('position') or NONE} ({what}{of}{gtid}) at "
        f"{skip.get('time') or NONE}, nonce {skip['nonce']}"
    ]


def bar(fraction: float, width: int = 30) -> str:
    """A fixed-width bar: ``██████░░░░``; ``fraction`` is clamped to 0..1."""
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "█" * filled + "░" * (width - filled)


def _fraction(done: Any, total: Any) -> float:
    try:
        return float(done) / float(total) if float(total) > 0 else 0.0
    except (TypeError, ValueError):
        return 0.0


def progress_view(task: dict[str, Any], by_table: bool, now: datetime) -> str:
    """``kubectl ferry progress``: the overall bar, the ETA from ``now`` and when the worker
    last reported, and one bar per table if asked."""
    meta, status = task.get("metadata") or {}, task.get("status") or {}
    progress = status.get("progress") or {}
    name, phase = meta.get("name", NONE), status.get("phase") or "Pending"
    if not progress:
        return f"{name}: {phase}, no snapshot progress reported"
    pct = progress.get("percent")
    fraction = (
        float(pct) / 100
        if pct is not None
        else _fraction(progress.get("rowsDone"), progress.get("rowsTotal"))
    )
    lines = [
        f"{name}  {phase}",
        f"{bar(fraction)} {fraction * 100:5.1f}%  rows {progress.get('rowsDone', NONE)}"
        f"/{progress.get('rowsTotal', NONE)}  ETA {eta(progress, now)}  ({updated(status, now)})",
    ]
    if by_table:
        tables = progress.get("tables") or []
        rows = [
            [
                str(t.get("name", NONE)),
                bar(_fraction(t.get("rowsDone"), t.get("rowsTotal")), 20),
                f"{_fraction(t.get('rowsDone'), t.get('rowsTotal')) * 100:.0f}%",
                f"{t.get('rowsDone', NONE)}/{t.get('rowsTotal', NONE)}",
                str(t.get("state") or NONE),
            ]
            for t in tables
        ]
        lines += ["", table(["TABLE", "PROGRESS", "%", "ROWS", "STATE"], rows)] if rows else []
    return "\n".join(lines)


def find_table(task: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The ``status.progress.tables`` entry for ``name`` (``db.table``, or a table name that
    only one database has); None while the task reports no progress at all. A name that is
    not among the reported tables is a NotFoundError listing them."""
    meta, status = task.get("metadata") or {}, task.get("status") or {}
    tables = [t for t in (status.get("progress") or {}).get("tables") or [] if isinstance(t, dict)]
    if not tables:
        return None
    exact = [t for t in tables if t.get("name") == name]
    short = [t for t in tables if str(t.get("name", "")).split(".", 1)[-1] == name]
    found = exact or (short if len(short) == 1 else [])
    if found:
        return found[0]
    known = ", ".join(str(t.get("name", NONE)) for t in tables)
    hint = f" ({name!r} is in several databases: use db.table)" if len(short) > 1 else ""
    raise NotFoundError(
        f"table {name!r} is not in the snapshot progress of SyncTask "
        f"{meta.get('name', NONE)!r}{hint} (tables: {known})"
    )


def table_progress(task: dict[str, Any], name: str, now: datetime) -> str:
    """``kubectl ferry progress NAME --table T``: that table's one line."""
    meta, status = task.get("metadata") or {}, task.get("status") or {}
    entry = find_table(task, name)
    if entry is None:
        phase = status.get("phase") or "Pending"
        return f"{meta.get('name', NONE)}: {phase}, no snapshot progress reported"
    done, total = entry.get("rowsDone"), entry.get("rowsTotal")
    fraction = _fraction(done, total)
    return (
        f"{entry.get('name', NONE)}  {entry.get('state') or NONE}  {bar(fraction, 20)} "
        f"{fraction * 100:5.1f}%  rows {done if done is not None else NONE}"
        f"/{total if total is not None else NONE}  ({updated(status, now)})"
    )


def _applied(status: dict[str, Any]) -> str:
    """`` (the worker runs r2)`` while the worker has not applied the newest revision yet
    (status.appliedRevision: live fields apply without a restart)."""
    applied, newest = status.get("appliedRevision"), status.get("configRevision")
    return f" (the worker runs {applied})" if applied and newest and applied != newest else ""


def history_table(items: Sequence[revisions.Revision], current: int | None, now: datetime) -> str:
    """``kubectl ferry history``: one line per revision, the current one marked."""
    rows = [
        [
            f"{r.number}{' *' if r.number == current else ''}",
            age(r.created, now),
            (r.config_hash or NONE)[:12],
            r.cause or NONE,
        ]
        for r in sorted(items, key=lambda r: r.number)
    ]
    return table(["REVISION", "AGE", "HASH", "CHANGE-CAUSE"], rows)


def phase_counts(tasks: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Tasks per phase, every known phase listed (0 included), unknown ones after."""
    counts = Counter(((t.get("status") or {}).get("phase") or "Pending") for t in tasks)
    return {
        **{p: counts.get(p, 0) for p in PHASES},
        **{p: n for p, n in counts.items() if p not in PHASES},
    }


def stats_table(tasks: Sequence[dict[str, Any]]) -> str:
    """``kubectl ferry stats``: tasks per phase and the total."""
    counts = phase_counts(tasks)
    rows = [[phase, str(count)] for phase, count in counts.items()]
    return table(["PHASE", "TASKS"], [*rows, ["total", str(len(tasks))]])
