"""The ACM operation table (``CertificateManager.*``): one handler per operation, wire dict in, wire dict out."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from ...domain.acm import CertificateStatus, CertificateType
from ...domain.errors import ResourceNotFoundError, ValidationError
from ...domain.import_check import Bundle
from ...domain.tags import check_tag_keys
from ...services.acm.certificate_records import (
    DEFAULT_KEY_TYPES,
    CertificateFilter,
    CertificateRecord,
    renewal_eligibility,
)
from ...services.acm.certificates import RequestedCertificate
from ...services.context import Caller
from ...services.pca.lookup import decode_token, encode_token
from ...services.wiring import Container
from .acm_search import search_result
from .pca import Handler

__all__ = ["acm_operations"]

MAX_SUMMARY_NAMES = 100


_DOMAIN_VALIDATION = ("DomainName", "ValidationEmails", "ValidationDomain", "ValidationStatus", "ResourceRecord",
                      "HttpRedirect", "ValidationMethod")
_RENEWAL_SUMMARY = ("RenewalStatus", "RenewalStatusReason", "DomainValidationOptions", "UpdatedAt")


def _renewal_summary(renewal: dict[str, Any]) -> dict[str, Any]:
    """ACM's RenewalSummary: its own members only; a renewal's validations keep certsmith's inner state (approval
    links among it) out, as DomainValidationOptions do."""
    summary = {k: v for k, v in renewal.items() if k in _RENEWAL_SUMMARY}
    summary["DomainValidationOptions"] = [{k: v for k, v in option.items() if k in _DOMAIN_VALIDATION}
                                          for option in renewal.get("DomainValidationOptions") or []]
    summary["UpdatedAt"] = datetime.fromisoformat(renewal["UpdatedAt"])
    return summary


def _validation_options(record: CertificateRecord) -> list[dict[str, Any]]:
    """Public certificates: each name's validation and its CNAME record. No validation happens for a private
    certificate, but the boto3 waiter certificate_validated reads these statuses: each name reports
    PENDING_VALIDATION until the CA signed, then SUCCESS."""
    if record.validations is not None:  # what ACM's DomainValidation has; certsmith's own bookkeeping stays inside
        return [{k: v for k, v in validation.items() if k in _DOMAIN_VALIDATION} for validation in record.validations]
    if record.type != CertificateType.PRIVATE:
        return []
    state = {CertificateStatus.PENDING_VALIDATION: "PENDING_VALIDATION", CertificateStatus.FAILED: "FAILED"}.get(
        CertificateStatus(record.status), "SUCCESS")
    return [{"DomainName": name, "ValidationDomain": name, "ValidationStatus": state} for name in record.names]


def certificate_detail(record: CertificateRecord) -> dict[str, Any]:
    """CertificateDetail with the members that apply to the certificate's type and status (§3.1)."""
    detail: dict[str, Any] = {
        "CertificateArn": record.arn, "DomainName": record.domain_name, "SubjectAlternativeNames": record.names,
        "Status": record.status, "Type": record.type, "KeyAlgorithm": record.key_algorithm,
        "InUseBy": record.in_use_by, "RenewalEligibility": renewal_eligibility(record), "Options": record.options,
        "CertificateKeyPairOrigin": record.key_pair_origin,
    }
    if record.serial is not None:
        detail.update(Serial=record.serial, Subject=record.subject, Issuer=record.issuer,
                      NotBefore=record.not_before, NotAfter=record.not_after,
                      SignatureAlgorithm=record.signature_algorithm,
                      KeyUsages=[{"Name": name} for name in record.key_usages],
                      ExtendedKeyUsages=record.extended_key_usages)
    if record.type == CertificateType.IMPORTED:
        detail["ImportedAt"] = record.imported_at
    else:
        detail.update(CreatedAt=record.created_at, IssuedAt=record.issued_at)
    if record.type == CertificateType.PRIVATE:
        detail["CertificateAuthorityArn"] = record.authority_arn
    if record.type != CertificateType.IMPORTED:
        detail["DomainValidationOptions"] = _validation_options(record)
    if record.status == CertificateStatus.FAILED:
        detail["FailureReason"] = record.failure_reason
    if record.status == CertificateStatus.REVOKED:
        detail.update(RevokedAt=record.revoked_at, RevocationReason=record.revocation_reason)
    if record.renewal is not None:
        detail["RenewalSummary"] = _renewal_summary(record.renewal)
    return detail


