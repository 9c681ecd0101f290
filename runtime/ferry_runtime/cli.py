"""Command line of the worker: ``ferry-worker`` and the ``worker``/``run`` verbs of ``ferry``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["add_run_arguments", "add_worker_arguments", "main", "run", "worker"]

NOT_YET = 2  # exit code of a verb whose implementation has not landed yet


def add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="path of the worker config (YAML)")


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("manifests", nargs="+", help="SyncTask, Connector and Secret manifests")


def worker(args: argparse.Namespace) -> int:
    print(f"ferry worker: not yet implemented (config {args.config!r} not read)", file=sys.stderr)
    return NOT_YET


def run(args: argparse.Namespace) -> int:
    print("ferry run: not yet implemented", file=sys.stderr)
    return NOT_YET


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ferry-worker", description="Run one Ferry sync task.")
    add_worker_arguments(parser)
    return worker(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
