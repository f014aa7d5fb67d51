"""Engine, sessions and migrations. Nothing here runs at import time."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, CursorResult, Engine, Result
from sqlalchemy.orm import Session, sessionmaker

from .bulk import Bulk
from .checkpoint import Checkpointer

__all__ = ["Database", "DatabaseBusy", "inserted_id", "migrate"]

_MIGRATIONS = Path(__file__).parent / "migrations"
LOCK_WAIT_SECONDS = 60


class DatabaseBusy(Exception):
    """Another writer holds the database, and the caller asked not to wait (nothing was written)."""


class Database:
    """Engines and transaction helpers.

    SQLite runs in WAL mode. Its writers are serialised twice: a process-wide lock queues this
    process's threads (SQLite's own busy handler sleeps in growing steps, which wastes most of the
    time under load), and ``BEGIN IMMEDIATE`` takes the file lock up front so that a transaction
    never fails half-way when another process writes. Reads use a second engine with deferred
    transactions, which WAL lets run beside a writer.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self._write_lock: threading.Lock | None = threading.Lock() if self.is_sqlite else None
        if self.is_sqlite:
            connect_args = {"check_same_thread": False, "timeout": 60}
            self.engine: Engine = create_engine(url, connect_args=connect_args)
            _configure_sqlite(self.engine, writer=True)
            self._read_engine = create_engine(url, connect_args=connect_args)
            _configure_sqlite(self._read_engine, writer=False)
        else:
            self.engine = create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
            self._read_engine = self.engine
        # SQLite: WAL checkpoints off the writers' threads (see checkpoint.py), started by the first write.
        self._checkpoints = Checkpointer(self.engine.url.database or "") if self.is_sqlite else None
        self._engine_no_wait = self.engine.execution_options(certsmith_wait=False)
        self.bulk = Bulk(self.engine.dialect)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(self._read_engine, expire_on_commit=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A read-write transaction, committed when the block ends without an exception."""
        lock = self._write_lock
        if lock is not None:
            self._start_checkpoints()
            lock.acquire()
        session = self._sessions()
        try:
            with session.begin():
                yield session
        finally:
            session.close()
            if lock is not None:
                lock.release()

    @contextmanager
    def connection(self, *, wait: bool = True) -> Iterator[Connection]:
        """A read-write transaction on a Core connection (no ORM session), committed when the block ends.

        With ``wait=False`` it raises DatabaseBusy at once, before anything is written, when another
        thread or (SQLite) process is writing.
        """
        lock = self._write_lock
        if lock is not None:
            self._start_checkpoints()
            if not lock.acquire(blocking=wait):
                raise DatabaseBusy("another thread of this process is writing")
        try:
            with (self.engine if wait else self._engine_no_wait).begin() as connection:
                yield connection
        finally:
            if lock is not None:
                lock.release()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only transaction; nothing written in it is kept."""
        session = self._read_sessions()
        try:
            yield session
        finally:
            session.close()  # returns the connection, whose pool rolls the transaction back

    def _start_checkpoints(self) -> None:
        if self._checkpoints is not None:
            self._checkpoints.start()

    def dispose(self) -> None:
        if self._checkpoints is not None:
            self._checkpoints.stop()
        self.engine.dispose()
        if self._read_engine is not self.engine:
            self._read_engine.dispose()


def _configure_sqlite(engine: Engine, writer: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let SQLAlchemy's begin event decide
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        if writer:
            cursor.execute("PRAGMA wal_autocheckpoint=0")  # the Checkpointer thread takes them
        # Writers wait for the lock in _begin_immediate; readers (never blocked in WAL mode but for
        # rare recoveries) let SQLite wait.
        cursor.execute(f"PRAGMA busy_timeout={0 if writer else int(LOCK_WAIT_SECONDS * 1000)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if writer:
            _begin_immediate(connection.connection.driver_connection,
                             wait=connection.get_execution_options().get("certsmith_wait", True))
        else:
            connection.exec_driver_sql("BEGIN")


def _begin_immediate(dbapi_connection: sqlite3.Connection, wait: bool = True) -> None:
    """Take the write lock, retrying in short steps while another process holds it (DatabaseBusy
    at once without ``wait``).

    SQLite's own busy handler sleeps 1, 2, 5, 10 ... ms between tries, far longer than the
    sub-millisecond transactions certsmith writes, so waiting writers would sleep through most of
    the time the lock is free.
    """
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    delay = 0.00005
    while True:
        try:
            dbapi_connection.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error):
                raise
            if not wait:
                raise DatabaseBusy("another process is writing to the database") from None
            if time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.001)


def inserted_id(result: Result[Any]) -> int:
    """The primary key a single-row Core INSERT generated."""
    key = cast("CursorResult[Any]", result).inserted_primary_key
    if key is None:
        raise RuntimeError("the INSERT returned no primary key")
    return int(key[0])


def migrate(url: str, region: str = "us-east-1") -> None:
    """Bring the schema to the newest revision. ``region``: where rows made before regions were kept apart
    (the server's configured region) belong."""
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    config.attributes["certsmith_region"] = region
    logging.getLogger("alembic").setLevel(logging.WARNING)  # not a line per start about its context
    command.upgrade(config, "head")
