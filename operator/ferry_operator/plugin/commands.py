"""One function per ``kubectl ferry`` verb: read through :class:`~.kube.Kube`, decide with
the pure modules, write at most one merge patch, and print.

Each takes the parsed arguments and a :class:`Context` and returns an exit code.
"""

from __future__ import annotations

import argparse
import codecs
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

import yaml

from ferry_operator.plugin import (
    bulk,
    finalizers,
    formatting,
    gitops,
    lifecycle,
    positions,
    revisions,
    templates,
    workerlogs,
)
from ferry_operator.plugin.errors import (
    EXIT_ERROR,
    EXIT_OK,
    NotFoundError,
    PluginError,
    UsageError,
)
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
    if not getattr(args, "watch", False):
        ctx.emit(task, formatting.status_panel(task, ctx.now()))
        return EXIT_OK
    return _watch_status(args, ctx, task)


def _what_changes(task: dict[str, Any]) -> Any:
    """The parts of a task whose change re-prints ``status --watch`` (not resourceVersion
    or managedFields alone)."""
    meta = task.get("metadata") or {}
    return (
        meta.get("generation"),
        meta.get("labels"),
        meta.get("deletionTimestamp"),
        task.get("spec"),
        task.get("status"),
    )


def _watch_status(args: argparse.Namespace, ctx: Context, task: dict[str, Any]) -> int:
    """Print the status panel, then again each time the task changes, until Ctrl-C, the
    task's deletion or ``--watch-timeout`` seconds."""
    interactive = ctx.out.isatty() and not ctx.output
    deadline = None if args.watch_timeout is None else time.monotonic() + args.watch_timeout
    shown = 0

    def show(current: dict[str, Any]) -> None:
        nonlocal shown
        if interactive:
            print("\033[H\033[J", end="", file=ctx.out)
        elif shown:
            print("---" if ctx.output == "yaml" else "", file=ctx.out)
        ctx.emit(current, formatting.status_panel(current, ctx.now()))
        ctx.out.flush()
        shown += 1

    show(task)
    try:
        while deadline is None or time.monotonic() < deadline:
            left = 300 if deadline is None else min(300, deadline - time.monotonic())
            version = str(task["metadata"].get("resourceVersion") or "")
            opened = time.monotonic()
            for kind, current in ctx.kube.watch_task(
                ctx.namespace, args.name, version, int(left + 0.999)
            ):
                if kind == "ERROR":
                    # The version is older than the API server's watch cache holds (busy
                    # clusters): read the task again and watch on from there.
                    try:
                        current = ctx.kube.get_task(ctx.namespace, args.name)
                    except NotFoundError:
                        kind = "DELETED"
                if kind == "DELETED":
                    print(f"{KIND}/{args.name} was deleted", file=ctx.out)
                    return EXIT_OK
                if _what_changes(current) != _what_changes(task):
                    show(current)
                task = current
            if time.monotonic() - opened < 1:  # a watch the server ended at once: not a loop
                time.sleep(1)
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def _progress_data(task: dict[str, Any]) -> dict[str, Any]:
    status = task.get("status") or {}
    return {
        "name": task["metadata"]["name"],
        "phase": status.get("phase") or "Pending",
        "progress": status.get("progress") or {},
    }


def _progress(args: argparse.Namespace, ctx: Context, task: dict[str, Any]) -> None:
    table = getattr(args, "table", None)
    if table is None:
        ctx.emit(_progress_data(task), formatting.progress_view(task, args.by_table, ctx.now()))
        return
    entry = formatting.find_table(task, table)
    ctx.emit(
        {**_progress_data(task), "progress": entry or {}},
        formatting.table_progress(task, table, ctx.now()),
    )


def cmd_progress(args: argparse.Namespace, ctx: Context) -> int:
    if getattr(args, "table", None) is not None and args.by_table:
        raise UsageError("--table and --by-table do not go together: use one of them")
    task = ctx.kube.get_task(ctx.namespace, args.name)
    if not args.watch:
        _progress(args, ctx, task)
        return EXIT_OK
    # --watch: redraw until the snapshot is over (phase past Snapshotting) or Ctrl-C.
    interactive = ctx.out.isatty() and not ctx.output
    try:
        while True:
            if interactive:
                print("\033[H\033[J", end="", file=ctx.out)
            _progress(args, ctx, task)
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


