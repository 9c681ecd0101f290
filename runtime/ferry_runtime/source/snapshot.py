"""Consistent reads of the selected tables, chunked by primary key.

Two ways to read. ``snapshot+cdc`` reads each chunk in a consistent transaction of its own
(:meth:`Snapshot.read_chunk`), which gives the chunk's exact binlog position: the worker's
snapshot engine (:mod:`ferry_runtime.source.watermark`) merges it into the binlog there.
``mode: snapshot`` reads every chunk in one transaction (:meth:`Snapshot.begin` and
:meth:`Snapshot.chunks`), a copy as of one moment.

MariaDB: ``START TRANSACTION WITH CONSISTENT SNAPSHOT`` and the status variables
``binlog_snapshot_file/pos`` give the exact binlog position of the snapshot without a global
lock. MySQL (no such variables): a brief ``FLUSH TABLES WITH READ LOCK`` around opening the
transaction and reading the binlog position (the lock needs the RELOAD privilege).

Rows are read by primary key with keyset pagination (``WHERE (pk) > (last) ORDER BY pk LIMIT
n``), so a crashed snapshot resumes after the last chunk delivered. A table without a primary
key is read in one ordered pass; after a crash it resumes by skipping the rows already
delivered, which is exact only if the table did not change in between (documented).

For a sink that takes JSON (Kafka, Maxwell or Debezium format) the chunks of a keyed table
whose columns are all numbers, text or temporal values come as JSON: a chunk with an integer
key in one text of raw fields that ``_rowtext.c`` renders (:func:`row_fields`), others row by
row rendered by the server (:func:`row_json`). Either way each row is its key and its JSON
object, the same JSON values the reader would make of the columns, with no per-row Python
work (the snapshot's hot path).
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import MySQLdb.cursors
import orjson

from ferry_runtime import errors, types
from ferry_runtime.events import RenderedRows, Rows
from ferry_runtime.source import _rowtext, mysql
from ferry_runtime.source.schema import RowFields, TableSchema, quote

__all__ = ["Chunk", "Snapshot", "last_key", "row_fields", "row_json"]


@dataclass(frozen=True)
class Chunk:
    rows: Rows  # JSON values by column name, or the server's rendering
    after: list[Any] | None  # primary key of the last row (JSON values), None without a key
    scanned: int  # rows delivered of this table so far, this chunk included


def _select(column: types.Column) -> str:
    # MariaDB prints FLOAT with 6 significant digits; the binlog has all of its bits.
    if column.kind == "float":
        return f"CAST({quote(column.name)} AS DOUBLE)"
    return quote(column.name)


# The kinds whose JSON value the server can write: the text it sends for them is their JSON
# value already (types.read_passthrough). Not FLOAT: its JSON is the shortest decimal of the
# float32 (types.float32), which the server does not print.
_RENDERED = frozenset(
    ("int", "year", "decimal", "date", "time", "datetime", "timestamp", "text", "enum", "double")
)


def _literal(text: str) -> str:
    """A string as an SQL literal whatever the sql_mode (hex: no quote or backslash rule)."""
    return "X'" + text.encode().hex() + "'"


def _json_value(column: types.Column) -> str:
    """SQL for the JSON text of the column's value, as Ferry writes it (null for NULL)."""
    name = quote(column.name)
    if column.kind in ("int", "year"):
        value = f"CONCAT({name})"
    elif column.kind in ("text", "enum"):
        value = f"JSON_QUOTE(CONVERT({name} USING utf8mb4))"
    elif column.kind == "double":
        # The server's shortest text, but "100" would read back as an integer: "100.0". The
        # server writes a whole number below 1e15 without a point or exponent (1e15 as
        # "1e15"). Tested on numbers, not on the text: converting a double is the dear part.
        value = (
            f"IF({name} = ROUND({name}) AND ABS({name}) < 1e15, "
            f"CONCAT({name}, '.0'), CONCAT({name}))"
        )
    else:  # DECIMAL and temporal values: the server's text, as a JSON string
        value = f"CONCAT('\"', {name}, '\"')"
    return f"IFNULL({value}, 'null')"


def row_json(table: TableSchema, names: Mapping[str, str], drop: Collection[str]) -> str | None:
    """The SQL expression of a row's JSON object with the columns renamed (``names``) and
    ``drop`` left out, for :meth:`Snapshot.chunk_rows`; None when the server cannot render
    it (a kept column of another kind, a dropped key column, no key, no column)."""
    kept = [c for c in table.columns if c.name not in drop]
    by_name = {c.name: c for c in table.columns}
    key = [by_name[name] for name in table.primary_key]
    if not kept or not key or any(c.name in drop for c in key):
        return None
    if any(c.kind not in _RENDERED for c in kept):
        return None
    parts: list[str] = []
    for index, column in enumerate(kept):
        label = orjson.dumps(names.get(column.name, column.name)).decode()
        parts += [_literal(("{" if index == 0 else ",") + label + ":"), _json_value(column)]
    return "CONCAT(" + ", ".join(parts) + ", " + _literal("}") + ")"


