"""The ACM-PCA operation table: one handler per operation, wire dict in, wire dict out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ...domain.algorithms import SigningAlgorithm
from ...domain.authority import AuthorityStatus, AuthorityType, UsageMode
from ...domain.revocation import RevocationReason
from ...domain.validity import Validity, ValidityPeriodType
from ...services.context import Caller
from ...services.pca.issuance import IssueRequest
from ...services.wiring import Container
from .pca_convert import authority_shape, revocation_settings

__all__ = ["Handler", "pca_operations"]

# A handler answers at once, or (when it waits for a group commit) returns an awaitable answer.
Handler = Callable[[Container, Caller, dict[str, Any]], dict[str, Any] | Awaitable[dict[str, Any] | None] | None]


def _validity(document: dict[str, Any] | None) -> Validity | None:
    if document is None:
        return None
    return Validity(document["Value"], ValidityPeriodType(document["Type"]))


def create_certificate_authority(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    arn = c.authorities.create(
        caller, authority_type=AuthorityType(req["CertificateAuthorityType"]),
        configuration=req["CertificateAuthorityConfiguration"],
        revocation=revocation_settings(req.get("RevocationConfiguration")),
        usage_mode=UsageMode(req.get("UsageMode", "GENERAL_PURPOSE")),
        key_storage_standard=req.get("KeyStorageSecurityStandard", "FIPS_140_2_LEVEL_3_OR_HIGHER"),
        idempotency_token=req.get("IdempotencyToken"), tags=req.get("Tags", []))
    return {"CertificateAuthorityArn": arn}


def describe_certificate_authority(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    return {"CertificateAuthority": authority_shape(c.authorities.describe(caller, req["CertificateAuthorityArn"]))}


def list_certificate_authorities(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    records, token = c.authorities.list(caller, req.get("MaxResults"), req.get("NextToken"), req.get("ResourceOwner"))
    return {"CertificateAuthorities": [authority_shape(r) for r in records], "NextToken": token}


def update_certificate_authority(c: Container, caller: Caller, req: dict[str, Any]) -> None:
    status = AuthorityStatus(req["Status"]) if "Status" in req else None
    revocation = revocation_settings(req["RevocationConfiguration"]) if "RevocationConfiguration" in req else None
    c.authorities.update(caller, req["CertificateAuthorityArn"], status, revocation)


def delete_certificate_authority(c: Container, caller: Caller, req: dict[str, Any]) -> None:
    c.authorities.delete(caller, req["CertificateAuthorityArn"], req.get("PermanentDeletionTimeInDays"))


def restore_certificate_authority(c: Container, caller: Caller, req: dict[str, Any]) -> None:
    c.authorities.restore(caller, req["CertificateAuthorityArn"])


def get_certificate_authority_csr(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    return {"Csr": c.authorities.csr(caller, req["CertificateAuthorityArn"])}


def import_certificate_authority_certificate(c: Container, caller: Caller, req: dict[str, Any]) -> None:
    c.authorities.import_certificate(caller, req["CertificateAuthorityArn"], req["Certificate"],
                                     req.get("CertificateChain"))


def get_certificate_authority_certificate(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    certificate, chain = c.authorities.certificate(caller, req["CertificateAuthorityArn"])
    return {"Certificate": certificate, "CertificateChain": chain}


async def issue_certificate(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    validity = _validity(req["Validity"])
    assert validity is not None
    arn = await c.issuance.issue(caller, IssueRequest(
        authority_arn=req["CertificateAuthorityArn"], csr=req["Csr"],
        signing_algorithm=SigningAlgorithm(req["SigningAlgorithm"]), validity=validity,
        validity_not_before=_validity(req.get("ValidityNotBefore")), template_arn=req.get("TemplateArn"),
        api_passthrough=req.get("ApiPassthrough"), idempotency_token=req.get("IdempotencyToken")))
    return {"CertificateArn": arn}


def get_certificate(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    certificate, chain = c.issuance.get(caller, req["CertificateAuthorityArn"], req["CertificateArn"])
    return {"Certificate": certificate, "CertificateChain": chain}


def revoke_certificate(c: Container, caller: Caller, req: dict[str, Any]) -> None:
    c.issuance.revoke(caller, req["CertificateAuthorityArn"], req["CertificateSerial"],
                      RevocationReason(req["RevocationReason"]))


def create_audit_report(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    report_id, key = c.audit_reports.create(caller, req["CertificateAuthorityArn"], req["S3BucketName"],
                                            req["AuditReportResponseFormat"])
    return {"AuditReportId": report_id, "S3Key": key}


def describe_audit_report(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    report = c.audit_reports.describe(caller, req["CertificateAuthorityArn"], req["AuditReportId"])
    return {"AuditReportStatus": report.status, "S3BucketName": report.s3_bucket, "S3Key": report.s3_key,
            "CreatedAt": report.created_at}


def create_permission(c: Container, caller: Caller, req: dict[str, Any]) -> None:
    c.admin.create_permission(caller, req["CertificateAuthorityArn"], req["Principal"], req.get("SourceAccount"),
                              req["Actions"])


def list_permissions(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    items, token = c.admin.list_permissions(caller, req["CertificateAuthorityArn"], req.get("MaxResults"),
                                            req.get("NextToken"))
    return {"Permissions": items, "NextToken": token}


def delete_permission(c: Container, caller: Caller, req: dict[str, Any]) -> None:
    c.admin.delete_permission(caller, req["CertificateAuthorityArn"], req["Principal"], req.get("SourceAccount"))


def put_policy(c: Container, caller: Caller, req: dict[str, Any]) -> None:
    c.admin.put_policy(caller, req["ResourceArn"], req["Policy"])


def get_policy(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    return {"Policy": c.admin.get_policy(caller, req["ResourceArn"])}


def delete_policy(c: Container, caller: Caller, req: dict[str, Any]) -> None:
    c.admin.delete_policy(caller, req["ResourceArn"])


def tag_certificate_authority(c: Container, caller: Caller, req: dict[str, Any]) -> None:
    c.admin.tag(caller, req["CertificateAuthorityArn"], req["Tags"])


def untag_certificate_authority(c: Container, caller: Caller, req: dict[str, Any]) -> None:
    c.admin.untag(caller, req["CertificateAuthorityArn"], req["Tags"])


def list_tags(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    tags, token = c.admin.list_tags(caller, req["CertificateAuthorityArn"], req.get("MaxResults"), req.get("NextToken"))
    return {"Tags": tags, "NextToken": token}


def pca_operations() -> dict[str, Handler]:
    return {
        "CreateCertificateAuthority": create_certificate_authority,
        "DescribeCertificateAuthority": describe_certificate_authority,
        "ListCertificateAuthorities": list_certificate_authorities,
        "UpdateCertificateAuthority": update_certificate_authority,
        "DeleteCertificateAuthority": delete_certificate_authority,
        "RestoreCertificateAuthority": restore_certificate_authority,
        "GetCertificateAuthorityCsr": get_certificate_authority_csr,
        "ImportCertificateAuthorityCertificate": import_certificate_authority_certificate,
        "GetCertificateAuthorityCertificate": get_certificate_authority_certificate,
        "IssueCertificate": issue_certificate,
        "GetCertificate": get_certificate,
        "RevokeCertificate": revoke_certificate,
        "CreateCertificateAuthorityAuditReport": create_audit_report,
        "DescribeCertificateAuthorityAuditReport": describe_audit_report,
        "CreatePermission": create_permission,
        "ListPermissions": list_permissions,
        "DeletePermission": delete_permission,
        "PutPolicy": put_policy,
        "GetPolicy": get_policy,
        "DeletePolicy": delete_policy,
        "TagCertificateAuthority": tag_certificate_authority,
        "UntagCertificateAuthority": untag_certificate_authority,
        "ListTags": list_tags,
    }
