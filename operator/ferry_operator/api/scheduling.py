"""Spec and status models of scheduled snapshot runs (``schedule``, ``timeZone``, status
``nextRun``/``activeRun``/``lastRun``/``runs``) and of notifications (``notifications``,
status ``notifications``). Kept apart from synctask.py, which only declares the fields.

Admission checks the shape: a cron expression of five fields with each value in its range
(or an ``@daily``-style macro), a time zone that looks like an IANA name. The operator parses
both again (croniter, zoneinfo) and refuses what the API server cannot know (a zone name that
does not exist) with ``InvalidSpec`` naming the field.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from ferry_operator.api.base import Model, SecretKeyRef, cel, matches

__all__ = [
    "CRON_PATTERN",
    "NOTIFICATION_EVENTS",
    "TIME_ZONE_PATTERN",
    "ActiveRun",
    "Notification",
    "NotificationStatus",
    "RunStatus",
    "ScheduledVerificationStatus",
    "Webhook",
    "cron_message",
    "schedule_field",
    "time_zone_field",
    "time_zone_message",
]


def _values(value: str) -> str:
    """One cron field: ``*`` or a value or range, an optional ``/step``, comma-separated."""
    item = rf"(\*|{value}(-{value})?)(/[0-9]{{1,2}})?"
    return rf"{item}(,{item})*"


_MINUTE = r"([0-5]?[0-9])"
_HOUR = r"(2[0-3]|[01]?[0-9])"
_DAY = r"(3[01]|[12][0-9]|0?[1-9])"
_MONTH = r"(1[0-2]|0?[1-9]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec))"
_WEEKDAY = r"([0-7]|(?i:sun|mon|tue|wed|thu|fri|sat))"
_MACRO = r"@(yearly|annually|monthly|weekly|daily|midnight|hourly)"
CRON_PATTERN = (
    rf"^(\s*{_values(_MINUTE)}\s+{_values(_HOUR)}\s+{_values(_DAY)}\s+{_values(_MONTH)}"
    rf"\s+{_values(_WEEKDAY)}\s*|{_MACRO})$"
)


def cron_message(field: str) -> str:
    """What admission says about a bad cron expression in ``field``."""
    return (
        f"{field} must be a cron expression of 5 fields, minute (0-59) hour (0-23) "
        "day-of-month (1-31) month (1-12 or JAN-DEC) day-of-week (0-7 or SUN-SAT), each *, a "
        "value or a range with an optional /step, comma-separated (e.g. '0 2 * * *'), or one of "
        "@hourly, @daily, @midnight, @weekly, @monthly, @yearly, @annually"
    )


def time_zone_message(field: str) -> str:
    return f"{field} must be an IANA time zone name such as Europe/Berlin, America/New_York or UTC"


CRON_MESSAGE = cron_message("spec.schedule")
TIME_ZONE_PATTERN = r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$"
TIME_ZONE_MESSAGE = time_zone_message("spec.timeZone")
NOTIFICATION_EVENTS = ("Failed", "Stalled", "Recovered", "Completed")


def schedule_field() -> Any:
    return Field(
        default=None,
        min_length=1,
        max_length=100,
        description="With mode: snapshot, run one snapshot at each tick of this cron "
        "expression (5 fields: minute hour day-of-month month day-of-week, or @daily etc.), in "
        "spec.timeZone. A tick that comes while a run is still going is skipped (like a "
        "CronJob's concurrencyPolicy: Forbid); spec.paused suspends the schedule.",
        json_schema_extra=cel((matches(CRON_PATTERN), CRON_MESSAGE)),
    )


def time_zone_field() -> Any:
    return Field(
        default=None,
        min_length=1,
        max_length=64,
        description="The IANA time zone spec.schedule is read in (e.g. Europe/Berlin); "
        "default UTC.",
        json_schema_extra=cel((matches(TIME_ZONE_PATTERN), TIME_ZONE_MESSAGE)),
    )


class Webhook(Model):
    """An HTTP(S) endpoint that receives a JSON POST; its URL is a secret."""

    url_secret_ref: SecretKeyRef = Field(
        description="The Secret key holding the URL (it may carry a token): never logged, "
        "never in status or Events."
    )


class Notification(Model):
    """Where to send which events of the task."""

    on: list[Literal["Failed", "Stalled", "Recovered", "Completed"]] = Field(
        min_length=1,
        max_length=4,
        description="Failed: the phase becomes Failed. Stalled: the Stalled condition becomes "
        "True. Recovered: Ready becomes True again after Failed or Stalled. Completed: the "
        "phase becomes Completed (each finished snapshot run).",
        json_schema_extra=cel(
            ("self.all(e, self.exists_one(f, f == e))", "notifications[].on lists an event twice")
        ),
    )
    webhook: Webhook = Field(description="The endpoint.")


class ActiveRun(Model):
    """The snapshot run going on now."""

    id: str | None = Field(
        default=None, description="The scheduled run's id (its tick, UTC); none unscheduled."
    )
    scheduled_time: str | None = Field(
        default=None,
        description="The schedule tick that started it.",
        json_schema_extra={"format": "date-time"},
    )
    start: str | None = Field(
        default=None,
        description="When the operator started the run's worker.",
        json_schema_extra={"format": "date-time"},
    )


class RunStatus(ActiveRun):
    """One finished snapshot run: the run's fields, and how it ended."""

    end: str | None = Field(
        default=None,
        description="When the worker reported the run's end.",
        json_schema_extra={"format": "date-time"},
    )
    duration: str | None = Field(default=None, description="end - start (`1m23s`).")
    duration_seconds: int | None = Field(default=None, description="end - start in seconds.")
    rows: int | None = Field(default=None, description="Rows the run copied.")
    result: Literal["Completed", "Failed"] | None = Field(
        default=None, description="Completed or Failed."
    )
    reason: str | None = Field(default=None, description="Why it failed (CamelCase).")
    message: str | None = Field(default=None, description="What failed.")


