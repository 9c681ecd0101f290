"""`ferry operator` serves /healthz and per-task /metrics on FERRY_HTTP_PORT (what the chart
probes and scrapes)."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from tests.integration.operator.conftest import Ferry, task, wait_until
from tests.integration.scratch import free_port

pytestmark = [pytest.mark.kube]


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return 0, ""


def test_healthz_and_task_metrics(ferry: Ferry, testenv: Any, tmp_path: Path) -> None:
    port = free_port()
    ferry.create("synctasks", task("orders", alerts={"lagThreshold": "90s"}))
    env = {**os.environ, "KUBECONFIG": str(testenv.kubeconfig), "FERRY_HTTP_PORT": str(port)}
    log = (tmp_path / "operator.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "ferry_operator.main", "--namespace", ferry.ns],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: get(f"{base}/healthz")[0] == 200, 60, "/healthz to answer 200")
        labels = f'namespace="{ferry.ns}",synctask="orders"'

        def pending_exported() -> bool:
            text = get(f"{base}/metrics")[1]
            phase = f'namespace="{ferry.ns}",phase="Pending",synctask="orders"'
            return f"ferry_synctask_phase{{{phase}}} 1.0" in text

        wait_until(pending_exported, 60, "the task's phase in /metrics")
        text = get(f"{base}/metrics")[1]
        assert f"ferry_synctask_ready{{{labels}}} 0.0" in text
        assert f"ferry_synctask_lag_threshold_seconds{{{labels}}} 90.0" in text
        assert get(f"{base}/nothing")[0] == 404
    finally:
        process.terminate()
        process.wait(30)
