"""Group commit on the real database (SQLite, or PostgreSQL with CERTSMITH_TEST_BACKEND=postgres)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError

from certsmith.store.database import Database
from certsmith.store.group_commit import GroupCommit
from certsmith.store.tables import AuditLogRow, Base

AUDIT = Base.metadata.tables["audit_log"]
NOW = datetime(2030, 1, 1, tzinfo=UTC)


def entry(n: int) -> dict[str, Any]:
    return {"at": NOW, "principal": f"p{n}", "operation": "IssueCertificate", "resource": f"r{n}", "result": "Success"}


@pytest.fixture()
def store(database: Database) -> Iterator[tuple[Database, GroupCommit, list[int]]]:
    commits: list[int] = []
    event.listen(database.engine, "commit", lambda _conn: commits.append(1))
    writes = GroupCommit(database)
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
