"""certsmith's compliance report operation (GetComplianceReport)."""

from __future__ import annotations

import asyncio
from typing import Any

from ...domain.compliance import Finding, check_policy
from ...services.context import Caller
from ...services.wiring import Container
from .pca import Handler

__all__ = ["finding_shape", "report_operations"]


def finding_shape(finding: Finding) -> dict[str, Any]:
    shape: dict[str, Any] = {"Rule": finding.rule, "Severity": finding.severity,
                             "CertificateArn": finding.certificate_arn, "DomainName": finding.domain_name,
                             "Detail": finding.detail, "RecommendedAction": finding.action}
    if "Host" in finding.extra:
        shape["Endpoint"] = {"Host": finding.extra["Host"], "Port": finding.extra["Port"],
                             "ServerName": finding.extra["ServerName"]}
    return shape


async def get_compliance_report(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    policy = check_policy(req.get("ExpiringWithinDays"), req.get("WildcardForbiddenTags") or (), req.get("Rules"))
    # A whole account's certificates: off the event loop.
    report = await asyncio.to_thread(c.compliance.report, caller, policy)
    return {"GeneratedAt": report.generated_at, "ExpiringWithinDays": policy.expiring_within_days,
            "Summary": [{"Rule": rule, "Count": count} for rule, count in report.summary],
            "Findings": [finding_shape(f) for f in report.findings]}


def report_operations() -> dict[str, Handler]:
    return {"GetComplianceReport": get_compliance_report}
