"""``ferry-worker``: a bad config or a missing password variable ends with InvalidConfig."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

CONFIG = {
    "task": {"name": "cli-test"},
    "source": {"host": "127.0.0.1", "user": "u", "passwordEnv": "FERRY_CLI_TEST_PW", "serverId": 9},
    "sink": {"kafka": {"bootstrapServers": "127.0.0.1:1"}},
    "reporting": {"port": 0},
}


def run_worker(tmp_path: Path, config: dict[str, object]) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "worker.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if k != "FERRY_CLI_TEST_PW"}
    return subprocess.run(
        [sys.executable, "-m", "ferry_runtime.cli", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_unknown_key_is_invalid_config_naming_the_key(tmp_path: Path) -> None:
    result = run_worker(tmp_path, {**CONFIG, "sourcee": {}})
    assert result.returncode == 1
    assert "failed: InvalidConfig" in result.stderr
    assert "sourcee: unknown field" in result.stderr


def test_missing_password_variable_is_invalid_config_naming_it(tmp_path: Path) -> None:
    result = run_worker(tmp_path, CONFIG)
    assert result.returncode == 1
    assert "failed: InvalidConfig: source.passwordEnv" in result.stderr
    assert "FERRY_CLI_TEST_PW is not set" in result.stderr
