"""ferry_runtime.live: the live/restart split of the worker config, the overlay a running
worker applies, and the file watcher (on a real file, rewritten as the kubelet does)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from ferry_runtime import config as config_module
from ferry_runtime import live

BASE: dict[str, Any] = {
    "task": {"name": "orders", "namespace": "shop"},
    "source": {"host": "db", "user": "u", "passwordEnv": "P", "serverId": 7},
    "sink": {"kafka": {"bootstrapServers": "k:9092"}},
    "include": ["shop.*"],
}


def _config(**changes: Any) -> config_module.WorkerConfig:
    data = yaml.safe_load(yaml.safe_dump(BASE))
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        holder = data
        for key in parents:
            holder = holder.setdefault(key, {})
        holder[leaf] = value
    return config_module.parse(data)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("include", ["shop.orders"]),
        ("exclude", ["shop.tmp_*"]),
        ("mapping", [{"table": "shop.orders", "target": "orders_v2"}]),
        ("performance__batchSize", 7),
        ("performance__maxBatchDelay", "2s"),
        ("logLevel", "DEBUG"),
        ("logFormat", "json"),
    ],
)
def test_a_live_field_leaves_the_restart_hash_alone(path: str, value: Any) -> None:
    before, after = _config(), _config(**{path: value})
    assert before.to_yaml() != after.to_yaml()
    assert live.restart_hash(before) == live.restart_hash(after)
    assert live.live_part(before) != live.live_part(after)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("source__host", "db2"),
        ("sink__kafka__bootstrapServers", "other:9092"),
        ("sink__kafka__format", "debezium"),
        ("sink__kafka__topic", "x.{table}"),
        ("mode", "cdc"),
        ("delivery", "at-least-once"),
        ("performance__snapshotChunkSize", 5),
        ("performance__queueSize", 5),
        ("resetPosition", {"to": "latest", "nonce": "n1"}),
    ],
)
def test_a_connection_or_other_field_changes_the_restart_hash(path: str, value: Any) -> None:
    assert live.restart_hash(_config()) != live.restart_hash(_config(**{path: value}))


def test_every_live_field_is_a_field_of_the_worker_config() -> None:
    fields = config_module.WorkerConfig.model_fields
    for path in live.LIVE_FIELDS:
        model: Any = config_module.WorkerConfig
        for part in path.split("."):
            names = {f.alias or name: f for name, f in model.model_fields.items()}
            assert part in names, path
            model = names[part].annotation
    assert fields  # the check above ran over the real model


def test_the_docs_list_the_live_fields() -> None:
    text = (Path(__file__).parents[3] / "docs" / "operations.md").read_text()
    for path in live.LIVE_FIELDS:
        spec_path = {"include": "source.include", "exclude": "source.exclude"}.get(path, path)
        assert f"`{spec_path}`" in text, f"docs/operations.md does not list {spec_path}"


def test_overlay_takes_the_live_fields_and_keeps_the_rest() -> None:
    running = _config()
    new = _config(include=["shop.a"], performance__batchSize=3, source__host="elsewhere")
    merged = live.overlay(running, new)
    assert merged.include == ["shop.a"] and merged.performance.batch_size == 3
    assert merged.source.host == "db"  # a restart field is not taken live
    # A live field the new config leaves out goes back to its default.
    assert live.overlay(_config(exclude=["shop.x"]), _config()).exclude == []


def _write(path: Path, config: config_module.WorkerConfig, revision: str) -> None:
    """As the kubelet does: new files, then one rename (the content changes at once)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(config.to_yaml())
    os.replace(tmp, path)
    (path.parent / "revision").write_text(revision)


def test_the_watcher_reports_live_and_restart_changes(tmp_path: Path) -> None:
    path = tmp_path / "worker.yaml"
    _write(path, _config(), "orders-r1")
    seen: list[live.Change] = []
    watcher = live.Watcher(path, _config(), seen.append, tmp_path / "revision")
    assert watcher.revision() == "orders-r1"
    assert watcher.poll() is None  # nothing new
    _write(path, _config(performance__batchSize=9), "orders-r2")
    change = watcher.poll()
    assert change is not None and change.live and change.revision == "orders-r2"
    assert change.config.performance.batch_size == 9 and seen == [change]
    path.write_text("include: [not a glob")  # half-written or broken: kept, not applied
    assert watcher.poll() is None
    _write(path, _config(source__host="db2", performance__batchSize=9), "orders-r3")
    change = watcher.poll()
    assert change is not None and not change.live
    assert watcher.running.source.host == "db"  # the running config stays


def test_the_worker_takes_logging_at_once_and_rules_at_its_next_boundary() -> None:
    from ferry_runtime.status import StatusTracker
    from ferry_runtime.worker import Worker

    tracker = StatusTracker()
    worker = Worker(_config(), tracker)
    worker.reload(_config(logLevel="DEBUG"), "orders-r2")
    assert worker.config.log_level == "DEBUG" and tracker.applied_revision == "orders-r2"
    assert not worker._reloading()  # nothing waits for a transaction boundary
    worker.reload(_config(logLevel="DEBUG", performance__batchSize=5), "orders-r3")
    assert worker._reloading() and tracker.applied_revision == "orders-r2"
    assert worker.config.performance.batch_size == 500  # the running run keeps its rules
    worker._apply_reload()  # what the run loop does once the run has unwound
    assert worker.config.performance.batch_size == 5 and tracker.applied_revision == "orders-r3"
    assert worker._router.config is worker.config
