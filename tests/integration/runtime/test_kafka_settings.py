"""Kafka producer and topic settings, each in effect on the real broker.

The settings are written as a user writes them (a SyncTask's ``spec.sink.kafka.producer`` and
``.topics``, the Connector's ``kafka.offsetsTopic``), rendered by the operator's renderer into
the worker config, and run by the worker against tests/infra's Kafka. What the broker then
holds is checked: the topics' partitions, replicas and configs (admin API), the checkpoint's
topic, and the record batches themselves, read from the broker's log segments (their
compression codec in the batch attributes, their record counts).
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource
from tests.integration.runtime.conftest import Pipeline, WorkerThread, read_topic
from tests.support import DEFAULT_ENV_FILE

from ferry_operator.api.connector import Connector
from ferry_operator.api.synctask import SyncTask
from ferry_operator.render.worker_config import render_worker_config

pytestmark = [pytest.mark.mysql, pytest.mark.kafka]

# tests/infra/up's broker keeps its log here (log.dirs); it runs on this machine.
KAFKA_LOG_DIR = DEFAULT_ENV_FILE.parent / "kafka" / "data"
CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}


def rendered_kafka(
    bootstrap: str, sink_kafka: dict[str, Any], offsets_topic: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The worker config's ``sink.kafka`` the operator renders from these manifests."""
    kafka: dict[str, Any] = {"bootstrapServers": bootstrap}
    if offsets_topic is not None:
        kafka["offsetsTopic"] = offsets_topic
    connectors = {
        "db": Connector.model_validate(
            {
                "metadata": {"name": "db", "namespace": "test"},
                "spec": {
                    "type": "mysql",
                    "mysql": {
                        "host": "db",
                        "user": "ferry",
                        "passwordSecretRef": {"name": "db", "key": "password"},
                    },
                },
            }
        ),
        "kafka": Connector.model_validate(
            {
                "metadata": {"name": "kafka", "namespace": "test"},
                "spec": {"type": "kafka", "kafka": kafka},
            }
        ),
    }
    task = SyncTask.model_validate(
        {
            "metadata": {"name": "t", "namespace": "test", "uid": "u"},
            "spec": {
                "source": {"connectorRef": {"name": "db"}},
                "sink": {"connectorRef": {"name": "kafka"}, "kafka": sink_kafka},
            },
        }
    )
    config = render_worker_config(task, connectors, report_to_kubernetes=False)
    dumped: dict[str, Any] = config.model_dump(mode="json", by_alias=True, exclude_none=True)
    out: dict[str, Any] = dumped["sink"]["kafka"]
    # Keep what these settings rendered; the test's config has its own address and topics.
    for key in ("bootstrapServers", "securityProtocol", "format", "partitionBy"):
        del out[key]
    if "topic" not in sink_kafka:
        del out["topic"]
    if offsets_topic is None:
        del out["offsetsTopic"]
    if not out["producer"]:
        del out["producer"]
    return out


def run_snapshot(pipeline: Pipeline, kafka: dict[str, Any], **overrides: Any) -> WorkerThread:
    """A snapshot-only worker with this sink.kafka, run to its end."""
    config = pipeline.config(mode="snapshot", **overrides)
    config["sink"]["kafka"] = {**config["sink"]["kafka"], **kafka}
    worker = pipeline.start(config)
    assert worker.join(120) == 0, (worker.worker.failure, worker.tracker.view()["lastErrors"])
    return worker


def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


def topic_config(bootstrap: str, topic: str) -> dict[str, str]:
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    client = admin(bootstrap)  # kept: the future fails once its client is gone
    (future,) = client.describe_configs([resource]).values()
    return {name: entry.value for name, entry in future.result(30).items()}


def partitions(bootstrap: str, topic: str) -> dict[int, int]:
    """Partition → number of replicas."""
    metadata = admin(bootstrap).list_topics(topic, timeout=30).topics[topic]
    assert metadata.error is None, metadata.error
    return {p: len(info.replicas) for p, info in metadata.partitions.items()}


