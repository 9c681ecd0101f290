"""Command line of the worker: ``ferry-worker`` and the ``worker`` verb of ``ferry``.

``ferry worker --config worker.yaml`` runs one task: SIGTERM/SIGINT flush, commit the
checkpoint and exit 0; an unrecoverable error exits 1 after printing
``ferry worker: failed: <Reason>: <what to do>`` (never a password) as the last line of
stderr, on one line (a bad config: the file, and the line and column of a YAML error).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["add_run_arguments", "add_worker_arguments", "main", "worker"]

EXIT_INVALID_CONFIG = 1


def add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="path of the worker config (YAML)")
    parser.add_argument(
        "--revision-file",
        default=None,
        help="a file holding the config's revision name (status.appliedRevision); on "
        "Kubernetes, beside the config in the mounted ConfigMap",
    )
    parser.add_argument(
        "--no-watch",
        action="store_true",
        help="do not watch the config file for live changes (ferry_runtime.live.LIVE_FIELDS)",
    )


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("manifests", nargs="+", help="SyncTask, Connector and Secret manifests")


def worker(args: argparse.Namespace) -> int:
    from ferry_runtime import config as config_module
    from ferry_runtime import errors, live, logs, status
    from ferry_runtime import reporter as reporter_module
    from ferry_runtime import server as server_module
    from ferry_runtime import worker as worker_module

    worker_module.tune_garbage_collector()
    logs.configure()
    try:
        config = config_module.load(args.config)
    except OSError as error:
        return _failed("InvalidConfig", f"cannot read {args.config}: {error.strerror or error}")
    except config_module.ConfigError as error:
        return _failed("InvalidConfig", str(error))
    secrets = [value for name in config.secret_envs() if (value := os.environ.get(name))]
    logs.configure(config.log_level, config.log_format, secrets)
    tracker = status.StatusTracker()
    the_worker = worker_module.Worker(config, tracker)
    watcher = live.Watcher(
        args.config, config, lambda change: _on_change(the_worker, change), args.revision_file
    )
    tracker.set_applied_revision(watcher.revision())
    if not getattr(args, "no_watch", False):
        watcher.start()

    def on_signal(signum: int, _frame: Any) -> None:
        tracker.set_state("Stopping")
        the_worker.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    server = server_module.start(tracker, config.reporting.port)
    print(f"ferry worker: status on port {server.port}", file=sys.stderr, flush=True)
    reporter = reporter_module.start(tracker, config.reporting, config.task, secrets=secrets)
    try:
        code = the_worker.run()
    except Exception as error:  # a bug: the traceback for us, the failed: line still last
        logging.getLogger("ferry.worker").exception("the worker crashed")
        detail = errors.scrub(f"{type(error).__name__}: {error}", *secrets)
        code = worker_module.EXIT_FAILED
        the_worker.failure = errors.FatalError("InternalError", detail)
    finally:
        watcher.stop()
        if reporter is not None:
            reporter.stop()
        server.stop()
    for handler in logging.getLogger().handlers:  # log lines before the last one
        handler.flush()
    if the_worker.failure is not None:
        return _failed(the_worker.failure.reason, the_worker.failure.message, code)
    print(f"ferry worker: {tracker.state.lower()}", file=sys.stderr)
    return code


def _on_change(the_worker: Any, change: Any) -> None:
    """A new config file (ferry_runtime.live.Watcher): logging at once, rules and batching
    at the worker's next transaction boundary; a restart field waits for a new process."""
    from ferry_runtime import logs

    log = logging.getLogger("ferry.live")
    if not change.live:
        log.info(
            "the config changed in fields that need a new worker process (revision %s); "
            "this one keeps its config until it is replaced",
            change.revision,
        )
        return
    config, before = change.config, the_worker.config
    if (config.log_level, config.log_format) != (before.log_level, before.log_format):
        logs.configure(config.log_level, config.log_format)
        log.warning(  # at WARNING: shown at any level
            "log level %s, format %s (revision %s)",
            config.log_level or "INFO", config.log_format or "text", change.revision,
        )  # fmt: skip
    the_worker.reload(config, change.revision)


def _failed(reason: str, message: str, code: int = EXIT_INVALID_CONFIG) -> int:
    """Print the one ``failed:`` line (newlines folded) last on stderr; return ``code``."""
    one_line = " ".join(message.split())
    sys.stderr.flush()
    print(f"ferry worker: failed: {reason}: {one_line}", file=sys.stderr, flush=True)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ferry-worker", description="Run one Ferry sync task.")
    add_worker_arguments(parser)
    return worker(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
