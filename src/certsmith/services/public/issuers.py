"""Issuers of public certificates: ACME CAs (their accounts registered once, keys sealed) and private CAs."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ...acme import (
    AcmeAccount,
    AcmeEndpoint,
    AcmeError,
    AcmeProblem,
    AcmeSession,
    directory_meta,
    generate_account_key,
    register_account,
)
from ...domain.arns import partition_of
from ...domain.authority import AuthorityStatus
from ...domain.clock import Clock
from ...domain.errors import ConflictError, ResourceInUseError, ResourceNotFoundError, ValidationError
from ...store.database import Database
from ...store.tables import CertificateRow, IssuerRow
from ..context import Caller
from ..pca.lookup import decode_token, encode_token, load_authority
from ..ports import SecretSealer
from .dns_providers import DnsProviderService

__all__ = ["ACME", "PRIVATE_CA", "IssuerRecord", "IssuerService", "IssuerSpec"]

ACME, PRIVATE_CA = "ACME", "PRIVATE_CA"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PENDING = ("PENDING_VALIDATION",)


@dataclass(frozen=True, slots=True)
class IssuerSpec:
    name: str
    directory_url: str | None = None
    contact_email: str | None = None
    eab_key_id: str | None = None
    eab_hmac_key: str | None = None
    ca_bundle_pem: str | None = None
    authority_arn: str | None = None
    caa_identities: tuple[str, ...] | None = None
    default: bool = False
    dns_provider: str | None = None  # answer DNS-01 with TXT records through this provider (no delegation)


@dataclass(frozen=True, slots=True)
class IssuerRecord:
    name: str
    arn: str
    type: str
    directory_url: str | None
    contact_email: str | None
    eab_key_id: str | None
    has_ca_bundle: bool
    authority_arn: str | None
    caa_identities: list[str]
    is_default: bool
    account_url: str | None
    dns_provider: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: IssuerRow) -> IssuerRecord:
        return cls(row.name, row.arn, row.type, row.directory_url, row.contact_email, row.eab_key_id,
                   row.ca_bundle_pem is not None, row.authority_arn, list(row.caa_identities), row.is_default,
                   row.account_url, row.dns_provider, row.created_at, row.updated_at)


def _check_spec(spec: IssuerSpec) -> None:
    if (spec.directory_url is None) == (spec.authority_arn is None):
        raise ValidationError("an issuer is an ACME CA (AcmeDirectoryUrl) or a certsmith private CA "
                              "(CertificateAuthorityArn): give exactly one", field="AcmeDirectoryUrl")
    if spec.directory_url is not None and not re.match(r"^https?://[^\s/]+", spec.directory_url):
        raise ValidationError(f"AcmeDirectoryUrl {spec.directory_url!r} is not an http(s) URL", field="AcmeDirectoryUrl")
    _check_contact(spec.contact_email)
    if spec.authority_arn is not None:
        for field, value in (("AcmeDirectoryUrl", spec.directory_url), ("ExternalAccountBinding", spec.eab_key_id),
                             ("CaBundle", spec.ca_bundle_pem)):
            if value is not None:
                raise ValidationError(f"{field} is for ACME issuers; a private-CA issuer takes CertificateAuthorityArn "
                                      "only", field=field)
    if spec.ca_bundle_pem is not None and "-----BEGIN CERTIFICATE-----" not in spec.ca_bundle_pem:
        raise ValidationError("CaBundle must hold PEM certificates (-----BEGIN CERTIFICATE-----)", field="CaBundle")
    _check_identities(spec.caa_identities or ())


def _check_contact(email: str | None) -> None:
    if email is not None and not _EMAIL.match(email):
        raise ValidationError(f"ContactEmail {email!r} is not an email address", field="ContactEmail")


def _check_identities(identities: Sequence[str]) -> None:
    for identity in identities:
        if not re.match(r"^[A-Za-z0-9.-]+$", identity):
            raise ValidationError(f"CaaIdentities: {identity!r} is not a domain name", field="CaaIdentities")


class IssuerService:
    def __init__(self, database: Database, sealer: SecretSealer, clock: Clock, providers: DnsProviderService) -> None:
        self._db, self._sealer, self._clock, self._providers = database, sealer, clock, providers

    # -- create (talks to the ACME CA: run it off the event loop) ----------------------------------------------------
    def create(self, caller: Caller, spec: IssuerSpec) -> IssuerRecord:
        _check_spec(spec)
        now = self._clock.now()
        ident = uuid.uuid4().hex
        arn = f"arn:{partition_of(caller.region)}:certsmith:{caller.region}:{caller.account_id}:issuer/{spec.name}"
        row = IssuerRow(id=ident, arn=arn, account_id=caller.account_id, region=caller.region, name=spec.name,
                        type=ACME if spec.directory_url else PRIVATE_CA, directory_url=spec.directory_url,
                        contact_email=spec.contact_email, eab_key_id=spec.eab_key_id, ca_bundle_pem=spec.ca_bundle_pem,
                        authority_arn=spec.authority_arn, caa_identities=list(spec.caa_identities or ()),
                        is_default=spec.default, dns_provider=spec.dns_provider, created_at=now, updated_at=now)
        with self._db.read() as session:
            if self._find(session, caller, spec.name) is not None:
                raise ConflictError(f"an issuer named {spec.name!r} already exists", field="Name")
            if spec.dns_provider is not None:
                self._check_direct(caller, row.type, spec.dns_provider)
            if spec.authority_arn is not None:
                authority = load_authority(session, caller, spec.authority_arn, now)
                if authority.status != AuthorityStatus.ACTIVE:
                    raise ValidationError(f"CertificateAuthorityArn {spec.authority_arn} is {authority.status}; an "
                                          "issuer needs an ACTIVE CA", field="CertificateAuthorityArn")
        if row.type == ACME:
            self._register(row, spec)
        with self._db.transaction() as session:
            if not session.scalar(select(func.count()).select_from(IssuerRow).where(
                    IssuerRow.account_id == caller.account_id, IssuerRow.region == caller.region)):
                row.is_default = True  # the first issuer is the default
            elif row.is_default:
                self._clear_default(session, caller)
            session.add(row)
            try:
                session.flush()
            except IntegrityError:
                raise ConflictError(f"an issuer named {spec.name!r} already exists", field="Name") from None
        return IssuerRecord.of(row)

    def _register(self, row: IssuerRow, spec: IssuerSpec) -> None:
        """Register the ACME account now, so that a wrong URL, bundle or EAB key is said at once."""
        endpoint = AcmeEndpoint(row.directory_url or "", row.ca_bundle_pem)
        try:
            meta = directory_meta(endpoint)
            if meta.get("externalAccountRequired") and spec.eab_key_id is None:
                raise ValidationError(f"the ACME CA at {row.directory_url} requires External Account Binding: give "
                                      "ExternalAccountBinding (--eab-kid and --eab-hmac-key)", field="ExternalAccountBinding")
            key_pem = generate_account_key()
            account = register_account(endpoint, key_pem, spec.contact_email, spec.eab_key_id, spec.eab_hmac_key)
        except AcmeProblem as problem:
            raise ValidationError(f"the ACME CA at {row.directory_url} refused the account: {problem.detail} "
                                  f"({problem.type})", field="AcmeDirectoryUrl") from None
        except AcmeError as error:
            raise ValidationError(f"cannot register with the ACME CA at {row.directory_url}: {error}",
                                  field="AcmeDirectoryUrl") from None
        except ValueError as error:
            raise ValidationError(str(error), field="ExternalAccountBinding") from None
        if not row.caa_identities:
            row.caa_identities = [str(i) for i in meta.get("caaIdentities") or ()]
        row.account_url = account.uri
        row.sealed_account_key = self._sealer.seal(account.key_pem, row.arn)
        if spec.eab_hmac_key is not None:
            row.sealed_eab_key = self._sealer.seal(spec.eab_hmac_key.encode(), row.arn)

    # -- read -----------------------------------------------------------------------------------------------------
    @staticmethod
    def _find(session: Session, caller: Caller, name: str) -> IssuerRow | None:
        return session.scalars(select(IssuerRow).where(IssuerRow.account_id == caller.account_id,
                                                       IssuerRow.region == caller.region, IssuerRow.name == name)).first()

    def _load(self, session: Session, caller: Caller, name: str) -> IssuerRow:
        row = self._find(session, caller, name)
        if row is None:
            raise ResourceNotFoundError(f"issuer {name!r} was not found (certsmith issuer list shows the issuers)")
        return row

    def describe(self, caller: Caller, name: str) -> IssuerRecord:
        with self._db.read() as session:
            return IssuerRecord.of(self._load(session, caller, name))

    def page(self, caller: Caller, max_results: int | None, token: str | None) -> tuple[list[IssuerRecord], str | None]:
        offset, limit = decode_token(token), max_results or 100
        with self._db.read() as session:
            rows = list(session.scalars(select(IssuerRow).where(
                IssuerRow.account_id == caller.account_id, IssuerRow.region == caller.region)
                .order_by(IssuerRow.is_default.desc(), IssuerRow.name).offset(offset).limit(limit + 1)))
        more = encode_token(offset + limit) if len(rows) > limit else None
        return [IssuerRecord.of(row) for row in rows[:limit]], more

    def choose(self, caller: Caller, name: str | None) -> IssuerRow:
        """The named issuer, or the default one; ValidationError that says how to add one when there is none."""
        with self._db.read() as session:
            if name is not None:
                row = self._find(session, caller, name)
                if row is None:
                    raise ValidationError(f"issuer {name!r} was not found (certsmith issuer list shows the issuers)",
                                          field="Issuer")
                return row
            row = session.scalars(select(IssuerRow).where(
                IssuerRow.account_id == caller.account_id, IssuerRow.region == caller.region,
                IssuerRow.is_default.is_(True))).first()
        if row is None:
            raise ValidationError(
                "a public certificate (no CertificateAuthorityArn) comes from an issuer, and this account has none: "
                "add one with `certsmith issuer add NAME --acme-directory URL --email ADDR` (an ACME CA) or "
                "`certsmith issuer add NAME --private-ca ARN`, or give CertificateAuthorityArn for a private "
                "certificate", field="CertificateAuthorityArn")
        return row

    def by_name(self, account_id: str, region: str, name: str | None) -> IssuerRow | None:
        """An issuer as the worker needs it (no caller: the certificate names its account and region)."""
        if name is None:
            return None
        with self._db.read() as session:
            return self._find(session, Caller(account_id, region, "worker"), name)

    # -- change ---------------------------------------------------------------------------------------------------
    def _check_direct(self, caller: Caller, kind: str, provider: str) -> None:
        if kind != ACME:
            raise ValidationError("DnsProvider: direct DNS validation answers an ACME CA's DNS-01 challenge; a "
                                  "private-CA issuer checks the delegation CNAME, HTTP or email instead",
                                  field="DnsProvider")
        self._providers.exists(caller, provider, "DnsProvider")

    def update(self, caller: Caller, name: str, default: bool | None, contact_email: str | None,
               caa_identities: list[str] | None, dns_provider: str | None = None) -> IssuerRecord:
        """Change what is given; ``dns_provider`` "" goes back to the validation zone's delegation."""
        _check_contact(contact_email)
        _check_identities(caa_identities or ())
        with self._db.transaction() as session:
            row = self._load(session, caller, name)
            if dns_provider:
                self._check_direct(caller, row.type, dns_provider)
            if dns_provider is not None:
                row.dns_provider = dns_provider or None
            if default is True and not row.is_default:
                self._clear_default(session, caller)
                row.is_default = True
            elif default is False and row.is_default:
                raise ValidationError("an account's default issuer stays the default until another one is made the "
                                      "default (UpdateIssuer Default=true on that one)", field="Default")
            if contact_email is not None:
                row.contact_email = contact_email
            if caa_identities is not None:
                row.caa_identities = list(caa_identities)
            row.updated_at = self._clock.now()
            return IssuerRecord.of(row)

    def delete(self, caller: Caller, name: str) -> None:
        with self._db.transaction() as session:
            row = self._load(session, caller, name)
            pending = session.scalar(select(func.count()).select_from(CertificateRow).where(
                CertificateRow.account_id == caller.account_id, CertificateRow.region == caller.region,
                CertificateRow.issuer_name == name, CertificateRow.status.in_(_PENDING)))
            if pending:
                raise ResourceInUseError(f"issuer {name!r} has {pending} pending certificate request(s); delete them "
                                         "or wait until they are issued", arn=row.arn)
            session.delete(row)
            if row.is_default:  # the oldest remaining issuer becomes the default
                session.flush()
                successor = session.scalars(select(IssuerRow).where(
                    IssuerRow.account_id == caller.account_id, IssuerRow.region == caller.region)
                    .order_by(IssuerRow.created_at)).first()
                if successor is not None:
                    successor.is_default = True

    @staticmethod
    def _clear_default(session: Session, caller: Caller) -> None:
        session.execute(update(IssuerRow).where(IssuerRow.account_id == caller.account_id,
                                                IssuerRow.region == caller.region).values(is_default=False))

    # -- ACME sessions (worker) -----------------------------------------------------------------------------------
    def endpoint(self, row: IssuerRow) -> AcmeEndpoint:
        return AcmeEndpoint(row.directory_url or "", row.ca_bundle_pem)

    def session(self, row: IssuerRow) -> AcmeSession:
        assert row.sealed_account_key is not None and row.account_url is not None
        account = AcmeAccount(row.account_url, self._sealer.open(row.sealed_account_key, row.arn))
        return AcmeSession(self.endpoint(row), account)

    def reregister(self, row: IssuerRow) -> IssuerRow:
        """Register the issuer's key again (the CA forgot the account, as a restarted test CA does)."""
        assert row.sealed_account_key is not None
        key_pem = self._sealer.open(row.sealed_account_key, row.arn)
        eab = self._sealer.open(row.sealed_eab_key, row.arn).decode() if row.sealed_eab_key else None
        account = register_account(self.endpoint(row), key_pem, row.contact_email, row.eab_key_id, eab)
        with self._db.transaction() as session:
            current = session.get(IssuerRow, row.id)
            if current is not None:
                current.account_url, current.updated_at = account.uri, self._clock.now()
                row = current
        return row

