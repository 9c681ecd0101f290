"""``kubectl ferry``: the kubectl plugin for people at a terminal and for scripts.

Installed as the ``kubectl-ferry`` executable, so ``kubectl ferry VERB`` finds it on PATH.
Verbs that change a task send one JSON merge patch of its ``spec`` (the same fields a
manifest would set) and nothing else; a repeated call writes nothing. ``pause``, ``resume``
and ``restart`` do so for each task of several names, ``-l`` or ``--all``. ``create`` makes a
new SyncTask from a TaskTemplate; ``clear-finalizers`` is the one verb that writes metadata.

Exit codes: 0 ok, 1 error (over several tasks: any of them failed), 2 usage, 3 the task,
template or revision does not exist.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ferry_operator.plugin import commands
from ferry_operator.plugin.errors import PluginError
from ferry_operator.plugin.formatting import PHASES
from ferry_operator.plugin.kube import Kube

__all__ = ["build_parser", "main"]


def _revision(text: str) -> int:
    """A revision as typed: ``3``, ``r3`` or ``<task>-r3``."""
    digits = text.rsplit("-r", 1)[-1].lstrip("r")
    if not digits.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a revision number (e.g. 3)")
    return int(digits)


def _common(suppress: bool) -> argparse.ArgumentParser:
    # On the verbs the defaults are suppressed, so `-n x` works before or after the verb.
    default = argparse.SUPPRESS if suppress else None
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-n", "--namespace", default=default, help="the namespace (default: the context's)"
    )
    common.add_argument("--context", default=default, help="the kubeconfig context to use")
    common.add_argument("--kubeconfig", default=default, help="path to the kubeconfig file")
    common.add_argument(
        "-o", "--output", choices=["json", "yaml"], default=default, help="machine-readable output"
    )
    return common


def _targets(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """NAME..., -l SELECTOR, --all, -A: the tasks a lifecycle verb acts on."""
    sub.add_argument("names", nargs="*", metavar="NAME", help="one or more SyncTasks")
    sub.add_argument("-l", "--selector", help="the SyncTasks with these labels (team=shop)")
    sub.add_argument("--all", action="store_true", help="every SyncTask in the namespace")
    sub.add_argument(
        "-A", "--all-namespaces", action="store_true", help="with -l or --all: every namespace"
    )
    return sub


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubectl ferry",
        description=(
            "Inspect and drive Ferry SyncTasks. Exit codes: 0 ok, 1 error, 2 usage, 3 not found."
        ),
        parents=[_common(suppress=False)],
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    common = [_common(suppress=True)]

    def verb(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = verbs.add_parser(name, help=help_text, description=help_text, parents=common)
        sub.set_defaults(handler=commands.VERBS[name])
        return sub

    for name, help_text in (
        ("list", "list SyncTasks: name, phase, lag, progress, position, age"),
        ("stats", "count SyncTasks per phase"),
    ):
        sub = verb(name, help_text)
        sub.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")
        if name == "list":
            sub.add_argument("--phase", choices=PHASES, help="only tasks in this phase")

    status = verb("status", "a task's phase, conditions, position, counters and last errors")
    status.add_argument("name")
    status.add_argument("-w", "--watch", action="store_true", help="print again on each change")
    status.add_argument(
        "--watch-timeout", type=float, metavar="SECONDS", help="with --watch: stop after this"
    )

    progress = verb("progress", "snapshot progress bars and ETA")
    progress.add_argument("name")
    progress.add_argument("--by-table", action="store_true", help="one bar per table")
    progress.add_argument("--table", metavar="TABLE", help="only this table (db.table)")
    progress.add_argument(
        "-w", "--watch", action="store_true", help="redraw until the snapshot is over"
    )
    progress.add_argument(
        "--interval", type=float, default=2.0, help="seconds between redraws (default 2)"
    )

    pause = _targets(verb("pause", "set spec.paused (the worker checkpoints and stops)"))
    pause.add_argument(
        "--resume-at", metavar="TIME", help="RFC 3339 time or a duration from now (30m, 2h, 1d)"
    )

    _targets(verb("resume", "clear spec.paused and spec.resumeAt"))

    restart = _targets(verb("restart", "restart the worker once (a new spec.restartNonce)"))
    restart.add_argument(
        "--nonce", help="use this nonce (default: a new one); the same nonce twice is a no-op"
    )

    reset = verb("reset-position", "move the worker's position once (a new spec.resetPosition)")
    reset.add_argument("name")
    reset.add_argument(
        "--to",
        required=True,
        metavar="POSITION",
        help="FILE:POS, gtid:SET, an RFC 3339 time, earliest or latest",
    )
    reset.add_argument(
        "--nonce", help="use this nonce (default: a new one); the same nonce twice is a no-op"
    )

    skip = verb("skip", "skip one binlog event once (a new spec.skipEvent)")
    skip.add_argument("name")
    where = skip.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--position",
        metavar="FILE:POS",
        help="the row event's position, as a PoisonRow error in status.lastErrors shows it",
    )
    where.add_argument("--gtid", metavar="GTID", help="a MariaDB GTID: skip that transaction")
    skip.add_argument(
        "--nonce", help="use this nonce (default: a new one); the same nonce twice is a no-op"
    )

    snapshot = verb("snapshot", "read tables again while streaming (a new spec.snapshotRequest)")
    snapshot.add_argument("name")
    snapshot.add_argument(
        "--table",
        action="append",
        required=True,
        metavar="DATABASE.TABLE",
        help="a selected table or a glob (shop.*); repeat for several",
    )
    snapshot.add_argument(
        "--cancel", action="store_true", help="stop re-reading these tables instead"
    )
    snapshot.add_argument(
        "--where",
        metavar="CONDITION",
        help="read again only the rows matching this SQL condition (snapshotRequest.where)",
    )
    snapshot.add_argument(
        "--nonce", help="use this nonce (default: a new one); the same nonce twice is a no-op"
    )

    verify = verb("verify", "compare the source with the sink once (a new spec.verifyRequest)")
    verify.add_argument("name")
    verify.add_argument(
        "--table",
        action="append",
        metavar="DATABASE.TABLE",
        help="a selected table or a glob (shop.*); repeat for several (default: all)",
    )
    verify.add_argument(
        "--repair", action="store_true", help="MySQL sink: rewrite mismatched rows from the source"
    )
    verify.add_argument("--chunk-size", type=int, metavar="N", help="rows per checksum chunk")
    verify.add_argument(
        "--wait", action="store_true", help="wait for the result (exit 1 when drift is found)"
    )
    verify.add_argument(
        "--timeout", type=float, default=600.0, help="seconds --wait waits (default 600)"
    )
    verify.add_argument(
        "--nonce", help="use this nonce (default: a new one); the same nonce twice is a no-op"
    )

    verb("history", "the task's config revisions").add_argument("name")

    diff = verb("diff", "diff two config revisions (default: against the current one)")
    diff.add_argument("name")
    diff.add_argument("rev", type=_revision, metavar="REV")
    diff.add_argument("other", type=_revision, nargs="?", metavar="REV")

    rollback = verb("rollback", "patch the spec back to a revision's (lifecycle fields kept)")
    rollback.add_argument("name")
    rollback.add_argument("--to-revision", type=_revision, required=True, metavar="N")

    clear = verb(
        "clear-finalizers",
        "let deleted SyncTasks that no operator finishes go (a dry run without --yes)",
    )
    clear.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")
    clear.add_argument(
        "--older-than",
        default="5m",
        metavar="AGE",
        help="only tasks deleted at least this long ago (default 5m; 30s, 10m, 1h)",
    )
    clear.add_argument("--yes", action="store_true", help="remove the finalizer (else: list)")

    logs = verb("logs", "the worker pod's log")
    logs.add_argument("name")
    logs.add_argument("-f", "--follow", action="store_true", help="keep streaming new lines")
    logs.add_argument("--since", metavar="DURATION", help="only lines this recent (30s, 5m, 1h)")
    logs.add_argument("--tail", type=int, metavar="LINES", help="only the last LINES lines")
    logs.add_argument(
        "-p", "--previous", action="store_true", help="the previous (crashed) container's log"
    )

    create = verb("create", "create a SyncTask from a TaskTemplate")
    create.add_argument("name")
    create.add_argument("--template", required=True, metavar="T", help="the TaskTemplate")
    create.add_argument(
        "--include", action="append", metavar="GLOB", help="db.table globs (repeat, or a,b)"
    )
    create.add_argument(
        "--exclude", action="append", metavar="GLOB", help="db.table globs left out"
    )
    create.add_argument("--label", action="append", metavar="KEY=VALUE", help="a label (repeat)")
    create.add_argument(
        "--dry-run",
        nargs="?",
        const="client",
        metavar="client|server",
        help="print the SyncTask (client) or have the API server check it (server); create nothing",
    )

    template_from = verb("template-from", "print a TaskTemplate made from a SyncTask")
    template_from.add_argument("name")
    template_from.add_argument(
        "--name", dest="template_name", metavar="TEMPLATE", help="its name (default: NAME)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        kube = Kube(kubeconfig=args.kubeconfig, context=args.context)
        ctx = commands.Context(
            kube=kube, namespace=args.namespace or kube.default_namespace, output=args.output
        )
        code: int = args.handler(args, ctx)
    except PluginError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    return code


if __name__ == "__main__":
    sys.exit(main())