def _segment_batches(directory: Path) -> list[tuple[str, int]]:
    """(compression codec, records) of every data record batch in one partition's log
    segments (the v2 record batch header: attributes at byte 21, the record count at 57)."""
    out: list[tuple[str, int]] = []
    for segment in sorted(directory.glob("*.log")):
        data = segment.read_bytes()
        at = 0
        while at + 61 <= len(data):
            (length,) = struct.unpack_from(">i", data, at + 8)
            if length <= 0 or at + 12 + length > len(data):
                break
            magic = data[at + 16]
            assert magic == 2, f"{segment}: record batch magic {magic}"
            (attributes,) = struct.unpack_from(">h", data, at + 21)
            (records,) = struct.unpack_from(">i", data, at + 57)
            if not attributes & 0x20:  # not a control batch (transaction marker)
                out.append((CODECS[attributes & 0x07], records))
            at += 12 + length
    return out


def batches(topic: str) -> list[tuple[str, int]]:
    """(compression codec, records) of every record batch the broker stored for ``topic``,
    read from its log segments."""
    out: list[tuple[str, int]] = []
    for directory in sorted(KAFKA_LOG_DIR.glob(f"{topic}-*")):
        if directory.name.rpartition("-")[0] == topic:
            out += _segment_batches(directory)
    return out


def batches_by_partition(topic: str) -> list[tuple[int, int]]:
    """(partition, records stored) for each partition directory of ``topic``."""
    out = []
    for directory in sorted(KAFKA_LOG_DIR.glob(f"{topic}-*")):
        base, _, partition = directory.name.rpartition("-")
        if base == topic:
            records = sum(n for _, n in _segment_batches(directory))
            out.append((int(partition), records))
    return sorted(out)


def wait_for_batches(topic: str, rows: int) -> list[tuple[str, int]]:
    """The stored batches once they hold ``rows`` records (the broker writes them at once;
    this only waits for the page cache to show them to a reader)."""
    deadline = time.monotonic() + 30
    while True:
        found = batches(topic)
        if sum(n for _, n in found) >= rows or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


@pytest.fixture
def table(pipeline: Pipeline) -> Callable[[int, int], str]:
    """``table(rows, width)``: a table ``t`` of that many rows of ``width`` characters."""

    def make(rows: int, width: int = 50) -> str:
        pipeline.sql(f"CREATE TABLE {pipeline.db}.t (id int PRIMARY KEY, note mediumtext)")
        pipeline.sql(
            f"INSERT INTO {pipeline.db}.t VALUES (%s, %s)",
            [(i, "x" * width) for i in range(1, rows + 1)],
            many=True,
        )
        return f"{pipeline.topic_prefix}.{pipeline.database}.t"

    return make


@pytest.fixture(autouse=True)
def _broker_log_is_here() -> None:
    assert KAFKA_LOG_DIR.is_dir(), f"no Kafka log directory at {KAFKA_LOG_DIR} (tests/infra/up)"


# ---------------------------------------------------------------- topics


def test_topics_are_created_with_the_configured_partitions_replicas_and_offsets_topic(
    pipeline: Pipeline, table: Callable[..., str]
) -> None:
    bootstrap = pipeline.bootstrap
    offsets = f"{pipeline.topic_prefix}.checkpoints"
    kafka = rendered_kafka(
        bootstrap,
        {"topics": {"partitions": 3, "replicationFactor": 1}},
        {"name": offsets, "partitions": 2, "replicationFactor": 1},
    )
    assert kafka["topicPartitions"] == 3 and kafka["offsetsTopic"] == offsets
    topic = table(30)
    worker = run_snapshot(pipeline, kafka)

    # The broker's num.partitions is 1 (tests/infra/up): 3 is the task's setting.
    assert partitions(bootstrap, topic) == {0: 1, 1: 1, 2: 1}
    ids = sorted(value["data"]["id"] for _, value in read_topic(bootstrap, topic))
    assert ids == list(range(1, 31))
    used = {p for p, n in batches_by_partition(topic) if n}
    assert used == {0, 1, 2}, "the rows' keys spread over the 3 partitions"
    # The checkpoint went to the Connector's offsets topic: compacted, 2 partitions.
    assert partitions(bootstrap, offsets) == {0: 1, 1: 1}
    assert topic_config(bootstrap, offsets)["cleanup.policy"] == "compact"
    checkpoints = read_topic(bootstrap, offsets)
    assert checkpoints and {key for key, _ in checkpoints} == {worker.worker.task_id}
    assert checkpoints[-1][1]["snapshot"]["done"] is True


