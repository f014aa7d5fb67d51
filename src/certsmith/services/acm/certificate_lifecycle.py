"""What happens to an issued ACM certificate: export, renewal, revocation."""

from __future__ import annotations

import uuid

from cryptography.hazmat.primitives import serialization
from sqlalchemy import select

from ...domain.acm import CertificateStatus, CertificateType
from ...domain.clock import Clock
from ...domain.errors import (
    ConflictError,
    RequestInProgressError,
    ResourceInUseError,
    ValidationError,
)
from ...domain.events import revoked
from ...domain.revocation import RevocationReason
from ...store.database import Database
from ...store.jobs import JobQueue
from ...store.tables import CertificateRow, DeployBindingRow
from ..context import Caller
from ..events.outbox import EventOutbox
from ..pca.issuance import IssuanceService
from ..ports import KeyVault, WorkSignal
from ..renewal.recorder import certificate_facts
from ..renewal.scheduler import RENEWAL_ATTEMPTS
from .certificate_records import CertificateRecord, renewal_eligibility
from .certificates import CertificateService

__all__ = ["RENEW_JOB", "CertificateLifecycleService", "check_passphrase"]

RENEW_JOB = "acm.renew"  # RenewCertificate's renewal; run by the renewal service (services/renewal/renewer.py)
# ACM's reasons → the CA's (CERTIFICATE_HOLD and REMOVE_FROM_CRL are not permanent revocations).
_CA_REASONS = {
    "UNSPECIFIED": RevocationReason.UNSPECIFIED, "KEY_COMPROMISE": RevocationReason.KEY_COMPROMISE,
    "CA_COMPROMISE": RevocationReason.CERTIFICATE_AUTHORITY_COMPROMISE,
    "AFFILIATION_CHANGED": RevocationReason.AFFILIATION_CHANGED, "SUPERCEDED": RevocationReason.SUPERSEDED,
    "SUPERSEDED": RevocationReason.SUPERSEDED, "CESSATION_OF_OPERATION": RevocationReason.CESSATION_OF_OPERATION,
    "PRIVILEGE_WITHDRAWN": RevocationReason.PRIVILEGE_WITHDRAWN, "A_A_COMPROMISE": RevocationReason.A_A_COMPROMISE,
}


def check_passphrase(passphrase: bytes) -> None:
    """ExportCertificate's passphrase rules (§10.10): 4..128 bytes of ASCII, without ``#``, ``$`` or ``%``."""
    if not 4 <= len(passphrase) <= 128:
        raise ValidationError(f"Passphrase must be 4 to 128 bytes long, not {len(passphrase)}", field="Passphrase")
    if not passphrase.isascii() or any(c in passphrase for c in b"#$%"):
        raise ValidationError("Passphrase may hold any ASCII character except #, $ and %", field="Passphrase")


def _why_not_renewable(row: CertificateRow) -> str:
    if row.type != CertificateType.PRIVATE and (row.options or {}).get("Export") != "ENABLED":
        return "only private certificates, and public ones requested with Options.Export=ENABLED, are renewed on demand"
    if row.status != CertificateStatus.ISSUED:
        return f"it is {row.status}"
    return (row.renewal_plan or {}).get("reason") or "it has not been exported and is not in use"


