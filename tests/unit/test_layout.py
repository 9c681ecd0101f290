"""The source layout keeps the standard library's `operator` module importable."""

from __future__ import annotations

import operator as stdlib_operator
import subprocess
import sys
import sysconfig
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_no_package_at_the_operator_source_root() -> None:
    assert not (REPO_ROOT / "operator" / "__init__.py").exists()
    assert (REPO_ROOT / "operator" / "ferry_operator" / "__init__.py").exists()


def test_import_operator_from_the_repository_root_gives_the_standard_library() -> None:
    # `python -c` puts the current directory first on sys.path, the worst case.
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import operator; print(operator.__file__); print(operator.add(2, 3))",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    path, total = result.stdout.split()
    assert Path(path).parent == Path(sysconfig.get_paths()["stdlib"])
    assert total == "5"
    assert stdlib_operator.__file__ == path
