"""Re-planning after a policy change: a job that plans the concerned certificates anew, 500 at a time.

PutRenewalPolicy and DeleteRenewalPolicy answer at once and queue it; each run commits one batch and queues
its continuation, so an account of a million certificates never holds the database in one long transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ...domain.clock import Clock
from ...store.database import Database
from ...store.jobs import JobQueue
from ...store.tables import CertificateRow
from ..ports import WorkSignal
from .policies import REPLAN_JOB
from .recorder import RenewalRecorder

__all__ = ["Replanner"]

_BATCH = 500


class Replanner:
    def __init__(self, database: Database, jobs: JobQueue, clock: Clock, signal: WorkSignal,
                 recorder: RenewalRecorder) -> None:
        self._db, self._jobs, self._clock, self._signal, self._recorder = database, jobs, clock, signal, recorder

    def run(self, payload: dict[str, Any]) -> None:
        tag = tuple(payload["tag"]) if payload.get("tag") else None
        now = self._clock.now()
        with self._db.transaction() as session:
            rows = list(session.scalars(select(CertificateRow).where(
                CertificateRow.account_id == payload["account_id"], CertificateRow.region == payload["region"],
                CertificateRow.id > payload["after"], CertificateRow.status == "ISSUED",
                CertificateRow.type != "IMPORTED").order_by(CertificateRow.id).limit(_BATCH)))
            for row in rows:
                if (row.renewal_plan or {}).get("renewing"):
                    continue  # under way: the renewal plans its new certificate itself
                if tag is not None and not any(t.get("Key") == tag[0] and t.get("Value", "") == tag[1]
                                               for t in row.tags or []):
                    continue
                self._recorder.plan(session, row, now)
            if len(rows) == _BATCH:
                self._jobs.enqueue(session, REPLAN_JOB, {**payload, "after": rows[-1].id}, now)
        if len(rows) == _BATCH:
            self._signal.notify()
