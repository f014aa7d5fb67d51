"""RequestCertificate without a CA: a public certificate, validated by DNS through the validation zone."""

from __future__ import annotations

from typing import Any

from ...domain.acm import CertificateStatus, CertificateType
from ...domain.arns import CertificateArn
from ...domain.clock import Clock
from ...domain.errors import InvalidDomainValidationOptionsError, ValidationError
from ...domain.public_names import check_public_names, public_name_problem, validation_base
from ...domain.tags import check_tags
from ...store.database import Database
from ...store.jobs import JobQueue
from ...store.tables import CertificateRow
from ..acm.certificates import REQUEST_KEY_ALGORITHMS, RequestedCertificate, earlier_request, recent_request
from ..context import Caller
from ..ports import WorkSignal
from .challenges import ValidationRecords
from .issuers import IssuerService

__all__ = ["ISSUER_TAG", "VALIDATE_JOB", "PublicRequests"]

VALIDATE_JOB = "public.validate"
ISSUER_TAG = "certsmith:issuer"  # a tag that picks the issuer from tools that speak only ACM's API
NOT_YET = {"EMAIL": "email validation", "HTTP": "HTTP validation"}


def _validation_domains(names: list[str], options: tuple[dict[str, str], ...]) -> dict[str, str]:
    """ValidationDomain per name: the name itself unless DomainValidationOptions names a superdomain of it."""
    chosen = {name: name for name in names}
    for index, option in enumerate(options):
        field = f"DomainValidationOptions[{index}]"
        name, domain = str(option.get("DomainName", "")).lower(), str(option.get("ValidationDomain", "")).lower()
        if name not in chosen:
            raise InvalidDomainValidationOptionsError(f"{field}.DomainName {name!r} is not one of the certificate's "
                                                      "names", field=f"{field}.DomainName")
        base = validation_base(name)
        if domain != name and domain != base and not base.endswith("." + domain):
            raise InvalidDomainValidationOptionsError(
                f"{field}.ValidationDomain {domain!r} must be {name!r} itself or a domain above it",
                field=f"{field}.ValidationDomain")
        chosen[name] = domain
    return chosen


class PublicRequests:
    def __init__(self, database: Database, jobs: JobQueue, clock: Clock, signal: WorkSignal, issuers: IssuerService,
                 records: ValidationRecords) -> None:
        self._db, self._jobs, self._clock, self._signal = database, jobs, clock, signal
        self._issuers, self._records = issuers, records

    def request(self, caller: Caller, request: RequestedCertificate) -> str:
        names = check_public_names(request.domain_name, request.subject_alternative_names)
        check_tags(request.tags)
        method = request.validation_method or "DNS"
        if method in NOT_YET:
            raise ValidationError(f"ValidationMethod {method}: certsmith does not offer {NOT_YET[method]} yet; use DNS "
                                  "(the default)", field="ValidationMethod")
        if request.key_algorithm not in REQUEST_KEY_ALGORITHMS:
            raise ValidationError(f"KeyAlgorithm {request.key_algorithm} cannot be requested; use one of "
                                  f"{', '.join(REQUEST_KEY_ALGORITHMS)}", field="KeyAlgorithm")
        domains = _validation_domains(names, request.domain_validation_options)
        issuer_name = next((str(t.get("Value")) for t in request.tags if t.get("Key") == ISSUER_TAG), None)
        issuer = self._issuers.choose(caller, issuer_name)
        if self._records.zone is None:
            raise ValidationError("public certificates are validated through a DNS zone delegated to certsmith, and this "
                                  "server has none: start it with --validation-zone ZONE (validation_zone), or give "
                                  "CertificateAuthorityArn for a private certificate", field="CertificateAuthorityArn")
        now = self._clock.now()
        token = request.idempotency_token
        existing = recent_request(self._db, caller, token, now)
        if existing is not None:
            return existing
        arn = CertificateArn.new(caller.region, caller.account_id)
        options = {"CertificateTransparencyLoggingPreference": "ENABLED", "Export": "DISABLED", **request.options}
        validations: list[dict[str, Any]] = []
        for name in names:
            record_name, target = self._records.record(caller.account_id, name)
            validations.append({"DomainName": name, "ValidationDomain": domains[name], "ValidationMethod": "DNS",
                                "ValidationStatus": "PENDING_VALIDATION",
                                "ResourceRecord": {"Name": record_name + ".", "Type": "CNAME", "Value": target + "."}})
        row = CertificateRow(
            id=arn.certificate_id, arn=str(arn), account_id=caller.account_id, region=caller.region,
            type=CertificateType.AMAZON_ISSUED.value, status=CertificateStatus.PENDING_VALIDATION.value,
            domain_name=names[0], names=names, key_algorithm=request.key_algorithm, authority_arn=issuer.authority_arn,
            key_usages=[], extended_key_usages=[], options=options, export_option=options["Export"], exported=False,
            in_use_by=[], tags=request.tags, key_pair_origin="AWS_MANAGED", idempotency_token=token, created_at=now,
            issuer_name=issuer.name, validations=validations, acme={})
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
            if problem is None:
                self._jobs.enqueue(session, VALIDATE_JOB, {"certificate_id": arn.certificate_id}, now, max_attempts=50)
        self._signal.notify()
        return str(arn)
