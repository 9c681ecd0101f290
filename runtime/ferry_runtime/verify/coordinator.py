"""The worker's side of spec.verifyRequest: start it, feed it, finish it once per nonce.

The delivery loop calls :meth:`Coordinator.poll` at every batch boundary while streaming. A
verifyRequest whose nonce differs from the one in the checkpoint starts a
:class:`~ferry_runtime.verify.engine.Verifier` on a thread (the key recorder starts at that
same boundary, so no delivered change escapes it). When it is done, ``poll`` hands the
outcome back; the worker reads the rows to repair (:func:`repairs`) on the delivery thread,
right there, and commits them with the nonce and the result in one sink transaction. A
worker that stops first abandons the verification; the next run starts it again.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import threading
import time
from typing import Any

from ferry_runtime import errors
from ferry_runtime.checkpoint import Checkpoint, VerifyRecord
from ferry_runtime.config import VerifyRequest, WorkerConfig
from ferry_runtime.events import Change
from ferry_runtime.source import mysql, schema
from ferry_runtime.source.snapshot import _convert, _select
from ferry_runtime.verify import checksum, engine
from ferry_runtime.verify.touched import Touched, key_id

__all__ = ["Coordinator", "describe", "repairs"]

log = logging.getLogger("ferry.verify")


class Coordinator:
    """One worker's verifications (the pipeline thread calls everything but the thread)."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.touched = Touched()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._outcome: engine.Outcome | None = None
        self.started: float | None = None

    def pending(self, state: Checkpoint) -> VerifyRequest | None:
        request = self.config.verify_request
        if request is None or (state.verify is not None and state.verify.nonce == request.nonce):
            return None
        return request

    def poll(self, state: Checkpoint) -> engine.Outcome | None:
        """At a batch boundary: start a pending verification, or return a finished one."""
        request = self.pending(state)
        if request is None:
            return None
        if self._thread is None:
            self._start(request, state)
            return None
        if self._thread.is_alive():
            return None
        self._thread = None
        self.touched.stop()
        outcome, self._outcome = self._outcome, None
        return outcome  # None: abandoned (stopping); poll starts it again

    def _start(self, request: VerifyRequest, state: Checkpoint) -> None:
        self._stop.clear()
        self._outcome = None
        tables = [
            f"{database}.{table}"
            for database, table in self._selected()
            if any(fnmatch.fnmatchcase(f"{database}.{table}", g) for g in request.tables)
        ]
        self.touched.start(tables, state.position)
        verifier = engine.Verifier(self.config, request, self.touched, self._stop)
        self._thread = threading.Thread(
            target=self._run, args=(verifier,), name="ferry-verify", daemon=True
        )
        self.started = time.time()
        log.info("verifyRequest (nonce %s): verifying %s", request.nonce, request.tables)
        self._thread.start()

    def _selected(self) -> list[tuple[str, str]]:
        conn = mysql.connect(self.config.source)
        try:
            return [n for n in schema.list_tables(conn) if self.config.selects(*n)]
        finally:
            conn.close()

    def _run(self, verifier: engine.Verifier) -> None:
        try:
            self._outcome = verifier.run()
        except engine.Stopped:
            self._outcome = None
        except Exception as error:  # reported, never fatal to the stream
            log.exception("verification failed")
            secrets = [os.environ.get(name) for name in self.config.secret_envs()]
            detail = errors.scrub(f"{type(error).__name__}: {error}", *secrets)
            self._outcome = engine.Outcome(
                VerifyRecord(verifier.request.nonce, time.time(), error=detail)
            )

    def stop(self) -> None:
        """Abandon a running verification (the worker is stopping or restarting)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(10)
        self.touched.stop()


def repairs(config: WorkerConfig, drift: dict[str, list[list[Any]]]) -> list[Change]:
    """The drifted keys' rows as the source holds them now (a read of each, or a delete of a
    key the source no longer has), for the sink to rewrite. Read by the delivery thread at a
    batch boundary: the sink holds every change up to the checkpoint, and the source is at or
    past it, so any change between the two streams in after the repair and nothing is lost."""
    changes: list[Change] = []
    if not drift:
        return changes
    conn = mysql.connect_reader(config.source)
    try:
        for name, keys in drift.items():
            database, table = name.split(".", 1)
            loaded = schema.load(conn, database, table)
            if loaded is None or not loaded.primary_key:
                continue
            by_name = {c.name: c for c in loaded.columns}
            key = tuple((by_name[n], n) for n in loaded.primary_key)
            side = checksum.Side(database, table, key, key)
            names = ", ".join(_select(c) for c in loaded.columns)
            found: dict[bytes, dict[str, Any]] = {}
            for start in range(0, len(keys), 500):
                where, args = checksum.keys_sql(side, keys[start : start + 500])
                with conn.cursor() as cursor:
                    cursor.execute(f"SELECT {names} FROM {side.name}{where}", args)
                    rows = _convert(loaded, list(cursor.fetchall()))
                for row in rows:
                    found[_ident(loaded, row)] = row
            for values in keys:
                current = found.get(key_id(values))
                if current is not None:
                    pk = loaded.primary_key
                    changes.append(Change(database, table, "read", current, None, pk))
                else:
                    data = dict(zip(loaded.primary_key, values, strict=True))
                    pk = loaded.primary_key
                    changes.append(Change(database, table, "delete", data, None, pk))
    finally:
        conn.close()
    return changes


def _ident(table: schema.TableSchema, row: dict[str, Any]) -> bytes:
    return key_id([row[name] for name in table.primary_key])


def describe(record: VerifyRecord) -> str:
    """One line for logs and Events."""
    if record.error:
        return f"verification (nonce {record.nonce}) failed: {record.error}"
    return (
        f"verified {len(record.tables)} table(s), {record.chunks} chunk(s), {record.rows} "
        f"row(s): {record.mismatched} mismatched, {record.unsettled} still changing"
        + (f", {record.repaired} repaired" if record.repaired else "")
    )
