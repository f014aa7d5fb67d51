"""CRLs and OCSP answers for the private CAs.

A CA with CRLs on publishes one from the moment it answers (ACTIVE or DISABLED), whatever issues its
certificates: the services that make it answer or change its CRL settings (certificate import,
UpdateCertificateAuthority, restore) and revocations call ``queue_crl_refresh`` in their own
transaction, and every refresh keeps the CA's one scheduled refresh at half the CRL's validity going.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.x509 import ocsp
from sqlalchemy import select
from sqlalchemy.orm import Session

from ...domain import certsmith_events, pca_events
from ...domain.algorithms import SigningAlgorithm
from ...domain.authority import AuthorityStatus, reported_status
from ...domain.clock import Clock
from ...domain.revocation import (
    OCSPStatus,
    RevocationReason,
    RevokedEntry,
    build_crl,
    next_crl_refresh,
    ocsp_error,
    ocsp_response,
)
from ...store.database import Database
from ...store.jobs import JobQueue
from ...store.tables import AuthorityRow, IssuedCertificateRow
from ..events.outbox import EventOutbox
from ..ports import KeyVault
from .records import revocation_from_json

__all__ = ["REFRESH_CRL_JOB", "RevocationService", "queue_crl_refresh"]

REFRESH_CRL_JOB = "crl.refresh"
# A refresh keeps trying for about a day (backoff 2, 4 … s, then hourly) before it is dead-lettered: longer
# than the half of a CRL's validity (12 hours at least) that the CRL it replaces still has to run.
REFRESH_CRL_ATTEMPTS = 36

_ANSWERING = (AuthorityStatus.ACTIVE.value, AuthorityStatus.DISABLED.value)
log = logging.getLogger("certsmith.crl")


def queue_crl_refresh(session: Session, jobs: JobQueue, ca: AuthorityRow, now: datetime, *,
                      restart_schedule: bool = False) -> bool:
    """Queue a refresh that signs the CA's CRL and keeps its schedule; False (nothing queued) when it publishes none.

    ``ca`` is the row as the caller's transaction leaves it. With ``restart_schedule`` (new CRL settings, such as
    a shorter validity) the refresh starts a new schedule at the new cadence instead of keeping the pending one.
    The caller notifies the workers once its transaction has committed.
    """
    if ca.certificate_pem is None or ca.sealed_key is None or not revocation_from_json(ca.revocation).crl_enabled:
        return False
    if reported_status(AuthorityStatus(ca.status), ca.not_after, now).value not in _ANSWERING:
        return False
    if restart_schedule:
        ca.crl_next_refresh_at = None
    jobs.enqueue(session, REFRESH_CRL_JOB, {"authority_id": ca.id}, now, max_attempts=REFRESH_CRL_ATTEMPTS)
    return True


class RevocationService:
    def __init__(self, database: Database, jobs: JobQueue, vault: KeyVault, clock: Clock, *,
                 outbox: EventOutbox | None = None, public_url: str | None = None) -> None:
        self._db, self._jobs, self._vault, self._clock = database, jobs, vault, clock
        self._outbox, self._public_url = outbox or EventOutbox(), public_url

    def refresh_crl(self, payload: dict[str, Any]) -> None:
        """Sign a new CRL (see :meth:`_refresh`); a refresh that fails is told (ACM Private CA CRL Generation, failure)
        before the job tries again."""
        try:
            self._refresh(payload)
        except Exception:
            try:
                self._tell_failure(payload["authority_id"])
            except Exception:
                log.exception("CA %s: the failed CRL refresh could not be told", payload["authority_id"])
            raise

    def _tell_failure(self, authority_id: str) -> None:
        now = self._clock.now()
        with self._db.transaction() as session:
            ca = session.get(AuthorityRow, authority_id)
            if ca is not None:
                self._outbox.add(session, ca.account_id, ca.region,
                                 pca_events.crl_generation(ca.arn, now, pca_events.CRL_INTERNAL_FAILURE), now)

    def _refresh(self, payload: dict[str, Any]) -> None:
        """Sign a new complete CRL with the next CRL number and store it, with its events.

        Each CA has one scheduled refresh at half the CRL's validity (``crl_next_refresh_at``), so a CRL never
        goes stale even when nothing is revoked. The refresh that finds it due or missing schedules the next;
        the others (revocations, a second schedule left from earlier settings) only sign. A CA that stops
        publishing (deleted, expired, CRLs off) ends its schedule; ``queue_crl_refresh`` starts it again.
        """
        exact = self._clock.now()
        now = exact.replace(microsecond=0)
        with self._db.transaction() as session:
            query = select(AuthorityRow).where(AuthorityRow.id == payload["authority_id"])
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update()
            ca = session.scalars(query).first()
            if ca is None or ca.certificate_pem is None or ca.sealed_key is None:
                return
            if reported_status(AuthorityStatus(ca.status), ca.not_after, now).value not in _ANSWERING:
                return
            settings = revocation_from_json(ca.revocation)
            if not settings.crl_enabled:
                return
            next_refresh = next_crl_refresh(ca.crl_next_refresh_at, exact, settings.crl_validity)
            if next_refresh is not None:
                ca.crl_next_refresh_at = next_refresh
                self._jobs.enqueue(session, REFRESH_CRL_JOB, {"authority_id": ca.id, "scheduled": True}, now,
                                   run_after=next_refresh, max_attempts=REFRESH_CRL_ATTEMPTS)
            rows = session.execute(select(IssuedCertificateRow.serial_hex, IssuedCertificateRow.revoked_at,
                                          IssuedCertificateRow.revocation_reason).where(
                IssuedCertificateRow.authority_id == ca.id, IssuedCertificateRow.revoked_at.is_not(None))).all()
            entries = [RevokedEntry(int(serial, 16), revoked_at, RevocationReason(reason or "UNSPECIFIED"))
                       for serial, revoked_at, reason in rows if revoked_at is not None]
            # CRL numbers only grow; a millisecond timestamp keeps them growing across restores too.
            number = max(ca.crl_number + 1, int(now.timestamp() * 1000))
            ca.crl_der = build_crl(
                issuer_key=self._vault.open_private_key(ca.sealed_key, ca.arn),
                issuer_certificate=x509.load_pem_x509_certificate(ca.certificate_pem.encode()),
                entries=entries, crl_number=number, this_update=now, valid_for=settings.crl_validity,
                signing_algorithm=SigningAlgorithm(ca.configuration["SigningAlgorithm"]))
            ca.crl_number, ca.crl_updated_at = number, now
            url = settings.crl_url(self._public_url, ca.id) if self._public_url else None
            for event in (pca_events.crl_generation(ca.arn, exact),
                          certsmith_events.crl_published(ca.arn, number, now, now + settings.crl_validity, len(entries),
                                                         exact, url=url)):
                self._outbox.add(session, ca.account_id, ca.region, event, exact)

    def crl(self, authority_id: str) -> bytes | None:
        with self._db.read() as session:
            ca = session.get(AuthorityRow, authority_id)
            if ca is None or not revocation_from_json(ca.revocation).crl_enabled:
                return None
            return ca.crl_der

    def ocsp(self, authority_id: str, request_der: bytes) -> bytes:
        now = self._clock.now()
        with self._db.read() as session:
            ca = session.get(AuthorityRow, authority_id)
            if ca is None or ca.status not in _ANSWERING or ca.certificate_pem is None or ca.sealed_key is None:
                return ocsp_error(ocsp.OCSPResponseStatus.UNAUTHORIZED)
            if ca.not_after is not None and ca.not_after <= now:
                return ocsp_error(ocsp.OCSPResponseStatus.UNAUTHORIZED)

            def lookup(serial: int) -> tuple[OCSPStatus, RevokedEntry | None]:
                row = session.scalars(select(IssuedCertificateRow).where(
                    IssuedCertificateRow.authority_id == authority_id,
                    IssuedCertificateRow.serial_hex == format(serial, "x"),
                    IssuedCertificateRow.status == "ISSUED")).first()
                if row is None:
                    return OCSPStatus.UNKNOWN, None
                if row.revoked_at is not None and row.revocation_reason is not None:
                    return OCSPStatus.REVOKED, RevokedEntry(serial, row.revoked_at,
                                                                  RevocationReason(row.revocation_reason))
                return OCSPStatus.GOOD, None

            return ocsp_response(request_der,
                                 issuer_certificate=x509.load_pem_x509_certificate(ca.certificate_pem.encode()),
                                 issuer_key=self._vault.open_private_key(ca.sealed_key, ca.arn),
                                 signing_algorithm=SigningAlgorithm(ca.configuration["SigningAlgorithm"]),
                                 lookup=lookup, now=now)
