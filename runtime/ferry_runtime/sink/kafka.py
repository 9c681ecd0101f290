"""The Kafka sink: records and the checkpoint, delivered together.

A batch of mapped rows becomes records in :mod:`ferry_runtime.sink.kafka_records` (formats,
DDL and transaction records, size checks, dead letters); this module produces them.

``exactly-once``: one Kafka transaction holds a batch of records *and* the checkpoint record
(compacted offsets topic, key = task id). ``transactional.id`` is derived from the task id,
so ``init_transactions`` of a second worker with the same id fences the first and aborts its
open transaction. ``at-least-once``: idempotent producer, no transaction; the checkpoint is
produced only after every record of the batch was acknowledged.

The last checkpoint is read with ``isolation.level=read_committed``, after fencing.
"""

from __future__ import annotations

import zlib
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from ferry_runtime import checkpoint, errors, tls
from ferry_runtime.config import KafkaSink as KafkaSinkConfig
from ferry_runtime.sink.base import Batch, Counts, counted
from ferry_runtime.sink.kafka_records import KafkaRecords, Record

__all__ = ["KafkaSink", "Record", "transactional_id"]

TIMEOUT = 30.0
# Topic creation refusals that no retry can change: the settings or the grants are wrong.
_REFUSED_TOPIC = frozenset(
    {
        KafkaError.INVALID_REPLICATION_FACTOR,
        KafkaError.INVALID_PARTITIONS,
        KafkaError.INVALID_CONFIG,
        KafkaError.POLICY_VIOLATION,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
    }
)


def transactional_id(task_id: str) -> str:
    return f"ferry-{task_id}"


