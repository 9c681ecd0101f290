"""``ferry run <manifests…>``: run a SyncTask on this machine from the manifests a cluster
would get, with a live progress display.

Steps: read the YAML files (multi-document) → pick the SyncTask, its Connectors, its
TaskTemplate and Secrets → render the WorkerConfig with the operator's own renderer
(:mod:`ferry_operator.render.worker_config`, so a local run and a cluster run agree) →
resolve the passwords and certificates (from a Secret manifest, else from the environment
variable ``FERRY_SECRET_<SECRET NAME>_<KEY>``) → write the certificates and keys into a private
temporary directory (mode 0700, files 0600, removed when the run ends) → run
``ferry_runtime.worker.Worker`` in the main thread while a display thread draws per-table
snapshot progress bars (percent, ETA) and then one streaming line (state, lag, events/s,
position), about once a second; plain lines every few seconds when stdout is not a TTY.

Passwords reach the worker the way they do on Kubernetes: as environment variables named in
the config (set in this process only), never inside the config itself. Certificates reach it as
files, like the Secret volumes of a worker pod, at the paths the config names.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import logging
import os
import re
import signal
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml
from pydantic import ValidationError

from ferry_operator.api.base import Resource
from ferry_operator.api.connector import Connector
from ferry_operator.api.synctask import SyncTask
from ferry_operator.api.tasktemplate import TaskTemplate
from ferry_operator.render import worker_config
from ferry_operator.render.errors import RenderError
from ferry_runtime.config import WorkerConfig
from ferry_runtime.status import StatusTracker

__all__ = [
    "Display",
    "ManifestError",
    "Manifests",
    "RateMeter",
    "bar",
    "load_manifests",
    "render",
    "render_lines",
    "run",
    "secret_env_name",
    "short_duration",
]

EXIT_INVALID = 2
PLAIN_EVERY_SECONDS = 5.0
GROUP = "ferry.dev/"

log = logging.getLogger(__name__)


class ManifestError(ValueError):
    """The manifests cannot be run; the message names the object and field."""


# ---------------------------------------------------------------- reading manifests


@dataclass
class Manifests:
    """The objects found in the files, by kind, each keyed by name."""

    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    connectors: dict[str, dict[str, Any]] = field(default_factory=dict)
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)
    secrets: dict[str, dict[str, Any]] = field(default_factory=dict)


_KINDS = {
    ("SyncTask", True): "tasks",
    ("Connector", True): "connectors",
    ("TaskTemplate", True): "templates",
    ("Secret", False): "secrets",
}


def load_manifests(paths: Iterable[str | Path]) -> Manifests:
    """Read every YAML document of every file; other kinds are ignored with a warning."""
    found = Manifests()
    for path in paths:
        try:
            documents = list(yaml.safe_load_all(Path(path).read_text()))
        except OSError as error:
            raise ManifestError(f"{path}: cannot read: {error.strerror}") from None
        except yaml.YAMLError as error:
            raise ManifestError(f"{path}: not valid YAML: {error}") from None
        for index, doc in enumerate(documents):
            if doc is None:
                continue
            if not isinstance(doc, dict):
                raise ManifestError(f"{path}: document {index + 1} is not a mapping")
            kind = doc.get("kind")
            ours = str(doc.get("apiVersion", "")).startswith(GROUP)
            bucket = _KINDS.get((str(kind), ours))
            name = (doc.get("metadata") or {}).get("name")
            if bucket is None:
                log.warning("%s: ignoring %s %s", path, kind, name)
                continue
            if not name:
                raise ManifestError(f"{path}: a {kind} without metadata.name")
            getattr(found, bucket)[name] = doc
    return found


# ---------------------------------------------------------------- rendering


def secret_env_name(secret: str, key: str) -> str:
    """The environment variable read when a Secret is not among the manifests."""
    return re.sub(r"[^A-Z0-9]", "_", f"FERRY_SECRET_{secret}_{key}".upper())


def _secret_value(found: Manifests, secret: str, key: str) -> str:
    manifest = found.secrets.get(secret)
    if manifest is not None:
        if key in (manifest.get("stringData") or {}):
            return str(manifest["stringData"][key])
        if key in (manifest.get("data") or {}):
            try:
                return base64.b64decode(manifest["data"][key], validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise ManifestError(
                    f"Secret {secret!r}: data.{key} is not base64 of UTF-8 text"
                ) from None
        raise ManifestError(f"Secret {secret!r} has no key {key!r}")
    env = secret_env_name(secret, key)
    if env in os.environ:
        return os.environ[env]
    raise ManifestError(
        f"Secret {secret!r} (key {key!r}) is not among the manifests and ${env} is not set; "
        f"pass the Secret's manifest or export {env}"
    )


def _parse(model: type[Resource], manifest: dict[str, Any]) -> Any:
    name = manifest["metadata"]["name"]
    try:
        return model.model_validate(manifest)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in error.errors()
        )
        raise ManifestError(f"{manifest['kind']} {name}: {problems}") from None


def _write_private(path: Path, text: str) -> None:
    """``text`` into a new file only this user can read (0600 from its creation)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)


