"""Use cases of a certificate authority's lifecycle: create, activate, update, delete, restore."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import delete, func, select

from ...domain import pca_events
from ...domain.algorithms import KeyAlgorithm, SigningAlgorithm, check_family, generate_private_key
from ...domain.arns import AuthorityArn
from ...domain.authority import (
    AuthorityStatus,
    AuthorityType,
    RevocationSettings,
    UsageMode,
    deletion,
    reported_status,
    restoration,
    status_update,
)
from ...domain.ca_import import validate_ca_certificate
from ...domain.clock import Clock
from ...domain.errors import (
    InvalidStateError,
    LimitExceededError,
    RequestInProgressError,
    ValidationError,
)
from ...domain.issuance import build_csr
from ...domain.names import general_name, parse_oid, subject_name
from ...domain.passthrough import key_usage_from_document
from ...store.database import Database
from ...store.jobs import JobQueue
from ...store.tables import AuditReportRow, AuthorityRow, IssuedCertificateRow, PermissionRow
from ..context import Caller
from ..events.outbox import EventOutbox
from ..ports import KeyVault, WorkSignal
from .authority_cache import ActiveAuthorities
from .lookup import decode_token, encode_token, load_authority
from .records import AuthorityRecord, authority_record, revocation_to_json
from .revocation import queue_crl_refresh

__all__ = ["CREATE_AUTHORITY_JOB", "PURGE_AUTHORITY_JOB", "AuthorityService"]

CREATE_AUTHORITY_JOB = "authority.create"
PURGE_AUTHORITY_JOB = "authority.purge"
IDEMPOTENCY_WINDOW = timedelta(minutes=5)
MAX_AUTHORITIES = 200
_ACCESS_METHODS = {"CA_REPOSITORY": "1.3.6.1.5.5.7.48.5", "RESOURCE_PKI_MANIFEST": "1.3.6.1.5.5.7.48.10",
                   "RESOURCE_PKI_NOTIFY": "1.3.6.1.5.5.7.48.13"}


def _csr_parts(configuration: Mapping[str, Any]) -> tuple[x509.Name, x509.KeyUsage | None,
                                                           list[x509.AccessDescription]]:
    """Check the parts of a CertificateAuthorityConfiguration that become the CSR."""
    subject = subject_name(configuration["Subject"], "CertificateAuthorityConfiguration.Subject")
    extensions = configuration.get("CsrExtensions") or {}
    path = "CertificateAuthorityConfiguration.CsrExtensions"
    key_usage = key_usage_from_document(extensions["KeyUsage"], f"{path}.KeyUsage") \
        if extensions.get("KeyUsage") is not None else None
    access: list[x509.AccessDescription] = []
    for index, item in enumerate(extensions.get("SubjectInformationAccess") or []):
        item_path = f"{path}.SubjectInformationAccess[{index}]"
        method = item.get("AccessMethod") or {}
        if (method.get("AccessMethodType") is None) == (method.get("CustomObjectIdentifier") is None):
            raise ValidationError(f"{item_path}.AccessMethod needs exactly one of AccessMethodType and "
                                  "CustomObjectIdentifier", field=f"{item_path}.AccessMethod")
        if method.get("AccessMethodType") is not None:
            if method["AccessMethodType"] not in _ACCESS_METHODS:
                raise ValidationError(f"{item_path}.AccessMethod.AccessMethodType must be one of "
                                      f"{', '.join(_ACCESS_METHODS)}", field=f"{item_path}.AccessMethod")
            oid = x509.ObjectIdentifier(_ACCESS_METHODS[method["AccessMethodType"]])
        else:
            oid = parse_oid(method["CustomObjectIdentifier"], f"{item_path}.AccessMethod.CustomObjectIdentifier")
        access.append(x509.AccessDescription(oid, general_name(item.get("AccessLocation"),
                                                               f"{item_path}.AccessLocation")))
    return subject, key_usage, access


class AuthorityService:
    def __init__(self, database: Database, jobs: JobQueue, vault: KeyVault, clock: Clock, signal: WorkSignal,
                 active: ActiveAuthorities, outbox: EventOutbox | None = None) -> None:
        self._db, self._jobs, self._vault, self._clock, self._signal = database, jobs, vault, clock, signal
        self._active, self._outbox = active, outbox or EventOutbox()

    # -- create ---------------------------------------------------------------------------------------------------
    def create(self, caller: Caller, *, authority_type: AuthorityType, configuration: dict[str, Any],
               revocation: RevocationSettings, usage_mode: UsageMode, key_storage_standard: str,
               idempotency_token: str | None, tags: list[dict[str, str]]) -> str:
        key_algorithm = KeyAlgorithm(configuration["KeyAlgorithm"])
        check_family(key_algorithm, SigningAlgorithm(configuration["SigningAlgorithm"]),
                     "CertificateAuthorityConfiguration.SigningAlgorithm")
        _csr_parts(configuration)
        now = self._clock.now()
        with self._db.transaction() as session:
            if idempotency_token is not None:
                existing = session.scalars(select(AuthorityRow).where(
                    AuthorityRow.account_id == caller.account_id, AuthorityRow.region == caller.region,
                    AuthorityRow.idempotency_token == idempotency_token,
                    AuthorityRow.created_at > now - IDEMPOTENCY_WINDOW)).first()
                if existing is not None:
                    return existing.arn
            live = session.scalar(select(func.count()).select_from(AuthorityRow).where(
                AuthorityRow.account_id == caller.account_id, AuthorityRow.region == caller.region))
            if (live or 0) >= MAX_AUTHORITIES:
                raise LimitExceededError(f"the account has {live} certificate authorities; the limit is "
                                         f"{MAX_AUTHORITIES}")
            arn = AuthorityArn.new(caller.region, caller.account_id)
            session.add(AuthorityRow(
                id=arn.authority_id, arn=str(arn), account_id=caller.account_id, region=caller.region,
                type=authority_type.value, status=AuthorityStatus.CREATING.value, usage_mode=usage_mode.value,
                key_storage_standard=key_storage_standard, key_algorithm=key_algorithm.value,
                configuration=configuration, revocation=revocation_to_json(revocation), created_at=now,
                last_state_change_at=now, idempotency_token=idempotency_token, tags=tags, crl_number=0))
            self._jobs.enqueue(session, CREATE_AUTHORITY_JOB, {"authority_id": arn.authority_id}, now)
        self._signal.notify()
        return str(arn)

    def run_create_job(self, payload: dict[str, Any]) -> None:
        """Generate the CA key and CSR; CREATING → PENDING_CERTIFICATE (or FAILED)."""
        with self._db.transaction() as session:
            row = session.get(AuthorityRow, payload["authority_id"])
            if row is None or row.status != AuthorityStatus.CREATING:
                return
            configuration = dict(row.configuration)
            arn = row.arn
        subject, key_usage, access = _csr_parts(configuration)
        key = generate_private_key(KeyAlgorithm(configuration["KeyAlgorithm"]))
        csr = build_csr(key, subject, SigningAlgorithm(configuration["SigningAlgorithm"]), key_usage, access)
        sealed = self._vault.seal_private_key(key, arn)
        now = self._clock.now()
        with self._db.transaction() as session:
            row = session.get(AuthorityRow, payload["authority_id"])
            if row is None or row.status != AuthorityStatus.CREATING:
                return
            row.sealed_key = sealed
            row.csr_pem = csr.public_bytes(serialization.Encoding.PEM).decode("ascii")
            row.status, row.last_state_change_at = AuthorityStatus.PENDING_CERTIFICATE.value, now
            self._outbox.add(session, row.account_id, row.region, pca_events.creation(row.arn, now), now)

    def mark_failed(self, payload: dict[str, Any]) -> None:
        """Called when the create job is dead: the CA becomes FAILED."""
        now = self._clock.now()
        with self._db.transaction() as session:
            row = session.get(AuthorityRow, payload["authority_id"])
            if row is not None and row.status == AuthorityStatus.CREATING:
                row.status, row.failure_reason, row.last_state_change_at = AuthorityStatus.FAILED.value, "OTHER", now
                self._outbox.add(session, row.account_id, row.region, pca_events.creation(
                    row.arn, now, "Failed to create the CA's key and CSR. Internal failure."), now)

    # -- read -----------------------------------------------------------------------------------------------------
    def describe(self, caller: Caller, arn: str) -> AuthorityRecord:
        now = self._clock.now()
        with self._db.read() as session:
            return authority_record(load_authority(session, caller, arn, now), now)

    def list(self, caller: Caller, max_results: int | None, next_token: str | None,
             resource_owner: str | None) -> tuple[list[AuthorityRecord], str | None]:
        offset = decode_token(next_token)
        page = min(max_results or 100, 100)
        now = self._clock.now()
        if resource_owner == "OTHER_ACCOUNTS":
            return [], None  # certsmith has no cross-account sharing yet
        with self._db.read() as session:
            rows = session.scalars(select(AuthorityRow).where(AuthorityRow.account_id == caller.account_id,
                                                              AuthorityRow.region == caller.region)
                                   .order_by(AuthorityRow.created_at, AuthorityRow.id)
                                   .offset(offset).limit(page + 1)).all()
            visible = [authority_record(row, now) for row in rows[:page]]
        visible = [r for r in visible if not (r.status is AuthorityStatus.DELETED and r.restorable_until is None)]
        return visible, encode_token(offset + page) if len(rows) > page else None

    def csr(self, caller: Caller, arn: str) -> str:
        now = self._clock.now()
        with self._db.read() as session:
            row = load_authority(session, caller, arn, now)
            if row.status == AuthorityStatus.CREATING:
                raise RequestInProgressError("the CA's key and CSR are still being generated; try again shortly",
                                             arn=arn)
            if row.status in (AuthorityStatus.FAILED, AuthorityStatus.DELETED) or row.csr_pem is None:
                raise InvalidStateError(f"the CA is {row.status} and has no CSR", field="CertificateAuthorityArn")
            return row.csr_pem

    def certificate(self, caller: Caller, arn: str) -> tuple[str, str | None]:
        now = self._clock.now()
        with self._db.read() as session:
            row = load_authority(session, caller, arn, now)
            if row.certificate_pem is None or row.status in (AuthorityStatus.DELETED, AuthorityStatus.FAILED):
                raise InvalidStateError(f"the CA is {row.status} and has no certificate installed",
                                        field="CertificateAuthorityArn")
            return row.certificate_pem, row.chain_pem

    # -- change ---------------------------------------------------------------------------------------------------
    def import_certificate(self, caller: Caller, arn: str, certificate: bytes, chain: bytes | None) -> None:
        now = self._clock.now()
        with self._db.transaction() as session:
            row = load_authority(session, caller, arn, now, for_update=True)
            if row.status == AuthorityStatus.CREATING:
                raise RequestInProgressError("the CA is still being created", arn=arn)
            if row.status in (AuthorityStatus.DELETED, AuthorityStatus.FAILED) or row.csr_pem is None:
                raise InvalidStateError(f"the CA is {row.status}; a certificate cannot be imported",
                                        field="CertificateAuthorityArn")
            csr = x509.load_pem_x509_csr(row.csr_pem.encode())
            cert, chain_certs = validate_ca_certificate(AuthorityType(row.type), csr.public_key(), certificate, chain)
            row.certificate_pem = cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
            row.chain_pem = "".join(c.public_bytes(serialization.Encoding.PEM).decode("ascii")
                                    for c in chain_certs) or None
            row.serial = format(cert.serial_number, "x")
            row.not_before, row.not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
            new_status = AuthorityStatus.DISABLED if row.status == AuthorityStatus.DISABLED else AuthorityStatus.ACTIVE
            if row.status != new_status:
                row.status, row.last_state_change_at = new_status.value, now
            # The CDP URL in what the CA signs from now on must answer: a CRL under this certificate.
            crl_queued = queue_crl_refresh(session, self._jobs, row, now)
        self._active.forget(row.id)
        if crl_queued:
            self._signal.notify()

    def update(self, caller: Caller, arn: str, status: AuthorityStatus | None,
               revocation: RevocationSettings | None) -> None:
        now = self._clock.now()
        with self._db.transaction() as session:
            row = load_authority(session, caller, arn, now, for_update=True)
            current = reported_status(AuthorityStatus(row.status), row.not_after, now)
            new_status = status_update(current, status)
            if new_status != current:
                row.status, row.last_state_change_at = new_status.value, now
            if revocation is not None:
                row.revocation = revocation_to_json(revocation)
            # CRLs turned on or changed (a new validity sets a new cadence), or the CA enabled again.
            crl_queued = (revocation is not None or new_status != current) and queue_crl_refresh(
                session, self._jobs, row, now, restart_schedule=revocation is not None)
        self._active.forget(row.id)
        if crl_queued:
            self._signal.notify()

    def delete(self, caller: Caller, arn: str, days: int | None) -> None:
        now = self._clock.now()
        with self._db.transaction() as session:
            row = load_authority(session, caller, arn, now, for_update=True)
            current = reported_status(AuthorityStatus(row.status), row.not_after, now)
            restore_to, until = deletion(current, days, now)
            row.restore_status = restore_to.value if restore_to else None
            row.restorable_until = until
            row.status, row.last_state_change_at = AuthorityStatus.DELETED.value, now
            self._jobs.enqueue(session, PURGE_AUTHORITY_JOB, {"authority_id": row.id}, now, run_after=until)
        self._active.forget(row.id)

    def run_purge_job(self, payload: dict[str, Any]) -> None:
        """Remove a CA whose restoration window has passed, with its key and what it issued."""
        now = self._clock.now()
        with self._db.transaction() as session:
            row = session.get(AuthorityRow, payload["authority_id"])
            if row is None or row.status != AuthorityStatus.DELETED or row.restorable_until is None \
                    or row.restorable_until > now:
                return  # restored meanwhile, or already gone
            for table in (IssuedCertificateRow, PermissionRow, AuditReportRow):
                session.execute(delete(table).where(table.authority_id == row.id))
            session.delete(row)

    def restore(self, caller: Caller, arn: str) -> None:
        now = self._clock.now()
        with self._db.transaction() as session:
            row = load_authority(session, caller, arn, now, for_update=True)
            restore_to = AuthorityStatus(row.restore_status) if row.restore_status else None
            new_status = restoration(AuthorityStatus(row.status), restore_to, row.restorable_until, now)
            row.status, row.restore_status, row.restorable_until = new_status.value, None, None
            row.last_state_change_at = now
            crl_queued = queue_crl_refresh(session, self._jobs, row, now)  # restarts its schedule if it ended meanwhile
        self._active.forget(row.id)
        if crl_queued:
            self._signal.notify()
