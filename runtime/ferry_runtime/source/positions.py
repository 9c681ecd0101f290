"""{gtid} and {timestamp} positions: found in the binlog once and turned into a {file, pos}.

The worker checkpoints only {file, pos}; these two forms are resolved when they are applied
(startPosition without a checkpoint, or a new resetPosition nonce), so nothing downstream
changes.

- ``{timestamp}``: the start of the first transaction, in binlog order, whose binlog
  timestamp is at or after the time. Binlog timestamps are whole seconds, so the time is
  cut to its second: a transaction of that same second is included, never lost.
  The file is found by bisecting the binlogs' start times (their Format_description
  event), then it is scanned. A time after the newest transaction gives the end of the
  binlog (= latest); a time before the oldest binlog gives its start when nothing was ever
  written before it (MariaDB: its Gtid_list is empty), else PositionUnavailable.
- ``{gtid}`` (MariaDB ``domain-server-seq[,…]``, like gtid_slave_pos: the last transaction
  already applied): right after that transaction's XID/COMMIT. The file is found by
  bisecting the binlogs' Gtid_list events (the GTID state at each file's start), then
  scanned. With several domains: after the last of them in binlog order. MySQL GTID sets
  are refused (NotSupported): they cannot be tested here.

Scans read the binlog with python-mysql-replication without decoding rows (only GTID,
Query, Xid and XA events are parsed), on a non-blocking dump with server id 0, which no
replica uses and which the server never mistakes for a zombie of another replica.
"""

from __future__ import annotations

import bisect
import logging
import math
import re
import ssl
from collections.abc import Generator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pymysql
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.event import (
    FormatDescriptionEvent,
    GtidEvent,
    MariadbGtidEvent,
    MariadbGtidListEvent,
    PreviousGtidsEvent,
    QueryEvent,
    XAPrepareEvent,
    XidEvent,
)
from pymysqlreplication.row_event import TableMapEvent

from ferry_runtime import errors

__all__ = [
    "Gtid",
    "after_gtids",
    "at_time",
    "check_gtid_text",
    "cutoff_second",
    "domain_max",
    "is_mysql_gtid_set",
    "nothing_after",
    "parse_gtids",
]

log = logging.getLogger("ferry.positions")

_UINT32 = 2**32 - 1
_UINT64 = 2**64 - 1
_MARIADB_GTID = re.compile(r"^(\d+)-(\d+)-(\d+)$")
_UUID = r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}"
# uuid, then intervals (1-5) and, since MySQL 8.3, tags: uuid:tag:1-5:7
_MYSQL_GTID_ENTRY = re.compile(rf"^{_UUID}(?::(?:\d+(?:-\d+)?|[A-Za-z_]\w{{0,31}}))+$")
_FL_STANDALONE = 1  # MariaDB Gtid event flag: a statement of its own (DDL), no BEGIN


# ---------------------------------------------------------------- GTID text (pure)


@dataclass(frozen=True, order=True)
class Gtid:
    """A MariaDB GTID: ``domain-server-seq``."""

    domain: int
    server: int
    seq: int

    def __str__(self) -> str:
        return f"{self.domain}-{self.server}-{self.seq}"


def is_mysql_gtid_set(text: str) -> bool:
    """Whether ``text`` is a MySQL GTID set (``uuid:1-100[,uuid:…]``)."""
    entries = [entry.strip() for entry in text.split(",")]
    return all(_MYSQL_GTID_ENTRY.match(entry) for entry in entries)


def parse_gtids(text: str, one_per_domain: bool = True) -> list[Gtid]:
    """A MariaDB GTID position (``0-1-100`` or ``0-1-100,1-2-7``) → GTIDs, one per domain.
    With ``one_per_domain=False``: a binlog state (``@@gtid_binlog_state``), which holds the
    last GTID of every server of a domain; an empty text is then an empty state.

    Raises ValueError saying what is wrong."""
    if not one_per_domain and not text.strip():
        return []
    gtids: list[Gtid] = []
    for entry in (part.strip() for part in text.split(",")):
        match = _MARIADB_GTID.match(entry)
        if not match:
            raise ValueError(
                f"{entry!r} is not a GTID; MariaDB GTIDs are domain-server-sequence "
                "(e.g. 0-1-100), several separated by commas"
            )
        gtid = Gtid(*(int(group) for group in match.groups()))
        if gtid.domain > _UINT32 or gtid.server > _UINT32 or gtid.seq > _UINT64:
            raise ValueError(f"{entry!r}: domain and server id are 32-bit, sequence 64-bit")
        if one_per_domain and any(known.domain == gtid.domain for known in gtids):
            raise ValueError(f"domain {gtid.domain} appears twice; give one GTID per domain")
        gtids.append(gtid)
    return gtids