def render(found: Manifests, tls_dir: Path | None = None) -> tuple[WorkerConfig, dict[str, str]]:
    """The WorkerConfig of the one SyncTask in ``found`` (with the operator's renderer), and
    the environment (variable → password) the worker reads its credentials from.

    When the Connectors take certificates from Secrets (``tls.caSecretRef``,
    ``tls.clientCertSecretRef``), their keys are written under ``tls_dir`` (an empty private
    directory the caller owns and removes) as a worker pod's Secret volumes would be, and
    the config names those files."""
    if len(found.tasks) != 1:
        names = ", ".join(sorted(found.tasks)) or "none"
        raise ManifestError(f"pass exactly one SyncTask (found: {names})")
    task: SyncTask = _parse(SyncTask, next(iter(found.tasks.values())))
    connectors = {name: _parse(Connector, c) for name, c in found.connectors.items()}
    template = None
    if task.spec.template_ref is not None:
        manifest = found.templates.get(task.spec.template_ref.name)
        if manifest is None:
            raise ManifestError(
                f"SyncTask {task.metadata.name}: spec.templateRef: TaskTemplate "
                f"{task.spec.template_ref.name!r} is not among the manifests"
            )
        template = _parse(TaskTemplate, manifest)
    try:
        config = worker_config.render_worker_config(
            task,
            connectors,
            template,
            report_to_kubernetes=False,
            reporting_port=int(os.environ.get("FERRY_STATUS_PORT", "0")),
            tls_dir=str(tls_dir or worker_config.TLS_DIR),
        )
    except RenderError as error:
        raise ManifestError(f"SyncTask {task.metadata.name}: {error}") from None
    spec = worker_config.effective_spec(task, template)
    volumes = worker_config.secret_volumes(spec, connectors, str(tls_dir or worker_config.TLS_DIR))
    if volumes and tls_dir is None:
        raise ValueError("this task needs certificate files: pass tls_dir")
    files = {
        Path(volume.mount_path) / file_name: _secret_value(found, volume.secret, key)
        for volume in volumes
        for key, file_name in volume.items
    }
    env = {
        variable: _secret_value(found, secret, key)
        for variable, secret, key in worker_config.secret_env(spec, connectors)
    }
    for path, text in files.items():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _write_private(path, text)
    return config, env


# ---------------------------------------------------------------- the display (pure parts)


class RateMeter:
    """Rows per second of each table over a sliding window, for per-table ETAs."""

    def __init__(self, window: float = 15.0) -> None:
        self.window = window
        self._samples: dict[str, deque[tuple[float, int]]] = {}

    def add(self, key: str, now: float, value: int) -> None:
        samples = self._samples.setdefault(key, deque())
        samples.append((now, value))
        while len(samples) > 2 and samples[1][0] <= now - self.window:
            samples.popleft()

    def rate(self, key: str) -> float | None:
        samples = self._samples.get(key)
        if not samples or len(samples) < 2:
            return None
        (t0, v0), (t1, v1) = samples[0], samples[-1]
        return (v1 - v0) / (t1 - t0) if t1 > t0 else None

    def eta(self, key: str, remaining: int) -> float | None:
        """Seconds until ``remaining`` more rows at the current rate; None when unknown."""
        rate = self.rate(key)
        if remaining <= 0:
            return 0.0
        return remaining / rate if rate else None


def short_duration(seconds: float | None) -> str:
    if seconds is None:
        return "--"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def bar(fraction: float, width: int = 24) -> str:
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "#" * filled + "." * (width - filled)


def _position(position: dict[str, Any]) -> str:
    if "file" in position:
        return f"{position['file']}:{position.get('pos', '?')}"
    return str(position.get("gtid") or "-")