# How row_fields' raw text of each kind becomes JSON (_rowtext.c's kinds).
_FIELD_KINDS = {
    "int": 0, "year": 0, "double": 1,
    "decimal": 2, "date": 2, "time": 2, "datetime": 2, "timestamp": 2,
    "text": 3, "enum": 3,
}  # fmt: skip


def row_fields(
    table: TableSchema, names: Mapping[str, str], drop: Collection[str]
) -> RowFields | None:
    """:func:`row_json`'s rows as raw fields, for a chunk whose rows come in one text
    (:meth:`Snapshot._rendered`): the SQL of a row's fields as binary text (a field after
    0xFF, NULL as 0xFD, text converted to utf8mb4, which never holds those bytes) and the
    plan that renders them as the same JSON in the worker (``_rowtext.c``). The server's
    JSON functions cost it more than the worker's C does: ~0.35 µs a row of the server's CPU
    on the bench table. None when :func:`row_json` is None or the key is not integers."""
    by_name = {c.name: c for c in table.columns}
    integer_key = all(by_name[name].kind in ("int", "year") for name in table.primary_key)
    if row_json(table, names, drop) is None or not integer_key:
        return None
    kept = [c for c in table.columns if c.name not in drop]
    parts: list[str] = []
    labels: list[bytes] = []
    for index, column in enumerate(kept):
        value = quote(column.name)
        if column.kind in ("text", "enum"):
            value = f"CONVERT({value} USING utf8mb4)"
        parts.append(f"IFNULL(CAST({value} AS BINARY), X'fd')")
        label = orjson.dumps(names.get(column.name, column.name))
        labels.append((b"{" if index == 0 else b",") + label + b":")
    kinds = bytes(_FIELD_KINDS[c.kind] for c in kept)
    positions = {c.name: index for index, c in enumerate(kept)}
    key = tuple(positions[name] for name in table.primary_key)
    return RowFields("CONCAT(" + ", X'ff', ".join(parts) + ")", _rowtext.Plan(labels, kinds, key))


def last_key(rows: Rows, table: TableSchema) -> list[Any]:
    """The key of the last row of rows read in key order (JSON values)."""
    if isinstance(rows, RenderedRows):
        return rows.key(-1)
    return [rows[-1][name] for name in table.primary_key]


def _sql_value(column: types.Column, value: Any) -> Any:
    """A JSON key value back to what a WHERE clause compares correctly."""
    if column.kind == "binary" and isinstance(value, str):
        return base64.b64decode(value)
    return value


