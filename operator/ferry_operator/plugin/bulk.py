"""Lifecycle verbs over many SyncTasks: which tasks the command line selects, one outcome per
task, and the summary table (pure).

``pause|resume|restart`` take one or more names, ``-l SELECTOR`` or ``--all`` (``-A``: in
every namespace). One name alone keeps the one-task output; anything else prints a table
(TASK, NAMESPACE, RESULT, MESSAGE) and exits 1 if any task failed, after doing the others.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ferry_operator.plugin import formatting
from ferry_operator.plugin.errors import EXIT_ERROR, EXIT_OK, UsageError

__all__ = [
    "CHANGED",
    "FAILED",
    "UNCHANGED",
    "Outcome",
    "Selection",
    "exit_code",
    "selection",
    "summary",
    "summary_table",
]

CHANGED, UNCHANGED, FAILED = "changed", "unchanged", "failed"


@dataclass(frozen=True)
class Selection:
    """The tasks a command line names: ``names``, or a label ``selector`` (``""`` for
    ``--all``) in the namespace or, with ``all_namespaces``, in every one."""

    names: tuple[str, ...]
    selector: str | None
    all_namespaces: bool

    @property
    def single(self) -> str | None:
        """The one name of a one-task call (its output stays as before), else None."""
        return self.names[0] if len(self.names) == 1 and self.selector is None else None

    def describe(self, namespace: str) -> str:
        """``-l team=shop in namespace 'shop'`` for "nothing matched" messages."""
        what = f"-l {self.selector}" if self.selector else "--all"
        where = "any namespace" if self.all_namespaces else f"namespace {namespace!r}"
        return f"{what} in {where}"


def selection(args: argparse.Namespace) -> Selection:
    """Check the names/``-l``/``--all``/``-A`` combination; a bad one is a UsageError."""
    names = tuple(dict.fromkeys(args.names or ()))  # in order, each once
    selector = getattr(args, "selector", None)
    every = bool(getattr(args, "all", False))
    all_namespaces = bool(getattr(args, "all_namespaces", False))
    given = [flag for flag, on in (("NAME", names), ("-l", selector), ("--all", every)) if on]
    if not given:
        raise UsageError("name a SyncTask, or select several with -l SELECTOR or --all")
    if len(given) > 1:
        raise UsageError(f"{' and '.join(given)} do not go together: use one of them")
    if all_namespaces and names:
        raise UsageError("-A goes with -l or --all; names are looked up in -n's namespace")
    if selector is not None and not selector.strip():
        raise UsageError("-l needs a label selector, e.g. -l team=shop")
    return Selection(names, selector if selector else ("" if every else None), all_namespaces)


@dataclass(frozen=True)
class Outcome:
    """What happened to one task."""

    name: str
    namespace: str
    result: str  # CHANGED, UNCHANGED or FAILED
    message: str
    patch: dict[str, Any] | None = None

    def data(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "namespace": self.namespace,
            "result": self.result,
            "changed": self.result == CHANGED,
            "message": self.message,
            "patch": self.patch,
        }


def summary_table(outcomes: Sequence[Outcome]) -> str:
    """One row per task, then ``3 tasks: 2 changed, 0 unchanged, 1 failed``."""
    rows = [[o.name, o.namespace, o.result, o.message] for o in outcomes]
    return "\n".join(
        [formatting.table(["TASK", "NAMESPACE", "RESULT", "MESSAGE"], rows), summary(outcomes)]
    )


def summary(outcomes: Sequence[Outcome]) -> str:
    counts = Counter(o.result for o in outcomes)
    noun = "task" if len(outcomes) == 1 else "tasks"
    return (
        f"{len(outcomes)} {noun}: {counts[CHANGED]} {CHANGED}, {counts[UNCHANGED]} {UNCHANGED}, "
        f"{counts[FAILED]} {FAILED}"
    )


def exit_code(outcomes: Sequence[Outcome]) -> int:
    """1 when any task failed, else 0."""
    return EXIT_ERROR if any(o.result == FAILED for o in outcomes) else EXIT_OK
