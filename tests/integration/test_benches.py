"""The benchmarks under tests/bench still run, on a small sample against the real MariaDB and
Kafka: each prints its figures and leaves no Kafka topic behind (a 1M-row snapshot leaves
~400 MB). Their figures are not checked: they belong in docs/benchmarks.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

ROOT = Path(__file__).resolve().parents[2]

# One worker runs both: each checks that no bench topic is left, which the other's would be.
pytestmark = [pytest.mark.mysql, pytest.mark.kafka, pytest.mark.xdist_group("benches")]


def _bench_topics(bootstrap: str) -> set[str]:
    topics = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=30).topics
    return {name for name in topics if name.startswith("bench-")}


def _run(script: str, *args: str) -> str:
    command = [sys.executable, str(ROOT / "tests" / "bench" / script), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_the_snapshot_bench_prints_its_figures_and_deletes_its_topics(
    kafka_bootstrap: str,
) -> None:
    before = _bench_topics(kafka_bootstrap)
    out = _run("bench_snapshot.py", "--rows", "20000", "--chunk", "5000", "--parallelism", "2")
    assert "parallelism-2:    20000 rows in" in out, out
    assert "mariadb-dump:    20000 rows in" in out, out
    last = out.splitlines()[-1]
    assert last.startswith("parallelism-2: ") and "of mariadb-dump" in last, out
    assert _bench_topics(kafka_bootstrap) - before == set()


def test_the_worker_bench_prints_its_figures_and_deletes_its_topics(
    kafka_bootstrap: str,
) -> None:
    before = _bench_topics(kafka_bootstrap)
    out = _run("bench_worker.py", "--changes", "20000", "--only", "decode-ferry,exactly-once")
    lines = [line.strip() for line in out.splitlines()]
    assert any(line.startswith("decode-ferry:") and "rows/CPU-s" in line for line in lines), out
    assert any(line.startswith("exactly-once:") and "rows/CPU-s" in line for line in lines), out
    assert _bench_topics(kafka_bootstrap) - before == set()