def check_gtid_text(text: str) -> str:
    """Config validation: a MariaDB GTID position or a MySQL GTID set (whose support is
    decided when it is resolved)."""
    if not is_mysql_gtid_set(text):
        parse_gtids(text)
    return text


def cutoff_second(when: datetime) -> int:
    """The epoch second a time falls in (binlog timestamps are whole seconds)."""
    if when.tzinfo is None:
        raise ValueError("a timestamp position needs a time zone")
    return math.floor(when.timestamp())


def domain_max(gtids: list[Gtid], domain: int) -> Gtid | None:
    """The newest GTID of ``domain`` in a GTID state (the highest sequence number)."""
    return max((g for g in gtids if g.domain == domain), key=lambda g: g.seq, default=None)


def nothing_after(state: list[Gtid], gtids: list[Gtid]) -> bool:
    """Whether a binlog whose Gtid_list is ``state`` holds nothing before it that comes
    after ``gtids``: every domain in ``state`` is given and its newest GTID is the given
    one. Then a position after ``gtids`` is that binlog's start."""
    given = {g.domain: g for g in gtids}
    domains = {g.domain for g in state}
    return domains <= set(given) and all(domain_max(state, d) == given[d] for d in domains)


# ---------------------------------------------------------------- reading the binlog


@dataclass(frozen=True)
class _Header:
    timestamp: int  # when the file was started (its Format_description event)
    gtid_list: list[Gtid] | None  # MariaDB: the GTID state at its start; None on MySQL


@dataclass
class _Transaction:
    file: str
    start: int  # where its first event (GTID or BEGIN) starts
    timestamp: int
    gtid: Gtid | None
    grouped: bool | None = None  # BEGIN…COMMIT; None: not known yet (MySQL)
    end: int = 0  # after its XID/COMMIT


def _same_tls(conn: Any) -> dict[str, Any]:
    """PyMySQL arguments for TLS exactly as ``conn`` uses it (its context), or none."""
    if isinstance(getattr(conn, "_sock", None), ssl.SSLSocket) and conn.ctx is not None:
        return {"ssl": conn.ctx}
    return {"ssl_disabled": True}


class _Binlog:
    """Reads events from a server without decoding rows."""

    def __init__(self, conn: Any) -> None:
        # The same server and account as the worker's control connection.
        self.settings: dict[str, Any] = {
            "host": conn.host,
            "port": conn.port,
            "user": conn.user,
            "password": conn.password,
            "connect_timeout": conn.connect_timeout,
            "read_timeout": 120,
            **_same_tls(conn),
        }
        self.headers: dict[str, _Header] = {}
        self.end: dict[str, Any] = {}  # set when transactions() reaches the newest event

    @property
    def secret(self) -> str:
        password = self.settings["password"]
        return password.decode() if isinstance(password, bytes) else str(password)

    def _stream(self, file: str, events: list[type]) -> BinLogStreamReader:
        stream = BinLogStreamReader(
            connection_settings=self.settings,
            server_id=0,  # never registered; no replica's dump thread is killed for it
            log_file=file,
            log_pos=4,
            resume_stream=True,
            is_mariadb=False,  # with a file/pos, True would ignore the position (1.0.17)
            blocking=False,  # the server ends the dump at its newest event
            only_events=events,
            enable_logging=False,
        )
        # The library decodes every TableMap event whatever only_events says: ~80 % of a
        # scan's time, for nothing, since rows are never decoded here. (A private name: if
        # it changes, scans only get slower.)
        allowed = "_BinLogStreamReader__allowed_events_in_packet"
        setattr(stream, allowed, getattr(stream, allowed, frozenset()) - {TableMapEvent})
        return stream

    def header(self, file: str) -> _Header:
        if file not in self.headers:
            stream = self._stream(
                file, [FormatDescriptionEvent, MariadbGtidListEvent, PreviousGtidsEvent]
            )
            timestamp, gtid_list = 0, None
            try:
                for event in stream:
                    if isinstance(event, FormatDescriptionEvent):
                        timestamp = event.timestamp
                        continue
                    if isinstance(event, MariadbGtidListEvent):
                        gtid_list = [
                            Gtid(g.domain_id, g.server_id, g.gtid_seq_no) for g in event.gtid_list
                        ]
                    break  # the list (or MySQL's Previous_gtids) follows the description
            finally:
                stream.close()
            self.headers[file] = _Header(timestamp, gtid_list)
        return self.headers[file]

    def transactions(self, file: str) -> Generator[_Transaction, None, None]:
        """Complete transactions from the start of ``file`` to the server's newest event;
        then :attr:`end` is the position after the last event read."""
        stream = self._stream(
            file, [MariadbGtidEvent, GtidEvent, QueryEvent, XidEvent, XAPrepareEvent]
        )
        current: _Transaction | None = None
        try:
            for event in stream:
                packet = event.packet
                start = packet.log_pos - packet.event_size
                if isinstance(event, MariadbGtidEvent | GtidEvent):
                    gtid = None
                    grouped = None
                    if isinstance(event, MariadbGtidEvent):
                        gtid = Gtid(event.domain_id, event.server_id, event.gtid_seq_no)
                        grouped = not event.flags & _FL_STANDALONE
                    current = _Transaction(stream.log_file, start, event.timestamp, gtid, grouped)
                    continue
                if isinstance(event, QueryEvent):
                    query = _query_text(event)
                    if current is None:  # MySQL's anonymous GTID events are not parsed
                        current = _Transaction(stream.log_file, start, event.timestamp, None)
                    if query == "BEGIN":
                        current.grouped = True
                        continue
                    if current.grouped and not _ends(query):
                        continue  # a statement inside BEGIN…COMMIT
                elif current is None:
                    continue
                current.end = packet.log_pos  # Xid, XA PREPARE, COMMIT or a DDL statement
                yield current
                current = None
            self.end = {"file": stream.log_file, "pos": stream.log_pos}
        finally:
            stream.close()


