"""Certificates stored before managed renewal existed get their first version, plan and notices (once, at start)."""

from __future__ import annotations

import logging

from sqlalchemy import select

from ...domain.clock import Clock
from ...store.database import Database
from ...store.tables import CertificateRow
from .recorder import RenewalRecorder

__all__ = ["plan_unrecorded"]

log = logging.getLogger("certsmith.renewal")
_BATCH = 500


def plan_unrecorded(database: Database, recorder: RenewalRecorder, clock: Clock) -> int:
    """Record every issued certificate that has no version yet, without events (nothing new was issued)."""
    done = 0
    while True:
        now = clock.now()
        with database.transaction() as session:
            rows = list(session.scalars(select(CertificateRow).where(
                CertificateRow.version == 0, CertificateRow.status == "ISSUED",
                CertificateRow.certificate_pem.is_not(None)).limit(_BATCH)))
            for row in rows:
                recorder.record(session, row, "IMPORT" if row.type == "IMPORTED" else "ISSUANCE", now, event=False)
        done += len(rows)
        if len(rows) < _BATCH:
            break
    if done:
        log.info("planned the renewal of %s certificates stored before managed renewal", done)
    return done