def render_lines(view: dict[str, Any], meter: RateMeter, now: float, bars: bool) -> list[str]:
    """What the display shows for one ``tracker.view()``: a line per snapshot table (with a
    bar when ``bars``), then the state line. Feeds ``meter`` with the tables' row counts."""
    lines = []
    tables = view["progress"]["tables"]
    width = max((len(t["name"]) for t in tables), default=0)
    for table in tables:
        done, total = table["rowsDone"], table["rowsTotal"]
        meter.add(table["name"], now, done)
        fraction = 1.0 if table["state"] == "Done" else (done / total if total else 0.0)
        if table["state"] == "Done":
            eta = "done"
        elif table["state"] == "Pending":
            eta = "waiting"
        else:
            eta = "ETA " + short_duration(meter.eta(table["name"], total - done))
        graph = f"[{bar(fraction)}] " if bars else ""
        lines.append(
            f"{table['name']:<{width}}  {graph}{100 * fraction:5.1f}%  "
            f"{done:,}/{total:,} rows  {eta}"
        )
    counters = view["counters"]
    line = (
        f"{view['state']}  lag {view['lag']['seconds']:.1f}s  "
        f"{view['throughput']['eventsPerSecond']:,.0f} ev/s  "
        f"position {_position(view['position'])}  "
        f"events {counters['events']:,}  errors {counters['errors']}"
    )
    if view["lastErrors"]:
        newest = view["lastErrors"][0]
        line += f"  last: {newest['reason']}"
    lines.append(line)
    return lines


# ---------------------------------------------------------------- the display (drawing)


class Display:
    """Redraws the lines in place on a TTY; prints plain lines now and then otherwise."""

    def __init__(
        self,
        tracker: StatusTracker,
        out: TextIO,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tracker = tracker
        self.out = out
        self.tty = out.isatty()
        self.interval = interval
        self.clock = clock
        self.meter = RateMeter()
        self._drawn = 0
        self._last_plain = float("-inf")
        self._last_state = ""
        self._printed: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="ferry-run-display", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.draw(final=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.draw()

    def draw(self, final: bool = False) -> None:
        view = self.tracker.view()
        lines = render_lines(view, self.meter, self.clock(), bars=self.tty)
        if self.tty:
            up = f"\x1b[{self._drawn}F" if self._drawn else ""
            self.out.write(up + "".join(f"\x1b[2K{line}\n" for line in lines))
            self._drawn = len(lines)
        else:
            self.out.write(
                "".join(f"{line}\n" for line in self._plain(view["state"], lines, final))
            )
        self.out.flush()

    def _plain(self, state: str, lines: list[str], final: bool) -> list[str]:
        """Every few seconds (and on a state change): the table lines that changed since
        they were last printed, then the state line."""
        now = self.clock()
        if not (
            final or state != self._last_state or now - self._last_plain >= PLAIN_EVERY_SECONDS
        ):
            return []
        self._last_plain, self._last_state = now, state
        fresh = [line for line in lines[:-1] if line not in self._printed]
        self._printed.update(fresh)
        return [*fresh, lines[-1]]


# ---------------------------------------------------------------- the verb


def run(args: argparse.Namespace) -> int:
    """``ferry run``: exit 0 when stopped or completed, 1 when the worker failed, 2 when the
    manifests cannot be run."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    # Certificates and keys from Secrets: files only this user can read, gone after the run.
    with tempfile.TemporaryDirectory(prefix="ferry-run-tls-") as tls_dir:
        try:
            config, env = render(load_manifests(args.manifests), Path(tls_dir))
        except ManifestError as error:
            print(f"ferry run: {error}", file=sys.stderr)
            return EXIT_INVALID
        os.environ.update(env)  # this process only; the worker reads the names in its config
        return _run_worker(config)


def _run_worker(config: WorkerConfig) -> int:
    """The worker in this thread, the display in another, until it stops or fails."""
    from ferry_runtime import server
    from ferry_runtime import worker as worker_module

    tracker = StatusTracker()
    worker = worker_module.Worker(config, tracker)

    def on_signal(signum: int, _frame: Any) -> None:
        tracker.set_state("Stopping")
        worker.stop()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    status_server = server.start(tracker, config.reporting.port)
    print(
        f"ferry run: task {config.task.namespace}/{config.task.name} "
        f"(status: http://127.0.0.1:{status_server.port}/status)",
        flush=True,
    )
    display = Display(tracker, sys.stdout)
    display.start()
    try:
        code = worker.run()
    finally:
        display.stop()
        status_server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    failure = worker.failure
    if failure is not None:
        print(f"ferry run: failed: {failure.reason}: {failure.message}", file=sys.stderr)
    else:
        print(f"ferry run: {tracker.state.lower()}")
    return code