def test_a_replication_factor_above_the_brokers_stops_the_task_with_a_clear_error(
    pipeline: Pipeline, table: Callable[..., str]
) -> None:
    bootstrap = pipeline.bootstrap
    topic = table(3)

    # A data topic: the task stops (no retry can add brokers), naming the field.
    kafka = rendered_kafka(bootstrap, {"topics": {"partitions": 2, "replicationFactor": 3}})
    config = pipeline.config(mode="snapshot")
    config["sink"]["kafka"] = {**config["sink"]["kafka"], **kafka}
    worker = pipeline.start(config)
    assert worker.join(60) == 1
    failure = worker.worker.failure
    assert failure is not None and failure.reason == "TopicCreationFailed", failure
    assert f"topic {topic} with 2 partition(s) and replication factor 3" in failure.message
    assert "INVALID_REPLICATION_FACTOR" in failure.message
    assert "spec.sink.kafka.topics" in failure.message
    assert topic not in admin(bootstrap).list_topics(timeout=30).topics

    # The offsets topic: the worker stops before it delivers anything.
    offsets = f"{pipeline.topic_prefix}.cp3"
    kafka = rendered_kafka(bootstrap, {}, {"name": offsets, "replicationFactor": 3})
    config = pipeline.config(mode="snapshot")
    config["sink"]["kafka"] = {**config["sink"]["kafka"], **kafka}
    worker = pipeline.start(config)
    assert worker.join(60) == 1
    failure = worker.worker.failure
    assert failure is not None and failure.reason == "TopicCreationFailed", failure
    assert f"topic {offsets} with 1 partition(s) and replication factor 3" in failure.message
    assert "kafka.offsetsTopic" in failure.message


# ---------------------------------------------------------------- producer


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compression_is_the_codec_of_the_stored_record_batches(
    pipeline: Pipeline, table: Callable[..., str], codec: str
) -> None:
    topic = table(200)
    kafka = rendered_kafka(pipeline.bootstrap, {"producer": {"compression": codec}})
    assert kafka["producer"] == {"compression.type": codec}
    run_snapshot(pipeline, kafka)
    stored = wait_for_batches(topic, 200)
    assert sum(n for _, n in stored) == 200
    assert {c for c, _ in stored} == {codec}


def test_without_compression_the_batches_are_not_compressed(
    pipeline: Pipeline, table: Callable[..., str]
) -> None:
    topic = table(200)
    run_snapshot(pipeline, rendered_kafka(pipeline.bootstrap, {}))
    stored = wait_for_batches(topic, 200)
    assert sum(n for _, n in stored) == 200 and {c for c, _ in stored} == {"none"}


def test_batch_size_bounds_the_stored_record_batches(
    pipeline: Pipeline, table: Callable[..., str]
) -> None:
    # 1000 rows of ~200 bytes in one chunk, delivered in one transaction: with the default
    # batch.size (1 MB) and a long linger they go as one batch; with 4000 bytes as dozens.
    topic = table(1000, width=150)
    perf = {"performance": {"snapshotChunkSize": 1000, "maxBatchDelay": "100ms"}}
    kafka = rendered_kafka(pipeline.bootstrap, {"producer": {"batchSize": 4000, "linger": "10s"}})
    assert kafka["producer"] == {"batch.size": 4000, "linger.ms": 10_000}
    run_snapshot(pipeline, kafka, **perf)
    stored = wait_for_batches(topic, 1000)
    assert sum(n for _, n in stored) == 1000
    assert len(stored) >= 40, stored  # ~20 records of ~200 bytes fit in 4000 bytes
    assert max(n for _, n in stored) <= 25, stored