def _apply_one(
    ctx: Context, task: dict[str, Any], decide: Callable[[dict[str, Any]], lifecycle.Change]
) -> bulk.Outcome:
    """One task of a bulk verb: decide, patch (one request, or none), and never raise."""
    meta = task["metadata"]
    name, namespace = meta["name"], meta["namespace"]
    try:
        change = decide(_spec(task))
        if change.patch is not None:
            notice = gitops.warning(task, change.patch)
            if notice:
                print(notice, file=sys.stderr)
            ctx.kube.patch_task(namespace, name, change.patch)
    except PluginError as error:
        return bulk.Outcome(name, namespace, bulk.FAILED, str(error))
    result = bulk.CHANGED if change.changed else bulk.UNCHANGED
    return bulk.Outcome(name, namespace, result, change.message, change.patch)


def _lifecycle(
    args: argparse.Namespace,
    ctx: Context,
    decide: Callable[[dict[str, Any]], lifecycle.Change],
) -> int:
    """A lifecycle verb over one task (the one-task output) or many (a summary table)."""
    selected = bulk.selection(args)
    if selected.single is not None:
        task = ctx.kube.get_task(ctx.namespace, selected.single)
        return _apply(ctx, task, decide(_spec(task)))
    outcomes: list[bulk.Outcome] = []
    if selected.selector is None:
        for name in selected.names:
            try:
                task = ctx.kube.get_task(ctx.namespace, name)
            except PluginError as error:
                failed = "not found" if isinstance(error, NotFoundError) else str(error)
                outcomes.append(bulk.Outcome(name, ctx.namespace, bulk.FAILED, failed))
                continue
            outcomes.append(_apply_one(ctx, task, decide))
    else:
        namespace = None if selected.all_namespaces else ctx.namespace
        tasks = ctx.kube.list_tasks(namespace, selected.selector or None)
        if not tasks and not ctx.output:
            print(f"No SyncTasks match {selected.describe(ctx.namespace)}.", file=ctx.out)
            return EXIT_OK
        outcomes = [_apply_one(ctx, task, decide) for task in tasks]
    ctx.emit(
        {"results": [o.data() for o in outcomes], "summary": bulk.summary(outcomes)},
        bulk.summary_table(outcomes),
    )
    return bulk.exit_code(outcomes)


def cmd_pause(args: argparse.Namespace, ctx: Context) -> int:
    resume_at = positions.parse_resume_at(args.resume_at, ctx.now()) if args.resume_at else None
    return _lifecycle(args, ctx, lambda spec: lifecycle.pause(spec, resume_at))


def cmd_resume(args: argparse.Namespace, ctx: Context) -> int:
    return _lifecycle(args, ctx, lifecycle.resume)


def cmd_restart(args: argparse.Namespace, ctx: Context) -> int:
    nonce = args.nonce or positions.new_nonce(ctx.now())
    return _lifecycle(args, ctx, lambda spec: lifecycle.restart(spec, nonce))


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
    change = lifecycle.snapshot_request(
        _spec(task), args.table, nonce, cancel=args.cancel, where=args.where
    )
    return _apply(ctx, task, change)


def cmd_verify(args: argparse.Namespace, ctx: Context) -> int:
    """Set a new verifyRequest; with --wait, wait for its result: exit 0 when it found no
    drift, 1 when it found some or failed."""
    nonce = args.nonce or positions.new_nonce(ctx.now())
    task = ctx.kube.get_task(ctx.namespace, args.name)
    change = lifecycle.verify_request(_spec(task), nonce, args.table, args.repair, args.chunk_size)
    code = _apply(ctx, task, change)
    if not args.wait:
        return code
    deadline = time.monotonic() + args.timeout
    while True:
        task = ctx.kube.get_task(ctx.namespace, args.name)
        found = (task.get("status") or {}).get("verification") or {}
        if found.get("nonce") == nonce and found.get("state") not in (None, "Running"):
            break
        if time.monotonic() > deadline:
            raise PluginError(
                f"no verification result for nonce {nonce} after {args.timeout:.0f}s (the "
                "worker verifies once it streams; see kubectl ferry status)"
            )
        time.sleep(2)
    ctx.emit(found, "\n".join(formatting.verification_lines(found)))
    clean = found.get("state") == "Completed" and not found.get("mismatchedRows")
    return EXIT_OK if clean else EXIT_ERROR


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


