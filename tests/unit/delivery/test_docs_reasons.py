"""docs/operations.md has a troubleshooting section for every failure reason the worker and
the operator can put on a task, so a person who sees a reason finds what to do."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
SOURCES = [
    REPO / "runtime" / "ferry_runtime" / "errors.py",
    *sorted((REPO / "operator" / "ferry_operator" / "reconcile").rglob("*.py")),
]
# CamelCase words in those files that are not reasons.
NOT_REASONS = {
    "AsExpected",
    "ProbeResult",
    "ConditionValue",
    "ServiceAccount",
    "RoleBinding",
    "RevisionCreated",
    "PositionReset",
    "WorkerError",
    "TransientError",
    "FatalError",
    "TaskTemplate",
    "SyncTask",
    "ConfigMap",
    "TableMapping",
    "BinlogReady",  # a condition type
    "StartError",  # the kubelet's, read: a task shows it as CrashLoopBackOff
    "RunPlan",  # reconcile/schedule.py's class
    "ScheduleError",  # reconcile/schedule.py's exception (InvalidSpec on the task)
    "VerifyPlan",  # reconcile/verify_schedule.py's class
}


def reasons_in_code() -> set[str]:
    found: set[str] = set()
    for path in SOURCES:
        text = path.read_text()
        found |= set(re.findall(r'"((?:[A-Z]{2,})?[A-Z][a-z]+(?:[A-Z][a-z]+)+)"', text))
        # errors.py lists its reasons in the hierarchy drawn in its docstring.
        for line in re.findall(r"reasons: ([A-Za-z, \n│]+)", text):
            found |= set(re.findall(r"(?:[A-Z]{2,})?[A-Z][a-z]+(?:[A-Z][a-z]+)+", line))
    return found - NOT_REASONS


def test_every_reason_has_a_troubleshooting_section() -> None:
    headings = set(re.findall(r"^### (.+)$", (REPO / "docs" / "operations.md").read_text(), re.M))
    documented = {word for heading in headings for word in re.findall(r"[A-Za-z]+", heading)}
    reasons = reasons_in_code()
    assert {"PositionUnavailable", "AuthenticationFailed", "ConnectorNotReady"} <= reasons
    missing = sorted(reasons - documented)
    assert not missing, f"docs/operations.md has no section for: {missing}"