class NotificationStatus(Model):
    """One notification sent (or being sent); the URL is never shown."""

    on: str | None = Field(default=None, description="The event: Failed, Stalled, ….")
    index: int | None = Field(default=None, description="Its entry in spec.notifications.")
    time: str | None = Field(
        default=None,
        description="When the event happened.",
        json_schema_extra={"format": "date-time"},
    )
    delivered: bool | None = Field(default=None, description="A 2xx answer came.")
    attempts: int | None = Field(default=None, description="POSTs made so far.")
    last_error: str | None = Field(
        default=None, description="The last failed attempt's error (kept after a retry worked)."
    )


class ScheduledVerificationStatus(Model):
    """What spec.verifySchedule did at its last tick (reconcile/verify_schedule.py)."""

    last_tick: str | None = Field(
        default=None,
        description="The last tick of spec.verifySchedule that came (started or skipped).",
        json_schema_extra={"format": "date-time"},
    )
    nonce: str | None = Field(
        default=None,
        description="The nonce of the last check the schedule started (scheduled-<tick, "
        "UTC>); its result is status.verification once that nonce shows there.",
    )
    start_time: str | None = Field(
        default=None,
        description="When the operator started that check (the tick, or later after a "
        "pause of the operator).",
        json_schema_extra={"format": "date-time"},
    )
    request_nonce: str | None = Field(
        default=None,
        description="spec.verifyRequest's nonce when that check started: a verifyRequest "
        "with another nonce is newer and runs in its place.",
    )
    skipped: bool | None = Field(
        default=None,
        description="true: the last tick started nothing because a check was still running "
        "or waiting to run (checks never overlap).",
    )
    skipped_ticks: int | None = Field(
        default=None, description="Ticks skipped since the schedule last started a check."
    )
    message: str | None = Field(default=None, description="Why the last tick was skipped.")