class KafkaSink:
    """Delivers batches with their checkpoint; every method raises errors.WorkerError."""

    def __init__(
        self,
        config: KafkaSinkConfig,
        task_id: str,
        exactly_once: bool,
        records: KafkaRecords | None = None,
    ) -> None:
        """``records``: how batches become records (None: a sink that delivers checkpoints
        and :meth:`produce` calls only)."""
        self.config = config
        self.records = records
        # Snapshot rows as the server's JSON: Maxwell and Debezium take them as they are.
        self.json_rows = records is not None and records.format in ("maxwell", "debezium")
        self.task_id = task_id
        self.exactly_once = exactly_once
        self._common: dict[str, Any] = {
            "bootstrap.servers": config.bootstrap_servers,
            **tls.kafka_settings(config),
        }
        self._at = f"Kafka at {config.bootstrap_servers}"  # errors name the address tried
        self._partitions: dict[str, int] = {}
        self._producer: Producer | None = None
        self._failures: list[KafkaError] = []
        self._refused: list[KafkaError] = []  # SASL or TLS refusals seen by any client

    # ------------------------------------------------------------ lifecycle

    def open(self) -> None:
        """Create the producer; with exactly-once, fence older workers of this task."""
        settings = self.producer_settings()
        try:
            self.ensure_topic(self.config.offsets_topic, compacted=True)
            try:
                self._producer = Producer({**settings, "error_cb": self._on_client_error})
            except KafkaException as error:
                if error.args[0].code() != KafkaError._INVALID_ARG:
                    raise
                raise errors.FatalError(
                    "InvalidConfig",
                    f"the Kafka producer refused its settings: {error.args[0].str()}. Check "
                    "spec.sink.kafka.producer.",
                ) from None
            if self.exactly_once:
                self._producer.init_transactions(TIMEOUT)
        except KafkaException as error:
            where = f"opening the producer ({self._at})"
            raise self._refusal(where) or errors.from_kafka(error, where) from None

    def producer_settings(self) -> dict[str, Any]:
        """librdkafka settings: Ferry's defaults, the configured ones (spec.sink.kafka.producer),
        and last the settings exactly-once rests on, which nothing overrides (the config
        refuses them too): acks=all, idempotence, the transactional.id."""
        settings: dict[str, Any] = {
            **self._common,
            "linger.ms": 5,
            "message.timeout.ms": 60_000,
            **self.config.producer,
            "enable.idempotence": True,
            "acks": "all",
        }
        if self.exactly_once:
            settings["transactional.id"] = transactional_id(self.task_id)
            settings.setdefault("transaction.timeout.ms", 60_000)
        return settings

    def close(self) -> None:
        if self.records is not None:
            self.records.close()
        if self._producer is not None:
            self._producer.flush(5)
            self._producer = None

    # ------------------------------------------------------------ topics

    def new_topic(self, topic: str, compacted: bool = False) -> NewTopic:
        """How the worker creates a missing topic: the offsets topic (``compacted``) or a data
        topic, with the configured partitions and replication factor (-1: the broker's
        default). A data topic admits records up to the producer's message.max.bytes."""
        kafka = self.config
        config: dict[str, str] = {}
        if compacted:
            config["cleanup.policy"] = "compact"
            partitions = kafka.offsets_topic_partitions or 1
            replicas = kafka.offsets_topic_replication_factor or -1
        else:
            partitions = kafka.topic_partitions or -1
            replicas = kafka.topic_replication_factor or -1
            if "message.max.bytes" in kafka.producer:
                config["max.message.bytes"] = str(kafka.producer["message.max.bytes"])
        return NewTopic(
            topic, num_partitions=partitions, replication_factor=replicas, config=config
        )

    def ensure_topic(self, topic: str, compacted: bool = False) -> int:
        """Create ``topic`` when missing (:meth:`new_topic`); return its partition count. An
        existing topic is used as it is."""
        if topic in self._partitions:
            return self._partitions[topic]
        settings: dict[str, Any] = {**self._common, "error_cb": self._on_client_error}
        admin = AdminClient(settings)
        try:
            metadata = admin.list_topics(topic=None, timeout=TIMEOUT)
        except KafkaException:
            admin.poll(0)  # serve the error callbacks: a refusal is told apart from an outage
            raise
        if topic not in metadata.topics:
            new = self.new_topic(topic, compacted)
            for future in admin.create_topics([new], request_timeout=TIMEOUT).values():
                try:
                    future.result()
                except KafkaException as error:
                    code = error.args[0].code()
                    if code in _REFUSED_TOPIC:
                        raise self._topic_refused(new, compacted, error.args[0]) from None
                    if code != KafkaError.TOPIC_ALREADY_EXISTS:
                        raise
            metadata = admin.list_topics(topic=topic, timeout=TIMEOUT)
        self._partitions[topic] = len(metadata.topics[topic].partitions) or 1
        return self._partitions[topic]

    def _topic_refused(
        self, new: NewTopic, compacted: bool, error: KafkaError
    ) -> errors.FatalError:
        """Kafka refused to create a topic with these settings: retrying cannot help."""
        if compacted:
            fields = "the Connector's kafka.offsetsTopic (partitions, replicationFactor)"
        else:
            fields = "spec.sink.kafka.topics (partitions, replicationFactor)"
        return errors.FatalError(
            "TopicCreationFailed",
            f"Kafka refused to create topic {new.topic} with {new.num_partitions} partition(s) "
            f"and replication factor {new.replication_factor} ({error.name()}: {error.str()}). "
            f"Check {fields}, or create the topic yourself ({self._at}).",
        )

    # ------------------------------------------------------------ checkpoint

    def read_checkpoint(self) -> checkpoint.Checkpoint | None:
        """The last committed checkpoint of this task (read_committed), or None."""
        topic = self.config.offsets_topic
        consumer = Consumer(
            {
                **self._common,
                "group.id": f"ferry-checkpoint-{self.task_id}",
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
            }
        )
        try:
            metadata = consumer.list_topics(topic, timeout=TIMEOUT)
            partitions = list(metadata.topics[topic].partitions)
            consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
            pending = set(partitions)
            found: checkpoint.Checkpoint | None = None
            key = self.task_id.encode()
            while pending:
                message = consumer.poll(TIMEOUT)
                if message is None:
                    raise errors.TransientError(
                        "SinkUnavailable",
                        f"timed out reading the checkpoint from {topic} ({self._at})",
                    )
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        pending.discard(message.partition())
                        continue
                    raise KafkaException(error)
                if message.key() == key:
                    value = message.value()
                    found = None if value is None else checkpoint.decode(value)
            return found
        except KafkaException as error:
            raise errors.from_kafka(
                error, f"reading the checkpoint from {topic} ({self._at})"
            ) from None
        finally:
            consumer.close()

    # ------------------------------------------------------------ delivery

    def _on_client_error(self, error: KafkaError) -> None:
        if error.code() in (KafkaError._AUTHENTICATION, KafkaError._SSL):
            self._refused.append(error)

    def _refusal(self, where: str) -> errors.WorkerError | None:
        """A SASL or TLS refusal as a fatal error (retrying cannot help), or None. The
        message is ours: it names the settings, never a credential."""
        codes = {e.code() for e in self._refused}
        if KafkaError._AUTHENTICATION in codes:
            return errors.FatalError(
                "AuthenticationFailed",
                f"{where}: Kafka refused the SASL credentials ({self.config.sasl_mechanism}). "
                "Check the username and password in the Secret of the Connector's "
                "kafka.sasl.secretRef.",
            )
        if KafkaError._SSL in codes:
            tls = self.config.tls
            ca = f"the CA in {tls.ca_file}" if tls and tls.ca_file else "the system CAs"
            verify = any("certificate verify failed" in e.str() for e in self._refused)
            return errors.FatalError(
                "TLSVerificationFailed" if verify else "TLSHandshakeFailed",
                f"{where}: the TLS handshake with Kafka failed"
                + (f": its certificate cannot be verified with {ca}" if verify else "")
                + ". Check the Connector's kafka.tls (caSecretRef, clientCertSecretRef).",
            )
        return None

    def _on_delivery(self, error: KafkaError | None, _message: Any) -> None:
        if error is not None:
            self._failures.append(error)

    def _produce(self, producer: Producer, records: list[Record]) -> None:
        """Hand ``records`` to librdkafka (topics checked once per batch: the hot path)."""
        partitions = {topic: self.ensure_topic(topic) for topic in {r[0] for r in records}}
        callback = None if self.exactly_once else self._on_delivery  # EOS: the commit tells
        produce = producer.produce
        for topic, key, value, part in records:
            while True:
                try:
                    if part is not None:
                        partition = zlib.crc32(part.encode()) % partitions[topic]
                        produce(topic, value, key, partition, callback)
                    elif callback is None:
                        produce(topic, value, key)
                    else:
                        produce(topic, value, key, on_delivery=callback)
                    break
                except BufferError:  # local queue full: let librdkafka send some
                    producer.poll(0.05)

    def deliver(self, batch: Batch, state: checkpoint.Checkpoint) -> Counts:
        """Deliver the batch's records and then ``state``; return once Kafka acknowledged
        both."""
        if not batch:
            self.produce([], state)
            return {}
        assert self.records is not None, "a KafkaSink without KafkaRecords takes no rows"
        records, counts = self.records.encode(batch)
        self.produce(records, counted(state, counts))
        return counts

    def produce(self, records: list[Record], state: checkpoint.Checkpoint) -> None:
        """Produce ``records`` and then ``state``; return once Kafka acknowledged both."""
        producer = self._producer
        assert producer is not None, "open() first"
        self._failures = []
        cp = Record(
            self.config.offsets_topic, self.task_id.encode(), checkpoint.encode(state, self.task_id)
        )
        try:
            if self.exactly_once:
                producer.begin_transaction()
            self._produce(producer, records)
            if self.exactly_once:
                self._produce(producer, [cp])
                producer.commit_transaction(TIMEOUT)  # flushes; raises if any record failed
            else:
                self._flush(producer)
                self._produce(producer, [cp])
                self._flush(producer)
        except KafkaException as error:
            raise errors.from_kafka(error, f"delivering a batch ({self._at})") from None

    def _flush(self, producer: Producer) -> None:
        if producer.flush(TIMEOUT) > 0:
            raise errors.TransientError(
                "SinkUnavailable", f"{self._at} did not acknowledge in time"
            )
        if self._failures:
            raise KafkaException(self._failures[0])
