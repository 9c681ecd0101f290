"""The ``ferry`` entry point dispatches its verbs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ferry_operator import cli


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    import ferry_runtime

    assert cli.main(["version"]) == 0
    assert capsys.readouterr().out.strip() == f"ferry {ferry_runtime.__version__}"


def test_unknown_verb_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["frobnicate"])
    assert exit_info.value.code == 2


def test_console_scripts_are_installed() -> None:
    for script in ("ferry", "kubectl-ferry", "ferry-worker"):
        result = subprocess.run(
            [sys.executable, "-c", f"import shutil; print(shutil.which('{script}') or '')"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert result.stdout.strip(), f"{script} is not on PATH"