def _convert(table: TableSchema, raw: Sequence[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Rows as JSON values by column name. Only the columns whose values are not their JSON
    values as read (:func:`types.read_passthrough`) go through a converter."""
    names = [column.name for column in table.columns]
    converted = [
        (column.name, types.converter(column))
        for column in table.columns
        if not types.read_passthrough(column)
    ]
    rows = [dict(zip(names, row, strict=False)) for row in raw]  # strict: 1.5x the time
    for name, convert in converted:
        for row in rows:
            row[name] = convert(row[name])
    return rows


class Snapshot:
    """One consistent read transaction on a dedicated reader connection
    (:func:`mysql.connect_reader`: its values are what :func:`_convert` expects)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self._session = False

    def _execute(self, sql: str, args: Any = None) -> list[tuple[Any, ...]]:
        try:
            with self.conn.cursor() as cursor:
                cursor.execute(sql, args)
                return list(cursor.fetchall())
        except mysql.DRIVER_ERRORS as error:
            raise errors.from_mysql(error, "snapshot") from None

    def begin(self, read_lock: bool = False) -> dict[str, Any]:
        """Open the consistent transaction; return its binlog position. ``read_lock`` takes
        MySQL's way on any server (tests run it on MariaDB)."""
        if not self._session:  # once per connection: a chunk-sized read opens many
            self._execute("SET SESSION time_zone = '+00:00'")
            self._execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            # A rendered chunk comes as one GROUP_CONCAT (_rendered), cut with a warning at
            # half a packet (room for the rest of its row) and then read row by row.
            self._execute("SET SESSION group_concat_max_len = @@max_allowed_packet DIV 2")
            self._session = True
        if not read_lock:
            self._execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
            status = dict(self._execute("SHOW STATUS LIKE 'binlog_snapshot_%'"))
            if status.get("binlog_snapshot_file"):
                return {
                    "file": status["binlog_snapshot_file"],
                    "pos": int(status["binlog_snapshot_position"]),
                }
            self._execute("ROLLBACK")  # MySQL: no snapshot position variables
        # Writes wait on the global read lock while the transaction opens, so the binlog
        # position read under it is the snapshot's (needs the RELOAD privilege).
        self._execute("FLUSH TABLES WITH READ LOCK")
        try:
            self._execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
            return mysql.server_position(self.conn)
        finally:
            self._execute("UNLOCK TABLES")

    def end(self) -> None:
        self._execute("COMMIT")

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def read_chunk(
        self, table: TableSchema, after: list[Any] | None, size: int, read_lock: bool = False
    ) -> tuple[Rows, dict[str, Any]]:
        """The next ``size`` rows of a keyed table after ``after``, read in a consistent
        transaction of their own, and that transaction's binlog position: the rows are the
        table's state at exactly that position."""
        upto, position = self.open_chunk(table, after, size, read_lock)
        return self.chunk_rows(table, after, upto), position

    def open_chunk(
        self, table: TableSchema, after: list[Any] | None, size: int, read_lock: bool = False
    ) -> tuple[list[Any] | None, dict[str, Any]]:
        """Open the consistent transaction of the chunk after ``after`` and find its last
        key: the key of the ``size``-th row after ``after`` at this transaction's position,
        or None when fewer rows are left (the table's last chunk, which runs to its end).
        Returns that key and the position; :meth:`chunk_rows` reads the rows and ends the
        transaction. A chunk is the key range (after, upto], whatever rows it holds."""
        position = self.begin(read_lock)
        try:
            columns = {c.name: c for c in table.columns}
            key_sql = ", ".join(quote(name) for name in table.primary_key)
            selected = ", ".join(_select(columns[name]) for name in table.primary_key)
            where, args = self._range(table, after, None)
            source = f"{quote(table.database)}.{quote(table.table)}"
            found = self._execute(
                f"SELECT {selected} FROM {source} {where}ORDER BY {key_sql} "
                f"LIMIT 1 OFFSET {int(size) - 1}",
                args or None,
            )
        except BaseException:
            self.end()
            raise
        if not found:
            return None, position
        upto = [
            types.converter(columns[name])(value)
            for name, value in zip(table.primary_key, found[0], strict=True)
        ]
        return upto, position

    def chunk_rows(
        self, table: TableSchema, after: list[Any] | None, upto: list[Any] | None
    ) -> Rows:
        """The rows of the key range (after, upto] in the transaction :meth:`open_chunk`
        opened (None: unbounded), in key order unless rendered whole (:meth:`_rendered`);
        ends the transaction. Rendered by the server when the table has a ``row_json``."""
        try:
            source = f"{quote(table.database)}.{quote(table.table)}"
            key_sql = ", ".join(quote(name) for name in table.primary_key)
            where, args = self._range(table, after, upto)
            if table.row_json is not None:
                rendered = self._rendered(table, f"FROM {source} {where}", args, upto is None)
                if rendered is not None:
                    return rendered
            names = ", ".join(_select(c) for c in table.columns)
            raw = self._execute(
                f"SELECT {names} FROM {source} {where}ORDER BY {key_sql}", args or None
            )
        finally:
            self.end()
        return _convert(table, raw)

    def _rendered(
        self, table: TableSchema, rows_sql: str, args: list[Any], ordered: bool, limit: str = ""
    ) -> RenderedRows | None:
        """The server's rendering of the rows ``rows_sql`` selects (``ordered``: in key
        order, then ``limit``); None when a row is too long for it (the caller reads
        columns, in the same transaction). Unordered, with an integer key, they come as one
        text of raw fields (``GROUP_CONCAT`` of :func:`row_fields`, in scan order) that
        ``_rowtext.c`` renders: no row-by-row protocol on either side (~0.5 µs less a row)
        and no JSON functions on the server (~0.35 µs less of its CPU)."""
        assert table.row_json is not None
        width = len(table.primary_key)
        fields = table.row_fields
        if not ordered and fields is not None:
            found = self._execute(
                "SELECT COUNT(*), @@group_concat_max_len, "
                f"GROUP_CONCAT({fields.sql} SEPARATOR X'fe') {rows_sql}",
                args or None,
            )
            count, cap, text = found[0]
            if count == 0:
                return RenderedRows([], [], width)
            # Cut at group_concat_max_len (a warning, and as long as the limit) or over
            # max_allowed_packet (NULL): read row by row below.
            if text is not None and len(text) < cap and not self.conn.warning_count():
                with contextlib.suppress(ValueError):  # not the plan's fields: row by row
                    keys, data = fields.plan.split(text)
                    if len(data) == count:
                        return RenderedRows(keys, data, width)
        key_sql = ", ".join(quote(name) for name in table.primary_key)
        raw = self._execute(
            f"SELECT {key_sql}, {table.row_json} {rows_sql}ORDER BY {key_sql}{limit}",
            args or None,
        )
        if any(row[-1] is None for row in raw):  # a row over max_allowed_packet
            return None
        if width == 1:
            keys_json = [orjson.dumps(row[0]) for row in raw]
        else:
            keys_json = [orjson.dumps(list(row[:width])) for row in raw]
        return RenderedRows(keys_json, [row[-1] for row in raw], width)

    @staticmethod
    def _range(
        table: TableSchema, after: list[Any] | None, upto: list[Any] | None
    ) -> tuple[str, list[Any]]:
        """``WHERE (pk) > (after) AND (pk) <= (upto) `` (either side left out when None),
        and the table's ``row_filter`` (snapshotRequest.where) when it has one."""
        by_name = {c.name: c for c in table.columns}
        keys = [by_name[name] for name in table.primary_key]
        key_sql = ", ".join(quote(name) for name in table.primary_key)
        marks = ", ".join(["%s"] * len(keys))
        clauses, args = [], []
        for bound, op in ((after, ">"), (upto, "<=")):
            if bound is not None:
                clauses.append(f"({key_sql}) {op} ({marks})")
                args += [_sql_value(c, v) for c, v in zip(keys, bound, strict=True)]
        if table.row_filter is not None:  # a % is literal: doubled when args are formatted in
            condition = table.row_filter.replace("%", "%%") if args else table.row_filter
            clauses.append(f"({condition})")
        return ("WHERE " + " AND ".join(clauses) + " " if clauses else ""), args

    def _keyset(
        self, table: TableSchema, after: list[Any] | None, size: int
    ) -> list[tuple[Any, ...]]:
        """One page of keyset pagination: up to ``size`` rows with a key above ``after``."""
        names = ", ".join(_select(c) for c in table.columns)
        source = f"{quote(table.database)}.{quote(table.table)}"
        key_sql = ", ".join(quote(name) for name in table.primary_key)
        where, args = self._range(table, after, None)
        return self._execute(
            f"SELECT {names} FROM {source} {where}ORDER BY {key_sql} LIMIT {int(size)}",
            args or None,
        )

    def chunks(
        self, table: TableSchema, after: list[Any] | None, scanned: int, size: int
    ) -> Iterator[Chunk]:
        """The table's rows in chunks of ``size``, resuming after ``after`` / ``scanned``."""
        if not table.primary_key:
            names = ", ".join(_select(c) for c in table.columns)
            source = f"{quote(table.database)}.{quote(table.table)}"
            where = f" WHERE ({table.row_filter})" if table.row_filter is not None else ""
            sql = f"SELECT {names} FROM {source}{where}"
            yield from self._full_scan(table, sql, scanned, size)
            return
        while True:
            rows = self._page(table, after, size)
            if not rows:
                return
            after = last_key(rows, table)
            scanned += len(rows)
            yield Chunk(rows, after, scanned)
            if len(rows) < size:
                return

    def _page(self, table: TableSchema, after: list[Any] | None, size: int) -> Rows:
        """One page of keyset pagination: up to ``size`` rows with a key above ``after``,
        in key order; rendered by the server when the table has a ``row_json``."""
        if table.row_json is not None:
            source = f"{quote(table.database)}.{quote(table.table)}"
            where, args = self._range(table, after, None)
            page = f" LIMIT {int(size)}"
            rendered = self._rendered(table, f"FROM {source} {where}", args, True, page)
            if rendered is not None:
                return rendered
        return _convert(table, self._keyset(table, after, size))

    def _full_scan(self, table: TableSchema, sql: str, skip: int, size: int) -> Iterator[Chunk]:
        scanned = 0
        try:
            with self.conn.cursor(MySQLdb.cursors.SSCursor) as cursor:
                cursor.execute(sql)
                while batch := cursor.fetchmany(size):
                    start = max(0, skip - scanned)
                    scanned += len(batch)
                    if start < len(batch):
                        rows = _convert(table, batch[start:])
                        yield Chunk(rows, None, scanned)
        except mysql.DRIVER_ERRORS as error:
            raise errors.from_mysql(error, f"snapshot of {table.name}") from None
