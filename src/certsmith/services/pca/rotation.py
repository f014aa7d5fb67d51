"""CA rotation: a replacement CA with the same settings and a new key, signed where the old one was."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from cryptography import x509
from sqlalchemy import select
from sqlalchemy.orm import Session

from ...domain.algorithms import SigningAlgorithm
from ...domain.authority import AuthorityStatus, AuthorityType, UsageMode, reported_status
from ...domain.clock import Clock
from ...domain.errors import CertsmithError, InvalidStateError, RequestInProgressError
from ...domain.issuance import verify_signed_by
from ...domain.templates import DEFAULT_TEMPLATE_ARN, TEMPLATES, TemplateKind, template_for_arn
from ...domain.validity import DEFAULT_BACKDATE, Validity, ValidityPeriodType
from ...store.database import Database
from ...store.tables import AuthorityRow, IssuedCertificateRow
from ..context import Caller
from .authorities import AuthorityService
from .issuance import IssuanceService, IssueRequest
from .lookup import load_authority
from .records import revocation_from_json

__all__ = ["RotationResult", "RotationService"]

_T = TypeVar("_T")
_ROOT_TEMPLATE = TEMPLATES["RootCACertificate"].arn
_ROTATABLE = (AuthorityStatus.ACTIVE, AuthorityStatus.DISABLED, AuthorityStatus.EXPIRED)


@dataclass(frozen=True, slots=True)
class RotationResult:
    """The replacement CA: ACTIVE, or PENDING_CERTIFICATE when its parent is outside certsmith (sign ``csr`` there)."""

    old_arn: str
    arn: str
    status: str
    parent_arn: str | None
    csr: str | None


@dataclass(frozen=True, slots=True)
class _Plan:
    """What the old CA says about its replacement, read before anything is created."""

    old: AuthorityRow
    root: bool  # the new CA signs itself
    parent_arn: str | None  # a subordinate's certsmith parent; None when the parent is outside certsmith
    template_arn: str
    api_passthrough: dict[str, Any] | None
    signing_algorithm: SigningAlgorithm
    length: timedelta
    ends_by: datetime | None  # the parent's expiry: a subordinate cannot outlive it


def _issued_row(session: Session, authority_id: str, serial: str | None) -> IssuedCertificateRow | None:
    if serial is None:
        return None
    return session.scalars(select(IssuedCertificateRow).where(
        IssuedCertificateRow.authority_id == authority_id, IssuedCertificateRow.serial_hex == serial,
        IssuedCertificateRow.status == "ISSUED")).first()


def _path_length(certificate: x509.Certificate) -> int | None:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length
    except x509.ExtensionNotFound:
        return None


class RotationService:
    def __init__(self, database: Database, clock: Clock, authorities: AuthorityService, issuance: IssuanceService,
                 *, wait_seconds: float = 25.0) -> None:
        self._db, self._clock, self._authorities, self._issuance = database, clock, authorities, issuance
        self._wait_seconds = wait_seconds

    async def rotate(self, caller: Caller, arn: str) -> RotationResult:
        """Create the replacement of CA ``arn`` and, when certsmith can sign it, install its certificate.

        The replacement has the old CA's type, subject, key and signing algorithms, revocation settings, usage mode
        and tags, and a new key. A root signs itself; a subordinate is signed by the same parent (same template,
        same validity length, ending with the parent at the latest) when that parent is a certsmith CA of the
        account. The certificate is issued through the parent's own issuance, so it is on the parent's records.
        """
        plan = self._plan(caller, arn)
        old = plan.old
        new_arn = self._authorities.create(
            caller, authority_type=AuthorityType(old.type), configuration=dict(old.configuration),
            revocation=revocation_from_json(old.revocation), usage_mode=UsageMode(old.usage_mode),
            key_storage_standard=old.key_storage_standard, idempotency_token=None, tags=list(old.tags))
        issuer_arn = new_arn if plan.root else plan.parent_arn
        try:
            csr = await self._when_ready(lambda: self._authorities.csr(caller, new_arn), "its key and CSR")
            if issuer_arn is None:
                return RotationResult(arn, new_arn, AuthorityStatus.PENDING_CERTIFICATE.value, None, csr)
            await self._install(caller, plan, new_arn, issuer_arn, csr)
        except CertsmithError as error:
            raise type(error)(f"the new CA {new_arn} was created but is not active: {error.message}",
                              field=error.field, arn=new_arn) from None
        return RotationResult(arn, new_arn, AuthorityStatus.ACTIVE.value, plan.parent_arn, None)

    # -- the plan ---------------------------------------------------------------------------------------------------
    def _plan(self, caller: Caller, arn: str) -> _Plan:
        now = self._clock.now()
        with self._db.read() as session:
            old = load_authority(session, caller, arn, now)
            status = reported_status(AuthorityStatus(old.status), old.not_after, now)
            if status not in _ROTATABLE or old.certificate_pem is None:
                raise InvalidStateError(f"the CA is {status.value}; only a CA with a certificate installed (ACTIVE, "
                                        "DISABLED or EXPIRED) can be rotated", field="CertificateAuthorityArn")
            certificate = x509.load_pem_x509_certificate(old.certificate_pem.encode())
            length = certificate.not_valid_after_utc - certificate.not_valid_before_utc
            if old.type == AuthorityType.ROOT:
                issued = _issued_row(session, old.id, old.serial)
                template = issued.template_arn if issued is not None and \
                    template_for_arn(issued.template_arn).kind is TemplateKind.ROOT else _ROOT_TEMPLATE
                return _Plan(old, True, None, template, self._passthrough(issued, template),
                             SigningAlgorithm(old.configuration["SigningAlgorithm"]), length, None)
            parent, issued = self._parent(session, caller, old, certificate)
            if parent is None:
                return _Plan(old, False, None, DEFAULT_TEMPLATE_ARN, None,
                             SigningAlgorithm(old.configuration["SigningAlgorithm"]), length, None)
            parent_status = reported_status(AuthorityStatus(parent.status), parent.not_after, now)
            if parent_status is not AuthorityStatus.ACTIVE:
                raise InvalidStateError(f"the parent CA {parent.arn} is {parent_status.value}; it signs the new CA only "
                                        "when ACTIVE (enable it, or rotate it first)", field="CertificateAuthorityArn")
            template = self._subordinate_template(issued, certificate)
            return _Plan(old, False, parent.arn, template, self._passthrough(issued, template),
                         SigningAlgorithm(parent.configuration["SigningAlgorithm"]), length, parent.not_after)

    @staticmethod
    def _parent(session: Session, caller: Caller, old: AuthorityRow,
                certificate: x509.Certificate) -> tuple[AuthorityRow | None, IssuedCertificateRow | None]:
        """The certsmith CA of the caller's account that signed ``old``'s certificate, and its record of it."""
        candidates = session.scalars(select(AuthorityRow).where(
            AuthorityRow.account_id == caller.account_id, AuthorityRow.region == caller.region,
            AuthorityRow.id != old.id, AuthorityRow.certificate_pem.is_not(None),
            AuthorityRow.status != AuthorityStatus.DELETED.value)).all()
        signers = [ca for ca in candidates if ca.certificate_pem is not None and verify_signed_by(
            certificate, x509.load_pem_x509_certificate(ca.certificate_pem.encode()))]
        for ca in signers:
            issued = _issued_row(session, ca.id, old.serial)
            if issued is not None:
                return ca, issued
        return (signers[0], None) if signers else (None, None)

    @staticmethod
    def _subordinate_template(issued: IssuedCertificateRow | None, certificate: x509.Certificate) -> str:
        """The template the parent used for the old CA; else the one of the old certificate's path length."""
        if issued is not None and template_for_arn(issued.template_arn).kind is TemplateKind.SUBORDINATE:
            return issued.template_arn
        length = _path_length(certificate)
        if length is None or length > 3:
            raise InvalidStateError("the CA's certificate has no path length certsmith's subordinate templates give "
                                    "(0 to 3), and its parent has no record of the template it used",
                                    field="CertificateAuthorityArn")
        return TEMPLATES[f"SubordinateCACertificate_PathLen{length}"].arn

    @staticmethod
    def _passthrough(issued: IssuedCertificateRow | None, template_arn: str) -> dict[str, Any] | None:
        if issued is None or issued.template_arn != template_arn:
            return None
        value = (issued.request or {}).get("api_passthrough")
        return dict(value) if isinstance(value, dict) else None

    # -- signing and installing -------------------------------------------------------------------------------------
    async def _install(self, caller: Caller, plan: _Plan, new_arn: str, issuer_arn: str, csr: str) -> None:
        # Backdated as issuance does by default, and as long as the old certificate from there.
        start = (self._clock.now() - DEFAULT_BACKDATE).replace(microsecond=0)
        end = start + plan.length
        if plan.ends_by is not None and end > plan.ends_by:
            end = plan.ends_by
        cert_arn = await self._issuance.issue(caller, IssueRequest(
            authority_arn=issuer_arn, csr=csr.encode(), signing_algorithm=plan.signing_algorithm,
            validity=Validity(int(end.timestamp()), ValidityPeriodType.ABSOLUTE),
            validity_not_before=Validity(int(start.timestamp()), ValidityPeriodType.ABSOLUTE),
            template_arn=plan.template_arn, api_passthrough=plan.api_passthrough))
        certificate, chain = await self._when_ready(lambda: self._issuance.get(caller, issuer_arn, cert_arn),
                                                    f"its certificate {cert_arn}")
        self._authorities.import_certificate(caller, new_arn, certificate.encode(),
                                             chain.encode() if chain and not plan.root else None)

    async def _when_ready(self, read: Callable[[], _T], what: str) -> _T:
        """What ``read`` returns once a worker has made it (the CA's key, a certificate), polled with a deadline."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait_seconds
        delay = 0.02
        while True:
            try:
                return read()
            except RequestInProgressError:
                if loop.time() >= deadline:
                    raise RequestInProgressError(
                        f"{what} was not ready within {self._wait_seconds:.0f} s (is a worker running?)") from None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)
