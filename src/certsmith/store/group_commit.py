"""Group commit: the rows that many concurrent requests insert, written by one thread in one transaction.

A request hands its rows over and awaits their primary keys; while one transaction runs, the next
requests' rows gather, and the following transaction takes them all. Under load this turns
hundreds of small transactions (each with its lock, begin and commit) into a few large ones;
an idle server commits a lone request at once. The rows are durable when the await returns.
If a group's transaction fails, each request's rows are retried in a transaction of their own,
so one bad request never fails the others.
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

from .database import Database

__all__ = ["GroupCommit", "Rows"]

log = logging.getLogger("certsmith.store")

Rows = Sequence[tuple[Table, dict[str, Any]]]


@dataclass(slots=True)
class _Unit:
    rows: Rows
    loop: asyncio.AbstractEventLoop | None = None  # None: nobody waits (insert_soon)
    future: asyncio.Future[list[int]] | None = None
    ids: list[int] = field(default_factory=list)


class GroupCommit:
    def __init__(self, database: Database, linger_seconds: float = 0.002) -> None:
        self._db, self._linger = database, linger_seconds
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._pending: list[_Unit] = []
        self._thread: threading.Thread | None = None
        self._closed = False

    async def insert(self, rows: Rows) -> list[int]:
        """Insert the rows (in this order) and return their primary keys once committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[int]] = loop.create_future()
        self._submit(_Unit(rows, loop, future))
        return await future

    def insert_soon(self, rows: Rows) -> None:
        """Insert the rows with the next group, without waiting for it (entries of a log)."""
        self._submit(_Unit(rows))

    def _submit(self, unit: _Unit) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the database writer is closed")
            self._pending.append(unit)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="certsmith-group-commit", daemon=True)
                self._thread.start()
            self._wake.notify()

    def close(self) -> None:
        """Write what is pending and stop the thread."""
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
            self._commit(units)

    def _commit(self, units: list[_Unit]) -> None:
        try:
            with self._db.connection() as connection:
                self._write(connection, units)
            outcomes: list[tuple[_Unit, BaseException | None]] = [(unit, None) for unit in units]
        except Exception:
            if len(units) == 1:
                log.exception("a group-commit transaction failed")
            outcomes = [(unit, self._commit_alone(unit)) for unit in units]
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Unit, BaseException | None]]] = {}
        for unit, error in outcomes:
            if unit.loop is not None:
                by_loop.setdefault(unit.loop, []).append((unit, error))
            elif error is not None:
                log.error("rows lost: %s", ", ".join(sorted({table.name for table, _ in unit.rows})), exc_info=error)
        for loop, settled in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, settled)
            except RuntimeError:  # the loop has closed: nobody is waiting any more
                pass

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
    for unit, error in settled:
        if unit.future is None or unit.future.done():  # nobody waits, or the request was cancelled
            continue
        if error is None:
            unit.future.set_result(unit.ids)
        else:
            unit.future.set_exception(error)
