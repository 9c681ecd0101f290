"""The position the worker reports and checkpoints: it carries MariaDB's GTID position
(exactly what BINLOG_GTID_POS says for its file and offset, so it can be given back as
`startPosition: {gtid}`), across a restart too, and once idle it reaches the server's own
position even when non-row events (a rotation, MariaDB's binlog checkpoint) come last."""

from __future__ import annotations

from typing import Any

import pytest
from tests.integration.runtime.conftest import Pipeline, read_topic

pytestmark = [pytest.mark.mysql, pytest.mark.kafka]


def _gtid_at(pipeline: Pipeline, position: dict[str, Any]) -> str:
    rows = pipeline.sql("SELECT BINLOG_GTID_POS(%s, %s)", (position["file"], position["pos"]))
    return str(rows[0][0])


def _checkpointed(pipeline: Pipeline, config: dict[str, Any]) -> dict[str, Any]:
    records = read_topic(pipeline.bootstrap, config["sink"]["kafka"]["offsetsTopic"])
    return dict(records[-1][1]["position"])


def test_the_position_carries_the_gtid_and_reaches_the_servers_end_when_idle(
    pipeline: Pipeline,
) -> None:
    sql, db = pipeline.sql, pipeline.db
    sql(f"CREATE TABLE {db}.t (id int PRIMARY KEY)")
    config = pipeline.config(mode="cdc")
    worker = pipeline.start(config)
    pipeline.wait_streaming(worker)
    sql(f"INSERT INTO {db}.t VALUES (1)")
    (last_gtid,) = sql("SELECT @@last_gtid")[0]
    sql("FLUSH BINARY LOGS")  # non-row events after our transaction, in a new file
    pipeline.wait_caught_up(worker)
    position = worker.tracker.position
    assert position["gtid"] == _gtid_at(pipeline, position)
    domain = last_gtid.split("-")[0]
    ours = next(g for g in position["gtid"].split(",") if g.startswith(f"{domain}-"))
    assert int(ours.split("-")[2]) >= int(last_gtid.split("-")[2])
    assert _checkpointed(pipeline, config)["file"] == position["file"]  # past the rotation
    assert worker.stop() == 0

    sql(f"INSERT INTO {db}.t VALUES (2)")
    again = pipeline.start(config)  # resumes from the checkpoint, GTID state and all
    pipeline.wait_caught_up(again)
    position = again.tracker.position
    assert position["gtid"] == _gtid_at(pipeline, position)
    assert [v["data"]["id"] for _, v in pipeline.records("t")] == [1, 2]
    checkpoint = _checkpointed(pipeline, config)
    assert checkpoint["gtid"] == _gtid_at(pipeline, checkpoint)
