"""ferry_runtime.logs: JSON lines, a level that changes while running, no secret in a line;
ferry_runtime.progresslog: the snapshot's start, rate-limited progress and summary lines."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from ferry_runtime import logs, progresslog


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    out = io.StringIO()
    logs.configure(secrets=["s3cret-pw"])
    handler = next(h for h in root.handlers if isinstance(h, logs._Handler))
    handler.setStream(out)
    yield out
    root.handlers[:], level = saved
    root.setLevel(level)


def test_json_lines_carry_time_level_logger_message_and_extra_fields(
    stream: io.StringIO,
) -> None:
    logs.configure("INFO", "json")
    logging.getLogger("ferry.worker").info("rows %d", 5, extra={"table": "shop.orders"})
    line = json.loads(stream.getvalue().splitlines()[-1])
    assert line["level"] == "INFO" and line["logger"] == "ferry.worker"
    assert line["message"] == "rows 5" and line["table"] == "shop.orders"
    assert line["time"].endswith("Z") and "T" in line["time"]
    assert set(line) == {"time", "level", "logger", "message", "table"}


def test_an_exception_is_one_json_line(stream: io.StringIO) -> None:
    logs.configure("INFO", "json")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("ferry.worker").exception("failed")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert "ValueError: boom" in json.loads(lines[0])["exception"]


def test_the_level_and_format_change_while_running(stream: io.StringIO) -> None:
    worker = logging.getLogger("ferry.worker")
    worker.debug("hidden")
    logs.configure("DEBUG", "text")
    worker.debug("shown")
    logs.configure("ERROR", "json")
    worker.warning("hidden too")
    worker.error("an error")
    text = stream.getvalue()
    assert "hidden" not in text and "DEBUG ferry.worker shown" in text
    assert json.loads(text.splitlines()[-1])["message"] == "an error"


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_no_secret_reaches_a_line(stream: io.StringIO, log_format: str) -> None:
    logs.configure("INFO", log_format)  # type: ignore[arg-type]
    logging.getLogger("ferry.worker").warning("login failed with %s", "s3cret-pw")
    assert "s3cret-pw" not in stream.getvalue() and logs.REDACTED in stream.getvalue()


def test_snapshot_lines_start_progress_at_most_every_interval_and_summary(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    snapshot = progresslog.SnapshotLog(every=10.0, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="ferry.snapshot"):
        snapshot.start(["shop.a", "shop.b"])
        assert not snapshot.progress("shop.a", 100, 100, 1000)  # the table's clock starts
        now[0] += 5
        assert not snapshot.progress("shop.a", 100, 200, 1000)  # too soon
        now[0] += 6
        assert snapshot.progress("shop.a", 100, 300, 1000)
        snapshot.table_done("shop.a", 300)
        now[0] += 4
        snapshot.finish()
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "snapshot started: 2 table(s) to read: shop.a, shop.b"
    assert messages[1] == "snapshot of shop.a: 300 of ~1000 rows (30%)"
    assert messages[2] == "snapshot of shop.a done: 300 rows"
    assert messages[3] == "snapshot finished: 300 rows in 15.0s (20 rows/s)"
    summary = caplog.records[-1]
    assert summary.rows == 300 and summary.rowsPerSecond == 20.0  # type: ignore[attr-defined]