def _ends(query: str) -> bool:
    """Whether a Query event inside BEGIN…COMMIT ends the transaction."""
    return query in ("COMMIT", "ROLLBACK") or query.startswith(("XA COMMIT", "XA ROLLBACK"))


def _query_text(event: QueryEvent) -> str:
    query = event.query
    text = query.decode(errors="replace") if isinstance(query, bytes) else str(query)
    return text.strip().upper()


def _names(conn: Any) -> list[str]:
    with conn.cursor() as cursor:
        cursor.execute("SHOW BINARY LOGS")
        names = [str(row[0]) for row in cursor.fetchall()]
    if not names:
        raise errors.FatalError(
            "BinlogDisabled", "the source has no binary log; enable log_bin with binlog_format=ROW"
        )
    return names


def _variable(conn: Any, sql: str) -> str | None:
    with conn.cursor() as cursor:
        cursor.execute(sql)
        row = cursor.fetchone()
    return None if row is None or row[0] is None else str(row[0])


def _is_mariadb(conn: Any) -> bool:
    return "mariadb" in (_variable(conn, "SELECT @@version") or "").lower()


# ---------------------------------------------------------------- timestamp


def at_time(conn: Any, when: datetime) -> dict[str, Any]:
    """{file, pos} of the first transaction stamped at or after ``when``'s second."""
    binlog = _Binlog(conn)
    try:
        return _at_time(conn, binlog, when)
    except pymysql.err.MySQLError as error:
        raise errors.from_mysql(error, f"finding timestamp {when}", binlog.secret) from None


def _at_time(conn: Any, binlog: _Binlog, when: datetime) -> dict[str, Any]:
    cutoff = cutoff_second(when)
    names = _names(conn)
    # Files started strictly before the cutoff second; the last of them may hold the start.
    first_later = bisect.bisect_left(names, cutoff, key=lambda f: binlog.header(f).timestamp)
    if first_later == 0:
        oldest = binlog.header(names[0])
        if _may_have_purged(names[0], oldest):
            started = datetime.fromtimestamp(oldest.timestamp, UTC).isoformat()
            raise errors.FatalError(
                "PositionUnavailable",
                f"timestamp {when.isoformat()} is before the oldest binary log on the server "
                f"({names[0]}, started {started}) and older logs were purged, so changes "
                "from that time are gone. Use a later timestamp (or earliest, accepting the "
                "gap), or take a new snapshot (mode snapshot+cdc with a new task).",
            )
    found = _first_at(binlog, names[max(first_later - 1, 0)], cutoff)
    log.info("timestamp %s is at %s:%s", when.isoformat(), found["file"], found["pos"])
    return found


def _first_at(binlog: _Binlog, file: str, cutoff: int) -> dict[str, Any]:
    with closing(binlog.transactions(file)) as transactions:
        for transaction in transactions:
            if transaction.timestamp >= cutoff:
                return {"file": transaction.file, "pos": transaction.start}
    return binlog.end  # nothing that recent yet: the end of the binlog


