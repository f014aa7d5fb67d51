"""The renewal job: look at a due certificate again, and renew it under the same ARN when its time has come.

A job is named by a token (made when it was enqueued). The job that moves a certificate to PENDING_AUTO_RENEWAL
writes its token into the plan; any other job for that certificate then stands aside, so a certificate is renewed
once however many jobs find it. Waits (a CA that is down, records not in place) are RunLater: the job stays in the
queue, postponed, until the certificate expires.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...domain.acm import CertificateStatus, CertificateType, FailureReason
from ...domain.clock import Clock
from ...domain.renewal import AriWindow, late_start, retry_at
from ...store.database import Database
from ...store.tables import CertificateRow
from ...worker.loop import RunLater
from ..acm.private_signing import PrivateMaterial, sign_private, store_material
from ..pca.issuance import IssuanceService
from ..ports import KeyVault
from ..public.ordering import OrderingService, OrderRefused
from ..public.validation import ValidationService
from .policies import RenewalPolicies
from .recorder import RenewalRecorder, is_acme

__all__ = ["PENDING_DOMAIN_VALIDATION", "RenewalService"]

log = logging.getLogger("certsmith.renewal")
PENDING_DOMAIN_VALIDATION = "PENDING_DOMAIN_VALIDATION"  # ACM's reason when a validation record is missing
RECHECK_VALIDATION = timedelta(hours=1)  # how long a renewal waiting for the user's records waits between checks


class _Ended(Exception):
    """The job has nothing more to do (the renewal ended, or is no longer this job's)."""


def _summary(status: str, now: datetime, reason: str | None = None,
             validations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    summary: dict[str, Any] = {"RenewalStatus": status, "DomainValidationOptions": validations or [],
                               "UpdatedAt": now.isoformat()}
    if reason is not None:
        summary["RenewalStatusReason"] = reason
    return summary


class RenewalService:
    def __init__(self, database: Database, clock: Clock, vault: KeyVault, issuance: IssuanceService,
                 ordering: OrderingService, validation: ValidationService, recorder: RenewalRecorder) -> None:
        self._db, self._clock, self._vault, self._issuance = database, clock, vault, issuance
        self._ordering, self._validation, self._recorder = ordering, validation, recorder

    # -- the job ---------------------------------------------------------------------------------------------------
    def run(self, payload: dict[str, Any]) -> None:
        """A due certificate (or, with ``force``, RenewCertificate's): plan it anew, and renew it when due."""
        certificate_id, token, force = payload["certificate_id"], payload["token"], bool(payload.get("force"))
        with self._db.read() as session:
            row = session.get(CertificateRow, certificate_id)
        if row is None or row.status != CertificateStatus.ISSUED:
            return
        renewing = (row.renewal_plan or {}).get("renewing")
        if renewing not in (None, token):
            return  # another job is renewing it
        if renewing is None:
            ari, asked = self._ari(row, force)
            started = self._start(certificate_id, token, force, ari, asked)
            if started is None:
                return
            row = started
        try:
            self._renew(row, token)
        except _Ended:
            return

    def give_up(self, payload: dict[str, Any], error: str) -> None:
        """The job kept failing (not waiting): the renewal failed for now; the scheduler tries again later."""
        now = self._clock.now()
        with self._db.transaction() as session:
            row = self._owned(session, payload["certificate_id"], payload["token"])
            if row is None:
                return
            self._set_failed_attempt(session, row, now, FailureReason.OTHER.value, error)

    # -- steps -------------------------------------------------------------------------------------------------------
    def _ari(self, row: CertificateRow, force: bool) -> tuple[AriWindow | None, bool]:
        """The CA's renewal window; when the CA cannot be asked now, the window it suggested last (RFC 9773 §4.3)."""
        if force or not is_acme(row):
            return None, False
        window = self._ordering.renewal_window(row)
        known = (row.renewal_plan or {}).get("ari")
        if window is None and known:
            window = AriWindow(datetime.fromisoformat(known["start"]), datetime.fromisoformat(known["end"]), None,
                               known.get("explanation_url"))
        return window, True

    def _start(self, certificate_id: str, token: str, force: bool, ari: AriWindow | None,
               asked: bool) -> CertificateRow | None:
        """Plan anew; when due (or forced), make this job the renewal's owner: PENDING_AUTO_RENEWAL."""
        now = self._clock.now()
        with self._db.transaction() as session:
            row = self._locked(session, certificate_id)
            if row is None or row.status != CertificateStatus.ISSUED:
                return None
            if (row.renewal_plan or {}).get("renewing") not in (None, token):
                return None
            plan = self._recorder.plan(session, row, now, ari, asked)
            if not force and (plan is None or plan.at > now):
                return None  # not due (yet): the plan holds the time to look again
            assert row.not_before is not None and row.not_after is not None
            later = None if force else late_start(now, row.not_before, row.not_after,
                                                  RenewalPolicies.for_row(session, row)[0])
            if later is not None:  # found after its maintenance window closed: the next one
                row.next_renewal_at = later
                row.renewal_plan = {**(row.renewal_plan or {}), "at": later.isoformat(), "reason":
                                    f"the maintenance window closed before the renewal began; waiting until "
                                    f"{later:%Y-%m-%d %H:%M} UTC ({(row.renewal_plan or {}).get('reason')})"}
                return None
            row.next_renewal_at = None
            row.renewal_plan = {**(row.renewal_plan or {}), "renewing": token, "attempts": 0,
                                "last_attempt_at": now.isoformat()}
            row.renewal = _summary("PENDING_AUTO_RENEWAL", now)
            session.flush()
            session.expunge(row)
            return row

    def _renew(self, row: CertificateRow, token: str) -> None:
        now = self._clock.now()
        assert row.not_after is not None
        if row.not_after <= now:
            self._expire(row.id, token)
            return
        key = None
        if (row.renewal_plan or {}).get("reuse_key") and row.sealed_key is not None:
            key = self._vault.open_private_key(row.sealed_key, row.arn)
        if row.type == CertificateType.PRIVATE:
            outcome = sign_private(self._issuance, self._vault, row, key)
            if isinstance(outcome, FailureReason):
                self._wait(row.id, token, outcome.value, f"the private CA refused: {outcome.value}")
                return
            self._finish(row.id, token, outcome)
            return
        missing = self._missing_validation(row)
        if missing:
            self._pending_validation(row.id, token, missing)
            return
        replaces = self._ordering.replaces_id(row) if is_acme(row) else None
        try:
            material = self._ordering.obtain(row, replaces=replaces, key=key)
        except OrderRefused as refused:
            self._needs_action(row.id, token, refused.failure.value, refused.message)
            return
        except RunLater as wait:
            if self._note(row.id, token, wait.reason):
                raise
            return
        self._finish(row.id, token, material)

    def _missing_validation(self, row: CertificateRow) -> list[dict[str, Any]]:
        """The names whose persistent record (CNAME or HTTP redirect) is gone; empty when every one is in place."""
        if (row.acme or {}).get("direct") or not row.validations:
            return []
        if any(v.get("ValidationMethod") == "EMAIL" for v in row.validations):
            return []
        checked = [{**v, "ValidationStatus": "PENDING_VALIDATION"} for v in row.validations]
        if not self._validation.check_names(checked):
            return []
        return checked

    # -- outcomes ----------------------------------------------------------------------------------------------------
    def _finish(self, certificate_id: str, token: str, material: PrivateMaterial) -> None:
        now = self._clock.now()
        with self._db.transaction() as session:
            row = self._owned(session, certificate_id, token)
            if row is None:
                return
            store_material(row, material)
            row.issued_at = now
            validations = [{**v, "ValidationStatus": "SUCCESS"} for v in row.validations or []]
            if row.validations is not None:
                row.validations = validations
            row.renewal = _summary("SUCCESS", now, validations=validations)
            row.renewal_plan = {"last_result": "SUCCESS", "last_attempt_at": now.isoformat()}
            self._recorder.record(session, row, "RENEWAL", now)
        log.info("certificate %s renewed", certificate_id)

    def _wait(self, certificate_id: str, token: str, reason: str, message: str) -> None:
        """A failure worth trying again: capped backoff (RunLater) until expiry, then FAILED (_Ended)."""
        now = self._clock.now()
        with self._db.transaction() as session:
            row = self._owned(session, certificate_id, token)
            if row is None:
                raise _Ended
            attempts = int((row.renewal_plan or {}).get("attempts", 0)) + 1
            assert row.not_after is not None
            again = retry_at(now, attempts, row.not_after)
            row.renewal_plan = {**(row.renewal_plan or {}), "attempts": attempts, "last_error": message,
                                "last_attempt_at": now.isoformat(), "needs_action": reason}
            row.renewal = _summary("PENDING_AUTO_RENEWAL", now, reason)
            # A failure that lasts into the schedule's days is told (Renewal Action Required) until it clears.
            row.next_notice_at = now if row.next_notice_at is None else min(row.next_notice_at, now)
            if again is None:
                self._set_failed(row, now, reason, message)
        if again is None:
            raise _Ended
        raise RunLater(again - now, message)

    def _pending_validation(self, certificate_id: str, token: str, validations: list[dict[str, Any]]) -> None:
        missing = [v["DomainName"] for v in validations if v["ValidationStatus"] != "SUCCESS"]
        self._needs_action(certificate_id, token, PENDING_DOMAIN_VALIDATION,
                           "the validation record of " + ", ".join(missing) + " is not in place", validations)

    def _needs_action(self, certificate_id: str, token: str, reason: str, message: str,
                      validations: list[dict[str, Any]] | None = None) -> None:
        """Renewal waits for the user (a record removed, the CA refused a name): PENDING_VALIDATION, told on the
        Renewal Action Required schedule, checked again every hour until expiry."""
        now = self._clock.now()
        with self._db.transaction() as session:
            row = self._owned(session, certificate_id, token)
            if row is None:
                raise _Ended
            assert row.not_after is not None
            not_after = row.not_after
            if not_after <= now:
                self._set_failed(row, now, reason, message)
            else:
                row.renewal = _summary("PENDING_VALIDATION", now, reason, validations or list(row.validations or []))
                row.renewal_plan = {**(row.renewal_plan or {}), "needs_action": reason, "last_error": message,
                                    "last_attempt_at": now.isoformat()}
                row.next_notice_at = now if row.next_notice_at is None else min(row.next_notice_at, now)
        if not_after <= now:
            raise _Ended
        raise RunLater(min(RECHECK_VALIDATION, max(timedelta(seconds=1), (not_after - now) / 2)), message)

    def _note(self, certificate_id: str, token: str, message: str) -> bool:
        """Keep why the renewal waits; False when the certificate expired meanwhile (its renewal FAILED)."""
        now = self._clock.now()
        with self._db.transaction() as session:
            row = self._owned(session, certificate_id, token)
            if row is None:
                return False
            if row.not_after is not None and row.not_after <= now:
                self._set_failed(row, now, FailureReason.OTHER.value, message)
                return False
            row.renewal_plan = {**(row.renewal_plan or {}), "last_error": message, "last_attempt_at": now.isoformat()}
            return True

    def _expire(self, certificate_id: str, token: str) -> None:
        now = self._clock.now()
        with self._db.transaction() as session:
            row = self._owned(session, certificate_id, token)
            if row is not None:
                self._set_failed(row, now, (row.renewal or {}).get("RenewalStatusReason") or FailureReason.OTHER.value,
                                 "the certificate expired before it could be renewed")

    def _set_failed_attempt(self, session: Session, row: CertificateRow, now: datetime, reason: str,
                            message: str) -> None:
        """The job gave up: the renewal is looked at again by the scheduler after a backoff, until expiry."""
        assert row.not_after is not None
        again = retry_at(now, int((row.renewal_plan or {}).get("attempts", 0)) + 1, row.not_after)
        if again is None:
            self._set_failed(row, now, reason, message)
            return
        row.renewal_plan = {**(row.renewal_plan or {}), "renewing": None, "last_error": message,
                            "last_result": "FAILED_ATTEMPT", "last_attempt_at": now.isoformat()}
        row.renewal, row.next_renewal_at = _summary("PENDING_AUTO_RENEWAL", now, reason), again

    @staticmethod
    def _set_failed(row: CertificateRow, now: datetime, reason: str, message: str) -> None:
        """The certificate expired unrenewed: FAILED, and no more renewal for it."""
        row.renewal = _summary("FAILED", now, reason, list(row.validations or []) or None)
        row.renewal_plan = {**(row.renewal_plan or {}), "renewing": None, "needs_action": None,
                            "last_result": "FAILED", "last_error": message, "last_attempt_at": now.isoformat()}
        row.next_renewal_at = None

    # -- rows --------------------------------------------------------------------------------------------------------
    @staticmethod
    def _locked(session: Session, certificate_id: str) -> CertificateRow | None:
        query = select(CertificateRow).where(CertificateRow.id == certificate_id)
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()
        return session.scalars(query).first()

    def _owned(self, session: Session, certificate_id: str, token: str) -> CertificateRow | None:
        """The certificate, when this job still owns its renewal."""
        row = self._locked(session, certificate_id)
        if row is None or (row.renewal_plan or {}).get("renewing") != token:
            return None
        return row
