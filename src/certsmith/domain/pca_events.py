"""ACM-PCA's EventBridge events (``source: aws.acm-pca``): detail ``{"result": "success"|"failure"[, "reason"]}``.

The resources name the CA first, then what the event is about: the issued or revoked certificate, the audit
report's object. A CRL event names the CA only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .events import Event

__all__ = [
    "AUDIT_REPORT", "CREATION", "CRL_GENERATION", "CRL_INTERNAL_FAILURE", "DETAIL_TYPES", "FAILURE", "ISSUANCE",
    "REVOCATION", "SOURCE", "SUCCESS", "audit_report", "audit_report_object_arn", "certificate_arn", "creation",
    "crl_generation", "issuance", "revocation",
]

SOURCE = "aws.acm-pca"
CREATION = "ACM Private CA Creation"
ISSUANCE = "ACM Private CA Certificate Issuance"
REVOCATION = "ACM Private CA Certificate Revocation"
CRL_GENERATION = "ACM Private CA CRL Generation"
AUDIT_REPORT = "ACM Private CA Audit Report Generation"
DETAIL_TYPES = (CREATION, ISSUANCE, REVOCATION, CRL_GENERATION, AUDIT_REPORT)
SUCCESS, FAILURE = "success", "failure"
CRL_INTERNAL_FAILURE = "Failed to generate CRL. Internal failure."
MAX_REASON = 500  # characters of a failure reason kept in the event


def certificate_arn(ca_arn: str, serial_hex: str) -> str:
    """The ARN of a certificate the CA issued."""
    return f"{ca_arn}/certificate/{serial_hex}"


def audit_report_object_arn(ca_arn: str, bucket: str, key: str) -> str:
    """The S3 object ARN of an audit report, in the CA's partition."""
    partition = ca_arn.split(":", 2)[1] if ca_arn.count(":") >= 2 else "aws"
    return f"arn:{partition}:s3:::{bucket}/{key}"


def creation(ca_arn: str, now: datetime, failure: str | None = None) -> Event:
    """The CA's key and CSR were made (success), or making them failed for good."""
    return _event(CREATION, (ca_arn,), now, failure)


def issuance(ca_arn: str, serial_hex: str, now: datetime, failure: str | None = None) -> Event:
    """A certificate of the CA was signed, or its issuance failed for good."""
    return _event(ISSUANCE, (ca_arn, certificate_arn(ca_arn, serial_hex)), now, failure)


def revocation(ca_arn: str, serial_hex: str, now: datetime, failure: str | None = None) -> Event:
    """A certificate of the CA was revoked."""
    return _event(REVOCATION, (ca_arn, certificate_arn(ca_arn, serial_hex)), now, failure)


def crl_generation(ca_arn: str, now: datetime, failure: str | None = None) -> Event:
    """The CA signed a new CRL, or could not."""
    return _event(CRL_GENERATION, (ca_arn,), now, failure)


def audit_report(ca_arn: str, report_object_arn: str, now: datetime, failure: str | None = None) -> Event:
    """An audit report was written (resources: the CA and the report's object), or could not be."""
    return _event(AUDIT_REPORT, (ca_arn, report_object_arn), now, failure)


def _event(detail_type: str, resources: tuple[str, ...], now: datetime, failure: str | None) -> Event:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    detail: dict[str, Any] = {"result": SUCCESS if failure is None else FAILURE}
    if failure is not None:
        detail["reason"] = " ".join(failure.split())[:MAX_REASON] or "Internal failure."
    return Event(detail_type, resources, detail, now.astimezone(UTC), SOURCE)
