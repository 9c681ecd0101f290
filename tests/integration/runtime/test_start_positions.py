"""startPosition and resetPosition as {timestamp} and {gtid}, end to end on the real MariaDB
and Kafka: the worker delivers exactly the transactions after the position. Purges happen on
a private server (tests/integration/scratch.py), never on the shared one."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from tests.integration.runtime.conftest import Pipeline, WorkerThread, read_topic
from tests.integration.scratch import ScratchMariaDB

pytestmark = [pytest.mark.mysql, pytest.mark.kafka]


def _commit(conn: Any, sql: str) -> str:
    """Run one autocommit statement; its transaction's GTID."""
    with conn.cursor() as cur:
        cur.execute(sql)
        cur.execute("SELECT @@last_gtid")
        return str(cur.fetchone()[0])


def _next_second() -> None:
    """Sleep past a second boundary: binlog timestamps are whole seconds."""
    time.sleep(1.05 - time.time() % 1)


def _rfc3339(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat()


@dataclass
class History:
    """A, (new binlog) A2, DDL, (next second) B, (new binlog) C: inserts into db.t, and an
    ALTER TABLE."""

    gtids: dict[str, str]
    time_of_b: str


@pytest.fixture
def history(pipeline: Pipeline, mysql_connect: Callable[..., Any]) -> Iterator[History]:
    db = pipeline.db
    pipeline.sql(f"CREATE TABLE {db}.t (id int PRIMARY KEY, name varchar(10))")
    conn = mysql_connect(admin=True)
    gtids = {"A": _commit(conn, f"INSERT INTO {db}.t (id, name) VALUES (1, 'A')")}
    pipeline.sql("FLUSH BINARY LOGS")  # the searches cross files
    gtids["A2"] = _commit(conn, f"INSERT INTO {db}.t (id, name) VALUES (2, 'A2')")
    gtids["DDL"] = _commit(conn, f"ALTER TABLE {db}.t ADD COLUMN note int")
    _next_second()
    time_of_b = time.time()
    gtids["B"] = _commit(conn, f"INSERT INTO {db}.t (id, name) VALUES (3, 'B')")
    pipeline.sql("FLUSH BINARY LOGS")
    gtids["C"] = _commit(conn, f"INSERT INTO {db}.t (id, name) VALUES (4, 'C')")
    conn.close()
    yield History(gtids, _rfc3339(time_of_b))


def _own(config: dict[str, Any], name: str) -> dict[str, Any]:
    """The config as a task of its own (task id, topics, offsets) named ``name``."""
    kafka = config["sink"]["kafka"]
    prefix = kafka["offsetsTopic"].removesuffix(".offsets")
    return {
        **config,
        "task": {**config["task"], "name": f"{config['task']['name'][:50]}-{name}"},
        "sink": {
            "kafka": {
                **kafka,
                "topic": f"{prefix}.{name}.{{database}}.{{table}}",
                "offsetsTopic": f"{prefix}.{name}.offsets",
            }
        },
    }


def _names(pipeline: Pipeline, name: str) -> list[str]:
    topic = f"{pipeline.topic_prefix}.{name}.{pipeline.database}.t"
    return [value["data"]["name"] for _, value in read_topic(pipeline.bootstrap, topic)]


def _run_to_end(pipeline: Pipeline, name: str, **overrides: Any) -> list[str]:
    """Run a cdc worker until it delivered what the server had; the names it delivered."""
    worker = pipeline.start(_own(pipeline.config(mode="cdc", **overrides), name))
    pipeline.wait_caught_up(worker, 60, f"worker {name}")
    assert worker.stop() == 0, worker.worker.failure
    return _names(pipeline, name)


def _failure(worker: WorkerThread) -> Any:
    assert worker.join(60) == 1, "the worker should have failed"
    failure = worker.worker.failure
    assert failure is not None
    return failure


def test_a_timestamp_starts_at_the_first_transaction_of_that_second(
    pipeline: Pipeline, history: History
) -> None:
    assert _run_to_end(pipeline, "ts", startPosition={"timestamp": history.time_of_b}) == [
        "B",
        "C",
    ]


def test_a_gtid_starts_right_after_that_transaction(pipeline: Pipeline, history: History) -> None:
    # A2 and B share a binlog: the scan stops after A2's commit.
    assert _run_to_end(pipeline, "a2", startPosition={"gtid": history.gtids["A2"]}) == ["B", "C"]
    # A DDL is a transaction of its own (no BEGIN/COMMIT): right after the statement.
    assert _run_to_end(pipeline, "ddl", startPosition={"gtid": history.gtids["DDL"]}) == [
        "B",
        "C",
    ]
    # A is in an older binlog, found through the files' Gtid_list events.
    assert _run_to_end(pipeline, "a", startPosition={"gtid": history.gtids["A"]}) == [
        "A2",
        "B",
        "C",
    ]


def test_gtids_the_server_cannot_start_after_fail_with_their_reason(
    pipeline: Pipeline, history: History
) -> None:
    domain, server, seq = (int(part) for part in history.gtids["C"].split("-"))
    cases = [
        ("future", f"{domain}-{server}-{seq + 10**9}", "InvalidPosition", "beyond what the source"),
        ("stranger", f"{domain}-{server + 1000}-{seq}", "InvalidPosition", "server id"),
        ("mysql", "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5", "NotSupported", "MySQL GTID set"),
    ]
    for name, gtid, reason, words in cases:
        config = pipeline.config(mode="cdc", startPosition={"gtid": gtid})
        failure = _failure(pipeline.start(_own(config, name)))
        assert (failure.reason, name) == (reason, name), failure
        assert words in failure.message


def test_a_timestamp_after_everything_starts_at_the_end(
    pipeline: Pipeline, history: History
) -> None:
    later = _rfc3339(time.time() + 3600)
    worker = pipeline.start(
        _own(pipeline.config(mode="cdc", startPosition={"timestamp": later}), "late")
    )
    pipeline.wait_streaming(worker)
    pipeline.sql(f"INSERT INTO {pipeline.db}.t (id, name) VALUES (5, 'D')")
    pipeline.wait_until(lambda: worker.tracker.events >= 1, 30, "D")
    pipeline.wait_caught_up(worker, 60)
    assert worker.stop() == 0
    assert _names(pipeline, "late") == ["D"]


def test_reset_position_to_a_timestamp_is_applied_once_per_nonce(
    pipeline: Pipeline, history: History
) -> None:
    start = {"gtid": history.gtids["C"]}  # nothing of ours after it
    assert _run_to_end(pipeline, "reset", startPosition=start) == []
    reset = {"to": {"timestamp": history.time_of_b}, "nonce": "first"}
    assert _run_to_end(pipeline, "reset", startPosition=start, resetPosition=reset) == ["B", "C"]
    pipeline.sql(f"INSERT INTO {pipeline.db}.t (id, name) VALUES (5, 'D')")
    # The same nonce again: the checkpoint holds; only D is new.
    assert _run_to_end(pipeline, "reset", startPosition=start, resetPosition=reset) == [
        "B",
        "C",
        "D",
    ]
    again = {"to": {"gtid": history.gtids["B"]}, "nonce": "second"}
    assert _run_to_end(pipeline, "reset", resetPosition=again) == ["B", "C", "D", "C", "D"]


# ---------------------------------------------------------------- purged binlogs (private server)


def test_positions_in_purged_binlogs(
    scratch: ScratchMariaDB,
    pipeline: Pipeline,
    make_config: Callable[..., dict[str, Any]],
) -> None:
    conn = scratch.root()
    cur = conn.cursor()
    cur.execute("CREATE DATABASE shop")
    cur.execute("CREATE TABLE shop.t (id int PRIMARY KEY, name varchar(10))")
    gtids = {"A0": _commit(conn, "INSERT INTO shop.t VALUES (1, 'A0')")}
    time_of_a = time.time()
    gtids["A"] = _commit(conn, "INSERT INTO shop.t VALUES (2, 'A')")

    def run(name: str, position: dict[str, Any]) -> WorkerThread:
        config = make_config(mode="cdc", include=["shop.*"], startPosition=position)
        config["source"] = {**config["source"], "port": scratch.port}
        return pipeline.start(_own(config, name))

    def delivered(name: str, worker: WorkerThread) -> list[str]:
        cur.execute("SHOW MASTER STATUS")
        file, pos = cur.fetchone()[:2]

        def caught_up() -> bool:
            at = worker.tracker.position
            return bool(at) and (at["file"], at["pos"]) >= (file, pos)

        pipeline.wait_until(caught_up, 60, f"worker {name}")
        assert worker.stop() == 0, worker.worker.failure
        topic = f"{pipeline.topic_prefix}.{name}.shop.t"
        return [value["data"]["name"] for _, value in read_topic(pipeline.bootstrap, topic)]

    # Nothing was ever written before binlog.000001: a time before it starts there.
    long_ago = {"timestamp": "2000-01-01T00:00:00Z"}
    assert delivered("ago", run("ago", long_ago)) == ["A0", "A"]

    _next_second()  # the next binlog starts after time_of_a's second
    scratch.purge_all_but_the_newest()
    gtids["B"] = _commit(conn, "INSERT INTO shop.t VALUES (3, 'B')")
    cur.execute("SET SESSION gtid_domain_id = 1")
    gtids["E"] = _commit(conn, "INSERT INTO shop.t VALUES (4, 'E')")
    cur.execute("SET SESSION gtid_domain_id = 0")
    gtids["F"] = _commit(conn, "INSERT INTO shop.t VALUES (5, 'F')")
    cur.execute("SET SESSION server_id = 77")  # two servers in domain 0 (as after a failover)
    gtids["G"] = _commit(conn, "INSERT INTO shop.t VALUES (6, 'G')")

    for name, position in [
        ("ago2", long_ago),
        ("ts", {"timestamp": _rfc3339(time_of_a)}),
        ("a0", {"gtid": gtids["A0"]}),
    ]:
        failure = _failure(run(name, position))
        assert failure.reason == "PositionUnavailable", (name, failure)
        assert "purged" in failure.message
    # A was the last transaction before the oldest binlog: nothing after it is missing.
    assert delivered("a", run("a", {"gtid": gtids["A"]})) == ["B", "E", "F", "G"]
    # Two domains: after the later of the two in binlog order.
    both = {"gtid": f"{gtids['B']},{gtids['E']}"}
    assert delivered("be", run("be", both)) == ["F", "G"]
    # A purged GTID of one domain precedes a found one of another: after the found one.
    mixed = {"gtid": f"{gtids['A']},{gtids['E']}"}
    assert delivered("ae", run("ae", mixed)) == ["F", "G"]
    # The server's GTID state now holds two servers of domain 0.
    assert delivered("f", run("f", {"gtid": gtids["F"]})) == ["G"]
    conn.close()