def cmd_logs(args: argparse.Namespace, ctx: Context) -> int:
    """The worker pod's log: status.workerPod, else the Deployment's newest pod."""
    since = (
        int(positions.parse_duration(args.since, "--since").total_seconds()) if args.since else None
    )
    if args.tail is not None and args.tail < 0:
        raise UsageError(f"--tail {args.tail}: give a number of lines, 0 or more")
    task = ctx.kube.get_task(ctx.namespace, args.name)
    deployment = ctx.kube.read_deployment(ctx.namespace, f"{args.name}-worker")
    pods = ctx.kube.list_pods(ctx.namespace, workerlogs.selector(args.name, deployment))
    pod = workerlogs.pick_pod(task, pods)
    if pod is None:
        raise PluginError(workerlogs.no_pod_message(task))
    print(f"# pod/{pod}", file=sys.stderr)
    text = codecs.getincrementaldecoder("utf-8")(errors="replace")  # chunks split characters
    try:
        for chunk in ctx.kube.pod_logs(
            ctx.namespace,
            pod,
            workerlogs.CONTAINER,
            follow=args.follow,
            since_seconds=since,
            tail_lines=args.tail,
            previous=args.previous,
        ):
            ctx.out.write(text.decode(chunk))
            ctx.out.flush()
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def _print_manifest(ctx: Context, manifest: dict[str, Any]) -> None:
    """A manifest to apply: JSON with ``-o json``, else YAML in the order people write it."""
    if ctx.output == "json":
        ctx.emit(manifest, "")
    else:
        print(templates.dump(manifest), file=ctx.out)


def cmd_create(args: argparse.Namespace, ctx: Context) -> int:
    """A SyncTask that refers to a TaskTemplate and names its own tables."""
    if args.dry_run not in (None, "client", "server"):
        raise UsageError(f"--dry-run={args.dry_run}: use client or server")
    labels = templates.parse_labels(args.label)
    template = ctx.kube.get_template(ctx.namespace, args.template)
    task = templates.build_task(
        args.name,
        ctx.namespace,
        template,
        templates.split_globs(args.include),
        templates.split_globs(args.exclude),
        labels,
    )
    if args.dry_run == "client":
        _print_manifest(ctx, task)
        return EXIT_OK
    created = ctx.kube.create_task(ctx.namespace, task, dry_run=args.dry_run == "server")
    suffix = " (server dry run)" if args.dry_run == "server" else ""
    ctx.emit(created, f"{KIND}/{args.name} created{suffix}")
    return EXIT_OK


def cmd_template_from(args: argparse.Namespace, ctx: Context) -> int:
    """A TaskTemplate manifest from an existing task (YAML unless -o json)."""
    task = ctx.kube.get_task(ctx.namespace, args.name)
    template = None
    ref = (_spec(task).get("templateRef") or {}).get("name")
    if ref:
        try:
            template = ctx.kube.get_template(ctx.namespace, ref)
        except NotFoundError:
            print(
                f"warning: SyncTask {args.name!r} refers to TaskTemplate {ref!r}, which does "
                "not exist: only the task's own fields are used",
                file=sys.stderr,
            )
    _print_manifest(ctx, templates.template_from(task, template, args.template_name or args.name))
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
    "verify": cmd_verify,
    "snapshot": cmd_snapshot,
    "history": cmd_history,
    "diff": cmd_diff,
    "rollback": cmd_rollback,
    "stats": cmd_stats,
    "clear-finalizers": cmd_clear_finalizers,
    "logs": cmd_logs,
    "create": cmd_create,
    "template-from": cmd_template_from,
}
