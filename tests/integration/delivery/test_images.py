"""The Dockerfile, short of a Docker engine (none on these machines; docs/images.md): the
files it COPYs build the package with the commands the images run, and each image (a build
target) is slim, pinned and non-root as the chart and the rendered worker Deployment expect."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
DOCKERFILE = REPO / "Dockerfile"
IMAGES = {"operator": "ferry", "worker": "ferry-worker"}  # build target -> its command


def instructions(path: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", path.read_text())
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def stages(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Each build stage's instructions, with those of the stages it is built FROM first."""
    found: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for kind, value in instructions(path):
        if kind == "FROM":
            base, _, name = value.partition(" AS ")
            current = [*found.get(base.strip(), []), (kind, value)]
            found[name.strip()] = current
        else:
            current.append((kind, value))
    return found


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_each_image_is_pinned_slim_and_non_root(image: str) -> None:
    steps = instructions(DOCKERFILE)
    (base,) = [v for k, v in steps if k == "ARG" and v.startswith("PYTHON_IMAGE=")]
    assert re.fullmatch(r"PYTHON_IMAGE=python:\d+\.\d+\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base)
    target = stages(DOCKERFILE)[image]
    assert target[0] == ("FROM", "${PYTHON_IMAGE} AS base")  # not the build stage's tools
    assert ("COPY", "--from=build /opt/ferry /opt/ferry") in target
    assert [v for k, v in target if k == "USER"] == ["65532:65532"]
    assert "ENTRYPOINT" not in [k for k, _ in target]  # Deployments pass the whole command
    (cmd,) = [v for k, v in target if k == "CMD"]
    assert json.loads(cmd)[0] == IMAGES[image]


def test_the_copied_sources_build_the_package_with_the_images_commands(tmp_path: Path) -> None:
    context = tmp_path / "context"
    for kind, value in stages(DOCKERFILE)["build"]:
        if kind == "COPY" and not value.startswith("--from"):
            *sources, dest = value.split()
            for source in sources:
                target = context / (
                    dest.rstrip("/")
                    if len(sources) == 1 and not dest.endswith("/")
                    else Path(dest) / source
                )
                target.parent.mkdir(parents=True, exist_ok=True)
                if (REPO / source).is_dir():
                    shutil.copytree(
                        REPO / source, target, ignore=shutil.ignore_patterns("__pycache__")
                    )
                else:
                    shutil.copy(REPO / source, target)
    wheels = tmp_path / "wheels"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--disable-pip-version-check",
            str(context),
            "-w",
            str(wheels),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = wheels.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        entry_points = next(n for n in archive.namelist() if n.endswith("entry_points.txt"))
        scripts = re.findall(r"^(\S+) = ", archive.read(entry_points).decode(), re.MULTILINE)
    assert {"ferry", "ferry-worker", "kubectl-ferry"} <= set(scripts)
    assert set(IMAGES.values()) <= set(scripts)
