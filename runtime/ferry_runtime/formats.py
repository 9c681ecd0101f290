"""Kafka record formats: Maxwell-compatible JSON and a Debezium-style envelope.

Pure functions from a (mapped) :class:`Change` to key and value bytes. The key is the
primary key; a table without one is keyed by its name, so its rows stay in order on one
partition.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from ferry_runtime._compose import compose
from ferry_runtime.events import Change, RenderedRows

__all__ = ["debezium", "encode", "encode_many", "encode_reads", "key", "maxwell"]

_MAXWELL_TYPE = {
    "insert": "insert",
    "update": "update",
    "delete": "delete",
    "read": "bootstrap-insert",
}
_DEBEZIUM_OP = {"insert": "c", "update": "u", "delete": "d", "read": "r"}


# orjson: ~10x faster than json on the hot path; the same JSON (only float exponents print
# differently: 1e-7 / 1e-07).
_dumps: Callable[[Any], bytes] = orjson.dumps


def _row_key(change: Change) -> dict[str, Any]:
    row = change.data
    return {name: row.get(name) for name in change.primary_key}


def key(change: Change, fmt: str) -> bytes:
    """Maxwell: {"database","table","pk.<col>"...}; Debezium: {<col>: value...}."""
    pk = _row_key(change)
    if fmt == "debezium":
        return _dumps(pk if pk else {"database": change.database, "table": change.table})
    return _dumps(
        {"database": change.database, "table": change.table}
        | {f"pk.{name}": value for name, value in pk.items()}
    )


def maxwell(change: Change) -> dict[str, Any]:
    record: dict[str, Any] = {
        "database": change.database,
        "table": change.table,
        "type": _MAXWELL_TYPE[change.op],
        "ts": change.ts,
    }
    if change.xid is not None:
        record["xid"] = change.xid
    if change.commit:
        record["commit"] = True
    record["position"] = change.position
    if change.primary_key:
        record["primary_key"] = [change.data.get(name) for name in change.primary_key]
    record["data"] = change.data
    if change.op == "update" and change.old is not None:
        record["old"] = {
            name: value
            for name, value in change.old.items()
            if name not in change.data or change.data[name] != value
        }
    return record


def debezium(change: Change, task: str) -> dict[str, Any]:
    file, _, pos = change.position.rpartition(":")
    before = change.old if change.op == "update" else None
    if change.op == "delete":
        before = change.data
    record = {
        "before": before,
        "after": None if change.op == "delete" else change.data,
        "source": {
            "connector": "ferry",
            "name": task,
            "ts_ms": change.ts * 1000,
            "snapshot": change.op == "read",
            "db": change.database,
            "table": change.table,
            "server_id": change.server_id,
            "file": file,
            "pos": int(pos) if pos.isdigit() else 0,
            "xid": change.xid,
        },
        "op": _DEBEZIUM_OP[change.op],
        "ts_ms": change.ts * 1000,
    }
    if "transaction" in change.extra:  # transaction metadata (ferry_runtime.txmeta)
        record["transaction"] = change.extra["transaction"]
    return record


def encode(change: Change, fmt: str, task: str) -> tuple[bytes, bytes]:
    """(key, value) bytes of one Kafka record."""
    value = debezium(change, task) if fmt == "debezium" else maxwell(change)
    return key(change, fmt), _dumps(value)


def encode_many(changes: Sequence[Change], fmt: str, task: str) -> list[tuple[bytes, bytes]]:
    """[:func:`encode` of each change], with the per-row Python work cut down (the
    streaming hot path: one function, the key's shared bytes made once per table; the same
    bytes as :func:`encode`, which a unit test checks). Raises what :func:`encode` raises
    for a value JSON cannot hold: the caller encodes one by one then."""
    return _debezium_many(changes, task) if fmt == "debezium" else _maxwell_many(changes)


def _key_parts(change: Change) -> list[bytes]:
    """The Maxwell key's bytes around its primary key values: the opening up to the first
    value, then the label before each next one (keyless: the whole key)."""
    head = {"database": change.database, "table": change.table}
    if not change.primary_key:
        return [_dumps(head)]
    first, *rest = change.primary_key
    return [
        _dumps(head)[:-1] + b"," + _dumps(f"pk.{first}") + b":",
        *(b"," + _dumps(f"pk.{name}") + b":" for name in rest),
    ]


def _maxwell_many(changes: Sequence[Change]) -> list[tuple[bytes, bytes]]:
    """Maxwell records as bytes put together around each row's own JSON: the parts one
    table's rows share (and those of one event's rows: ts, xid, position) are made once;
    per row only its key values, its data and an update's changed values are dumped."""
    dumps = _dumps
    out: list[tuple[bytes, bytes]] = []
    append = out.append
    database = table = None
    pk: tuple[str, ...] = ()
    parts: list[bytes] = []
    heads: dict[str, bytes] = {}
    ts: int | None = None
    xid: int | None = None
    position: str | None = None
    stamp = where = b""
    for change in changes:
        data = change.data
        if (
            change.table is not table
            or change.database is not database
            or change.primary_key is not pk
        ):  # a new table (the same str objects stand for one table's rows)
            database, table, pk = change.database, change.table, change.primary_key
            parts = _key_parts(change)
            opening = b'{"database":' + dumps(database) + b',"table":' + dumps(table)
            heads = {
                op: opening + b',"type":' + dumps(t) + b',"ts":' for op, t in _MAXWELL_TYPE.items()
            }
        if change.ts != ts or change.xid != xid:
            ts, xid = change.ts, change.xid
            stamp = dumps(ts) if xid is None else dumps(ts) + b',"xid":' + dumps(xid)
        if change.position is not position:
            position = change.position
            where = b',"position":' + dumps(position)
        if len(pk) == 1:
            value = dumps(data.get(pk[0]))
            key = parts[0] + value + b"}"
            keyed = b',"primary_key":[' + value + b'],"data":'
        elif pk:
            values = [dumps(data.get(name)) for name in pk]
            key = b"".join(part + v for part, v in zip(parts, values, strict=True)) + b"}"
            keyed = b',"primary_key":[' + b",".join(values) + b'],"data":'
        else:
            key, keyed = parts[0], b',"data":'
        record = [heads[change.op], stamp, b',"commit":true' if change.commit else b"", where]
        record += (keyed, dumps(data))
        old = change.old
        if old is not None and change.op == "update":
            changed = {
                name: before
                for name, before in old.items()
                if name not in data or data[name] != before
            }
            record += (b',"old":', dumps(changed))
        record.append(b"}")
        append((key, b"".join(record)))
    return out


