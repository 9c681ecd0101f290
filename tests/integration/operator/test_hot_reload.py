"""Hot reload, the operator's half (against the real API server): a change of live fields
(ferry_runtime.live.LIVE_FIELDS) is a new revision and a new ``<task>-worker-config``, and
leaves the worker Deployment's pod template as it was (no new pod); a connection change rolls
it. And the operator's own log level follows its FERRY_LOG_CONFIG file without a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.integration.operator.conftest import (
    Ferry,
    OperatorProcess,
    task,
    wait_until,
)

pytestmark = [pytest.mark.kube, pytest.mark.mysql, pytest.mark.kafka]


def _revision(ferry: Ferry, name: str, revision: str) -> None:
    wait_until(
        lambda: (
            (ferry.get("synctasks", name).get("status") or {}).get("configRevision") == revision
        ),
        60,
        f"{name} at {revision}",
    )


def _template(ferry: Ferry, name: str) -> dict[str, Any]:
    deploy = ferry.deployment(name)
    return {
        "generation": deploy.metadata.generation,
        "template": ferry.api.sanitize_for_serialization(deploy.spec.template),
    }


def _mounted(ferry: Ferry, name: str) -> tuple[str, dict[str, Any]]:
    data = ferry.core.read_namespaced_config_map(f"{name}-worker-config", ferry.ns).data
    return data["revision"], yaml.safe_load(data["worker.yaml"])


def test_live_fields_make_a_revision_but_keep_the_pod_template_and_connections_roll_it(
    ferry: Ferry, connectors: None, ferry_operator: OperatorProcess
) -> None:
    ferry.create("synctasks", task("orders", paused=True))
    _revision(ferry, "orders", "orders-r1")
    wait_until(lambda: _mounted(ferry, "orders")[0] == "orders-r1", 30, "the mounted config")
    first = _template(ferry, "orders")

    ferry.patch_spec(
        "synctasks",
        "orders",
        {
            "source": {"include": ["shop.a"], "exclude": ["shop.tmp"]},
            "mapping": [{"table": "shop.a", "target": "a2"}],
            "performance": {"batchSize": 9, "maxBatchDelay": "2s"},
            "logLevel": "DEBUG",
            "logFormat": "json",
        },
    )
    _revision(ferry, "orders", "orders-r2")
    wait_until(lambda: _mounted(ferry, "orders")[0] == "orders-r2", 30, "r2 mounted")
    _, config = _mounted(ferry, "orders")
    assert config["include"] == ["shop.a"] and config["performance"]["batchSize"] == 9
    assert config["logLevel"] == "DEBUG" and config["logFormat"] == "json"
    assert config["mapping"][0]["target"] == "a2"
    assert ferry.revisions("orders") == ["orders-r1", "orders-r2"]
    cause = ferry.core.read_namespaced_config_map("orders-r2", ferry.ns).metadata.annotations
    assert "logLevel: (unset) → DEBUG" in cause["ferry.dev/change-cause"]
    assert _template(ferry, "orders") == first  # the same pod template: no new pod

    ferry.patch_spec("synctasks", "orders", {"sink": {"kafka": {"topic": "other.{table}"}}})
    _revision(ferry, "orders", "orders-r3")
    wait_until(lambda: _template(ferry, "orders") != first, 30, "a new pod template")
    rolled = _template(ferry, "orders")
    hash_key = "ferry.dev/config-hash"
    assert (
        rolled["template"]["metadata"]["annotations"][hash_key]
        != first["template"]["metadata"]["annotations"][hash_key]
    )
    assert _mounted(ferry, "orders")[0] == "orders-r3"


def test_the_operator_log_level_follows_its_log_config_file_without_a_restart(
    ferry: Ferry, connectors: None, testenv: Any, namespace: str, tmp_path: Path
) -> None:
    log_config = tmp_path / "log.yaml"
    log_config.write_text("level: warning\nformat: text\n")
    operator = OperatorProcess(
        testenv, namespace, tmp_path / "operator.log", env={"FERRY_LOG_CONFIG": str(log_config)}
    )
    operator.start()
    try:
        assert operator.process is not None
        pid = operator.process.pid
        ferry.create("synctasks", task("orders", paused=True))
        _revision(ferry, "orders", "orders-r1")
        quiet = operator.log()
        assert " applied " not in quiet  # INFO lines are below WARNING
        assert "DEBUG" not in quiet

        log_config.write_text("level: debug\nformat: json\n")
        wait_until(lambda: "log level DEBUG, format json" in operator.log(), 20, "the new level")
        mark = len(operator.log())
        ferry.patch_spec("synctasks", "orders", {"source": {"include": ["shop.b"]}})
        _revision(ferry, "orders", "orders-r2")
        wait_until(lambda: '"severity": "debug"' in operator.log()[mark:], 20, "DEBUG lines")
        later = operator.log()[mark:]
        assert "applied ConfigMap orders-r2" in later  # INFO shows again, as JSON
        assert operator.process is not None and operator.process.poll() is None
        assert operator.process.pid == pid  # the same process all along
    finally:
        operator.stop()
