"""The Dockerfiles, short of a Docker engine (none on these machines; docs/images.md): the
files they COPY build the package with the commands the images run, and each image is slim,
pinned and non-root as the chart and the rendered worker Deployment expect."""

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
DOCKERFILES = {
    "operator": REPO / "operator" / "Dockerfile",
    "worker": REPO / "runtime" / "Dockerfile",
}


def instructions(path: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", path.read_text())
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_dockerfile_is_pinned_slim_and_non_root(image: str) -> None:
    steps = instructions(DOCKERFILES[image])
    (base,) = [v for k, v in steps if k == "ARG" and v.startswith("PYTHON_IMAGE=")]
    assert re.fullmatch(r"PYTHON_IMAGE=python:\d+\.\d+\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base)
    assert [k for k, _ in steps].count("FROM") == 2  # build stage + runtime stage
    users = [v for k, v in steps if k == "USER"]
    assert users == ["65532:65532"]
    assert "ENTRYPOINT" not in [k for k, _ in steps]  # Deployments pass the whole command


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_the_copied_sources_build_the_package_with_the_images_commands(
    image: str, tmp_path: Path
) -> None:
    context = tmp_path / "context"
    for kind, value in instructions(DOCKERFILES[image]):
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
    (cmd,) = [v for k, v in instructions(DOCKERFILES[image]) if k == "CMD"]
    assert json.loads(cmd)[0] in scripts
    assert {"ferry", "ferry-worker", "kubectl-ferry"} <= set(scripts)
