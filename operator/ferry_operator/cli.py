"""The ``ferry`` command: one entry point for the operator, the worker and local runs.

Verbs import their implementation lazily, so ``ferry worker`` never loads kopf.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from ferry_operator import __version__
from ferry_runtime import cli as runtime_cli

__all__ = ["main"]


def _operator(args: argparse.Namespace) -> int:
    # Namespaces come from --namespace when the parser has it, else $FERRY_NAMESPACES, else all.
    operator_main = importlib.import_module("ferry_operator.main")
    code: int = operator_main.run(
        operator_main.namespaces_from(args),
        bool(getattr(args, "verbose", False)),
        operator_main.log_format_from(args),
    )
    return code


def _run(args: argparse.Namespace) -> int:
    # `ferry run` renders the manifests with the operator's renderers, so it lives here.
    local_run = importlib.import_module("ferry_operator.local_run")
    code: int = local_run.run(args)
    return code


def _version(args: argparse.Namespace) -> int:
    print(f"ferry {__version__}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ferry", description="Ferry: MySQL/MariaDB change data capture on Kubernetes."
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    operator = verbs.add_parser("operator", help="run the Kubernetes operator")
    operator.add_argument(
        "-n",
        "--namespace",
        action="append",
        help="watch this namespace (repeatable; default: $FERRY_NAMESPACES, else all)",
    )
    operator.add_argument(
        "-A", "--all-namespaces", action="store_true", help="watch every namespace"
    )
    operator.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    operator.add_argument(
        "--log-format",
        choices=("text", "json"),
        default=None,
        help="text (default) or json (one object per line); default: $FERRY_LOG_FORMAT",
    )
    operator.set_defaults(handler=_operator)

    worker = verbs.add_parser("worker", help="run one sync task from a worker config")
    runtime_cli.add_worker_arguments(worker)
    worker.set_defaults(handler=runtime_cli.worker)

    run = verbs.add_parser("run", help="run a SyncTask from its manifests, without a cluster")
    runtime_cli.add_run_arguments(run)
    run.set_defaults(handler=_run)

    version = verbs.add_parser("version", help="print the version")
    version.set_defaults(handler=_version)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = args.handler
    code: int = handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
