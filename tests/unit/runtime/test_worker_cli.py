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


def _last_line(result: subprocess.CompletedProcess[str]) -> str:
    return result.stderr.rstrip("\n").splitlines()[-1]


def test_malformed_yaml_is_one_line_with_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "worker.yaml"
    path.write_text("task:\n  name: orders\nsource: {host: db\n  user: [x\n")
    result = subprocess.run(
        [sys.executable, "-m", "ferry_runtime.cli", "--config", str(path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr  # one line, nothing else
    line = _last_line(result)
    assert line.startswith(f"ferry worker: failed: InvalidConfig: {path}:4:7: not valid YAML: ")
    assert line.endswith("expected ',' or '}', but got ':' (while parsing a flow mapping)")


def test_several_config_errors_end_with_the_failed_line(tmp_path: Path) -> None:
    result = run_worker(tmp_path, {**CONFIG, "sourcee": {}, "mode": "sometimes"})
    line = _last_line(result)
    assert line.startswith(f"ferry worker: failed: InvalidConfig: {tmp_path / 'worker.yaml'}: ")
    assert "sourcee: unknown field" in line and "mode: " in line and "; " in line


def test_an_unreadable_config_names_the_file(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ferry_runtime.cli", "--config", str(tmp_path / "nope.yaml")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert _last_line(result) == (
        f"ferry worker: failed: InvalidConfig: cannot read {tmp_path / 'nope.yaml'}: "
        "No such file or directory"
    )
