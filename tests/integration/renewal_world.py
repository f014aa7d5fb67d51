"""Helpers for renewal tests on the ``world`` container: certificates made for the case, time steps, database reads."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy import func, select

from certsmith.domain.algorithms import SigningAlgorithm
from certsmith.domain.authority import AuthorityType, RevocationSettings, UsageMode
from certsmith.domain.clock import FixedClock
from certsmith.domain.import_check import Bundle
from certsmith.domain.validity import Validity, ValidityPeriodType
from certsmith.services.acm.certificate_lifecycle import RENEW_JOB
from certsmith.services.acm.certificates import RequestedCertificate
from certsmith.services.context import Caller
from certsmith.services.pca.issuance import IssueRequest
from certsmith.services.renewal.scheduler import RENEWAL_CHECK_JOB
from certsmith.services.wiring import Container
from certsmith.store.jobs import READY
from certsmith.store.renewal_tables import CertificateVersionRow, EventOutboxRow
from certsmith.store.tables import CertificateRow, JobRow
from certsmith.worker.loop import Worker

from .ca_world import drain, issue

__all__ = ["DAY", "certificate", "events", "imported_bundle", "make_rsa_root", "renewal_jobs", "request_private",
           "run_until", "step", "versions"]

DAY = timedelta(days=1)
RSA_CONFIG = {"KeyAlgorithm": "RSA_2048", "SigningAlgorithm": "SHA256WITHRSA", "Subject": {"CommonName": "RSA root"}}


def make_rsa_root(container: Container, caller: Caller, years: int = 5) -> str:
    """An active RSA root CA (a CA signs requests of its own key family only: RSA keys need an RSA CA)."""
    arn = container.authorities.create(caller, authority_type=AuthorityType.ROOT, configuration=RSA_CONFIG,
                                       revocation=RevocationSettings(), usage_mode=UsageMode.GENERAL_PURPOSE,
                                       key_storage_standard="FIPS_140_2_LEVEL_3_OR_HIGHER", idempotency_token=None,
                                       tags=[])
    drain(container)
    csr = container.authorities.csr(caller, arn).encode()
    cert_arn = issue(container, caller, IssueRequest(
        arn, csr, SigningAlgorithm.SHA256WITHRSA, Validity(years, ValidityPeriodType.YEARS),
        template_arn="arn:aws:acm-pca:::template/RootCACertificate/V1"))
    drain(container)
    certificate, _ = container.issuance.get(caller, arn, cert_arn)
    container.authorities.import_certificate(caller, arn, certificate.encode(), None)
    return arn


def request_private(container: Container, caller: Caller, authority_arn: str, name: str, *,
                    key_algorithm: str = "EC_prime256v1", tags: Sequence[dict[str, str]] = ()) -> str:
    """RequestCertificate for a private certificate of ``authority_arn``; its issue job (RSA keys) runs later."""
    return container.certificates.request(caller, RequestedCertificate(
        name, [], authority_arn, key_algorithm, None, {}, [dict(t) for t in tags]))


def imported_bundle(name: str, not_before: datetime, not_after: datetime) -> Bundle:
    """A self-signed server certificate with its key, for ImportCertificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after)
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                   .sign(key, hashes.SHA256()))
    return Bundle(certificate.public_bytes(serialization.Encoding.PEM),
                  key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))


def step(container: Container, clock: FixedClock, worker: Worker, delta: timedelta) -> None:
    """Move time on by ``delta``, run both sweeps, and run jobs until none is due."""
    clock.advance(delta)
    container.scheduler.sweep()
    container.notices.sweep()
    while worker.run_once():
        pass


def next_due(container: Container, after: datetime) -> datetime | None:
    """The first moment at or after ``after`` at which a job, a planned renewal or an expiry notice falls due."""
    with container.database.read() as session:
        moments = [
            session.scalar(select(func.min(JobRow.run_after)).where(JobRow.state == READY, JobRow.run_after >= after)),
            session.scalar(select(func.min(CertificateRow.next_renewal_at)).where(CertificateRow.next_renewal_at >= after)),
            session.scalar(select(func.min(CertificateRow.next_notice_at)).where(CertificateRow.next_notice_at >= after)),
        ]
    return min((m for m in moments if m is not None), default=None)


def run_until(container: Container, clock: FixedClock, worker: Worker, until: datetime, *,
              most: timedelta = timedelta(days=30)) -> None:
    """Step from one due moment to the next (at most ``most`` at a time) until ``until``, as a worker whose sweeps
    run often would: what a job made due at once (a notice after a failed renewal) is swept at once."""
    again = 0  # sweeps in a row without moving time
    while clock.now() < until:
        now = clock.now()
        due = next_due(container, now if again < 3 else now + timedelta(microseconds=1))
        if due == now:
            again += 1
            step(container, clock, worker, timedelta(0))
            continue
        again = 0
        step(container, clock, worker, min(due or until, until, now + most) - now)


def certificate(container: Container, arn: str) -> CertificateRow:
    with container.database.read() as session:
        row = session.scalar(select(CertificateRow).where(CertificateRow.arn == arn))
    assert row is not None, arn
    return row


def versions(container: Container, arn: str) -> list[CertificateVersionRow]:
    with container.database.read() as session:
        return list(session.scalars(select(CertificateVersionRow).join(
            CertificateRow, CertificateRow.id == CertificateVersionRow.certificate_id)
            .where(CertificateRow.arn == arn).order_by(CertificateVersionRow.version)))


def events(container: Container, detail_type: str | None = None, arn: str | None = None) -> list[EventOutboxRow]:
    """Events from the outbox, oldest first; only one detail-type, one certificate's, when given."""
    query = select(EventOutboxRow).order_by(EventOutboxRow.id)
    if detail_type is not None:
        query = query.where(EventOutboxRow.detail_type == detail_type)
    with container.database.read() as session:
        rows = list(session.scalars(query))
    return [row for row in rows if arn is None or list(row.resources) == [arn]]


def renewal_jobs(container: Container, certificate_id: str) -> list[JobRow]:
    """The renewal jobs (scheduled checks and RenewCertificate's) still queued for one certificate."""
    with container.database.read() as session:
        rows = list(session.scalars(select(JobRow).where(JobRow.kind.in_((RENEWAL_CHECK_JOB, RENEW_JOB)))
                                    .order_by(JobRow.id)))
    return [row for row in rows if (row.payload or {}).get("certificate_id") == certificate_id]
