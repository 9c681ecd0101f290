"""The operator's log setup: kopf's lines name their object, routine timer lines go to DEBUG,
JSON lines on request."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import kopf
import pytest

from ferry_operator import logs


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    stream = io.StringIO()
    yield stream
    root.handlers[:], _ = saved
    root.setLevel(saved[1])
    objects = logging.getLogger("kopf.objects")
    objects.filters[:] = [f for f in objects.filters if not isinstance(f, logs.RoutineAtDebug)]


def _redirect(stream: io.StringIO) -> None:
    # kopf's own root handler (pytest's capturing handlers are StreamHandlers too).
    for handler in logging.getLogger().handlers:
        if type(handler).__name__ == "_KopfStreamHandler":
            handler.setStream(stream)  # type: ignore[attr-defined]


def _object_logger() -> kopf.ObjectLogger:
    body = kopf.Body(
        {"apiVersion": "ferry.dev/v1alpha1", "kind": "SyncTask",
         "metadata": {"name": "orders", "namespace": "shop", "uid": "u1"}}
    )  # fmt: skip
    settings = kopf.OperatorSettings()
    settings.posting.enabled = False
    return kopf.LocalObjectLogger(body=body, settings=settings)


def test_kopf_lines_name_their_object_and_timers_go_to_debug(captured: io.StringIO) -> None:
    logs.configure(verbose=False, level="INFO", log_format="text")
    _redirect(captured)
    logger = _object_logger()
    logger.info("Timer 'synctask_resync' succeeded.")
    logger.info("Handler 'synctask_changed' succeeded.")
    logger.error("Timer 'synctask_resync' failed with an exception.")
    lines = captured.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert "[shop/orders] Handler 'synctask_changed' succeeded." in lines[0]
    assert "[shop/orders] Timer 'synctask_resync' failed" in lines[1]


def test_verbose_shows_timers_at_debug(captured: io.StringIO) -> None:
    logs.configure(verbose=True, level="INFO", log_format="text")
    _redirect(captured)
    _object_logger().info("Timer 'synctask_resync' succeeded.")
    (line,) = captured.getvalue().splitlines()
    assert "DEBUG" in line and "[shop/orders] Timer 'synctask_resync' succeeded." in line


def test_json_lines_carry_the_object(captured: io.StringIO) -> None:
    logs.configure(verbose=False, level="INFO", log_format="json")
    _redirect(captured)
    _object_logger().info("Handler 'synctask_changed' succeeded.")
    logging.getLogger("ferry_operator.applier").info("[shop/orders create] applied Deployment x")
    first, second = (json.loads(line) for line in captured.getvalue().splitlines())
    assert first["object"]["name"] == "orders" and first["object"]["namespace"] == "shop"
    assert first["severity"] == "info"
    assert "Handler 'synctask_changed' succeeded." in first["message"]
    assert second["message"] == "[shop/orders create] applied Deployment x"


def test_the_log_config_file_reads_level_and_format_and_keeps_defaults(tmp_path: Any) -> None:
    path = tmp_path / "log.yaml"
    default = logs.LogConfig("INFO", "text")
    assert logs.read_config(path, default) == default  # no file yet
    path.write_text("level: debug\nformat: json\n")
    assert logs.read_config(path, default) == logs.LogConfig("DEBUG", "json")
    path.write_text("level: loud\nformat: xml\n")  # unknown values keep the defaults
    assert logs.read_config(path, default) == default
    path.write_text("level: [\n")
    assert logs.read_config(path, default) == default


def test_apply_changes_the_effective_level_and_format(captured: io.StringIO) -> None:
    logs.apply(logs.LogConfig("WARNING", "text"))
    _redirect(captured)
    ferry = logging.getLogger("ferry_operator.reconcile")
    ferry.info("hidden at WARNING")
    logs.apply(logs.LogConfig("DEBUG", "json"))
    _redirect(captured)
    ferry.debug("shown at DEBUG")
    (line,) = captured.getvalue().splitlines()
    assert json.loads(line)["message"] == "shown at DEBUG"