class CertificateLifecycleService:
    def __init__(self, database: Database, jobs: JobQueue, vault: KeyVault, clock: Clock, signal: WorkSignal,
                 certificates: CertificateService, issuance: IssuanceService, outbox: EventOutbox | None = None) -> None:
        self._db, self._jobs, self._vault, self._clock, self._signal = database, jobs, vault, clock, signal
        self._certificates, self._issuance, self._outbox = certificates, issuance, outbox or EventOutbox()

    def export(self, caller: Caller, arn: str, passphrase: bytes) -> tuple[str, str | None, str]:
        """(certificate, chain, private key as PKCS#8 encrypted with PBES2/AES-256) and mark it exported."""
        check_passphrase(passphrase)
        row = self._certificates.load(caller, arn)
        if row.type != CertificateType.PRIVATE and row.options.get("Export") != "ENABLED":
            raise ValidationError(f"certificate {arn} is {row.type}: only private certificates, and public ones "
                                  "requested with Options.Export=ENABLED, can be exported", field="CertificateArn")
        if row.status == CertificateStatus.PENDING_VALIDATION:
            raise RequestInProgressError(f"certificate {arn} is still being issued; try again shortly", arn=arn)
        if row.status != CertificateStatus.ISSUED or row.sealed_key is None or row.certificate_pem is None:
            raise ValidationError(f"certificate {arn} is {row.status}; only an issued certificate can be exported",
                                  field="CertificateArn")
        key = self._vault.open_private_key(row.sealed_key, row.arn)
        # cryptography writes encrypted PKCS#8 as PBES2: PBKDF2-HMAC-SHA256 and AES-256-CBC.
        private_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.BestAvailableEncryption(passphrase))
        with self._db.transaction() as session:
            current = session.get(CertificateRow, row.id)
            if current is not None:
                current.exported = True
                if current.next_renewal_at is None and not (current.renewal_plan or {}).get("renewing"):
                    current.next_renewal_at = self._clock.now()  # an account with StrictEligibility renews it now on
        return row.certificate_pem, row.chain_pem or None, private_key.decode("ascii")

    def renew(self, caller: Caller, arn: str) -> None:
        """RenewCertificate: renew an eligible certificate now (a renewal job, owned from this moment)."""
        now = self._clock.now()
        with self._db.transaction() as session:
            row = self._certificates.load(caller, arn, session)
            if (row.renewal or {}).get("RenewalStatus") == "PENDING_AUTO_RENEWAL":
                raise RequestInProgressError(f"certificate {arn} is being renewed already", arn=arn)
            renewable = row.type == CertificateType.PRIVATE or (row.options or {}).get("Export") == "ENABLED"
            if not renewable or renewal_eligibility(CertificateRecord.of(row)) != "ELIGIBLE":
                raise ValidationError(f"certificate {arn} is not eligible for renewal: {_why_not_renewable(row)}",
                                      field="CertificateArn")
            token = uuid.uuid4().hex
            row.renewal = {"RenewalStatus": "PENDING_AUTO_RENEWAL", "DomainValidationOptions": [],
                           "UpdatedAt": now.isoformat()}
            row.renewal_plan = {**(row.renewal_plan or {}), "renewing": token, "attempts": 0,
                                "last_attempt_at": now.isoformat()}
            row.next_renewal_at = None
            self._jobs.enqueue(session, RENEW_JOB, {"certificate_id": row.id, "token": token, "force": True}, now,
                               max_attempts=RENEWAL_ATTEMPTS)
        self._signal.notify()

    def _users(self, row: CertificateRow) -> list[str]:
        """What uses the certificate: its InUseBy, else its deployment bindings (an agent's holds it before it reports)."""
        if row.in_use_by:
            return list(row.in_use_by)
        with self._db.read() as session:
            return list(session.scalars(select(DeployBindingRow.arn).where(DeployBindingRow.certificate_arn == row.arn)))

    def revoke(self, caller: Caller, arn: str, reason: str) -> str:
        """Revoke at the CA too, so the serial shows on its CRL and OCSP; the certificate becomes REVOKED, and
        ACM Certificate Revoked is written in that transaction."""
        row = self._certificates.load(caller, arn)
        if reason not in _CA_REASONS:
            raise ValidationError(f"RevocationReason {reason} does not revoke a certificate for good; use one of "
                                  f"{', '.join(sorted(_CA_REASONS))}", field="RevocationReason")
        if row.status == CertificateStatus.REVOKED:
            raise ConflictError(f"certificate {arn} is already revoked")
        users = self._users(row)
        if users:
            raise ResourceInUseError(f"certificate {arn} is in use by {', '.join(users)}; detach it first", arn=arn)
        if row.type != CertificateType.PRIVATE or row.status != CertificateStatus.ISSUED or not row.exported:
            raise ValidationError(f"certificate {arn} cannot be revoked: only issued private certificates that "
                                  "have been exported can be", field="CertificateArn")
        assert row.authority_arn is not None and row.serial is not None
        self._issuance.revoke(caller, row.authority_arn, row.serial, _CA_REASONS[reason])
        now = self._clock.now()
        with self._db.transaction() as session:  # locked: a binding made meanwhile sees REVOKED or is seen here
            current = session.get(CertificateRow, row.id, with_for_update=True, populate_existing=True)
            if current is not None:
                current.status, current.revoked_at = CertificateStatus.REVOKED.value, now.replace(microsecond=0)
                current.revocation_reason = reason
                self._outbox.add(session, current.account_id, current.region, revoked(certificate_facts(current), now),
                                 now)
        return arn
