"""A selection that matches no table is said, not silent: the worker reports
``selectedTables: 0`` and logs NoTablesSelected naming the patterns, and looks again until a
matching table appears (the real MariaDB)."""

from __future__ import annotations

from typing import Any

import pytest

from ferry_runtime import worker as worker_module

pytestmark = [pytest.mark.mysql, pytest.mark.kafka]


def test_no_table_selected_is_reported_and_rechecked_as_tables_appear(
    pipeline: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_module, "SELECTION_RECHECK_SECONDS", 1.0)
    pipeline.sql(f"CREATE TABLE {pipeline.db}.orders (id INT PRIMARY KEY)")
    glob = f"{pipeline.database}.it[ems"  # an unclosed bracket: matches only itself
    with caplog.at_level("INFO", logger="ferry.worker"):
        running = pipeline.run(mode="cdc", include=[glob, f"{pipeline.database}.later_*"])
        pipeline.wait_streaming(running)
        assert running.tracker.view()["selectedTables"] == 0
        warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert len(warnings) == 1, warnings
        assert warnings[0].startswith(f"NoTablesSelected: include ['{glob}'")
        assert "matches no table on" in warnings[0]

        pipeline.sql(f"CREATE TABLE {pipeline.db}.later_1 (id INT PRIMARY KEY)")
        pipeline.wait_until(
            lambda: running.tracker.view()["selectedTables"] == 1, 30, "the new table seen"
        )
        pipeline.sql(f"INSERT INTO {pipeline.db}.later_1 VALUES (1)")
        pipeline.wait_until(lambda: running.tracker.events >= 1, 30, "its row delivered")
    assert any("the selection matches 1 table(s)" in r.getMessage() for r in caplog.records)
