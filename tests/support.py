"""Helpers shared by test modules (import as ``from tests.support import ...``; run pytest as
``python3 -m pytest`` from the repository root, as scripts/test does)."""

from __future__ import annotations

import os
import re
import shlex
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_ENV_FILE", "read_env_file", "testenv_values", "wait_until"]

# tests/infra/lib.sh writes it to $FERRY_TESTENV_STATE/env (default ~/.local/state/ferry-testenv).
DEFAULT_ENV_FILE = (
    Path(os.environ.get("FERRY_TESTENV_STATE") or Path.home() / ".local/state/ferry-testenv")
    / "env"
)


def read_env_file(path: Path) -> dict[str, str]:
    """Parse the ``export KEY=VALUE`` lines of the env file (nothing is executed)."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^export ([A-Z_][A-Z0-9_]*)=(.*)$", line.strip())
        if match and "$" not in match.group(2):
            values[match.group(1)] = shlex.split(match.group(2))[0] if match.group(2) else ""
    return values


def testenv_values() -> dict[str, str]:
    """What tests/infra/up wrote ($FERRY_TESTENV_ENV, else $FERRY_TESTENV_STATE/env); {} if none."""
    path = Path(os.environ.get("FERRY_TESTENV_ENV", DEFAULT_ENV_FILE))
    return read_env_file(path) if path.exists() else {}


def wait_until(predicate: Callable[[], Any], timeout: float = 60.0, what: str = "") -> Any:
    """Poll ``predicate`` until it returns something truthy (returned); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
