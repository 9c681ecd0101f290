"""Transaction metadata (spec.sink.kafka.transactionTopic, off by default): Debezium-style
BEGIN and END records around the rows of each source transaction.

For every binlog transaction that delivers at least one row, the worker writes, in this
order and in the same Kafka transaction (exactly-once) as the rows and their checkpoint::

    {"status": "BEGIN", "id": ..., "event_count": null, "data_collections": null, "ts_ms": ...}
    ... the transaction's row records ...
    {"status": "END", "id": ..., "event_count": N,
     "data_collections": [{"data_collection": "db.table", "event_count": n}, ...], "ts_ms": ...}

keyed by ``{"id": ...}``. ``id`` is the transaction's MariaDB GTID (``domain-server-seq``),
else the binlog position after its commit (``file:pos``); ``ts_ms`` is its commit time.
Counts are of the row records delivered (after include/exclude and mapping; rows that went
to the error policy are not counted). With ``format: debezium`` (or ``avro``) each row
record also carries ``transaction: {id, total_order, data_collection_order}``. Snapshot
rows belong to no source transaction and get none of this, as in Debezium.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson

__all__ = ["Order", "begin", "end", "transaction_id"]


def transaction_id(gtid: str | None, position: dict[str, Any]) -> str:
    """The GTID when known, else ``file:pos`` after the commit (unique in the binlog)."""
    return gtid or f"{position['file']}:{position['pos']}"


class Order:
    """The row records one source transaction has delivered so far: in all and per table."""

    def __init__(self, txn_id: str) -> None:
        self.id = txn_id
        self.total = 0
        self.per_collection: Counter[str] = Counter()

    def block(self, collection: str) -> dict[str, Any]:
        """The Debezium ``transaction`` block of the next record of ``collection``."""
        return {
            "id": self.id,
            "total_order": self.total + 1,
            "data_collection_order": self.per_collection[collection] + 1,
        }

    def take(self, collection: str) -> None:
        """A record of ``collection`` was emitted."""
        self.total += 1
        self.per_collection[collection] += 1


def _record(status: str, order: Order, ts: int, final: bool) -> tuple[bytes, bytes]:
    value = {
        "status": status,
        "id": order.id,
        "event_count": order.total if final else None,
        "data_collections": (
            [
                {"data_collection": name, "event_count": count}
                for name, count in order.per_collection.items()
            ]
            if final
            else None
        ),
        "ts_ms": ts * 1000,
    }
    return orjson.dumps({"id": order.id}), orjson.dumps(value)


def begin(order: Order, ts: int) -> tuple[bytes, bytes]:
    """(key, value) of the BEGIN record; ``ts``: the commit time, epoch seconds."""
    return _record("BEGIN", order, ts, final=False)


def end(order: Order, ts: int) -> tuple[bytes, bytes]:
    """(key, value) of the END record, with the counts taken so far."""
    return _record("END", order, ts, final=True)
