"""Driver-level bulk statements store exactly what SQLAlchemy stores (SQLite, or PostgreSQL with
CERTSMITH_TEST_BACKEND=postgres)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError

from certsmith.store.database import Database
from certsmith.store.jobs import READY, JobQueue
from certsmith.store.tables import AuditLogRow, Base, JobRow

JOBS = Base.metadata.tables["jobs"]
AUDIT = Base.metadata.tables["audit_log"]
NOW = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def test_rows_read_back_as_sqlalchemy_wrote_them(database: Database) -> None:
    """Aware datetimes, JSON documents and the columns' constant defaults survive the driver path."""
    payload = {"authority_id": "ca-1", "serial_hex": "ab" * 16, "nested": {"list": [1, "two", None]}}
    values = {"kind": "bulk.test", "payload": payload, "state": READY, "run_after": NOW + timedelta(hours=1),
              "created_at": NOW, "updated_at": NOW}  # attempts and max_attempts come from their defaults
    with database.connection() as connection:
        [bulk_id] = database.bulk.insert(connection, JOBS, [values], ids=True)
    with database.transaction() as session:
        orm_id = JobQueue().enqueue(session, "bulk.test", payload, NOW, NOW + timedelta(hours=1))
    with database.read() as session:
        bulk_row, orm_row = session.get(JobRow, bulk_id), session.get(JobRow, orm_id)
        assert bulk_row is not None and orm_row is not None
        for column in ("kind", "payload", "state", "run_after", "attempts", "max_attempts", "created_at"):
            assert getattr(bulk_row, column) == getattr(orm_row, column), column
        assert bulk_row.payload == payload and bulk_row.run_after == NOW + timedelta(hours=1)
        assert (bulk_row.attempts, bulk_row.max_attempts) == (0, 8)


def test_ids_come_back_in_row_order_across_chunks(database: Database) -> None:
    rows = [{"at": NOW, "principal": f"p{n}", "operation": "Op", "resource": None, "result": "Success"}
            for n in range(1234)]  # more than one multi-row INSERT on SQLite
    with database.connection() as connection:
        ids = database.bulk.insert(connection, AUDIT, rows, ids=True)
        assert database.bulk.insert(connection, AUDIT, rows[:3], ids=False) == []
    assert len(ids) == len(set(ids)) == 1234
    with database.read() as session:
        principal_of = {row.id: row.principal for row in session.execute(select(AuditLogRow.id, AuditLogRow.principal))}
    assert [principal_of[i] for i in ids] == [f"p{n}" for n in range(1234)]
    assert len(principal_of) == 1237


def test_an_update_runs_once_per_row_with_the_statement_constants(database: Database) -> None:
    rows = [{"kind": "k", "payload": {"n": n}, "state": READY, "run_after": NOW, "created_at": NOW, "updated_at": NOW}
            for n in range(5)]
    with database.connection() as connection:
        ids = database.bulk.insert(connection, JOBS, rows, ids=True)
    statement = update(JOBS).where(JOBS.c.id == bindparam("job_id"), JOBS.c.state == READY).values(
        state="dead", last_error=bindparam("error"), updated_at=bindparam("at"))
    later = NOW + timedelta(minutes=5)
    with database.connection() as connection:
        changed = database.bulk.execute(connection, statement, [
            {"job_id": ids[0], "error": "first", "at": later}, {"job_id": ids[2], "error": "third", "at": later},
            {"job_id": 10**9, "error": "nobody", "at": later}])
        assert database.bulk.execute(connection, statement, []) == 0
    assert changed == 2
    with database.read() as session:
        states = {row.id: (row.state, row.last_error, row.updated_at) for row in session.scalars(select(JobRow))}
    assert states[ids[0]] == ("dead", "first", later) and states[ids[2]] == ("dead", "third", later)
    assert states[ids[1]] == (READY, None, NOW)


def test_a_driver_error_is_raised_as_sqlalchemy_raises_it(database: Database) -> None:
    bad = {"at": NOW, "principal": "p", "operation": None, "resource": None, "result": "Success"}  # NOT NULL
    for ids in (True, False):
        with pytest.raises(IntegrityError), database.connection() as connection:
            database.bulk.insert(connection, AUDIT, [bad], ids=ids)
    with database.read() as session:
        assert session.scalars(select(AuditLogRow)).all() == []
