"""Group commit: the rows that many concurrent requests insert, written together in one transaction.

A request hands its rows over and awaits their primary keys; while one transaction runs, the next
requests' rows gather, and the following transaction takes them all. Under load this turns
hundreds of small transactions (each with its lock, begin and commit) into a few large ones;
an idle server commits a lone request at once. The rows are durable when the await returns.
If a group's transaction fails, each request's rows are retried in a transaction of their own,
so one bad request never fails the others.

Who writes depends on the database. On SQLite (a local file: a commit is a few hundred
microseconds of CPU) the event loop writes itself, once per turn, everything its requests handed
over in that turn; it never waits for the lock, but tries again a moment later while another
thread or process holds it. Handing rows to a thread and the answers back cost more CPU than the
writing (measured: 415-470 against 330-360 µs per IssueCertificate). On PostgreSQL, where a
commit waits for the network, one writer thread per process commits while the loop goes on.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Table

from .database import Database, DatabaseBusy

__all__ = ["GroupCommit", "Rows"]

log = logging.getLogger("certsmith.store")

Rows = Sequence[tuple[Table, dict[str, Any]]]
_RETRY_FIRST, _RETRY_LAST = 0.00005, 0.001  # seconds between tries while another writer holds SQLite


@dataclass(slots=True)
class _Unit:
    rows: Rows
    loop: asyncio.AbstractEventLoop | None = None  # None: nobody waits (insert_soon)
    future: asyncio.Future[list[int]] | None = None
    ids: list[int] = field(default_factory=list)


class GroupCommit:
    def __init__(self, database: Database, linger_seconds: float = 0.002, on_loop: bool | None = None) -> None:
        self._db, self._linger = database, linger_seconds
        self._on_loop = database.is_sqlite if on_loop is None else on_loop
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._pending: list[_Unit] = []
        self._thread: threading.Thread | None = None
        self._closed = False
        # The loop's own writer: what requests handed over since its last turn, and its retry delay.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_units: list[_Unit] = []
        self._loop_flush: asyncio.Handle | None = None
        self._retry = _RETRY_FIRST

    async def insert(self, rows: Rows) -> list[int]:
        """Insert the rows (in this order) and return their primary keys once committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[int]] = loop.create_future()
        self._submit(_Unit(rows, loop, future))
        return await future

    def insert_soon(self, rows: Rows) -> None:
        """Insert the rows with the next group, without waiting for it (entries of a log)."""
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        self._submit(_Unit(rows), loop)

    def _submit(self, unit: _Unit, loop: asyncio.AbstractEventLoop | None = None) -> None:
        loop = loop or unit.loop
        if self._loop is not None and self._loop is not loop and self._loop.is_closed():
            self._flush_leftovers()  # a loop that ended (asyncio.run returned): the next one writes
        if self._on_loop and loop is not None and self._loop in (None, loop):
            if self._closed:
                raise RuntimeError("the database writer is closed")
            self._loop = loop
            self._loop_units.append(unit)
            if self._loop_flush is None:
                self._loop_flush = loop.call_soon(self._flush_on_loop)
            return
        self._submit_to_thread(unit)

    def _flush_on_loop(self) -> None:
        """Commit what the loop's requests handed over; if the database is busy, try again shortly."""
        assert self._loop is not None
        self._loop_flush = None
        units, self._loop_units = self._loop_units, []
        if not units:
            return
        try:
            outcomes = self._commit(units, wait=False)
        except DatabaseBusy:
            self._loop_units[:0] = units
            self._loop_flush = self._loop.call_later(self._retry, self._flush_on_loop)
            self._retry = min(self._retry * 2, _RETRY_LAST)
            return
        self._retry = _RETRY_FIRST
        _settle(outcomes)

    def _submit_to_thread(self, unit: _Unit) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the database writer is closed")
            self._pending.append(unit)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="certsmith-group-commit", daemon=True)
                self._thread.start()
            self._wake.notify()

    def _flush_leftovers(self) -> None:
        """Write, waiting for the lock, what the loop has not written yet; forget the loop."""
        if self._loop_flush is not None:
            self._loop_flush.cancel()
            self._loop_flush = None
        units, self._loop_units, self._loop = self._loop_units, [], None
        if units:
            _settle(self._commit(units, wait=True))

    def close(self) -> None:
        """Write what is pending and stop the thread (call it from the loop's thread, or once the loop has ended)."""
        self._flush_leftovers()
        with self._lock:
            self._closed = True
            self._wake.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=30)

    def _run(self) -> None:
        busy = False
        while True:
            with self._lock:
                while not self._pending and not self._closed:
                    self._wake.wait()
            if busy:
                # Under load (the last group had company), let the group grow a little: fewer, larger
                # transactions cost less per row and hold the database lock less often.
                time.sleep(self._linger)
            with self._lock:
                units, self._pending = self._pending, []
                if not units and self._closed:
                    return
            busy = len(units) > 1
            by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Unit, BaseException | None]]] = {}
            for unit, error in self._commit(units, wait=True):
                if unit.loop is not None:
                    by_loop.setdefault(unit.loop, []).append((unit, error))
                else:
                    _settle([(unit, error)])
            for loop, settled in by_loop.items():
                try:
                    loop.call_soon_threadsafe(_settle, settled)
                except RuntimeError:  # the loop has closed: nobody is waiting any more
                    pass

    def _commit(self, units: list[_Unit], *, wait: bool) -> list[tuple[_Unit, BaseException | None]]:
        """Write the units in one transaction; each unit with the error that kept its rows out, if any.

        Without ``wait``, raises DatabaseBusy (nothing written) when another writer holds the database.
        """
        try:
            with self._db.connection(wait=wait) as connection:
                self._write(connection, units)
            return [(unit, None) for unit in units]
        except DatabaseBusy:
            raise
        except Exception:
            if len(units) == 1:
                log.exception("a group-commit transaction failed")
            return [(unit, self._commit_alone(unit)) for unit in units]

    def _commit_alone(self, unit: _Unit) -> BaseException | None:
        try:
            with self._db.connection() as connection:
                self._write(connection, [unit])
            return None
        except Exception as error:  # noqa: BLE001 - handed to the waiting request
            return error

    def _write(self, connection: Connection, units: list[_Unit]) -> None:
        """Insert every unit's rows, one statement per table and set of columns; the ids of those awaited."""
        by_shape: dict[tuple[Table, tuple[str, ...]], list[tuple[_Unit, int, dict[str, Any]]]] = {}
        for unit in units:
            unit.ids = [0] * len(unit.rows)
            for row_index, (table, values) in enumerate(unit.rows):
                by_shape.setdefault((table, tuple(values)), []).append((unit, row_index, values))
        for (table, _), entries in by_shape.items():
            awaited = any(unit.future is not None for unit, _, _ in entries)
            new_ids = self._db.bulk.insert(connection, table, [values for _, _, values in entries], ids=awaited)
            if awaited:
                for (unit, row_index, _), new_id in zip(entries, new_ids, strict=True):
                    unit.ids[row_index] = new_id


def _settle(settled: list[tuple[_Unit, BaseException | None]]) -> None:
    """Answer the waiting requests (on their loop's thread); say so loudly when unawaited rows were lost."""
    for unit, error in settled:
        if unit.future is None:
            if error is not None:
                log.error("rows lost: %s", ", ".join(sorted({table.name for table, _ in unit.rows})), exc_info=error)
            continue
        if unit.future.done() or unit.future.get_loop().is_closed():  # the request was cancelled or its loop ended
            continue
        if error is None:
            unit.future.set_result(unit.ids)
        else:
            unit.future.set_exception(error)
