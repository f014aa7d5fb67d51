"""A CA re-issue run's certificates: which are live, each one signed again, recorded, and the old one revoked."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from cryptography import x509
from cryptography.x509.oid import ExtensionOID
from sqlalchemy import Select, and_, exists, func, insert, select, update
from sqlalchemy.orm import Session

from ...domain.acm import CertificateStatus, FailureReason
from ...domain.algorithms import KeyAlgorithm, SigningAlgorithm, check_family
from ...domain.authority import AuthorityStatus, check_can_revoke, reported_status
from ...domain.errors import CertsmithError, InvalidArgsError, ValidationError
from ...domain.issuance import IssuerContext, new_serial, pem, sign_with
from ...domain.revocation import RevocationReason
from ...domain.templates import TEMPLATES, TemplateKind
from ...store.tables import AuthorityRow, Base, CaReissueItemRow, CaReissueRow, CertificateRow, IssuedCertificateRow
from ..acm.private_signing import PrivateMaterial
from ..ports import KeyVault
from .records import revocation_from_json

__all__ = ["ACM", "DONE", "FAILED", "MAX_RATE", "PCA", "REVOKED", "RUNNING", "SUCCEEDED", "Cursor", "Outcome",
           "PcaCandidate", "VersionRecorder", "acm_live", "acm_outcome", "count", "format_rate", "issuer_context",
           "parse_rate", "pca_batch", "pca_live", "reissued_certificate", "revoke_sources", "serial_hex", "sign_pca",
           "store_pca"]

ACM, PCA = "ACM", "PCA"
DONE, FAILED, REVOKED = "DONE", "FAILED", "REVOKED"  # an item's states (FAILED is also a run's)
RUNNING, SUCCEEDED = "RUNNING", "SUCCEEDED"  # a run's states
MAX_RATE = 1000.0  # certificates a second
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|m|h)\s*$")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_ISSUED = Base.metadata.tables["issued_certificates"]
_INSERT_ISSUED = insert(_ISSUED)
_ROOT_TEMPLATES = sorted(t.arn for t in TEMPLATES.values() if t.kind is TemplateKind.ROOT)
# What the issuing CA owns in a certificate: never copied from the old one, always its own.
_ISSUER_OWNED = (ExtensionOID.AUTHORITY_KEY_IDENTIFIER, ExtensionOID.CRL_DISTRIBUTION_POINTS,
                 ExtensionOID.AUTHORITY_INFORMATION_ACCESS)


class VersionRecorder(Protocol):
    """Records a new version of an ACM certificate (managed renewal's recorder)."""

    def record(self, session: Session, row: CertificateRow, action: str, now: datetime) -> None: ...


def parse_rate(text: str) -> float:
    """``50/s``, ``10/m``, ``0.5/s`` or ``100/h`` → certificates a second; ValidationError (field Rate) otherwise."""
    match = _RATE.match(text)
    if match is None:
        raise ValidationError(f"Rate {text!r} is not a rate: give a number per second, minute or hour, such as 50/s, "
                              "10/m or 0.5/s", field="Rate")
    per_second = float(match.group(1)) / _UNITS[match.group(2)]
    if per_second <= 0:
        raise ValidationError(f"Rate {text!r} must be above zero", field="Rate")
    if per_second > MAX_RATE:
        raise ValidationError(f"Rate {text!r} is above the limit of {MAX_RATE:g}/s", field="Rate")
    return per_second


def format_rate(per_second: float) -> str:
    if per_second >= 1:
        return f"{per_second:g}/s"
    if per_second * 60 >= 1:
        return f"{round(per_second * 60, 6):g}/m"
    return f"{round(per_second * 3600, 6):g}/h"


def serial_hex(text: str) -> str:
    """A serial as issued_certificates keeps it: lowercase hex, no colons, no leading zeros."""
    return format(int(text.replace(":", ""), 16), "x")


@dataclass(slots=True)
class Cursor:
    """Where a run is: the phase (ACM certificates, then IssueCertificate ones) and the last row done in it."""

    phase: str = ACM
    acm_after: str = ""
    pca_after: int = 0
    pca_until: int = 0  # IssueCertificate rows of the source CA after this id came after the run started

    def dump(self) -> str:
        return json.dumps({"phase": self.phase, "acm": self.acm_after, "pca": self.pca_after, "until": self.pca_until})

    @classmethod
    def load(cls, text: str | None) -> Cursor:
        if not text:
            return cls()
        data = json.loads(text)
        return cls(data["phase"], data["acm"], int(data["pca"]), int(data["until"]))


def acm_live(run: CaReissueRow, now: datetime) -> Select[CertificateRow]:
    """ACM certificates of the run's source CA that are issued and unexpired, requested before the run."""
    return select(CertificateRow).where(
        CertificateRow.account_id == run.account_id, CertificateRow.region == run.region,
        CertificateRow.authority_arn == run.source_arn, CertificateRow.status == CertificateStatus.ISSUED.value,
        CertificateRow.not_after > now, CertificateRow.created_at <= run.created_at)


def pca_live(run: CaReissueRow, source: AuthorityRow, now: datetime) -> Select[Any]:
    """IssueCertificate certificates of the source CA: issued, not revoked, unexpired, not yet re-issued to the target.

    The CA's own self-signed certificate is not one (root templates), nor are the certificates ACM had the CA
    sign (their request records no signing algorithm: ACM re-issues those under their own ARN).
    """
    earlier = select(CaReissueItemRow.id).join(CaReissueRow, CaReissueRow.id == CaReissueItemRow.reissue_id).where(
        CaReissueRow.source_arn == run.source_arn, CaReissueRow.target_arn == run.target_arn,
        CaReissueItemRow.kind == PCA, CaReissueItemRow.source_serial == IssuedCertificateRow.serial_hex,
        CaReissueItemRow.state.in_((DONE, REVOKED)))
    return select(IssuedCertificateRow.id, IssuedCertificateRow.serial_hex, IssuedCertificateRow.template_arn,
                  IssuedCertificateRow.request, IssuedCertificateRow.certificate_pem,
                  IssuedCertificateRow.requested_by).where(
        IssuedCertificateRow.authority_id == source.id, IssuedCertificateRow.status == "ISSUED",
        IssuedCertificateRow.revoked_at.is_(None), IssuedCertificateRow.not_after > now,
        IssuedCertificateRow.template_arn.not_in(_ROOT_TEMPLATES),
        IssuedCertificateRow.request["signing_algorithm"].as_string().is_not(None),
        IssuedCertificateRow.serial_hex != (source.serial or ""), ~exists(earlier))


def count(session: Session, query: Select[Any]) -> int:
    return session.scalar(select(func.count()).select_from(query.subquery())) or 0


@dataclass(frozen=True, slots=True)
class PcaCandidate:
    id: int
    serial_hex: str
    template_arn: str
    request: dict[str, Any]
    certificate_pem: str
    requested_by: str | None


def pca_batch(session: Session, run: CaReissueRow, source: AuthorityRow, cursor: Cursor, now: datetime,
              limit: int) -> list[PcaCandidate]:
    rows = session.execute(pca_live(run, source, now).where(
        IssuedCertificateRow.id > cursor.pca_after, IssuedCertificateRow.id <= cursor.pca_until)
        .order_by(IssuedCertificateRow.id).limit(limit)).all()
    return [PcaCandidate(r.id, r.serial_hex, r.template_arn, dict(r.request), r.certificate_pem or "", r.requested_by)
            for r in rows]


def issuer_context(vault: KeyVault, target: AuthorityRow, public_url: str) -> IssuerContext:
    """The target CA's signing context, with the CRL and OCSP URLs it puts in what it signs."""
    assert target.certificate_pem is not None and target.sealed_key is not None
    settings = revocation_from_json(target.revocation)
    certificate = x509.load_pem_x509_certificate(target.certificate_pem.encode())
    return IssuerContext(vault.open_private_key(target.sealed_key, target.arn), certificate.subject, certificate,
                         settings.crl_url(public_url, target.id), settings.ocsp_url(public_url, target.id))


def _path_length(certificate: x509.Certificate) -> tuple[bool, int | None]:
    try:
        value = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False, None
    return value.ca, value.path_length


def reissued_certificate(old: x509.Certificate, issuer: IssuerContext, target: AuthorityRow, signing: str | None,
                         serial: int, now: datetime) -> x509.Certificate:
    """``old`` again, signed by the target: same key, subject and extensions, same validity length from now.

    It ends with the target CA's certificate at the latest. Raises InvalidArgsError when the target cannot sign it
    (a CA certificate whose path length the target's own does not leave room for).
    """
    assert issuer.certificate is not None
    is_ca, child_length = _path_length(old)
    _, limit = _path_length(issuer.certificate)
    if is_ca and limit is not None and (child_length is None or child_length >= limit):
        raise InvalidArgsError(f"it is a CA certificate with path length {child_length}; the target CA's path length "
                               f"{limit} allows at most {limit - 1} under it", field="TargetCertificateAuthorityArn")
    key_algorithm = KeyAlgorithm(target.key_algorithm)
    algorithm = SigningAlgorithm(signing) if signing else SigningAlgorithm(target.configuration["SigningAlgorithm"])
    if algorithm.family != key_algorithm.family:
        algorithm = SigningAlgorithm(target.configuration["SigningAlgorithm"])
    check_family(key_algorithm, algorithm)
    not_before = now.replace(microsecond=0)
    not_after = not_before + (old.not_valid_after_utc - old.not_valid_before_utc)
    if target.not_after is not None and not_after > target.not_after:
        not_after = target.not_after
    extensions = [ext for ext in old.extensions if ext.oid not in _ISSUER_OWNED]
    extensions += list(issuer.issuer_extensions)
    builder = (x509.CertificateBuilder(extensions=extensions).subject_name(old.subject).issuer_name(issuer.name)
               .public_key(old.public_key()).serial_number(serial)
               .not_valid_before(not_before).not_valid_after(not_after))
    try:
        return sign_with(builder, issuer.key, algorithm)
    except (ValueError, TypeError) as exc:
        raise InvalidArgsError(f"the certificate cannot be built again: {exc}",
                               field="TargetCertificateAuthorityArn") from None


@dataclass(frozen=True, slots=True)
class Outcome:
    """One certificate of a batch, re-issued (``material`` or ``certificate``) or not (``error``)."""

    kind: str
    source_serial: str
    certificate_arn: str | None
    row_id: str | int
    material: PrivateMaterial | None = None
    certificate: x509.Certificate | None = None
    candidate: PcaCandidate | None = None
    error: str | None = None


def sign_pca(candidate: PcaCandidate, issuer: IssuerContext, target: AuthorityRow, now: datetime) -> Outcome:
    serial = new_serial()
    arn = f"{target.arn}/certificate/{format(serial, 'x')}"
    try:
        old = x509.load_pem_x509_certificate(candidate.certificate_pem.encode())
        certificate = reissued_certificate(old, issuer, target, candidate.request.get("signing_algorithm"), serial, now)
    except CertsmithError as error:
        return Outcome(PCA, candidate.serial_hex, None, candidate.id, candidate=candidate, error=error.message)
    except ValueError as error:
        return Outcome(PCA, candidate.serial_hex, None, candidate.id, candidate=candidate,
                       error=f"its certificate cannot be read: {error}")
    return Outcome(PCA, candidate.serial_hex, arn, candidate.id, certificate=certificate, candidate=candidate)


def acm_outcome(row: CertificateRow, source_serial: str, result: PrivateMaterial | FailureReason) -> Outcome:
    if isinstance(result, FailureReason):
        return Outcome(ACM, source_serial, row.arn, row.id,
                       error=f"the target CA would not sign it ({result.value})")
    return Outcome(ACM, source_serial, row.arn, row.id, material=result)


def store_pca(session: Session, outcome: Outcome, run: CaReissueRow, target: AuthorityRow, now: datetime) -> str:
    """Record the re-issued certificate as one the target CA issued; returns its serial."""
    assert outcome.certificate is not None and outcome.candidate is not None
    certificate, old = outcome.certificate, outcome.candidate
    request = {"csr": old.request.get("csr"), "signing_algorithm": old.request.get("signing_algorithm"),
               "not_before": certificate.not_valid_before_utc.isoformat(),
               "not_after": certificate.not_valid_after_utc.isoformat(),
               "api_passthrough": old.request.get("api_passthrough"),
               "reissued_from": f"{run.source_arn}/certificate/{old.serial_hex}"}
    serial = format(certificate.serial_number, "x")
    session.execute(_INSERT_ISSUED, {
        "authority_id": target.id, "serial_hex": serial, "status": "ISSUED", "template_arn": old.template_arn,
        "request": request, "certificate_pem": pem(certificate), "subject": certificate.subject.rfc4514_string(),
        "not_before": certificate.not_valid_before_utc, "not_after": certificate.not_valid_after_utc,
        "issued_at": now, "created_at": now, "idempotency_token": None, "requested_by": old.requested_by})
    return serial


def revoke_sources(session: Session, source: AuthorityRow | None, serials: list[str], now: datetime) -> tuple[set[str],
                                                                                                             str | None]:
    """Revoke the old serials at the source CA (SUPERSEDED), as RevokeCertificate would; (revoked, why none were)."""
    if not serials:
        return set(), None
    if source is None:
        return set(), "the source CA is gone; the old certificate was not revoked"
    status = reported_status(AuthorityStatus(source.status), source.not_after, now)
    try:
        check_can_revoke(status)
    except CertsmithError:
        return set(), f"the source CA is {status.value}; the old certificate was not revoked"
    at = now.replace(microsecond=0)
    due = and_(IssuedCertificateRow.authority_id == source.id, IssuedCertificateRow.serial_hex.in_(serials),
               IssuedCertificateRow.status == "ISSUED", IssuedCertificateRow.revoked_at.is_(None),
               IssuedCertificateRow.not_after > now, IssuedCertificateRow.template_arn.not_in(_ROOT_TEMPLATES))
    revoked = set(session.scalars(select(IssuedCertificateRow.serial_hex).where(due)).all())
    if revoked:
        session.execute(update(IssuedCertificateRow).where(due).values(
            revoked_at=at, revocation_reason=RevocationReason.SUPERSEDED.value))
    return revoked, None
