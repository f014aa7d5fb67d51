"""The durable job queue: rows with attempts, run_after, lease_until and last_error.

Several workers may share one PostgreSQL database: leasing uses ``FOR UPDATE SKIP LOCKED`` so a job
is handed to one worker only. On SQLite every write transaction holds the database lock
(``BEGIN IMMEDIATE``), which gives the same guarantee within one file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from .database import inserted_id
from .tables import Base, JobRow

__all__ = ["DEAD", "LEASED", "READY", "JobQueue", "LeasedJob", "backoff"]

READY, LEASED, DEAD = "ready", "leased", "dead"


_JOBS = Base.metadata.tables["jobs"]
_INSERT_JOB = insert(_JOBS)


def backoff(attempts: int) -> timedelta:
    """Exponential backoff: 2, 4, 8 ... seconds, capped at one hour."""
    return timedelta(seconds=min(3600, 2 ** max(1, attempts)))


@dataclass(frozen=True, slots=True)
class LeasedJob:
    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int


class JobQueue:
    @staticmethod
    def row(kind: str, payload: dict[str, Any], now: datetime, run_after: datetime | None = None,
            max_attempts: int = 8, leased_by: str | None = None,
            lease_for: timedelta = timedelta(minutes=5)) -> dict[str, Any]:
        """The values of a new job, for callers that insert it themselves (group commit).

        With ``leased_by`` the job is born leased (its first attempt begun) to that holder, who
        gets it handed over in memory; if the holder never finishes it, the lease runs out.
        """
        values = {"kind": kind, "payload": payload, "state": READY, "run_after": run_after or now, "attempts": 0,
                  "max_attempts": max_attempts, "created_at": now, "updated_at": now}
        if leased_by is not None:
            values.update(state=LEASED, attempts=1, leased_by=leased_by, lease_until=now + lease_for)
        return values

    def enqueue(self, session: Session, kind: str, payload: dict[str, Any], now: datetime,
                run_after: datetime | None = None, max_attempts: int = 8) -> int:
        return inserted_id(session.execute(_INSERT_JOB, self.row(kind, payload, now, run_after, max_attempts)))

    def lease(self, session: Session, worker_id: str, now: datetime, limit: int,
              lease_for: timedelta = timedelta(minutes=5)) -> list[LeasedJob]:
        """Claim up to ``limit`` due jobs (ready, or leased by a worker whose lease ran out).

        Each kind of due job is claimed by one UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING:
        ready jobs by (state, run_after), abandoned ones by (state, lease_until), both index-friendly.
        """
        skip_locked = session.get_bind().dialect.name == "postgresql"
        leased: list[LeasedJob] = []
        for condition, order in (((_JOBS.c.state == READY) & (_JOBS.c.run_after <= now), _JOBS.c.run_after),
                                 ((_JOBS.c.state == LEASED) & (_JOBS.c.lease_until < now), _JOBS.c.lease_until)):
            if len(leased) >= limit:
                break
            due = select(_JOBS.c.id).where(condition).order_by(order, _JOBS.c.id).limit(limit - len(leased))
            if skip_locked:
                due = due.with_for_update(skip_locked=True)
            claimed = session.execute(
                update(_JOBS).where(_JOBS.c.id.in_(due.scalar_subquery()))
                .values(state=LEASED, lease_until=now + lease_for, leased_by=worker_id, attempts=_JOBS.c.attempts + 1,
                        updated_at=now)
                .returning(_JOBS.c.id, _JOBS.c.kind, _JOBS.c.payload, _JOBS.c.attempts))
            leased += [LeasedJob(row.id, row.kind, dict(row.payload), row.attempts) for row in claimed]
        return sorted(leased, key=lambda job: job.id)

    def complete(self, session: Session, job_ids: list[int]) -> None:
        """Finished jobs leave the table: it holds only work still to do and the dead letters."""
        if job_ids:
            session.execute(delete(JobRow).where(JobRow.id.in_(job_ids)))

    def postpone(self, session: Session, job_id: int, now: datetime, delay: timedelta, reason: str) -> None:
        """Run the job again after ``delay``; the attempt it just made does not count."""
        session.execute(update(_JOBS).where(_JOBS.c.id == job_id).values(
            state=READY, run_after=now + delay, lease_until=None, leased_by=None, attempts=_JOBS.c.attempts - 1,
            last_error=reason[:4000], updated_at=now))

    def hurry(self, session: Session, job_id: int, now: datetime) -> bool:
        """Run a waiting job now (something it waits for has just changed). False when it is not waiting."""
        moved = session.execute(update(_JOBS).where(_JOBS.c.id == job_id, _JOBS.c.state == READY, _JOBS.c.run_after > now)
                                .values(run_after=now, updated_at=now).returning(_JOBS.c.id))
        return moved.first() is not None

    def fail(self, session: Session, job_id: int, error: str, now: datetime) -> str:
        """Record a failure; retry later with backoff, or move the job to DEAD. Returns the new state."""
        row = session.get(JobRow, job_id)
        if row is None:
            return DEAD
        row.last_error = error[:4000]
        row.lease_until = None
        row.updated_at = now
        if row.attempts >= row.max_attempts:
            row.state = DEAD
        else:
            row.state = READY
            row.run_after = now + backoff(row.attempts)
        return row.state

    def counts(self, session: Session) -> dict[str, int]:
        rows = session.execute(select(JobRow.state, func.count()).group_by(JobRow.state)).all()
        return {state: count for state, count in rows}

    def dead(self, session: Session, limit: int = 100) -> list[JobRow]:
        return list(session.scalars(select(JobRow).where(JobRow.state == DEAD).order_by(JobRow.id.desc())
                                    .limit(limit)))
