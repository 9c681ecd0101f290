"""The Kafka sink: records and the checkpoint, delivered together.

A batch of mapped rows becomes records in :mod:`ferry_runtime.sink.kafka_records` (formats,
DDL and transaction records, size checks, dead letters); this module produces them.

``exactly-once``: one Kafka transaction holds a batch of records *and* the checkpoint record
(compacted offsets topic, key = task id). ``transactional.id`` is derived from the task id,
so ``init_transactions`` of a second worker with the same id fences the first and aborts its
open transaction. ``at-least-once``: idempotent producer, no transaction; the checkpoint is
produced only after every record of the batch was acknowledged.

The last checkpoint is read with ``isolation.level=read_committed``, after fencing, up to the
offsets topic's high watermark (see :meth:`KafkaSink.read_checkpoint`).

Start-up (:meth:`KafkaSink.open`, then :meth:`KafkaSink.read_checkpoint`): the admin client,
the producer and the checkpoint's consumer are created together and connect meanwhile; the
offsets topic is made sure of; ``init_transactions`` fences; only then is the checkpoint read.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import zlib
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    IsolationLevel,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    OffsetSpec,
)
from confluent_kafka.cimpl import NewTopic

from ferry_runtime import checkpoint, errors, tls
from ferry_runtime.config import KafkaSink as KafkaSinkConfig
from ferry_runtime.sink import _produce as native
from ferry_runtime.sink.base import Batch, Counts, counted
from ferry_runtime.sink.kafka_records import KafkaRecords, Record

__all__ = ["KafkaSink", "Record", "transactional_id"]

TIMEOUT = 30.0
# How long the broker holds the checkpoint consumer's fetch when nothing is left to read (the
# default, 500 ms, was spent at every start: the end of the offsets topic is told by an empty
# fetch). Only the last fetch of each partition waits.
CHECKPOINT_FETCH_WAIT_MS = 10
# Metadata requests made until a broker the cluster named answers (see KafkaSink._fence).
CONNECT_TRIES = 3
# The checkpoint consumer's first request, made while the producer starts (KafkaSink._connect).
CONNECT_TIMEOUT = 5.0
# How long a topic just created may go without a leader before the worker goes on anyway.
LEADER_WAIT = 5.0
_NO_LEADER = frozenset(
    {
        KafkaError._NOENT,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
    }
)
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


log = logging.getLogger("ferry.sink.kafka")


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
        self._admin: AdminClient | None = None  # one for the sink's life (ensure_topic)
        self._producer: Producer | None = None
        self._native = False  # exactly-once records go to librdkafka in runs (_produce.c)
        self._consumer: Consumer | None = None  # created by open(), used by read_checkpoint()
        self._connecting: threading.Thread | None = None  # the consumer's first request
        self._failures: list[KafkaError] = []
        self._refused: list[KafkaError] = []  # SASL or TLS refusals seen by any client

    # ------------------------------------------------------------ lifecycle

    def open(self) -> None:
        """Create the clients and the offsets topic if missing; with exactly-once, fence older
        workers of this task (:meth:`_fence`). The checkpoint is read after this returns.

        The admin client, the producer and the checkpoint's consumer are created at once: a
        new librdkafka client's first request waits until it is connected to a broker the
        cluster named (it drops its bootstrap connection, and connects again no sooner than
        reconnect.backoff.ms / 2 later), and these waits overlap. Nothing is read or produced
        before the fence: the consumer only connects."""
        settings = self.producer_settings()
        try:
            self._admin_client()
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
            self._native = self.exactly_once and self._native_serves(self._producer)
            self._consumer = Consumer(self._checkpoint_settings())
            self._connecting = threading.Thread(
                target=self._connect, args=(self._consumer,), name="checkpoint-connect"
            )
            self._connecting.start()
            self.ensure_topic(self.config.offsets_topic, compacted=True)
            if self.exactly_once:
                self._fence(self._producer)
        except KafkaException as error:
            where = f"opening the producer ({self._at})"
            raise self._refusal(where) or errors.from_kafka(error, where) from None

    def _connect(self, consumer: Consumer) -> None:
        """The checkpoint consumer's first request (metadata only; it reads nothing), on its
        own thread: the consumer connects while the producer starts and fences. Errors are
        left to :meth:`read_checkpoint`, which asks again."""
        with contextlib.suppress(KafkaException):
            consumer.list_topics(self.config.offsets_topic, timeout=CONNECT_TIMEOUT)

    def _connected(self) -> None:
        """Wait for :meth:`_connect` (the consumer is used by one thread at a time)."""
        if self._connecting is not None:
            self._connecting.join()
            self._connecting = None

    def _fence(self, producer: Producer) -> None:
        """``init_transactions``: older producers of this transactional.id are fenced, and
        their open transaction is ended (aborted; committed if its commit had begun) before
        it returns, so the checkpoint read after it sees that outcome.

        First a metadata request (of the offsets topic, which exists by now) until a broker the
        cluster named answers, not the bootstrap connection: the transaction coordinator is
        looked up on a connected broker, and when librdkafka has just dropped its bootstrap
        connection and not yet connected to the broker it learned of, the next lookup comes
        500 ms later (a third of the starts spent that)."""
        topic = self.config.offsets_topic
        for _ in range(CONNECT_TRIES):
            if producer.list_topics(topic, timeout=TIMEOUT).orig_broker_id >= 0:
                break
        producer.init_transactions(TIMEOUT)

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
        self._connected()
        if self._consumer is not None:  # open() failed before the checkpoint was read
            self._consumer.close()
            self._consumer = None
        if self._producer is not None:
            # A producer that failed (fenced, say) raises its error again here: what ended
            # the run was raised already, and records not acknowledged are sent again.
            with contextlib.suppress(KafkaException):
                self._producer.flush(5)
            self._producer = None
        self._admin = None

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

    def _admin_client(self) -> AdminClient:
        """The sink's admin client. It never lets the broker create a topic it is asked about
        (auto.create.topics.enable would make it with the broker's defaults: not compacted,
        the broker's partitions)."""
        if self._admin is None:
            settings: dict[str, Any] = {
                **self._common,
                "allow.auto.create.topics": False,
                "error_cb": self._on_client_error,
            }
            self._admin = AdminClient(settings)
        return self._admin

    def ensure_topic(self, topic: str, compacted: bool = False) -> int:
        """Create ``topic`` when missing (:meth:`new_topic`); return its partition count. An
        existing topic is used as it is."""
        if topic in self._partitions:
            return self._partitions[topic]
        admin = self._admin_client()
        try:
            metadata = admin.list_topics(topic=topic, timeout=TIMEOUT)
        except KafkaException:
            admin.poll(0)  # serve the error callbacks: a refusal is told apart from an outage
            raise
        found = metadata.topics.get(topic)
        if found is None or found.error is not None:  # missing, or not ours to describe
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
            metadata = self._led(admin, topic)
        self._partitions[topic] = len(metadata.topics[topic].partitions) or 1
        return self._partitions[topic]

    @staticmethod
    def _led(admin: AdminClient, topic: str) -> Any:
        """The metadata of a topic just created, once the admin client knows a leader for
        each partition (for up to LEADER_WAIT seconds): its ListOffsets (the checkpoint
        read's end) fails with "no leaders found" before."""
        deadline = time.monotonic() + LEADER_WAIT
        while True:
            metadata = admin.list_topics(topic=topic, timeout=TIMEOUT)
            found = metadata.topics.get(topic)
            led = (
                found is not None
                and found.error is None
                and bool(found.partitions)
                and all(p.leader >= 0 for p in found.partitions.values())
            )
            if led or time.monotonic() >= deadline:
                return metadata
            time.sleep(0.01)

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

    def _checkpoint_settings(self) -> dict[str, Any]:
        return {
            **self._common,
            "group.id": f"ferry-checkpoint-{self.task_id}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "fetch.wait.max.ms": CHECKPOINT_FETCH_WAIT_MS,
        }

    def read_checkpoint(self) -> checkpoint.Checkpoint | None:
        """The last committed checkpoint of this task (read_committed), or None. Called after
        :meth:`open`: with exactly-once, every transaction of an older worker is ended.

        The offsets topic is read up to its high watermark as it is now, not only to where a
        read_committed consumer sees an end (the last stable offset, the start of the oldest
        open transaction): the offsets topic is shared by the Connector's tasks, and while
        another task's transaction is open, this task's checkpoints committed after it lie
        beyond that offset. The read waits until those transactions end."""
        topic = self.config.offsets_topic
        self._connected()
        consumer, self._consumer = self._consumer, None
        try:
            if consumer is None:
                consumer = Consumer(self._checkpoint_settings())
            # The partitions as open() found or made them (a consumer's metadata of a topic
            # with an error lists none, and no partition would read as no checkpoint).
            partitions = list(range(self.ensure_topic(topic, compacted=True)))
            ends = self._high_watermarks(topic, partitions)
            pending = {partition for partition, end in ends.items() if end > 0}
            consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in pending])
            found: checkpoint.Checkpoint | None = None
            key = self.task_id.encode()
            stable: dict[int, int] = {}  # where read_committed stopped short of the end
            while pending:
                message = consumer.poll(TIMEOUT)
                if message is None:
                    raise errors.TransientError(
                        "SinkUnavailable",
                        f"timed out reading the checkpoint from {topic} ({self._at})"
                        + self._waiting(topic, stable, ends),
                    )
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        partition, offset = message.partition(), message.offset()
                        assert partition is not None and offset is not None  # an EOF has both
                        if offset >= ends[partition]:
                            pending.discard(partition)
                        else:
                            stable[partition] = offset
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
            if consumer is not None:
                consumer.close()

    @staticmethod
    def _waiting(topic: str, stable: dict[int, int], ends: dict[int, int]) -> str:
        if not stable:
            return ""
        where = ", ".join(f"{topic}[{p}] at {at} of {ends[p]}" for p, at in sorted(stable.items()))
        return (
            f": a transaction another producer opened in the offsets topic is still open "
            f"({where}); its records and this task's checkpoints after them are read once "
            "it ends (transaction.timeout.ms at the latest)"
        )

    def _high_watermarks(self, topic: str, partitions: list[int]) -> dict[int, int]:
        """Each partition's end, open transactions' records included."""
        latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
        query = {TopicPartition(topic, p): latest for p in partitions}
        deadline = time.monotonic() + LEADER_WAIT
        while True:
            futures = self._admin_client().list_offsets(
                query, isolation_level=IsolationLevel.READ_UNCOMMITTED, request_timeout=TIMEOUT
            )
            try:
                return {tp.partition: future.result().offset for tp, future in futures.items()}
            except KafkaException as error:  # a topic just created: its leader is not known
                if error.args[0].code() not in _NO_LEADER or time.monotonic() >= deadline:
                    raise
            time.sleep(0.05)

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

    @staticmethod
    def _native_serves(producer: Producer) -> bool:
        """Whether _produce.c can queue this producer's records (else record by record)."""
        try:
            native.handle(producer)
        except (RuntimeError, TypeError) as error:
            log.warning("producing record by record (%s)", error)
            return False
        return True

    def _produce(self, producer: Producer, records: list[Record]) -> None:
        """Hand ``records`` to librdkafka (topics checked once per batch: the hot path).
        Exactly-once: in runs, by _produce.c (the commit reports failures); a record
        partitioned by a column, and every record of an at-least-once sink (a delivery
        callback each), one by one."""
        partitions = {topic: self.ensure_topic(topic) for topic in {r[0] for r in records}}
        callback = None if self.exactly_once else self._on_delivery
        start = 0
        while start < len(records):
            if self._native:
                start = self._produce_runs(producer, records, start)
                if start == len(records):
                    return
            topic, key, value, part = records[start]
            self._produce_one(producer, topic, key, value, part, partitions, callback)
            start += 1

    @staticmethod
    def _produce_runs(producer: Producer, records: list[Record], start: int) -> int:
        """Queue records from ``start`` on with _produce.c, waiting while librdkafka's local
        queue is full; return the index of the first partitioned record (or the end)."""
        while True:
            start, code = native.produce(producer, records, start)
            if code == KafkaError._QUEUE_FULL:
                producer.poll(0.05)  # let librdkafka send some
            elif code:
                raise KafkaException(KafkaError(code))
            else:
                return start

    @staticmethod
    def _produce_one(
        producer: Producer,
        topic: str,
        key: bytes,
        value: bytes,
        part: str | None,
        partitions: dict[str, int],
        callback: Any,
    ) -> None:
        """Produce one record, waiting while librdkafka's local queue is full."""
        while True:
            try:
                if part is not None:
                    partition = zlib.crc32(part.encode()) % partitions[topic]
                    producer.produce(topic, value, key, partition, callback)
                elif callback is None:
                    producer.produce(topic, value, key)
                else:
                    producer.produce(topic, value, key, on_delivery=callback)
                return
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
            error = self._fatal(producer, error)
            raise errors.from_kafka(error, f"delivering a batch ({self._at})") from None

    @staticmethod
    def _fatal(producer: Producer, error: KafkaException) -> KafkaException:
        """``error``, or the fatal error behind it: once librdkafka has raised one (this
        worker fenced by a newer one, say), it refuses every record with the bare code
        _FATAL, and the fatal error itself is what says what to do."""
        refusal = error.args[0] if error.args else None
        if not isinstance(refusal, KafkaError) or refusal.code() != KafkaError._FATAL:
            return error
        try:
            fatal = native.fatal_error(producer)
        except (RuntimeError, TypeError):  # _produce.c cannot serve this producer
            return error
        if fatal is None:
            return error
        return KafkaException(KafkaError(fatal[0], fatal[1], fatal=True))

    def _flush(self, producer: Producer) -> None:
        if producer.flush(TIMEOUT) > 0:
            raise errors.TransientError(
                "SinkUnavailable", f"{self._at} did not acknowledge in time"
            )
        if self._failures:
            raise KafkaException(self._failures[0])
