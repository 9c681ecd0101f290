"""Run the operator: ``python -m ferry_operator.main [--namespace NS ...] [--all-namespaces]``
(``ferry operator`` calls :func:`run`). Without a namespace it watches all of them."""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
from collections.abc import Sequence

import kopf
from kopf._core.engines.peering import Identity  # kopf's NewType; not exported by kopf

from ferry_operator import heap, logs, observability

__all__ = ["add_arguments", "log_format_from", "main", "namespaces_from", "run"]


# How often the heap freed after a burst is handed back to the system (heap.py; 0: never).
TRIM_SECONDS = float(os.environ.get("FERRY_TRIM_SECONDS", "30"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="watch this namespace (repeatable); default: $FERRY_NAMESPACES or all",
    )
    parser.add_argument("--all-namespaces", "-A", action="store_true", help="watch every namespace")
    parser.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    parser.add_argument(
        "--log-format",
        choices=logs.FORMATS,
        default=None,
        help="text (default) or json: one JSON object per line; default: $FERRY_LOG_FORMAT",
    )


def namespaces_from(args: argparse.Namespace) -> list[str]:
    """The namespaces to watch; [] means all of them."""
    if getattr(args, "all_namespaces", False):
        return []
    given = list(getattr(args, "namespace", None) or [])
    env = os.environ.get("FERRY_NAMESPACES", "")
    return given or [ns for ns in env.split(",") if ns.strip()]


def _identity() -> Identity | None:
    """This replica's name among its peers: the pod's (the chart sets POD_NAME)."""
    pod = os.environ.get("POD_NAME")
    return Identity(pod) if pod else None


def log_format_from(args: argparse.Namespace) -> logs.LogFormat:
    """--log-format, else $FERRY_LOG_FORMAT, else text."""
    chosen = getattr(args, "log_format", None) or os.environ.get("FERRY_LOG_FORMAT") or "text"
    return "json" if chosen.lower() == "json" else "text"


def run(namespaces: Sequence[str], verbose: bool = False, log_format: str = "text") -> int:
    """Run kopf with Ferry's handlers until interrupted."""
    from ferry_operator import handlers  # registers the handlers

    handlers.NAMESPACES[:] = namespaces  # the owned objects' watches (owned_store.py)

    level = os.environ.get("FERRY_LOG_LEVEL", "INFO").upper()
    logs.configure(verbose, level, "json" if log_format == "json" else "text")
    # FERRY_LOG_CONFIG: a file (the chart's mounted ConfigMap) whose level and format win
    # over the above and are applied again whenever it changes.
    log_config_path = os.environ.get("FERRY_LOG_CONFIG") or None
    log_config = logs.LogConfig(
        "DEBUG" if verbose else level if level in logs.LEVELS else "INFO",
        "json" if log_format == "json" else "text",
    )
    if log_config_path:
        log_config = logs.read_config(log_config_path, log_config)
        logs.apply(log_config)
    # With FERRY_PEERING set, replicas elect one active operator through kopf's peering
    # objects (the chart installs kopf's peering CRDs); without it, it runs standalone.
    # Peers of equal priority all freeze, so each replica draws its own unless told.
    peering = os.environ.get("FERRY_PEERING") or None
    priority = int(os.environ.get("FERRY_PRIORITY") or (random.randint(1, 2**31) if peering else 0))
    http_port = os.environ.get("FERRY_HTTP_PORT")

    async def operate() -> None:
        heartbeat = observability.LoopHeartbeat()
        ticker = asyncio.create_task(heartbeat.run())
        trimmer = asyncio.create_task(heap.trim_every(TRIM_SECONDS))
        watcher = (
            asyncio.create_task(logs.watch(log_config_path, log_config))
            if log_config_path
            else None
        )
        if http_port:
            observability.serve(int(http_port), namespaces, heartbeat)
        try:
            await kopf.operator(
                standalone=peering is None,
                peering_name=peering,
                identity=_identity(),
                priority=priority,
                liveness_endpoint=os.environ.get("FERRY_LIVENESS") or None,
                namespaces=list(namespaces),
                clusterwide=not namespaces,
            )
        finally:
            ticker.cancel()
            trimmer.cancel()
            if watcher is not None:
                watcher.cancel()

    asyncio.run(operate())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ferry operator", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run(namespaces_from(args), args.verbose, log_format_from(args))


if __name__ == "__main__":
    sys.exit(main())
