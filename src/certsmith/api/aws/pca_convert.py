"""Conversions between ACM-PCA wire shapes and certsmith's domain values."""

from __future__ import annotations

from typing import Any

from ...domain.authority import RevocationSettings
from ...domain.errors import InvalidArgsError
from ...services.pca.records import AuthorityRecord

__all__ = ["authority_shape", "revocation_settings", "revocation_shape"]


def revocation_settings(document: dict[str, Any] | None) -> RevocationSettings:
    if not document:
        return RevocationSettings()
    crl = document.get("CrlConfiguration")
    ocsp = document.get("OcspConfiguration")
    values: dict[str, Any] = {}
    if crl is not None:
        values["crl_configured"] = True
        values["crl_enabled"] = bool(crl["Enabled"])
        if not crl["Enabled"] and len([k for k in crl if k != "Enabled"]) > 0:
            raise InvalidArgsError("RevocationConfiguration.CrlConfiguration: when Enabled is false no other member "
                                   "may be set", field="RevocationConfiguration.CrlConfiguration")
        cname = crl.get("CustomCname")
        if cname and ("://" in cname or "/" in cname):
            raise InvalidArgsError("RevocationConfiguration.CrlConfiguration.CustomCname must be a bare host name "
                                   "without http:// or a path", field="RevocationConfiguration.CrlConfiguration.CustomCname")
        values.update(crl_expiration_days=crl.get("ExpirationInDays"), crl_custom_cname=cname or None,
                      crl_s3_bucket=crl.get("S3BucketName"), crl_s3_object_acl=crl.get("S3ObjectAcl"),
                      crl_omit_extension=(crl.get("CrlDistributionPointExtensionConfiguration") or {})
                      .get("OmitExtension"),
                      crl_type=crl.get("CrlType"), crl_custom_path=crl.get("CustomPath"))
        if values["crl_type"] == "PARTITIONED":
            raise InvalidArgsError("CrlType PARTITIONED is not supported by certsmith; use COMPLETE",
                                   field="RevocationConfiguration.CrlConfiguration.CrlType")
    if ocsp is not None:
        values["ocsp_configured"] = True
        values["ocsp_enabled"] = bool(ocsp["Enabled"])
        cname = ocsp.get("OcspCustomCname")
        if cname and ("://" in cname or "/" in cname):
            raise InvalidArgsError("RevocationConfiguration.OcspConfiguration.OcspCustomCname must be a bare host name",
                                   field="RevocationConfiguration.OcspConfiguration.OcspCustomCname")
        values["ocsp_custom_cname"] = cname or None
    return RevocationSettings(**values)


def revocation_shape(settings: RevocationSettings) -> dict[str, Any]:
    shape: dict[str, Any] = {}
    if settings.crl_configured:
        crl: dict[str, Any] = {"Enabled": settings.crl_enabled}
        if settings.crl_enabled:
            crl.update({"ExpirationInDays": settings.crl_expiration_days, "CustomCname": settings.crl_custom_cname,
                        "S3BucketName": settings.crl_s3_bucket, "S3ObjectAcl": settings.crl_s3_object_acl,
                        "CrlType": settings.crl_type, "CustomPath": settings.crl_custom_path})
            if settings.crl_omit_extension is not None:
                crl["CrlDistributionPointExtensionConfiguration"] = {"OmitExtension": settings.crl_omit_extension}
        shape["CrlConfiguration"] = crl
    if settings.ocsp_configured:
        shape["OcspConfiguration"] = {"Enabled": settings.ocsp_enabled, "OcspCustomCname": settings.ocsp_custom_cname}
    return shape


def authority_shape(record: AuthorityRecord) -> dict[str, Any]:
    return {
        "Arn": record.arn, "OwnerAccount": record.account_id, "CreatedAt": record.created_at,
        "LastStateChangeAt": record.last_state_change_at, "Type": record.type, "Serial": record.serial,
        "Status": record.status.value, "NotBefore": record.not_before, "NotAfter": record.not_after,
        "FailureReason": record.failure_reason, "CertificateAuthorityConfiguration": record.configuration,
        "RevocationConfiguration": revocation_shape(record.revocation), "RestorableUntil": record.restorable_until,
        # KeyStorageSecurityStandard is left out: CA keys are sealed in software (AES-256-GCM in the
        # database), which meets no FIPS 140-2 or CCPC level; see docs/compatibility.md.
        "UsageMode": record.usage_mode,
    }
