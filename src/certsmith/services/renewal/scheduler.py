"""The renewal scheduler: find the certificates whose planned time has come, and hand each to one renewal job.

It reads only due rows (the index on ``next_renewal_at``), so its cost follows the number due, not the number
stored. Claiming a row clears its time in the same transaction that enqueues its job: with several workers
(PostgreSQL, ``FOR UPDATE SKIP LOCKED``) or several sweeps, a certificate is handed out once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import String, func, insert, literal, select, update

from ...domain.clock import Clock
from ...store.database import Database
from ...store.jobs import JobQueue
from ...store.tables import Base, CertificateRow
from ..ports import WorkSignal

__all__ = ["RENEWAL_CHECK_JOB", "DueCertificate", "RenewalScheduler"]

RENEWAL_CHECK_JOB = "renewal.check"
RENEWAL_ATTEMPTS = 50  # failures that are not waits (RunLater) before a renewal job is given up
_CHUNK = 1000
_JOBS = Base.metadata.tables["jobs"]


@dataclass(frozen=True, slots=True)
class DueCertificate:
    certificate_id: str
    arn: str
    due_at: datetime


class RenewalScheduler:
    def __init__(self, database: Database, jobs: JobQueue, clock: Clock, signal: WorkSignal) -> None:
        self._db, self._jobs, self._clock, self._signal = database, jobs, clock, signal

    def due(self, now: datetime | None = None, limit: int = 1000,
            scope: tuple[str, str] | None = None) -> list[DueCertificate]:
        """What a sweep would take now (nothing is changed); with ``scope`` (account, region), that scope's only."""
        now = now or self._clock.now()
        query = self._due_query(now, limit)
        if scope is not None:
            query = query.where(CertificateRow.account_id == scope[0], CertificateRow.region == scope[1])
        with self._db.read() as session:
            rows = session.execute(query).all()
        return [DueCertificate(id_, arn, at) for id_, arn, at in rows]

    def sweep(self, now: datetime | None = None, limit: int = 20000) -> list[DueCertificate]:
        """Claim up to ``limit`` due certificates and enqueue one renewal check each; returns what was claimed.

        Claims go in chunks, each its own short transaction (SQLite has one writer); the jobs are inserted by
        the database from the claimed rows (INSERT … SELECT, the payload built in SQL), not row by row.
        """
        now = now or self._clock.now()
        claimed: list[DueCertificate] = []
        while len(claimed) < limit:
            chunk = self._claim(now, min(_CHUNK, limit - len(claimed)))
            claimed += chunk
            if len(chunk) < _CHUNK:
                break
        if claimed:
            self._signal.notify()
        return claimed

    def _claim(self, now: datetime, count: int) -> list[DueCertificate]:
        with self._db.transaction() as session:
            postgres = session.get_bind().dialect.name == "postgresql"
            query = self._due_query(now, count)
            if postgres:
                query = query.with_for_update(skip_locked=True, of=CertificateRow)
            chunk = [DueCertificate(id_, arn, at) for id_, arn, at in session.execute(query)]
            if not chunk:
                return chunk
            ids = [c.certificate_id for c in chunk]
            certificate_id = CertificateRow.id
            if postgres:
                token = func.md5(func.concat(func.random().cast(String), certificate_id))
                payload = func.json_build_object("certificate_id", certificate_id, "token", token)
            else:
                token = func.lower(func.hex(func.randomblob(16)))
                payload = func.json_object("certificate_id", certificate_id, "token", token)
            values = self._jobs.row(RENEWAL_CHECK_JOB, {}, now, max_attempts=RENEWAL_ATTEMPTS)
            columns = [c for c in values if c != "payload"]
            session.execute(insert(_JOBS).from_select(
                ["payload", *columns],
                select(payload, *[literal(values[c], _JOBS.c[c].type) for c in columns])
                .where(certificate_id.in_(ids))))
            session.execute(update(CertificateRow).where(certificate_id.in_(ids)).values(next_renewal_at=None),
                            execution_options={"synchronize_session": False})
            return chunk

    @staticmethod
    def _due_query(now: datetime, limit: int):  # type: ignore[no-untyped-def]
        return (select(CertificateRow.id, CertificateRow.arn, CertificateRow.next_renewal_at)
                .where(CertificateRow.next_renewal_at <= now).order_by(CertificateRow.next_renewal_at).limit(limit))
