"""One function per ``kubectl ferry`` verb: read through :class:`~.kube.Kube`, decide with
the pure modules, write at most one merge patch, and print.

Each takes the parsed arguments and a :class:`Context` and returns an exit code.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

import yaml

from ferry_operator.plugin import finalizers, formatting, gitops, lifecycle, positions, revisions
from ferry_operator.plugin.errors import EXIT_OK, NotFoundError
from ferry_operator.plugin.kube import GROUP, Kube

__all__ = ["VERBS", "Context"]

KIND = f"synctask.{GROUP}"
RUNNING_PHASES = frozenset({"Pending", "Starting", "Snapshotting"})


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Context:
    """What every verb needs: the cluster, the namespace, the output format and a clock."""

    kube: Kube
    namespace: str
    output: str | None
    out: TextIO = field(default_factory=lambda: sys.stdout)
    now: Callable[[], datetime] = _utcnow

    def emit(self, data: Any, text: str) -> None:
        """Print ``data`` as JSON/YAML when ``-o`` asks for it, else ``text``."""
        if self.output == "json":
            print(json.dumps(data, indent=2, sort_keys=True, default=str), file=self.out)
        elif self.output == "yaml":
            print(yaml.safe_dump(data, sort_keys=True).rstrip(), file=self.out)
        else:
            print(text, file=self.out)


def cmd_list(args: argparse.Namespace, ctx: Context) -> int:
    tasks = ctx.kube.list_tasks(None if args.all_namespaces else ctx.namespace)
    if args.phase:
        tasks = [
            t for t in tasks if ((t.get("status") or {}).get("phase") or "Pending") == args.phase
        ]
    if not tasks and not ctx.output:
        where = "any namespace" if args.all_namespaces else f"namespace {ctx.namespace!r}"
        phase = f" in phase {args.phase}" if args.phase else ""
        print(f"No SyncTasks{phase} in {where}.", file=ctx.out)
        return EXIT_OK
    ctx.emit(
        {"apiVersion": "v1", "kind": "List", "items": tasks},
        formatting.list_table(tasks, ctx.now(), args.all_namespaces),
    )
    return EXIT_OK


def cmd_status(args: argparse.Namespace, ctx: Context) -> int:
    task = ctx.kube.get_task(ctx.namespace, args.name)
    ctx.emit(task, formatting.status_panel(task, ctx.now()))
    return EXIT_OK


def _progress_data(task: dict[str, Any]) -> dict[str, Any]:
    status = task.get("status") or {}
    return {
        "name": task["metadata"]["name"],
        "phase": status.get("phase") or "Pending",
        "progress": status.get("progress") or {},
    }


def cmd_progress(args: argparse.Namespace, ctx: Context) -> int:
    task = ctx.kube.get_task(ctx.namespace, args.name)
    if not args.watch:
        ctx.emit(_progress_data(task), formatting.progress_view(task, args.by_table, ctx.now()))
        return EXIT_OK
    # --watch: redraw until the snapshot is over (phase past Snapshotting) or Ctrl-C.
    interactive = ctx.out.isatty() and not ctx.output
    try:
        while True:
            if interactive:
                print("\033[H\033[J", end="", file=ctx.out)
            ctx.emit(_progress_data(task), formatting.progress_view(task, args.by_table, ctx.now()))
            ctx.out.flush()
            if (task.get("status") or {}).get("phase") not in RUNNING_PHASES | {None}:
                return EXIT_OK
            time.sleep(args.interval)
            task = ctx.kube.get_task(ctx.namespace, args.name)
    except KeyboardInterrupt:
        return EXIT_OK


def _apply(ctx: Context, task: dict[str, Any], change: lifecycle.Change) -> int:
    name = task["metadata"]["name"]
    if change.patch is not None:
        notice = gitops.warning(task, change.patch)
        if notice:
            print(notice, file=sys.stderr)
        ctx.kube.patch_task(ctx.namespace, name, change.patch)
    ctx.emit(
        {
            "name": name,
            "namespace": ctx.namespace,
            "changed": change.changed,
            "message": change.message,
            "patch": change.patch,
        },
        f"{KIND}/{name} {change.message}" if change.changed else f"{KIND}/{name}: {change.message}",
    )
    return EXIT_OK


def _spec(task: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = task.get("spec") or {}
    return spec


def cmd_pause(args: argparse.Namespace, ctx: Context) -> int:
    resume_at = positions.parse_resume_at(args.resume_at, ctx.now()) if args.resume_at else None
    task = ctx.kube.get_task(ctx.namespace, args.name)
    return _apply(ctx, task, lifecycle.pause(_spec(task), resume_at))


def cmd_resume(args: argparse.Namespace, ctx: Context) -> int:
    task = ctx.kube.get_task(ctx.namespace, args.name)
    return _apply(ctx, task, lifecycle.resume(_spec(task)))


def cmd_restart(args: argparse.Namespace, ctx: Context) -> int:
    nonce = args.nonce or positions.new_nonce(ctx.now())
    task = ctx.kube.get_task(ctx.namespace, args.name)
    return _apply(ctx, task, lifecycle.restart(_spec(task), nonce))


def cmd_reset_position(args: argparse.Namespace, ctx: Context) -> int:
    to = positions.parse_position(args.to)
    nonce = args.nonce or positions.new_nonce(ctx.now())
    task = ctx.kube.get_task(ctx.namespace, args.name)
    return _apply(ctx, task, lifecycle.reset_position(_spec(task), to, nonce))


def cmd_skip(args: argparse.Namespace, ctx: Context) -> int:
    if args.position is not None:
        position = positions.parse_event_position(args.position)
    else:
        position = positions.parse_event_gtid(args.gtid)
    nonce = args.nonce or positions.new_nonce(ctx.now())
    task = ctx.kube.get_task(ctx.namespace, args.name)
    return _apply(ctx, task, lifecycle.skip_event(_spec(task), position, nonce))


def cmd_snapshot(args: argparse.Namespace, ctx: Context) -> int:
    nonce = args.nonce or positions.new_nonce(ctx.now())
    task = ctx.kube.get_task(ctx.namespace, args.name)
    change = lifecycle.snapshot_request(_spec(task), args.table, nonce, cancel=args.cancel)
    return _apply(ctx, task, change)


def _revisions(ctx: Context, name: str) -> tuple[dict[str, Any], list[revisions.Revision]]:
    task = ctx.kube.get_task(ctx.namespace, name)
    found = [
        revisions.from_configmap(name, cm)
        for cm in ctx.kube.revision_configmaps(ctx.namespace, name)
    ]
    return task, sorted((r for r in found if r is not None), key=lambda r: r.number)


def cmd_history(args: argparse.Namespace, ctx: Context) -> int:
    task, items = _revisions(ctx, args.name)
    current = revisions.current_number(task.get("status") or {})
    if not items and not ctx.output:
        print(f"SyncTask {args.name!r} has no config revisions yet.", file=ctx.out)
        return EXIT_OK
    ctx.emit(
        {"task": args.name, "current": current, "revisions": [revisions.summary(r) for r in items]},
        formatting.history_table(items, current, ctx.now()),
    )
    return EXIT_OK


def cmd_diff(args: argparse.Namespace, ctx: Context) -> int:
    task, items = _revisions(ctx, args.name)
    old = revisions.find(args.name, items, args.rev)
    if args.other is not None:
        new = revisions.find(args.name, items, args.other)
    else:
        current = revisions.current_number(task.get("status") or {})
        if current is None and not items:
            raise NotFoundError(f"SyncTask {args.name!r} has no config revisions")
        new = revisions.find(args.name, items, current if current is not None else items[-1].number)
    text = revisions.diff(old, new)
    ctx.emit(
        {"from": old.number, "to": new.number, "diff": text},
        text or f"revisions {old.number} and {new.number} are identical",
    )
    return EXIT_OK


def cmd_rollback(args: argparse.Namespace, ctx: Context) -> int:
    task, items = _revisions(ctx, args.name)
    revision = revisions.find(args.name, items, args.to_revision)
    return _apply(ctx, task, revisions.rollback(_spec(task), revision))


def cmd_stats(args: argparse.Namespace, ctx: Context) -> int:
    tasks = ctx.kube.list_tasks(None if args.all_namespaces else ctx.namespace)
    ctx.emit(
        {"phases": formatting.phase_counts(tasks), "total": len(tasks)},
        formatting.stats_table(tasks),
    )
    return EXIT_OK


def cmd_clear_finalizers(args: argparse.Namespace, ctx: Context) -> int:
    """Let deleted tasks that no operator finishes go: a dry run unless --yes."""
    older_than = positions.parse_age(args.older_than)
    tasks = ctx.kube.list_tasks(None if args.all_namespaces else ctx.namespace)
    found = finalizers.stuck(tasks, ctx.now(), older_than)
    if not found:
        print(
            f"No SyncTask has been held by {finalizers.FINALIZER} for {args.older_than} or more.",
            file=ctx.out,
        )
        return EXIT_OK
    for task in found:
        if args.yes:
            ctx.kube.json_patch_task(task.namespace, task.name, finalizers.release_patch(task))
            print(f"{KIND}/{task.name} -n {task.namespace}: finalizer removed", file=ctx.out)
        else:
            print(task.describe(), file=ctx.out)
    if not args.yes:
        print(
            "Dry run. A running operator removes its finalizer within seconds: these are "
            "stuck because none runs. Start the operator again to let it stop their workers "
            "first, or pass --yes to remove the finalizer.",
            file=ctx.out,
        )
    return EXIT_OK


VERBS: dict[str, Callable[[argparse.Namespace, Context], int]] = {
    "list": cmd_list,
    "status": cmd_status,
    "progress": cmd_progress,
    "pause": cmd_pause,
    "resume": cmd_resume,
    "restart": cmd_restart,
    "reset-position": cmd_reset_position,
    "skip": cmd_skip,
    "snapshot": cmd_snapshot,
    "history": cmd_history,
    "diff": cmd_diff,
    "rollback": cmd_rollback,
    "stats": cmd_stats,
    "clear-finalizers": cmd_clear_finalizers,
}