def test_linger_holds_records_back_to_fill_a_batch(
    pipeline: Pipeline, table: Callable[..., str]
) -> None:
    # 8000 records in four deliveries of a 2000-row chunk each. Linger 10s: nothing goes
    # before the flush that ends a delivery, so each goes as one batch; linger 0ms: the
    # producer sends as soon as a record is there, while the worker still produces the
    # rest, so more, smaller batches (the first delivery may still go whole: the new topic's
    # metadata holds it back). At least once: a transaction would hold every record until
    # its partition joined the transaction.
    perf = {
        "performance": {"snapshotChunkSize": 2000, "maxBatchDelay": "100ms"},
        "delivery": "at-least-once",
    }
    topic = table(8000, width=10)
    kafka = rendered_kafka(pipeline.bootstrap, {"producer": {"linger": "10s"}})
    run_snapshot(pipeline, kafka, **perf)
    lingered = wait_for_batches(topic, 8000)
    assert sum(n for _, n in lingered) == 8000

    pipeline.sql(f"DROP TABLE {pipeline.db}.t")
    second = f"{pipeline.topic_prefix}.now"
    topic = table(8000, width=10)
    kafka = rendered_kafka(
        pipeline.bootstrap,
        {"topic": f"{second}.{{table}}", "producer": {"linger": "0ms"}},
    )
    config_offsets = {"offsetsTopic": f"{second}.offsets"}
    run_snapshot(pipeline, {**kafka, **config_offsets}, **perf)
    eager = wait_for_batches(f"{second}.t", 8000)
    assert sum(n for _, n in eager) == 8000
    assert len(lingered) == 4 and len(eager) > 4, (lingered, eager)


def test_producer_settings_are_the_clients_configuration(
    pipeline: Pipeline, table: Callable[..., str], spawn_worker: Callable[..., Any]
) -> None:
    # librdkafka's own dump of the configuration it runs with (debug=conf, written to the
    # worker process's stderr): linger and requestTimeout as it holds them, and acks and
    # idempotence still Ferry's.
    table(5)
    kafka = rendered_kafka(
        pipeline.bootstrap,
        {"producer": {"linger": "250ms", "requestTimeout": "17s", "compression": "lz4"}},
    )
    config = pipeline.config(mode="snapshot")
    config["sink"]["kafka"] = {**config["sink"]["kafka"], **kafka}
    config["sink"]["kafka"]["producer"] = {**kafka["producer"], "debug": "conf"}
    worker = spawn_worker(config)
    assert worker.wait(120) == 0, worker.output()[-3000:]
    dump = worker.output()
    assert "queue.buffering.max.ms = 250" in dump  # linger.ms
    assert "request.timeout.ms = 17000" in dump
    assert "compression.codec = lz4" in dump
    assert "enable.idempotence = true" in dump
    assert "acks = -1" in dump or "request.required.acks = -1" in dump


def test_max_message_bytes_admits_a_bigger_record_and_refuses_a_bigger_one(
    pipeline: Pipeline,
) -> None:
    # 1.5 MB passes with maxMessageBytes 2 MB (the default 1 MB would make it a poison row,
    # and the topic's max.message.bytes lets the broker take it); 2.5 MB is a poison row,
    # skipped by errorPolicy skip, with an error naming message.max.bytes.
    sql = pipeline.sql
    sql(f"CREATE TABLE {pipeline.db}.t (id int PRIMARY KEY, note longtext)")
    sql(
        f"INSERT INTO {pipeline.db}.t VALUES (1, %s), (2, %s), (3, 'small')",
        ("a" * 1_500_000, "b" * 2_500_000),
    )
    kafka = rendered_kafka(pipeline.bootstrap, {"producer": {"maxMessageBytes": 2_000_000}})
    assert kafka["producer"] == {"message.max.bytes": 2_000_000}
    worker = run_snapshot(pipeline, kafka, errorPolicy={"mode": "skip"})
    topic = f"{pipeline.topic_prefix}.{pipeline.database}.t"
    assert topic_config(pipeline.bootstrap, topic)["max.message.bytes"] == "2000000"
    delivered = {v["data"]["id"]: len(v["data"]["note"]) for _, v in pipeline.records("t")}
    assert delivered == {1: 1_500_000, 3: 5}
    (error,) = [e for e in worker.tracker.view()["lastErrors"] if e["reason"] == "PoisonRow"]
    assert "message.max.bytes" in error["message"], error