def _may_have_purged(name: str, header: _Header) -> bool:
    """Whether anything was written before binlog ``name`` (MariaDB: a non-empty Gtid_list;
    MySQL, untested: a file number above 1)."""
    if header.gtid_list is not None:
        return bool(header.gtid_list)
    number = name.rsplit(".", 1)[-1]
    return not number.isdigit() or int(number) > 1


# ---------------------------------------------------------------- gtid


def after_gtids(conn: Any, text: str) -> dict[str, Any]:
    """{file, pos} right after the transaction(s) of a MariaDB GTID position."""
    if is_mysql_gtid_set(text):
        raise errors.FatalError(
            "NotSupported",
            f"gtid {text!r} is a MySQL GTID set, which Ferry cannot resolve yet; use "
            "{file, pos} or {timestamp} (or earliest/latest).",
        )
    try:
        gtids = parse_gtids(text)
    except ValueError as error:
        raise errors.FatalError("InvalidConfig", f"gtid: {error}") from None
    binlog = _Binlog(conn)
    try:
        if not _is_mariadb(conn):
            raise errors.FatalError(
                "NotSupported",
                f"gtid {text!r} is a MariaDB GTID position but the source is not MariaDB; "
                "use {file, pos} or {timestamp}.",
            )
        found = _after_gtids(conn, binlog, gtids)
    except pymysql.err.MySQLError as error:
        raise errors.from_mysql(error, f"finding gtid {text}", binlog.secret) from None
    log.info("gtid %s ends at %s:%s", text, found["file"], found["pos"])
    return found


def _after_gtids(conn: Any, binlog: _Binlog, gtids: list[Gtid]) -> dict[str, Any]:
    state_text = _variable(conn, "SELECT @@global.gtid_binlog_state") or ""
    state = parse_gtids(state_text, one_per_domain=False)
    for gtid in gtids:
        newest = domain_max(state, gtid.domain)
        if newest is None or gtid.seq > newest.seq:
            written = (
                f"its newest in domain {gtid.domain} is {newest}"
                if newest
                else f"it has written nothing in domain {gtid.domain}"
            )
            raise errors.FatalError(
                "InvalidPosition",
                f"gtid {gtid} is beyond what the source has written ({written}). Check the "
                "GTID (and that this is the right server).",
            )
    names = _names(conn)
    oldest = binlog.header(names[0]).gtid_list or []
    ends: list[tuple[int, int]] = []  # (file index, pos) of each GTID found
    purged: list[Gtid] = []
    for gtid in gtids:
        before = domain_max(oldest, gtid.domain)
        if before is not None and gtid.seq <= before.seq:
            purged.append(gtid)  # written before the oldest binlog
            continue
        end = _end_of(binlog, names, gtid)
        ends.append((names.index(end["file"]), end["pos"]))
    if ends:  # a purged GTID of another domain precedes these: nothing is lost for it
        index, pos = max(ends)
        return {"file": names[index], "pos": pos}
    if nothing_after(oldest, gtids):
        return {"file": names[0], "pos": 4}
    raise errors.FatalError(
        "PositionUnavailable",
        f"gtid {','.join(map(str, purged))} is older than the oldest binary log on the "
        f"server ({names[0]}, which starts after {','.join(map(str, oldest))}); the logs "
        "holding what followed it were purged. Use a later position, or take a new snapshot.",
    )


def _end_of(binlog: _Binlog, names: list[str], gtid: Gtid) -> dict[str, Any]:
    """The position after ``gtid``'s transaction: the file is the last one whose Gtid_list
    does not include it yet (sequence numbers grow within a domain), then a scan."""

    def newest(file: str) -> int:
        found = domain_max(binlog.header(file).gtid_list or [], gtid.domain)
        return -1 if found is None else found.seq

    index = max(bisect.bisect_left(names, gtid.seq, key=newest) - 1, 0)
    with closing(binlog.transactions(names[index])) as transactions:
        for transaction in transactions:
            if transaction.gtid == gtid:
                return {"file": transaction.file, "pos": transaction.end}
            other = transaction.gtid
            if other is not None and other.domain == gtid.domain and other.seq > gtid.seq:
                break
    raise errors.FatalError(
        "InvalidPosition",
        f"gtid {gtid} is not in the source's binary log, though its domain has reached that "
        "sequence number: check the server id in it (domain-server-sequence).",
    )
