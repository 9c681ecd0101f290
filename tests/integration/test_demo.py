"""The README's demo runs to completion (short mode) and shows the status table."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.kube, pytest.mark.mysql, pytest.mark.kafka]
REPO = Path(__file__).resolve().parents[2]


def test_demo_short_mode(kube_api: object, mysql_connect: object, kafka_bootstrap: str) -> None:
    result = subprocess.run(
        [str(REPO / "scripts/demo"), "--short"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert re.search(r"NAME\s+PHASE\s+LAG\s+PROGRESS\s+POSITION\s+AGE", output), output[-4000:]
    assert re.search(r"shop-orders\s+Running\s+\S+\s+100\s+binlog\.\d+", output), output[-4000:]
    # 5000 + 2 snapshot rows, then 1 insert, 10 updates, 10 deletes, 1 insert streamed.
    assert "5024 events" in output, output[-4000:]
    assert "shop.order_items" in output and "5000/5000" in output
