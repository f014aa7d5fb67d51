"""RequestCertificate without a CA: a public certificate from an issuer, validated by DNS, HTTP or email."""

from __future__ import annotations

from typing import Any

from ...domain.acm import CertificateStatus, CertificateType
from ...domain.arns import CertificateArn
from ...domain.clock import Clock
from ...domain.errors import InvalidDomainValidationOptionsError, ValidationError
from ...domain.public_names import (
    approval_addresses,
    check_public_names,
    email_validation_domain,
    public_name_problem,
    validation_base,
)
from ...domain.tags import check_tags
from ...store.database import Database
from ...store.jobs import JobQueue
from ...store.tables import CertificateRow, IssuerRow
from ..acm.certificates import REQUEST_KEY_ALGORITHMS, RequestedCertificate, earlier_request, recent_request
from ..acm.private_signing import private_validity
from ..context import Caller
from ..ports import WorkSignal
from .challenges import ValidationRecords
from .dns_providers import DnsProviderService
from .http_validation import redirect_for
from .issuers import ACME, IssuerService
from .validation import VALIDATION_TIMEOUT

__all__ = ["EMAIL_JOB", "ISSUER_TAG", "PROVIDER_TAG", "VALIDATE_JOB", "PublicRequests", "check_validation_domain"]

VALIDATE_JOB = "public.validate"
EMAIL_JOB = "public.email"
ISSUER_TAG = "certsmith:issuer"  # a tag that picks the issuer from tools that speak only ACM's API
PROVIDER_TAG = "certsmith:dns-provider"  # answer DNS-01 with TXT records through this provider (no delegation)
METHODS = ("DNS", "HTTP", "EMAIL")


def _validation_domains(names: list[str], options: tuple[dict[str, str], ...], method: str) -> dict[str, str]:
    """ValidationDomain per name: the name itself (email: without ``*.``/``www.``) unless DomainValidationOptions
    names a superdomain of it."""
    chosen = {name: email_validation_domain(name) if method == "EMAIL" else name for name in names}
    for index, option in enumerate(options):
        field = f"DomainValidationOptions[{index}]"
        name, domain = str(option.get("DomainName", "")).lower(), str(option.get("ValidationDomain", "")).lower()
        if name not in chosen:
            raise InvalidDomainValidationOptionsError(f"{field}.DomainName {name!r} is not one of the certificate's "
                                                      "names", field=f"{field}.DomainName")
        check_validation_domain(name, domain, f"{field}.ValidationDomain")
        chosen[name] = domain
    return chosen


def check_validation_domain(name: str, domain: str, field: str) -> None:
    base = validation_base(name)
    if domain != name and domain != base and not base.endswith("." + domain):
        raise InvalidDomainValidationOptionsError(f"{field} {domain!r} must be {name!r} itself or a domain above it",
                                                  field=field)


def _tag(tags: list[dict[str, str]], key: str) -> str | None:
    return next((str(t.get("Value")) for t in tags if t.get("Key") == key), None)


