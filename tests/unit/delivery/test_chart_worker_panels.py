"""The chart's Grafana dashboard has a panel for each worker metric the PodMonitor scrapes
for it: the reader→sink queue's fill and the rows events on the slow decoder."""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
DASHBOARD = REPO / "charts" / "ferry" / "files" / "dashboard.json"


def test_worker_metrics_have_panels_keyed_like_the_task_series() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = {p["title"]: p for p in dashboard["panels"]}
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    queue = panels["Worker queue fill (reader → sink)"]
    slow = panels["Rows events on the slow decoder"]
    (queue_expr,) = [t["expr"] for t in queue["targets"]]
    (slow_expr,) = [t["expr"] for t in slow["targets"]]
    assert "ferry_queue_fill_ratio" in queue_expr and "(namespace, synctask)" in queue_expr
    assert queue["fieldConfig"]["defaults"]["unit"] == "percentunit"
    assert "rate(ferry_slow_decoder_events_total" in slow_expr
    assert "table, reason" in slow_expr
    for expr in (queue_expr, slow_expr):
        assert 'namespace=~"$namespace"' in expr  # the dashboard's namespace variable