def _debezium_many(changes: Sequence[Change], task: str) -> list[tuple[bytes, bytes]]:
    dumps, ops = _dumps, _DEBEZIUM_OP
    out: list[tuple[bytes, bytes]] = []
    append = out.append
    for change in changes:
        data, op, pk = change.data, change.op, change.primary_key
        file, _, pos = change.position.rpartition(":")
        if op == "update":
            before, after = change.old, data
        elif op == "delete":
            before, after = data, None
        else:
            before, after = None, data
        record = {
            "before": before,
            "after": after,
            "source": {
                "connector": "ferry",
                "name": task,
                "ts_ms": change.ts * 1000,
                "snapshot": op == "read",
                "db": change.database,
                "table": change.table,
                "server_id": change.server_id,
                "file": file,
                "pos": int(pos) if pos.isdigit() else 0,
                "xid": change.xid,
            },
            "op": ops[op],
            "ts_ms": change.ts * 1000,
        }
        extra = change.extra
        if extra and "transaction" in extra:
            record["transaction"] = extra["transaction"]
        if len(pk) == 1:
            key = dumps({pk[0]: data.get(pk[0])})
        elif pk:
            key = dumps({name: data.get(name) for name in pk})
        else:
            key = dumps({"database": change.database, "table": change.table})
        append((key, dumps(record)))
    return out


def encode_reads(
    template: Change, rows: Sequence[dict[str, Any]] | RenderedRows, fmt: str, task: str
) -> tuple[list[bytes], list[bytes]]:
    """:func:`encode` of ``template`` with each row as its data, for many snapshot rows of
    one table read at one position: the records' keys and values. The bytes the records
    share are made once and each row adds only its own JSON (the snapshot's hot path, ~3x
    faster; the same bytes as :func:`encode`, which a unit test checks). ``rows``: dicts,
    or the server's rendering (:class:`RenderedRows`: its JSON is used as it is)."""
    empty = dataclasses.replace(template, data={}, old=None)
    pk = template.primary_key
    if isinstance(rows, RenderedRows):
        assert rows.width == len(pk), "a rendered row carries the mapped key's values"
        keys, data = rows.keys, rows.data
    else:
        data = list(map(_dumps, rows))
        if len(pk) == 1:
            keys = [_dumps(row.get(pk[0])) for row in rows]
        else:
            keys = [_dumps([row.get(n) for n in pk]) for row in rows]
    if fmt == "debezium":
        shell = _dumps(debezium(empty, task))  # {"before":null,"after":{},"source":...}
        opening = b'{"before":null,"after":'
        assert shell.startswith(opening + b"{}")
        closing = shell[len(opening) + 2 :]
        values = compose((opening, 0, closing), (data,))
        if not pk:
            return [key(empty, fmt)] * len(data), values
        if len(pk) == 1:  # {"id":1}
            label = b"{" + _dumps(pk[0]) + b":"
            return compose((label, 0, b"}"), (keys,)), values
        return [_dumps(dict(zip(pk, orjson.loads(k), strict=True))) for k in keys], values
    head = maxwell(empty)
    del head["data"]
    head.pop("primary_key", None)
    opening = _dumps(head)[:-1]  # {"database":...,"position":"..." without its brace
    key_head = {"database": template.database, "table": template.table}
    if not pk:
        return [_dumps(key_head)] * len(data), compose((opening + b',"data":', 0, b"}"), (data,))
    key_opening = _dumps(key_head)[:-1]
    if len(pk) == 1:  # the usual case, without the join
        key_opening += b"," + _dumps(f"pk.{pk[0]}") + b":"
        head_pk = opening + b',"primary_key":['
        return (
            compose((key_opening, 0, b"}"), (keys,)),
            compose((head_pk, 0, b'],"data":', 1, b"}"), (keys, data)),
        )
    labels = [b"," + _dumps(f"pk.{n}") + b":" for n in pk]
    return (
        [
            key_opening
            + b"".join(label + _dumps(v) for label, v in zip(labels, orjson.loads(k), strict=True))
            + b"}"
            for k in keys
        ],
        compose((opening + b',"primary_key":', 0, b',"data":', 1, b"}"), (keys, data)),
    )
