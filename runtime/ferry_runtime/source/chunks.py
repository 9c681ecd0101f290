"""Chunks of keyed tables read on several connections at once, handed over in order.

The snapshot engine (:mod:`ferry_runtime.source.watermark`, ``Worker._snapshot_tables``)
needs each chunk's rows as of the chunk's own binlog position P, and delivers chunks in
ascending P: the binlog is streamed up to P, then the chunk is delivered at P. To read
ahead, ``performance.snapshotParallelism`` readers, each on its own connection, take the
next chunk of the plan (the tables in order, each in primary-key order):

1. under one lock, in plan order: open the chunk's consistent transaction (which gives P)
   and find its last key inside it (:meth:`Snapshot.open_chunk`); the next chunk starts
   after that key;
2. outside the lock, in parallel with the other readers and with the delivery: read the
   chunk's rows in that transaction and end it (:meth:`Snapshot.chunk_rows`).

Transactions opened one after the other see non-decreasing binlog positions, so the chunks
handed over in plan order (:meth:`ChunkReader.take`) arrive in ascending P, and the engine's
rule is the same as with one connection. At most ``parallelism`` chunks are read or waiting
to be taken at a time (the memory bound); a chunk read ahead is simply dropped when the run
ends before it is delivered (the checkpoint knows only delivered chunks).

Flink CDC splits tables the same way (a split is a key range; its end is found with a
``LIMIT`` query) but delivers splits in any order and filters the binlog per split by its
high watermark; delivering in P order keeps Ferry's checkpoint to one position and one last
key per table.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Protocol

from ferry_runtime import errors
from ferry_runtime.config import SourceConfig
from ferry_runtime.events import Rows
from ferry_runtime.source import mysql
from ferry_runtime.source.schema import TableSchema
from ferry_runtime.source.snapshot import Snapshot

__all__ = ["ChunkReader", "KeyedChunk", "Reader", "ReaderProcess", "reader_connection"]


class Reader(Protocol):
    """What a reader thread reads chunks with: a :class:`Snapshot` on a connection of its
    own (:func:`reader_connection`), or one in a child process (:class:`ReaderProcess`)."""

    def open_chunk(
        self, table: TableSchema, after: list[Any] | None, size: int, read_lock: bool = False
    ) -> tuple[list[Any] | None, dict[str, Any]]: ...

    def chunk_rows(
        self, table: TableSchema, after: list[Any] | None, upto: list[Any] | None
    ) -> Rows: ...

    def close(self) -> None: ...


def reader_connection(source: SourceConfig) -> Snapshot:
    """A Snapshot on a new reader connection (:func:`mysql.connect_reader`)."""
    return Snapshot(mysql.connect_reader(source))


class ReaderProcess:
    """A :class:`Snapshot` in a child process: PyMySQL's parsing of the rows and their JSON
    conversion (most of a snapshot row's cost) run outside this interpreter's lock; the rows
    come back pickled. The child reads the source password from the environment it
    inherits, and ends when this process closes the pipe or dies."""

    def __init__(self, source: SourceConfig) -> None:
        context = multiprocessing.get_context("spawn")  # never fork librdkafka's threads
        self._pipe, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(source, child), name="ferry-snapshot-reader", daemon=True
        )
        self._process.start()
        child.close()

    def open_chunk(
        self, table: TableSchema, after: list[Any] | None, size: int, read_lock: bool = False
    ) -> tuple[list[Any] | None, dict[str, Any]]:
        result: tuple[list[Any] | None, dict[str, Any]] = self._call(
            "open_chunk", table, after, size, read_lock
        )
        return result

    def chunk_rows(
        self, table: TableSchema, after: list[Any] | None, upto: list[Any] | None
    ) -> Rows:
        rows: Rows = self._call("chunk_rows", table, after, upto)
        return rows

    def _call(self, method: str, *args: Any) -> Any:
        try:
            self._pipe.send((method, args))
            ok, value = self._pipe.recv()
        except (EOFError, OSError) as error:
            code = self._process.exitcode
            raise errors.TransientError(
                "SnapshotReaderLost", f"a snapshot reader process ended (exit code {code})"
            ) from error
        if ok:
            return value
        kind, reason, message = value
        raise (errors.FatalError if kind == "fatal" else errors.TransientError)(reason, message)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._pipe.send(None)
        self._pipe.close()
        self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()


def _serve(source: SourceConfig, pipe: Connection) -> None:
    """The child's loop: one Snapshot, its methods called over ``pipe``."""
    snap: Snapshot | None = None
    try:
        while (request := pipe.recv()) is not None:
            method, args = request
            try:
                snap = snap or reader_connection(source)
                pipe.send((True, getattr(snap, method)(*args)))
            except errors.WorkerError as error:
                kind = "fatal" if isinstance(error, errors.FatalError) else "transient"
                pipe.send((False, (kind, error.reason, error.message)))
            except Exception as error:  # anything else: worth a retry, as in the worker
                pipe.send(
                    (False, ("transient", "InternalError", f"{type(error).__name__}: {error}"))
                )
    except (EOFError, OSError, KeyboardInterrupt):
        pass  # the worker went away
    finally:
        if snap is not None:
            snap.close()


@dataclass(frozen=True)
class KeyedChunk:
    """The rows of the key range (after, upto] of ``table`` as of binlog ``position``."""

    table: TableSchema
    after: list[Any] | None  # None: from the table's first key
    upto: list[Any] | None  # None: to the table's end (its last chunk)
    rows: Rows
    position: dict[str, Any]


class ChunkReader:
    """Reads the chunks of ``tables`` (each with the key it resumes after) ahead, on
    ``parallelism`` connections; :meth:`take` hands them over in plan order."""

    def __init__(
        self,
        open_reader: Callable[[], Reader],
        tables: Sequence[tuple[TableSchema, list[Any] | None]],
        size: int,
        parallelism: int,
        read_lock: bool = False,
    ) -> None:
        self._open_reader, self._size, self._read_lock = open_reader, size, read_lock
        self._plan = list(tables)  # the tables left to plan; the first one's next chunk:
        self._after = self._plan[0][1] if self._plan else None
        self._planned = 0  # chunks planned so far; the total, once the plan is empty
        self._plan_lock = threading.Lock()
        self._slots = threading.Semaphore(parallelism)
        self._ready: dict[int, KeyedChunk] = {}
        self._taken = 0
        self._error: BaseException | None = None
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, name=f"snapshot-reader-{i}", daemon=True)
            for i in range(parallelism if self._plan else 0)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    @property
    def done(self) -> bool:
        """Every chunk of every table was handed over."""
        with self._plan_lock:
            return not self._plan and self._taken >= self._planned

    def take(self, timeout: float) -> KeyedChunk | None:
        """The next chunk in plan order, or None if it is not read yet after ``timeout``
        seconds (or :attr:`done`); raises the error a reader stopped on."""
        with self._changed:
            if self._taken not in self._ready and self._error is None:
                self._changed.wait(timeout)
            if self._error is not None:
                raise self._error
            chunk = self._ready.pop(self._taken, None)
            if chunk is None:
                return None
            self._taken += 1
        self._slots.release()
        return chunk

    def close(self) -> None:
        """Stop the readers (a chunk being read is dropped) and wait for them briefly."""
        self._stopping.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=5)

    # ------------------------------------------------------------ reader threads

    def _run(self) -> None:
        snap: Reader | None = None
        try:
            snap = self._open_reader()
            while not self._stopping.is_set():
                if not self._slots.acquire(timeout=0.2):
                    continue
                opened = self._open_next(snap)
                if opened is None:
                    self._slots.release()
                    return
                seq, table, after, upto, position = opened
                rows = snap.chunk_rows(table, after, upto)
                with self._changed:
                    self._ready[seq] = KeyedChunk(table, after, upto, rows, position)
                    self._changed.notify_all()
        except BaseException as error:  # handed to the delivery thread by take()
            with self._changed:
                self._error = self._error or error
                self._changed.notify_all()
        finally:
            if snap is not None:
                snap.close()

    def _open_next(
        self, snap: Reader
    ) -> tuple[int, TableSchema, list[Any] | None, list[Any] | None, dict[str, Any]] | None:
        """Open the plan's next chunk on ``snap`` (its transaction stays open); None when
        the plan is empty. Under the plan lock: positions follow plan order."""
        with self._plan_lock:
            if not self._plan or self._stopping.is_set():
                return None
            table, after = self._plan[0][0], self._after
            upto, position = snap.open_chunk(table, after, self._size, self._read_lock)
            seq = self._planned
            self._planned += 1
            if upto is None:  # the table's last chunk: the next table starts
                self._plan.pop(0)
                self._after = self._plan[0][1] if self._plan else None
            else:
                self._after = upto
            return seq, table, after, upto, position
