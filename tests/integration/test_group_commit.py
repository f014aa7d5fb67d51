"""Group commit on the real database (SQLite, or PostgreSQL with CERTSMITH_TEST_BACKEND=postgres)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError

from certsmith.store.database import Database, migrate
from certsmith.store.group_commit import GroupCommit
from certsmith.store.tables import AuditLogRow, Base

from ..conftest import BACKEND

AUDIT = Base.metadata.tables["audit_log"]
NOW = datetime(2030, 1, 1, tzinfo=UTC)


def entry(n: int) -> dict[str, Any]:
    return {"at": NOW, "principal": f"p{n}", "operation": "IssueCertificate", "resource": f"r{n}", "result": "Success"}


# The event loop writing itself is SQLite's writer; the writer thread is PostgreSQL's (and works on SQLite too).
@pytest.fixture(params=["loop", "thread"] if BACKEND == "sqlite" else ["thread"])
def store(database: Database, request: pytest.FixtureRequest) -> Iterator[tuple[Database, GroupCommit, list[int]]]:
    commits: list[int] = []
    event.listen(database.engine, "commit", lambda _conn: commits.append(1))
    writes = GroupCommit(database, on_loop=request.param == "loop")
    yield database, writes, commits
    writes.close()


def test_concurrent_inserts_share_transactions_and_get_their_own_ids(
        store: tuple[Database, GroupCommit, list[int]]) -> None:
    database, writes, commits = store

    async def main() -> list[list[int]]:
        return await asyncio.gather(*[writes.insert([(AUDIT, entry(n)), (AUDIT, entry(1000 + n))])
                                      for n in range(60)])

    results = asyncio.run(main())
    assert len(commits) <= 10, f"60 requests took {len(commits)} transactions"
    with database.read() as session:
        by_id = {row.id: row.principal for row in session.scalars(select(AuditLogRow))}
    assert len(by_id) == 120
    for n, (first, second) in enumerate(results):
        assert (by_id[first], by_id[second]) == (f"p{n}", f"p{1000 + n}")


def test_a_bad_request_fails_alone(store: tuple[Database, GroupCommit, list[int]]) -> None:
    database, writes, _ = store
    bad = {**entry(0), "operation": None}  # NOT NULL

    async def main() -> list[Any]:
        return await asyncio.gather(writes.insert([(AUDIT, entry(1))]), writes.insert([(AUDIT, bad)]),
                                    writes.insert([(AUDIT, entry(2))]), return_exceptions=True)

    first, failed, third = asyncio.run(main())
    assert isinstance(failed, IntegrityError)
    assert isinstance(first, list) and isinstance(third, list)
    with database.read() as session:
        assert sorted(session.scalars(select(AuditLogRow.principal))) == ["p1", "p2"]


def test_rows_inserted_soon_are_written_by_close(store: tuple[Database, GroupCommit, list[int]]) -> None:
    database, writes, _ = store
    for n in range(25):
        writes.insert_soon([(AUDIT, entry(n))])
    writes.close()
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(AuditLogRow)) == 25
    with pytest.raises(RuntimeError, match="closed"):
        writes.insert_soon([(AUDIT, entry(99))])


def test_the_loop_goes_on_while_another_process_holds_the_database(tmp_path: Path) -> None:
    """The loop's writer never sleeps on the lock: other requests are served meanwhile, and the rows
    are written once the lock is free."""
    url = f"sqlite:///{tmp_path / 'busy.db'}"
    migrate(url)
    database = Database(url)
    writes = GroupCommit(database)  # SQLite: the loop writes
    asyncio.run(writes.insert([(AUDIT, entry(0))]))  # the database is open (in WAL mode) before the other writer
    other = sqlite3.connect(tmp_path / "busy.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's write transaction

    async def main() -> tuple[list[int], int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        async def release_later() -> None:
            await asyncio.sleep(0.2)
            other.execute("COMMIT")

        ticking = asyncio.create_task(ticker())
        releasing = asyncio.create_task(release_later())
        ids = await writes.insert([(AUDIT, entry(1))])
        ticking.cancel()
        await releasing
        return ids, ticks

    try:
        ids, ticks = asyncio.run(main())
        assert ticks >= 50, f"the loop ran only {ticks} times while the database was locked for 0.2 s"
        with database.read() as session:
            assert session.get(AuditLogRow, ids[0]) is not None
    finally:
        writes.close()
        other.close()
        database.dispose()


def test_rows_left_by_a_loop_that_ended_are_written(store: tuple[Database, GroupCommit, list[int]]) -> None:
    database, writes, _ = store

    async def log_and_leave() -> None:
        writes.insert_soon([(AUDIT, entry(1))])  # the loop ends before its next turn

    asyncio.run(log_and_leave())
    asyncio.run(log_and_leave())  # the next loop takes over what the first one left
    writes.close()
    with database.read() as session:
        assert sorted(session.scalars(select(AuditLogRow.principal))) == ["p1", "p1"]