class PublicRequests:
    def __init__(self, database: Database, jobs: JobQueue, clock: Clock, signal: WorkSignal, issuers: IssuerService,
                 records: ValidationRecords, providers: DnsProviderService, public_url: str, mail: bool) -> None:
        self._db, self._jobs, self._clock, self._signal = database, jobs, clock, signal
        self._issuers, self._records, self._providers = issuers, records, providers
        self._public_url, self._mail = public_url, mail

    def request(self, caller: Caller, request: RequestedCertificate) -> str:
        names = check_public_names(request.domain_name, request.subject_alternative_names)
        check_tags(request.tags)
        private_validity(request.tags)  # honoured when the issuer is a private CA
        method = request.validation_method or "DNS"
        if method not in METHODS:
            raise ValidationError(f"ValidationMethod {method!r} is not one of {', '.join(METHODS)}",
                                  field="ValidationMethod")
        if request.key_algorithm not in REQUEST_KEY_ALGORITHMS:
            raise ValidationError(f"KeyAlgorithm {request.key_algorithm} cannot be requested; use one of "
                                  f"{', '.join(REQUEST_KEY_ALGORITHMS)}", field="KeyAlgorithm")
        domains = _validation_domains(names, request.domain_validation_options, method)
        issuer = self._issuers.choose(caller, _tag(request.tags, ISSUER_TAG))
        direct = self._direct_provider(caller, request, method, issuer)
        self._check_method(method, names, issuer, direct)
        now = self._clock.now()
        token = request.idempotency_token
        existing = recent_request(self._db, caller, token, now)
        if existing is not None:
            return existing
        arn = CertificateArn.new(caller.region, caller.account_id)
        options = {"CertificateTransparencyLoggingPreference": "ENABLED", "Export": "DISABLED", **request.options}
        validations = [self._validation(caller, name, domains[name], method, direct) for name in names]
        row = CertificateRow(
            id=arn.certificate_id, arn=str(arn), account_id=caller.account_id, region=caller.region,
            type=CertificateType.AMAZON_ISSUED.value, status=CertificateStatus.PENDING_VALIDATION.value,
            domain_name=names[0], names=names, key_algorithm=request.key_algorithm, authority_arn=issuer.authority_arn,
            key_usages=[], extended_key_usages=[], options=options, export_option=options["Export"], exported=False,
            in_use_by=[], tags=request.tags, key_pair_origin="AWS_MANAGED", idempotency_token=token, created_at=now,
            issuer_name=issuer.name, validations=validations, acme={"direct": direct} if direct else {})
        problem = next((p for p in map(public_name_problem, names) if p is not None), None)
        if problem is not None:  # ACM answers with the ARN of a certificate that failed at once
            row.status, row.failure_reason = CertificateStatus.FAILED.value, problem.value
            for validation in validations:
                validation["ValidationStatus"] = "FAILED"
        with self._db.transaction() as session:
            existing = None if token is None else earlier_request(session, caller, token, now)
            if existing is not None:
                return existing
            session.add(row)
            if problem is None and method == "EMAIL":  # the mails go out now; the validation job only times the request out
                payload = {"certificate_id": arn.certificate_id}
                self._jobs.enqueue(session, EMAIL_JOB, payload, now, max_attempts=50)
                self._jobs.enqueue(session, VALIDATE_JOB, payload, now, run_after=now + VALIDATION_TIMEOUT)
            elif problem is None:
                job = self._jobs.enqueue(session, VALIDATE_JOB, {"certificate_id": arn.certificate_id}, now,
                                         max_attempts=50)
                row.acme = {**(row.acme or {}), "validate_job": job}
        self._signal.notify()
        return str(arn)

    def _direct_provider(self, caller: Caller, request: RequestedCertificate, method: str, issuer: IssuerRow) -> str | None:
        """The DNS provider that answers DNS-01 directly with TXT records, when the request or its issuer asks."""
        tagged = _tag(request.tags, PROVIDER_TAG)
        if tagged is not None:
            self._providers.exists(caller, tagged, f"Tags[{PROVIDER_TAG}]")
        name = tagged or issuer.dns_provider
        if name is None or method != "DNS":
            return None
        if issuer.type != ACME:
            raise ValidationError(f"Tags[{PROVIDER_TAG}]: direct DNS validation answers an ACME CA's DNS-01 challenge; "
                                  f"issuer {issuer.name!r} is a private CA, which validates the delegation CNAME, HTTP "
                                  "or email instead", field=f"Tags[{PROVIDER_TAG}]")
        return name

    def _check_method(self, method: str, names: list[str], issuer: IssuerRow, direct: str | None) -> None:
        if method == "EMAIL":
            if issuer.type == ACME:
                raise ValidationError(f"ValidationMethod EMAIL: issuer {issuer.name!r} is an ACME CA, and an ACME CA "
                                      "cannot validate by email; use DNS or HTTP, or an issuer that is a certsmith "
                                      "private CA", field="ValidationMethod")
            if not self._mail:
                raise ValidationError("ValidationMethod EMAIL: this server sends no mail; start it with --smtp-url "
                                      "(smtp_url) to validate by email", field="ValidationMethod")
        elif method == "HTTP":
            wildcard = next((n for n in names if n.startswith("*.")), None)
            if wildcard is not None:
                raise ValidationError(f"ValidationMethod HTTP: {wildcard} is a wildcard name, which can be validated "
                                      "only by DNS", field="ValidationMethod")
        elif direct is None and self._records.zone is None:
            raise ValidationError("public certificates are validated through a DNS zone delegated to certsmith, and "
                                  "this server has none: start it with --validation-zone ZONE (validation_zone), use "
                                  "a DNS provider that answers directly (tag certsmith:dns-provider), HTTP or email "
                                  "validation, or give CertificateAuthorityArn for a private certificate",
                                  field="CertificateAuthorityArn")

    def _validation(self, caller: Caller, name: str, domain: str, method: str, direct: str | None) -> dict[str, Any]:
        validation: dict[str, Any] = {"DomainName": name, "ValidationDomain": domain, "ValidationMethod": method,
                                      "ValidationStatus": "PENDING_VALIDATION"}
        if method == "EMAIL":
            validation["ValidationEmails"] = approval_addresses(domain)
        elif method == "HTTP":
            validation["HttpRedirect"] = redirect_for(self._public_url, self._records.label(caller.account_id, name),
                                                      name)
        elif direct is None:
            record_name, target = self._records.record(caller.account_id, name)
            validation["ResourceRecord"] = {"Name": record_name + ".", "Type": "CNAME", "Value": target + "."}
        return validation
