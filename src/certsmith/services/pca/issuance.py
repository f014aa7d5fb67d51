"""Issuing, fetching and revoking certificates of a private CA."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import Row, bindparam, insert, select, update

from ...domain import pca_events
from ...domain.algorithms import KeyAlgorithm, SigningAlgorithm, check_family, key_algorithm_of
from ...domain.arns import IssuedCertificateArn
from ...domain.authority import (
    AuthorityStatus,
    AuthorityType,
    UsageMode,
    check_can_issue,
    check_can_revoke,
    reported_status,
)
from ...domain.clock import Clock
from ...domain.errors import (
    CertsmithError,
    InvalidArgsError,
    InvalidArnError,
    InvalidRequestError,
    InvalidStateError,
    RequestAlreadyProcessedError,
    RequestFailedError,
    RequestInProgressError,
    ResourceNotFoundError,
)
from ...domain.issuance import IssuerContext, load_csr, new_serial, pem, sign_certificate
from ...domain.passthrough import passthrough_from_document
from ...domain.revocation import RevocationReason
from ...domain.templates import Template, TemplateKind, template_for_arn
from ...domain.validity import Validity, issuance_window
from ...store.database import Database
from ...store.group_commit import GroupCommit
from ...store.jobs import JobQueue, LeasedJob
from ...store.tables import AuthorityRow, Base, IssuedCertificateRow
from ..context import Caller
from ..events.outbox import EventOutbox
from ..ports import KeyVault, WorkSignal
from .authority_cache import ActiveAuthorities, IssuingAuthority
from .lookup import load_authority
from .records import revocation_from_json
from .revocation import queue_crl_refresh

__all__ = ["ISSUE_JOB", "IssuanceService", "IssueRequest", "SignedCertificate", "parse_serial"]

ISSUE_JOB = "certificate.issue"
IDEMPOTENCY_WINDOW = timedelta(minutes=5)
MAX_DEPTH = 5
PENDING, ISSUED, FAILED = "PENDING", "ISSUED", "FAILED"
# Built once: statements with bound parameters hit SQLAlchemy's compiled cache on every call.
_ISSUED = Base.metadata.tables["issued_certificates"]
_INSERT_ISSUED = insert(_ISSUED)
_JOBS = Base.metadata.tables["jobs"]
_OUTBOX = Base.metadata.tables["event_outbox"]
# The worker's read of a batch: plain rows with the columns signing needs (no ORM objects to build).
_SELECT_PENDING = select(_ISSUED.c.id, _ISSUED.c.authority_id, _ISSUED.c.serial_hex, _ISSUED.c.template_arn,
                         _ISSUED.c.request).where(
    _ISSUED.c.authority_id == bindparam("authority_id"), _ISSUED.c.serial_hex.in_(bindparam("serials", expanding=True)),
    _ISSUED.c.status == PENDING)
_SELECT_AUTHORITIES = select(AuthorityRow).where(AuthorityRow.id.in_(bindparam("ids", expanding=True)))
_STORE_ISSUED = update(_ISSUED).where(_ISSUED.c.id == bindparam("row_id"), _ISSUED.c.status == PENDING).values(
    certificate_pem=bindparam("certificate_pem"), subject=bindparam("subject"), not_before=bindparam("nb"),
    not_after=bindparam("na"), status=ISSUED, issued_at=bindparam("issued_at"))
_STORE_FAILED = update(_ISSUED).where(_ISSUED.c.id == bindparam("row_id"), _ISSUED.c.status == PENDING).values(
    status=FAILED, failure_message=bindparam("message"))


@dataclass(frozen=True, slots=True)
class SignedCertificate:
    certificate: x509.Certificate
    certificate_pem: str
    chain_pem: str


@dataclass(frozen=True, slots=True)
class IssueRequest:
    authority_arn: str
    csr: bytes
    signing_algorithm: SigningAlgorithm
    validity: Validity
    validity_not_before: Validity | None = None
    template_arn: str | None = None
    api_passthrough: dict[str, Any] | None = None
    idempotency_token: str | None = None


def parse_serial(text: str, field: str = "CertificateSerial") -> str:
    """Normalise a serial given as hex, with or without colons, to lowercase hex without leading zeros."""
    cleaned = text.replace(":", "").strip().lower()
    try:
        value = int(cleaned, 16)
    except ValueError:
        raise InvalidRequestError(f"{field} {text!r} is not a hexadecimal serial number", field=field) from None
    return format(value, "x")


def _path_length(certificate: x509.Certificate) -> int | None:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length
    except x509.ExtensionNotFound:
        return None


class IssuanceService:
    def __init__(self, database: Database, writes: GroupCommit, jobs: JobQueue, vault: KeyVault, clock: Clock,
                 signal: WorkSignal, active: ActiveAuthorities, public_url: str, outbox: EventOutbox | None = None) -> None:
        self._db, self._writes, self._jobs, self._vault, self._clock = database, writes, jobs, vault, clock
        self._signal, self._active, self._public_url = signal, active, public_url
        self._outbox = outbox or EventOutbox()
        self._issuers: dict[str, tuple[tuple[str, dict[str, Any]], IssuerContext]] = {}

    async def issue(self, caller: Caller, request: IssueRequest) -> str:
        """Check the request against the CA, store it with an issue job, and return the certificate ARN."""
        template = template_for_arn(request.template_arn)
        csr = load_csr(request.csr)
        passthrough_from_document(request.api_passthrough)  # reject a bad passthrough now, not in the job
        now = self._clock.now()
        ca = self._active.get(caller.account_id, caller.region, request.authority_arn)
        if ca is None or template.kind in (TemplateKind.ROOT, TemplateKind.SUBORDINATE):
            ca, self_issuing_root = self._check_authority(caller, request, template, csr, now)
        else:
            self_issuing_root = False
            check_can_issue(reported_status(ca.status, ca.not_after, now), self_issuing_root=False)
        check_family(KeyAlgorithm(ca.key_algorithm), request.signing_algorithm)
        not_before, not_after = issuance_window(
            now, request.validity, request.validity_not_before, None if self_issuing_root else ca.not_after,
            ca.usage_mode == UsageMode.SHORT_LIVED_CERTIFICATE and not self_issuing_root)
        csr_pem = request.csr.decode("ascii") if request.csr.lstrip().startswith(b"-----BEGIN") else \
            csr.public_bytes(serialization.Encoding.PEM).decode("ascii")
        serial_hex = format(new_serial(), "x")
        values = {"authority_id": ca.id, "serial_hex": serial_hex, "status": PENDING, "template_arn": template.arn,
                  "request": {"csr": csr_pem, "signing_algorithm": request.signing_algorithm.value,
                              "not_before": not_before.isoformat(), "not_after": not_after.isoformat(),
                              "api_passthrough": request.api_passthrough},
                  "idempotency_token": request.idempotency_token, "requested_by": None, "created_at": now}
        payload = {"authority_id": ca.id, "serial_hex": serial_hex}
        if request.idempotency_token is not None:
            return self._store_once(request.idempotency_token, ca, values, payload, now)
        holder = self._signal.lease_holder()
        _, job_id = await self._writes.insert([(_ISSUED, values),
                                               (_JOBS, self._jobs.row(ISSUE_JOB, payload, now, leased_by=holder))])
        if holder is not None:
            self._signal.hand([LeasedJob(job_id, ISSUE_JOB, payload, 1)])
        else:
            self._signal.notify()
        return f"{ca.arn}/certificate/{serial_hex}"

    def _store_once(self, token: str, ca: IssuingAuthority, values: dict[str, Any], payload: dict[str, Any],
                    now: datetime) -> str:
        """Store a request that carries an IdempotencyToken, unless the token was used in the last minutes."""
        with self._db.transaction() as session:
            existing = session.scalar(select(IssuedCertificateRow.serial_hex).where(
                IssuedCertificateRow.authority_id == ca.id, IssuedCertificateRow.idempotency_token == token,
                IssuedCertificateRow.created_at > now - IDEMPOTENCY_WINDOW))
            if existing is not None:
                return f"{ca.arn}/certificate/{existing}"
            session.execute(_INSERT_ISSUED, values)
            self._jobs.enqueue(session, ISSUE_JOB, payload, now)
        self._signal.notify()
        return f"{ca.arn}/certificate/{values['serial_hex']}"

    def _check_authority(self, caller: Caller, request: IssueRequest, template: Template,
                         csr: x509.CertificateSigningRequest, now: datetime) -> tuple[IssuingAuthority, bool]:
        """Read the CA; check what the root and subordinate templates need. (CA facts, self-issuing root?)"""
        with self._db.read() as session:
            row = load_authority(session, caller, request.authority_arn, now)
            self_issuing_root = (template.kind is TemplateKind.ROOT and row.type == AuthorityType.ROOT
                                 and row.csr_pem is not None
                                 and x509.load_pem_x509_csr(row.csr_pem.encode()).public_key() == csr.public_key())
            check_can_issue(reported_status(AuthorityStatus(row.status), row.not_after, now),
                            self_issuing_root=self_issuing_root)
            if template.kind is TemplateKind.ROOT and not self_issuing_root:
                raise InvalidArgsError("a RootCACertificate template can only be used by a ROOT CA to sign its own "
                                       "CSR", field="TemplateArn")
            if template.kind is TemplateKind.SUBORDINATE and row.certificate_pem:
                self._check_path_length(row, template.path_length or 0)
            ca = IssuingAuthority.of(row)
        self._active.keep(ca)
        return ca, self_issuing_root

    @staticmethod
    def _check_path_length(ca: AuthorityRow, requested: int) -> None:
        assert ca.certificate_pem is not None
        ca_certificate = x509.load_pem_x509_certificate(ca.certificate_pem.encode())
        limit = _path_length(ca_certificate)
        if limit is not None and requested >= limit:
            raise InvalidArgsError(f"the CA's path length is {limit}: a subordinate under it may have a path length of "
                                   f"at most {limit - 1}, not {requested}", field="TemplateArn")
        depth = 1 + (ca.chain_pem.count("BEGIN CERTIFICATE") if ca.chain_pem else 0)
        if depth + 1 > MAX_DEPTH:
            raise InvalidArgsError(f"a CA hierarchy has at most {MAX_DEPTH} levels; this CA is at level {depth}",
                                   field="TemplateArn")

    def run_issue_batch(self, jobs: list[LeasedJob]) -> list[str | None]:
        """Sign a batch of pending certificates: one read, each CA key opened once, one write.

        Returns, for each job, None when it is done (issued, failed for good, or nothing left to do)
        or the error text of an unexpected failure, so that the worker retries just that one. The
        jobs that are done leave the queue in the same transaction that stores their certificates,
        with their ACM Private CA Certificate Issuance events (one statement for the batch).
        """
        payloads = [job.payload for job in jobs]
        now = self._clock.now()
        results: list[str | None] = [None] * len(payloads)
        index_of = {(p["authority_id"], p["serial_hex"]): index for index, p in enumerate(payloads)}
        with self._db.read() as session:
            cas = {ca.id: ca for ca in session.scalars(_SELECT_AUTHORITIES,
                                                       {"ids": list({p["authority_id"] for p in payloads})})}
            pending = [row for authority_id in cas for row in session.execute(_SELECT_PENDING, {
                "authority_id": authority_id,
                "serials": [p["serial_hex"] for p in payloads if p["authority_id"] == authority_id]})]
        issued: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        told: list[dict[str, Any]] = []
        for row in pending:
            ca = cas[row.authority_id]
            try:
                certificate = self._sign_one(row, ca, now)
            except CertsmithError as error:  # the CA changed since the request was accepted: a final answer
                failed.append({"row_id": row.id, "message": error.message})
                told.append(self._outbox.values(pca_events.issuance(ca.arn, row.serial_hex, now, error.message),
                                                ca.account_id, ca.region, now))
                continue
            except Exception as error:  # noqa: BLE001 - unexpected: the worker retries this one with backoff
                results[index_of[(row.authority_id, row.serial_hex)]] = f"{type(error).__name__}: {error}"
                continue
            issued.append({"row_id": row.id, "certificate_pem": pem(certificate),
                           "subject": certificate.subject.rfc4514_string(), "nb": certificate.not_valid_before_utc,
                           "na": certificate.not_valid_after_utc, "issued_at": now})
            told.append(self._outbox.values(pca_events.issuance(ca.arn, row.serial_hex, now), ca.account_id, ca.region,
                                            now))
        with self._db.transaction() as session:
            self._db.bulk.execute(session.connection(), _STORE_ISSUED, issued)
            self._db.bulk.execute(session.connection(), _STORE_FAILED, failed)
            self._db.bulk.insert(session.connection(), _OUTBOX, told, ids=False)
            self._jobs.complete(session, [job.id for job, error in zip(jobs, results, strict=True) if error is None])
        return results

    def _sign_one(self, row: Row[Any, Any, Any, Any, Any], ca: AuthorityRow, now: datetime) -> x509.Certificate:
        request = row.request
        template = template_for_arn(row.template_arn)
        csr = x509.load_pem_x509_csr(request["csr"].encode())
        self_issuing = template.kind is TemplateKind.ROOT
        check_can_issue(reported_status(AuthorityStatus(ca.status), ca.not_after, now), self_issuing_root=self_issuing)
        if ca.sealed_key is None:
            raise InvalidStateError("the CA has no key", field="CertificateAuthorityArn")
        if self_issuing:
            issuer = IssuerContext(self._vault.open_private_key(ca.sealed_key, ca.arn), csr.subject, None, None, None)
        else:
            issuer = self._issuer(ca)
        return sign_certificate(
            csr=csr, template=template, passthrough=passthrough_from_document(request["api_passthrough"]),
            issuer=issuer, serial=int(row.serial_hex, 16),
            not_before=datetime.fromisoformat(request["not_before"]),
            not_after=datetime.fromisoformat(request["not_after"]),
            signing_algorithm=SigningAlgorithm(request["signing_algorithm"]))

    def _issuer(self, ca: AuthorityRow) -> IssuerContext:
        """The CA's signing context, kept between batches until its certificate or revocation settings change."""
        assert ca.certificate_pem is not None and ca.sealed_key is not None
        version = (ca.certificate_pem, ca.revocation)
        kept = self._issuers.get(ca.id)
        if kept is not None and kept[0] == version:
            return kept[1]
        settings = revocation_from_json(ca.revocation)
        ca_certificate = x509.load_pem_x509_certificate(ca.certificate_pem.encode())
        issuer = IssuerContext(self._vault.open_private_key(ca.sealed_key, ca.arn), ca_certificate.subject,
                               ca_certificate, settings.crl_url(self._public_url, ca.id),
                               settings.ocsp_url(self._public_url, ca.id))
        self._issuers[ca.id] = (version, issuer)
        return issuer

    def sign_now(self, caller: Caller, authority_arn: str, csr: x509.CertificateSigningRequest,
                 validity: Validity) -> SignedCertificate:
        """Sign at once with the CA's end-entity template, for a service that asks the CA from a job (ACM).

        The certificate is recorded as issued by the CA like any other (CRL, OCSP, audit reports).
        Raises the CA's errors: ResourceNotFound, InvalidState, InvalidArgs (family, validity).
        """
        now = self._clock.now()
        with self._db.read() as session:
            ca = load_authority(session, caller, authority_arn, now)
        check_can_issue(reported_status(AuthorityStatus(ca.status), ca.not_after, now), self_issuing_root=False)
        key_algorithm = key_algorithm_of(csr.public_key())
        assert key_algorithm is not None
        if key_algorithm.family != KeyAlgorithm(ca.key_algorithm).family:
            raise InvalidArgsError(f"the CA's key is {ca.key_algorithm}; it signs {KeyAlgorithm(ca.key_algorithm).family} "
                                   f"requests, not {key_algorithm.value}", field="KeyAlgorithm")
        not_before, not_after = issuance_window(now, validity, None, ca.not_after,
                                                ca.usage_mode == UsageMode.SHORT_LIVED_CERTIFICATE)
        template = template_for_arn(None)
        serial = new_serial()
        certificate = sign_certificate(
            csr=csr, template=template, passthrough=passthrough_from_document(None), issuer=self._issuer(ca),
            serial=serial, not_before=not_before, not_after=not_after,
            signing_algorithm=SigningAlgorithm(ca.configuration["SigningAlgorithm"]))
        certificate_pem = pem(certificate)
        with self._db.transaction() as session:
            session.execute(_INSERT_ISSUED, {
                "authority_id": ca.id, "serial_hex": format(serial, "x"), "status": ISSUED, "template_arn": template.arn,
                "request": {"csr": csr.public_bytes(serialization.Encoding.PEM).decode("ascii")},
                "certificate_pem": certificate_pem, "subject": certificate.subject.rfc4514_string(),
                "not_before": not_before, "not_after": not_after, "issued_at": now, "created_at": now,
                "idempotency_token": None, "requested_by": None})
            self._db.bulk.insert(session.connection(), _OUTBOX, [self._outbox.values(
                pca_events.issuance(ca.arn, format(serial, "x"), now), ca.account_id, ca.region, now)], ids=False)
        return SignedCertificate(certificate, certificate_pem, (ca.certificate_pem or "") + (ca.chain_pem or ""))

    def mark_failed(self, payload: dict[str, Any], error: str) -> None:
        now = self._clock.now()
        with self._db.transaction() as session:
            cert = session.scalars(select(IssuedCertificateRow).where(
                IssuedCertificateRow.authority_id == payload["authority_id"],
                IssuedCertificateRow.serial_hex == payload["serial_hex"])).first()
            if cert is not None and cert.status == PENDING:
                cert.status, cert.failure_message = FAILED, error
                ca = session.get(AuthorityRow, cert.authority_id)
                if ca is not None:
                    self._outbox.add(session, ca.account_id, ca.region, pca_events.issuance(
                        ca.arn, cert.serial_hex, now, f"Failed to issue the certificate: {error}"), now)

    def _load_issued(self, caller: Caller, authority_arn: str, certificate_arn: str) -> tuple[AuthorityRow,
                                                                                           IssuedCertificateRow]:
        parsed = IssuedCertificateArn.parse(certificate_arn)
        with self._db.read() as session:
            ca = load_authority(session, caller, authority_arn, self._clock.now())
            if str(parsed.authority) != ca.arn:
                raise InvalidArnError("CertificateArn was not issued by CertificateAuthorityArn", field="CertificateArn")
            cert = session.scalars(select(IssuedCertificateRow).where(
                IssuedCertificateRow.authority_id == ca.id,
                IssuedCertificateRow.serial_hex == parse_serial(parsed.serial_hex, "CertificateArn"))).first()
            if cert is None:
                raise ResourceNotFoundError(f"certificate {certificate_arn} was not found", arn=certificate_arn)
            return ca, cert

    def get(self, caller: Caller, authority_arn: str, certificate_arn: str) -> tuple[str, str | None]:
        ca, cert = self._load_issued(caller, authority_arn, certificate_arn)
        if cert.status == PENDING:
            raise RequestInProgressError("the certificate is still being issued; try again shortly",
                                         arn=certificate_arn)
        if cert.status == FAILED or cert.certificate_pem is None:
            raise RequestFailedError(f"issuing the certificate failed: {cert.failure_message or 'unknown error'}",
                                     arn=certificate_arn)
        if template_for_arn(cert.template_arn).kind is TemplateKind.ROOT:
            return cert.certificate_pem, None
        chain = (ca.certificate_pem or "") + (ca.chain_pem or "")
        return cert.certificate_pem, chain or None

    def revoke(self, caller: Caller, authority_arn: str, serial: str, reason: RevocationReason) -> None:
        serial_hex = parse_serial(serial)
        now = self._clock.now()
        with self._db.transaction() as session:
            ca = load_authority(session, caller, authority_arn, now, for_update=True)
            status = reported_status(AuthorityStatus(ca.status), ca.not_after, now)
            check_can_revoke(status)
            if ca.serial == serial_hex:
                raise InvalidRequestError("the CA's own certificate cannot be revoked by itself",
                                          field="CertificateSerial")
            cert = session.scalars(select(IssuedCertificateRow).where(
                IssuedCertificateRow.authority_id == ca.id, IssuedCertificateRow.serial_hex == serial_hex)).first()
            if cert is None or cert.status != ISSUED:
                raise ResourceNotFoundError(f"the CA issued no certificate with serial {serial}",
                                            field="CertificateSerial")
            if cert.revoked_at is not None:
                raise RequestAlreadyProcessedError(f"certificate {serial} is already revoked",
                                                   field="CertificateSerial")
            if template_for_arn(cert.template_arn).kind is TemplateKind.ROOT:
                raise InvalidRequestError("a root CA's self-signed certificate cannot be revoked",
                                          field="CertificateSerial")
            if cert.not_after is not None and cert.not_after <= now:
                raise InvalidRequestError(f"certificate {serial} has expired and cannot be revoked",
                                          field="CertificateSerial")
            cert.revoked_at, cert.revocation_reason = now.replace(microsecond=0), reason.value
            self._outbox.add(session, ca.account_id, ca.region, pca_events.revocation(ca.arn, serial_hex, now), now)
            queued = queue_crl_refresh(session, self._jobs, ca, now)  # the serial is on the next CRL at once
        if queued:
            self._signal.notify()