def certificate_summary(record: CertificateRecord) -> dict[str, Any]:
    return {
        "CertificateArn": record.arn, "DomainName": record.domain_name,
        "SubjectAlternativeNameSummaries": record.names[:MAX_SUMMARY_NAMES],
        "HasAdditionalSubjectAlternativeNames": len(record.names) > MAX_SUMMARY_NAMES,
        "Status": record.status, "Type": record.type, "KeyAlgorithm": record.key_algorithm,
        "KeyUsages": record.key_usages, "ExtendedKeyUsages": [e["Name"] for e in record.extended_key_usages],
        "ExportOption": record.options.get("Export", "DISABLED"), "InUse": bool(record.in_use_by),
        "Exported": record.exported, "RenewalEligibility": renewal_eligibility(record),
        "NotBefore": record.not_before, "NotAfter": record.not_after, "CreatedAt": record.created_at,
        "IssuedAt": record.issued_at, "ImportedAt": record.imported_at, "RevokedAt": record.revoked_at,
        "CertificateKeyPairOrigin": record.key_pair_origin,
    }


def request_certificate(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    if "CertificateUsage" in req and "RootHierarchyType" not in req:
        raise ValidationError("CertificateUsage can only be given with RootHierarchyType", field="CertificateUsage")
    if "RootHierarchyType" in req:
        raise ValidationError("RootHierarchyType names Amazon-managed roots, which certsmith does not have",
                              field="RootHierarchyType")
    options = {k: v for k, v in (req.get("Options") or {}).items() if k in ("CertificateTransparencyLoggingPreference",
                                                                            "Export")}
    requested = RequestedCertificate(
        domain_name=req["DomainName"], subject_alternative_names=req.get("SubjectAlternativeNames", []),
        authority_arn=req.get("CertificateAuthorityArn"), key_algorithm=req.get("KeyAlgorithm", "RSA_2048"),
        idempotency_token=req.get("IdempotencyToken"), options=options, tags=req.get("Tags", []),
        validation_method=req.get("ValidationMethod"),
        domain_validation_options=tuple(req.get("DomainValidationOptions") or ()))
    if requested.authority_arn is None:  # a public certificate, from the account's issuer
        return {"CertificateArn": c.public_requests.request(caller, requested)}
    return {"CertificateArn": c.certificates.request(caller, requested)}


def describe_certificate(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    return {"Certificate": certificate_detail(c.certificates.describe(caller, req["CertificateArn"]))}


def get_certificate(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    certificate, chain = c.certificates.get(caller, req["CertificateArn"])
    return {"Certificate": certificate, "CertificateChain": chain}


def list_certificates(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    if ("SortBy" in req) != ("SortOrder" in req):
        raise ValidationError("SortBy and SortOrder must be given together", field="SortBy")
    includes = req.get("Includes") or {}
    where = CertificateFilter(
        statuses=req.get("CertificateStatuses", []),
        key_types=includes.get("keyTypes") or list(DEFAULT_KEY_TYPES),
        key_usages=includes.get("keyUsage", []), extended_key_usages=includes.get("extendedKeyUsage", []),
        export_option=includes.get("exportOption"), managed_by=includes.get("managedBy"),
        descending=req.get("SortOrder", "DESCENDING") == "DESCENDING")
    records, token = c.certificates.page(caller, where, req.get("MaxItems"), req.get("NextToken"))
    return {"CertificateSummaryList": [certificate_summary(r) for r in records], "NextToken": token}


def delete_certificate(c: Container, caller: Caller, req: dict[str, Any]) -> None:
    c.certificates.delete(caller, req["CertificateArn"])


def add_tags_to_certificate(c: Container, caller: Caller, req: dict[str, Any]) -> None:
    c.certificates.change_tags(caller, req["CertificateArn"], add=req["Tags"])


def remove_tags_from_certificate(c: Container, caller: Caller, req: dict[str, Any]) -> None:
    c.certificates.change_tags(caller, req["CertificateArn"], remove=req["Tags"])


def list_tags_for_certificate(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    return {"Tags": c.certificates.tags(caller, req["CertificateArn"])}


async def resend_validation_email(c: Container, caller: Caller, req: dict[str, Any]) -> None:
    # Sending mail is a round trip to the SMTP server: off the event loop.
    await asyncio.to_thread(c.email_validation.resend, caller, req["CertificateArn"], req["Domain"],
                            req["ValidationDomain"])


def import_certificate(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    bundle = Bundle(req["Certificate"], req["PrivateKey"], req.get("CertificateChain"))
    return {"CertificateArn": c.imports.import_certificate(caller, bundle, req.get("CertificateArn"), req.get("Tags"))}


def export_certificate(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    certificate, chain, key = c.lifecycle.export(caller, req["CertificateArn"], req["Passphrase"])
    return {"Certificate": certificate, "CertificateChain": chain, "PrivateKey": key}


def renew_certificate(c: Container, caller: Caller, req: dict[str, Any]) -> None:
    c.lifecycle.renew(caller, req["CertificateArn"])


def revoke_certificate(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    return {"CertificateArn": c.lifecycle.revoke(caller, req["CertificateArn"], req["RevocationReason"])}


def update_certificate_options(c: Container, caller: Caller, req: dict[str, Any]) -> None:
    c.certificates.update_options(caller, req["CertificateArn"], req["Options"])


def get_account_configuration(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    return {"ExpiryEvents": {"DaysBeforeExpiry": c.acm_account.days_before_expiry(caller)}}


def put_account_configuration(c: Container, caller: Caller, req: dict[str, Any]) -> None:
    c.acm_account.put(caller, (req.get("ExpiryEvents") or {}).get("DaysBeforeExpiry"), req["IdempotencyToken"])


def search_certificates(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    found, token = c.search.search(caller, req.get("FilterStatement"), req.get("MaxResults"), req.get("NextToken"),
                                   req.get("SortBy"), req.get("SortOrder"))
    return {"Results": [search_result(record, pem) for record, pem in found], "NextToken": token}


def list_certificate_domain_validations(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    """Per-name validation: a private certificate's names need none, so they report SUCCESS once issued."""
    record = c.certificates.describe(caller, req["CertificateArn"])
    summaries = [{"DomainName": option["DomainName"], "ActiveValidationConfiguration": {
        "ValidationStatus": option["ValidationStatus"]}} for option in _validation_options(record)]
    offset = decode_token(req.get("NextToken"))
    page = req.get("MaxItems") or 1000
    token = encode_token(offset + page) if len(summaries) > offset + page else None
    return {"DomainValidationSummaryList": summaries[offset:offset + page], "NextToken": token}


def _resource_certificate(req: dict[str, Any]) -> str:
    arn: str = req["ResourceArn"]
    if ":certificate/" not in arn:
        raise ResourceNotFoundError(f"{arn} is not a resource certsmith has (certificates are the only ACM "
                                    "resources it keeps)", arn=arn)
    return arn


def tag_resource(c: Container, caller: Caller, req: dict[str, Any]) -> None:
    c.certificates.change_tags(caller, _resource_certificate(req), add=req["Tags"])


def untag_resource(c: Container, caller: Caller, req: dict[str, Any]) -> None:
    check_tag_keys(req["TagKeys"])
    c.certificates.change_tags(caller, _resource_certificate(req), remove=[{"Key": key} for key in req["TagKeys"]])


def list_tags_for_resource(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    return {"Tags": c.certificates.tags(caller, _resource_certificate(req))}


def acm_operations() -> dict[str, Handler]:
    return {
        "RequestCertificate": request_certificate,
        "DescribeCertificate": describe_certificate,
        "GetCertificate": get_certificate,
        "ListCertificates": list_certificates,
        "DeleteCertificate": delete_certificate,
        "AddTagsToCertificate": add_tags_to_certificate,
        "RemoveTagsFromCertificate": remove_tags_from_certificate,
        "ListTagsForCertificate": list_tags_for_certificate,
        "ResendValidationEmail": resend_validation_email,
        "UpdateCertificateOptions": update_certificate_options,
        "ImportCertificate": import_certificate,
        "ExportCertificate": export_certificate,
        "RenewCertificate": renew_certificate,
        "RevokeCertificate": revoke_certificate,
        "GetAccountConfiguration": get_account_configuration,
        "PutAccountConfiguration": put_account_configuration,
        "SearchCertificates": search_certificates,
        "ListCertificateDomainValidations": list_certificate_domain_validations,
        "TagResource": tag_resource,
        "UntagResource": untag_resource,
        "ListTagsForResource": list_tags_for_resource,
    }
