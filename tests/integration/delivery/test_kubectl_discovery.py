"""kubectl finds the plugin: ``kubectl plugin list`` lists ``kubectl-ferry`` when it is on
PATH, and ``kubectl ferry`` runs it against the cluster of the current kubeconfig."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.kube


def _plugin_path() -> Path:
    # pip installs console scripts next to the interpreter (a pyenv shim may also exist).
    installed = Path(sysconfig.get_path("scripts")) / "kubectl-ferry"
    if installed.exists():
        return installed
    found = shutil.which("kubectl-ferry")
    assert found, "kubectl-ferry is not installed: python3 -m pip install -e '.[test]'"
    return Path(found)


def _env(testenv: Any) -> dict[str, str]:
    kubectl = shutil.which(testenv.kubectl)
    assert kubectl, f"kubectl not found ({testenv.kubectl})"
    path = os.pathsep.join(
        [str(_plugin_path().parent), str(Path(kubectl).parent), str(Path(sys.executable).parent)]
    )
    return {**os.environ, "PATH": path, "KUBECONFIG": testenv.kubeconfig}


def test_kubectl_plugin_list_finds_kubectl_ferry(testenv: Any, kube_api: Any) -> None:
    result = subprocess.run(
        ["kubectl", "plugin", "list"], env=_env(testenv), capture_output=True, text=True, timeout=60
    )
    listed = [Path(line.strip()).name for line in result.stdout.splitlines()]
    assert "kubectl-ferry" in listed, result


def test_kubectl_ferry_runs_through_kubectl(testenv: Any, make_task: Any, namespace: str) -> None:
    make_task("orders", status={"phase": "Running"})
    env = _env(testenv)
    result = subprocess.run(
        ["kubectl", "ferry", "list", "-n", namespace],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result
    header, row = result.stdout.splitlines()[:2]
    assert dict(zip(header.split(), row.split(), strict=False))["PHASE"] == "Running"
    missing = subprocess.run(
        ["kubectl", "ferry", "status", "ghost", "-n", namespace],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # kubectl passes the plugin's exit code through, so scripts can rely on it.
    assert missing.returncode == 3, missing
    assert "SyncTask 'ghost' not found" in missing.stderr


def test_progress_watch_redraws_until_the_snapshot_is_over(
    testenv: Any, make_task: Any, namespace: str, kube_api: Any
) -> None:
    from kubernetes import client

    progress = {"percent": 10.0, "rowsDone": 1, "rowsTotal": 10, "eta": "1m"}
    make_task("big", status={"phase": "Snapshotting", "progress": progress})
    watcher = subprocess.Popen(
        [str(_plugin_path()), "progress", "big", "--watch", "--interval", "0.2", "-n", namespace],
        env=_env(testenv),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = watcher.stdout.readline() if watcher.stdout else ""
        assert first.startswith("big  Snapshotting"), first
        done = {"percent": 100.0, "rowsDone": 10, "rowsTotal": 10, "eta": "0s"}
        client.CustomObjectsApi(kube_api).patch_namespaced_custom_object_status(
            "ferry.dev",
            "v1alpha1",
            namespace,
            "synctasks",
            "big",
            {"status": {"phase": "Running", "progress": done}},
        )
        out, err = watcher.communicate(timeout=30)
    finally:
        watcher.kill()
    assert watcher.returncode == 0, err
    assert out.rstrip().splitlines()[-2:][0] == "big  Running"
    assert "100.0%  rows 10/10" in out
