"""What happens to an issued ACM certificate: export, renewal, revocation."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import serialization

from ...domain.acm import CertificateStatus, CertificateType, FailureReason
from ...domain.clock import Clock
from ...domain.errors import (
    ConflictError,
    RequestInProgressError,
    ResourceInUseError,
    ValidationError,
)
from ...domain.revocation import RevocationReason
from ...store.database import Database
from ...store.jobs import JobQueue
from ...store.tables import CertificateRow
from ..context import Caller
from ..pca.issuance import IssuanceService
from ..ports import KeyVault, WorkSignal
from .certificate_records import CertificateRecord, renewal_eligibility
from .certificates import CertificateService
from .private_signing import PrivateMaterial, sign_private, store_material

__all__ = ["RENEW_JOB", "CertificateLifecycleService", "check_passphrase"]

RENEW_JOB = "acm.renew"
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
    if row.type != CertificateType.PRIVATE:
        return "it is not a private certificate issued by certsmith"
    if row.status != CertificateStatus.ISSUED:
        return f"it is {row.status}"
    return "it has not been exported and is not in use"


class CertificateLifecycleService:
    def __init__(self, database: Database, jobs: JobQueue, vault: KeyVault, clock: Clock, signal: WorkSignal,
                 certificates: CertificateService, issuance: IssuanceService) -> None:
        self._db, self._jobs, self._vault, self._clock, self._signal = database, jobs, vault, clock, signal
        self._certificates, self._issuance = certificates, issuance

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
        return row.certificate_pem, row.chain_pem or None, private_key.decode("ascii")

    def renew(self, caller: Caller, arn: str) -> None:
        now = self._clock.now()
        with self._db.transaction() as session:
            row = self._certificates.load(caller, arn, session)
            if (row.renewal or {}).get("RenewalStatus") == "PENDING_AUTO_RENEWAL":
                raise RequestInProgressError(f"certificate {arn} is being renewed already", arn=arn)
            if renewal_eligibility(CertificateRecord.of(row)) != "ELIGIBLE":
                raise ValidationError(f"certificate {arn} is not eligible for renewal: {_why_not_renewable(row)}",
                                      field="CertificateArn")
            row.renewal = {"RenewalStatus": "PENDING_AUTO_RENEWAL", "DomainValidationOptions": [],
                           "UpdatedAt": now.isoformat()}
            self._jobs.enqueue(session, RENEW_JOB, {"certificate_id": row.id}, now)
        self._signal.notify()

    def run_renew_job(self, payload: dict[str, Any]) -> None:
        """Same ARN; a new key, serial and validity from the CA; RenewalSummary says how it went."""
        with self._db.read() as session:
            row = session.get(CertificateRow, payload["certificate_id"])
        if row is None or (row.renewal or {}).get("RenewalStatus") != "PENDING_AUTO_RENEWAL":
            return
        material = sign_private(self._issuance, self._vault, row)
        self._finish_renewal(payload["certificate_id"], material)

    def mark_renewal_failed(self, payload: dict[str, Any]) -> None:
        self._finish_renewal(payload["certificate_id"], FailureReason.OTHER)

    def _finish_renewal(self, certificate_id: str, outcome: PrivateMaterial | FailureReason) -> None:
        now = self._clock.now()
        with self._db.transaction() as session:
            row = session.get(CertificateRow, certificate_id)
            if row is None or (row.renewal or {}).get("RenewalStatus") != "PENDING_AUTO_RENEWAL":
                return
            summary: dict[str, Any] = {"DomainValidationOptions": [], "UpdatedAt": now.isoformat()}
            if isinstance(outcome, FailureReason):
                summary.update(RenewalStatus="FAILED", RenewalStatusReason=outcome.value)
            else:
                store_material(row, outcome)
                row.issued_at = now
                summary["RenewalStatus"] = "SUCCESS"
            row.renewal = summary

    def revoke(self, caller: Caller, arn: str, reason: str) -> str:
        """Revoke at the CA too, so the serial shows on its CRL and OCSP; the certificate becomes REVOKED."""
        row = self._certificates.load(caller, arn)
        if reason not in _CA_REASONS:
            raise ValidationError(f"RevocationReason {reason} does not revoke a certificate for good; use one of "
                                  f"{', '.join(sorted(_CA_REASONS))}", field="RevocationReason")
        if row.status == CertificateStatus.REVOKED:
            raise ConflictError(f"certificate {arn} is already revoked")
        if row.in_use_by:
            raise ResourceInUseError(f"certificate {arn} is in use by {', '.join(row.in_use_by)}", arn=arn)
        if row.type != CertificateType.PRIVATE or row.status != CertificateStatus.ISSUED or not row.exported:
            raise ValidationError(f"certificate {arn} cannot be revoked: only issued private certificates that "
                                  "have been exported can be", field="CertificateArn")
        assert row.authority_arn is not None and row.serial is not None
        self._issuance.revoke(caller, row.authority_arn, row.serial, _CA_REASONS[reason])
        now = self._clock.now()
        with self._db.transaction() as session:
            current = session.get(CertificateRow, row.id)
            if current is not None:
                current.status, current.revoked_at = CertificateStatus.REVOKED.value, now.replace(microsecond=0)
                current.revocation_reason = reason
        return arn
