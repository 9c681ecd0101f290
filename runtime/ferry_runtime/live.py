"""Hot reload: which worker config fields a running worker takes without a restart.

:data:`LIVE_FIELDS` is the one list of them (camelCase paths in the worker config, as in the
SyncTask spec). The operator renders the worker Deployment so that only the *restart part*
(everything else) rolls the pod (:func:`restart_hash`); the worker watches its config file
(:class:`Watcher`) and applies a change of the live part at the next transaction boundary
(rules and batching) or at once (log level and format). docs/operations.md lists the same
fields (a unit test keeps the two in step).
"""

from __future__ import annotations

import copy
import hashlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from ferry_runtime import config as config_module
from ferry_runtime.config import WorkerConfig

__all__ = [
    "LIVE_FIELDS",
    "LOGGING_FIELDS",
    "Change",
    "Watcher",
    "live_part",
    "overlay",
    "restart_hash",
    "restart_part",
    "rules_part",
]

# Fields a running worker applies without a restart. Rules and batching apply at the next
# transaction boundary (the worker commits what it has, then goes on with the new rules from
# that checkpoint, in the same process); logging applies at once.
LIVE_FIELDS: tuple[str, ...] = (
    "include",
    "exclude",
    "mapping",
    "performance.batchSize",
    "performance.maxBatchDelay",
    "logLevel",
    "logFormat",
)
LOGGING_FIELDS: tuple[str, ...] = ("logLevel", "logFormat")
POLL_SECONDS = 1.0

log = logging.getLogger("ferry.live")


def _dump(config: WorkerConfig) -> dict[str, Any]:
    return config.model_dump(mode="json", by_alias=True, exclude_none=True)


def _split(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(restart part, live part) of a dumped config; missing live fields stay missing."""
    restart = copy.deepcopy(data)
    live: dict[str, Any] = {}
    for path in LIVE_FIELDS:
        *parents, leaf = path.split(".")
        holder: Any = restart
        for key in parents:
            holder = holder.get(key) if isinstance(holder, dict) else None
        if isinstance(holder, dict) and leaf in holder:
            live[path] = holder.pop(leaf)
    return restart, live


def restart_part(config: WorkerConfig) -> dict[str, Any]:
    """The config without its live fields: what only a new worker process takes."""
    return _split(_dump(config))[0]


def live_part(config: WorkerConfig) -> dict[str, Any]:
    """The live fields, by path (``performance.batchSize``: 500)."""
    return _split(_dump(config))[1]


def rules_part(config: WorkerConfig) -> dict[str, Any]:
    """The live fields that need a transaction boundary (all but logging)."""
    return {k: v for k, v in live_part(config).items() if k not in LOGGING_FIELDS}


def restart_hash(config: WorkerConfig) -> str:
    """A short, stable hash of :func:`restart_part`: the worker pod rolls exactly when it
    changes (the pod template carries it)."""
    text = yaml.safe_dump(restart_part(config), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def overlay(running: WorkerConfig, new: WorkerConfig) -> WorkerConfig:
    """``running`` with ``new``'s live fields (a live field ``new`` leaves out goes back to
    its default)."""
    data, _ = _split(_dump(running))
    for path, value in live_part(new).items():
        *parents, leaf = path.split(".")
        holder = data
        for key in parents:
            holder = holder.setdefault(key, {})
        holder[leaf] = value
    return config_module.parse(data)


class Change:
    """A new config file seen by the :class:`Watcher`: its config, its revision, and whether
    it can be applied live (its restart part equals the running one's)."""

    def __init__(self, config: WorkerConfig, revision: str | None, live: bool) -> None:
        self.config, self.revision, self.live = config, revision, live


class Watcher:
    """Polls the worker's config file (and its revision file) every ``interval`` seconds and
    calls ``on_change`` with each new content. Kubernetes updates a mounted ConfigMap by
    swapping a symlink, so the content is compared, not the file's identity."""

    def __init__(
        self,
        path: str | Path,
        running: WorkerConfig,
        on_change: Callable[[Change], None],
        revision_path: str | Path | None = None,
        interval: float = POLL_SECONDS,
    ) -> None:
        self.path = Path(path)
        self.revision_path = Path(revision_path) if revision_path else None
        self.running = running
        self.on_change = on_change
        self.interval = interval
        self._seen = self._read()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="config-watcher", daemon=True)

    def _read(self) -> tuple[str, str | None] | None:
        try:
            text = self.path.read_text()
            revision = self.revision_path.read_text().strip() if self.revision_path else None
        except OSError:
            return None  # between two swaps, or gone: look again later
        return text, revision or None

    def revision(self) -> str | None:
        return self._seen[1] if self._seen else None

    def start(self) -> Watcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def poll(self) -> Change | None:
        """Look once; the change (also passed to ``on_change``), or None."""
        found = self._read()
        if found is None or found == self._seen:
            return None
        self._seen = found
        try:
            new = config_module.parse(yaml.safe_load(found[0]))
        except (config_module.ConfigError, yaml.YAMLError) as error:
            log.warning("%s changed but is not a valid config, kept the running one: %s",
                        self.path, error)  # fmt: skip
            return None
        live = restart_part(new) == restart_part(self.running)
        if live:
            self.running = overlay(self.running, new)
        change = Change(self.running if live else new, found[1], live)
        self.on_change(change)
        return change

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll()
            except Exception:  # never let the watcher die silently
                log.exception("watching %s failed", self.path)
