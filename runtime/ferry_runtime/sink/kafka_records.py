"""What the Kafka sink makes of a batch of mapped rows: records (pure but for the registry).

:class:`KafkaRecords` turns a :data:`~ferry_runtime.sink.base.Batch` into Kafka records in
the task's format (Maxwell or Debezium JSON, :mod:`ferry_runtime.formats`; Avro,
:mod:`ferry_runtime.avro_format`), each routed to its topic (spec.sink.kafka.topic) and
partition (partitionBy), in binlog order, with:

* the DDL records of sink.kafka.schemaChanges between the rows before and after a schema
  change (:mod:`ferry_runtime.ddl_records`);
* the BEGIN/END records of sink.kafka.transactionTopic around each source transaction's
  rows (:mod:`ferry_runtime.txmeta`);
* a row that cannot be a record (a value JSON cannot hold, a record over the producer's
  message.max.bytes) handed to the error policy, and its dead letter, like those of the rows
  the binlog reader set aside, as a record of errorPolicy.deadLetterTopic.

A snapshot chunk's rows are encoded together (:func:`formats.encode_reads`, the snapshot's
hot path); a chunk with a row that needs the error policy goes the one-by-one way.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from itertools import repeat
from operator import attrgetter
from typing import NamedTuple

from ferry_runtime import avro_format, ddl_records, errors, formats, rules, txmeta
from ferry_runtime.config import WorkerConfig
from ferry_runtime.events import Change
from ferry_runtime.sink.base import Batch, Counts, DeadLetter, PoisonHandler, Reads, Segment

__all__ = ["KafkaRecords", "Record"]

# what a delivered row is counted under: (database, origin, table, op)
_COUNTED = attrgetter("database", "origin", "table", "op")
HEADROOM = 512  # bytes of message.max.bytes a record's headers and framing may take


class Record(NamedTuple):  # a tuple: built once per row on the hot path
    topic: str
    key: bytes
    value: bytes
    partition_by: str | None = None  # hash this instead of the key to pick the partition


class KafkaRecords:
    """Encodes batches for one task; :meth:`close` releases the Avro encoder's connection."""

    def __init__(self, config: WorkerConfig, on_poison: PoisonHandler) -> None:
        kafka = config.sink.kafka
        assert kafka is not None
        self.config = config
        self.on_poison = on_poison
        self.task_id = config.task.id
        self.format = kafka.format
        self.transaction_topic = kafka.transaction_topic
        self.dead_letter_topic = config.error_policy.dead_letter_topic
        self.max_bytes = int(kafka.producer.get("message.max.bytes", 1_000_000)) - HEADROOM
        self._routes: dict[tuple[str, str], tuple[str, str | None]] = {}
        self._avro: avro_format.AvroEncoder | None = None  # format avro, made on first use

    def close(self) -> None:
        if self._avro is not None:
            self._avro.close()
            self._avro = None

    # ------------------------------------------------------------ a batch

    def encode(self, batch: Batch) -> tuple[list[Record], Counts]:
        """The batch's records, in order, and the rows they deliver per (table, op)."""
        records: list[Record] = []
        counts: Counter[tuple[str, str]] = Counter()
        letters: list[DeadLetter] = []
        run: list[Change] = []  # rows of transactions without BEGIN/END, not encoded yet
        for part in batch:
            if isinstance(part, Reads):  # after the rows before it (a snapshot delivery
                self._rows(run, None, records, counts)  # holds the binlog up to each chunk)
                run = []
                self._reads(part, records, counts)
                continue
            letters.extend(part.dead_letters)
            if part.schema_change is not None:
                self._rows(run, None, records, counts)
                run = []
                if self._avro is not None:  # the rows after it: their types read again
                    self._avro.forget()
                records.extend(
                    Record(topic, key, value, partition)
                    for topic, key, value, partition in ddl_records.records(
                        self.config, part.schema_change
                    )
                )
            if self.transaction_topic and part.position is not None:
                self._transaction(part, self.transaction_topic, records, counts)
            else:
                run.extend(part.changes)
        self._rows(run, None, records, counts)
        if letters and self.dead_letter_topic:
            records.extend(self._letter(letter) for letter in letters)
        return records, dict(counts)

    def _transaction(
        self, part: Segment, topic: str, records: list[Record], counts: Counter[tuple[str, str]]
    ) -> None:
        """The transaction's records between its BEGIN and END records (txmeta)."""
        assert part.position is not None
        order = txmeta.Order(txmeta.transaction_id(part.gtid, part.position))
        body: list[Record] = []
        self._rows(part.changes, order, body, counts)
        if not order.total:  # no row delivered (dead letters only): no BEGIN/END, as Debezium
            records.extend(body)
            return
        records.append(Record(topic, *txmeta.begin(order, part.ts)))
        records.extend(body)
        records.append(Record(topic, *txmeta.end(order, part.ts)))

    # ------------------------------------------------------------ rows

    def _route(self, change: Change) -> tuple[str, str | None]:
        """(topic, partition value) of a mapped change, cached per table."""
        target = (change.database, change.table)
        routed = self._routes.get(target)
        if routed is None:
            routed = self._routes[target] = (
                rules.topic(self.config, change),
                rules.partition_value(self.config, change),
            )
        return routed

    def _rows(
        self,
        changes: list[Change],
        order: txmeta.Order | None,
        records: list[Record],
        counts: Counter[tuple[str, str]],
    ) -> None:
        """Records of mapped ``changes``; ``order``: their transaction's, for txmeta."""
        fmt = self.format
        if order is None and fmt != "avro" and changes:
            try:
                encoded = formats.encode_many(changes, fmt, self.task_id)
            except (TypeError, ValueError):  # a value JSON cannot hold: one by one below
                pass
            else:
                self._encoded(changes, encoded, records, counts)
                return
        for change in changes:
            topic, partition = self._route(change)
            if order is not None and fmt in ("debezium", "avro"):
                change.extra["transaction"] = order.block(change.name)
            try:
                if fmt == "avro":
                    key, value = self._avro_encoder().encode(
                        change.database, change.source_table, change, topic, self.task_id
                    )
                else:
                    key, value = formats.encode(change, fmt, self.task_id)
            except (TypeError, ValueError) as error:  # a value JSON cannot hold
                records.extend(self._unencodable(change, error))
                continue
            if len(key) + len(value) > self.max_bytes:  # Kafka would refuse it: poison
                records.extend(self._too_large(change, len(key) + len(value)))
                continue
            records.append(Record(topic, key, value, partition))
            counts[(change.source_name, change.op)] += 1
            if order is not None:
                order.take(change.name)

    def _encoded(
        self,
        changes: list[Change],
        encoded: list[tuple[bytes, bytes]],
        records: list[Record],
        counts: Counter[tuple[str, str]],
    ) -> None:
        """Records of ``changes`` encoded together (the streaming hot path: per row, a
        size check and a tuple; routes per run of one table, counts in one pass in C)."""
        limit, make = self.max_bytes, tuple.__new__
        append = records.append
        database = table = None
        topic, partition = "", None
        refused: list[Change] = []
        for change, (key, value) in zip(changes, encoded, strict=True):
            if change.table is not table or change.database is not database:
                database, table = change.database, change.table
                topic, partition = self._route(change)
            if len(key) + len(value) > limit:  # Kafka would refuse it: poison
                records.extend(self._too_large(change, len(key) + len(value)))
                refused.append(change)
                continue
            append(make(Record, (topic, key, value, partition)))
        tally = Counter(map(_COUNTED, changes))
        tally.subtract(map(_COUNTED, refused))
        for (db, origin, name, op), count in tally.items():
            if count:
                counts[(f"{db}.{origin or name}", op)] += count

    def _reads(self, reads: Reads, records: list[Record], counts: Counter[tuple[str, str]]) -> None:
        """A snapshot chunk's records, encoded together; one by one when a row needs the
        error policy."""
        template, rows = reads.template, reads.rows
        if not rows:
            return
        topic, partition = self._route(template)
        limit = self.max_bytes
        try:
            if self.format == "avro":
                keys, values = self._avro_encoder().encode_reads(
                    template.database, template.source_table, template, reads.dicts(), topic,
                    self.task_id,
                )  # fmt: skip
            else:
                keys, values = formats.encode_reads(template, rows, self.format, self.task_id)
        except (TypeError, ValueError):  # a value JSON cannot hold: the error policy, row by row
            keys = values = []
        # The longest key and value together bound every record (one pass each, in C).
        fits = bool(values) and max(map(len, keys)) + max(map(len, values)) <= limit
        if fits or (
            values and all(len(k) + len(v) <= limit for k, v in zip(keys, values, strict=True))
        ):
            rows_of = zip(repeat(topic), keys, values, repeat(partition), strict=False)
            records.extend(map(tuple.__new__, repeat(Record), rows_of))  # Record(): 2x slower
            counts[(template.source_name, "read")] += len(values)
            return
        changes = [dataclasses.replace(template, data=row) for row in reads.dicts()]
        self._rows(changes, None, records, counts)

    def _avro_encoder(self) -> avro_format.AvroEncoder:
        if self._avro is None:
            self._avro = avro_format.encoder_for(self.config)
        return self._avro

    # ------------------------------------------------------------ the error policy

    def _unencodable(self, change: Change, error: Exception) -> list[Record]:
        reason = f"a row of {change.source_name} cannot be encoded: {type(error).__name__}: {error}"
        return self._poison(change, reason)

    def _too_large(self, change: Change, size: int) -> list[Record]:
        return self._poison(
            change,
            f"a record of {change.source_name} is {size} bytes, over the producer's "
            f"message.max.bytes ({self.max_bytes})",
        )

    def _poison(self, change: Change, reason: str) -> list[Record]:
        """Apply the error policy to one change; return its dead letter, if any."""
        name = change.source_name
        poison = errors.PoisonRow(reason, name, change.position, change.op == "read")
        message = self.on_poison(poison)
        if message is None or not self.dead_letter_topic:
            return []
        return [self._letter(DeadLetter(name, change.position, message))]

    def _letter(self, letter: DeadLetter) -> Record:
        assert self.dead_letter_topic
        value = {"table": letter.table, "position": letter.position, "error": letter.error}
        return Record(self.dead_letter_topic, letter.table.encode(), formats._dumps(value))
