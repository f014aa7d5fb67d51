"""certsmith's renewal operations: policies, every certificate's plan, a run now, and certificate versions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ...services.context import Caller
from ...services.renewal.policies import PolicyRecord
from ...services.renewal.status import RenewalEntry
from ...services.wiring import Container
from .pca import Handler

__all__ = ["renewal_operations"]


def _policy_shape(record: PolicyRecord) -> dict[str, Any]:
    shape: dict[str, Any] = {"Scope": record.scope, "MaintenanceWindows": record.windows,
                             "CreatedAt": record.created_at, "UpdatedAt": record.updated_at}
    for key, value in (("RenewBefore", record.renew_before), ("ReuseKey", record.reuse_key),
                       ("StrictEligibility", record.strict_eligibility)):
        if value is not None:
            shape[key] = value
    return shape


def _entry_shape(entry: RenewalEntry) -> dict[str, Any]:
    values: dict[str, Any] = {
        "CertificateArn": entry.arn, "DomainName": entry.domain_name, "Type": entry.type, "Status": entry.status,
        "NotAfter": entry.not_after, "Version": entry.version, "RenewalEligibility": entry.eligibility,
        "PlannedAt": datetime.fromisoformat(entry.planned_at) if entry.planned_at else None,
        "NextCheckAt": entry.next_look_at, "Reason": entry.reason, "PolicySource": entry.source,
        "RenewalStatus": entry.renewal_status, "RenewalStatusReason": entry.renewal_reason,
        "LastResult": entry.last_result,
        "LastAttemptAt": datetime.fromisoformat(entry.last_attempt_at) if entry.last_attempt_at else None,
        "LastError": entry.last_error}
    return {k: v for k, v in values.items() if v is not None}


def put_renewal_policy(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    record = c.renewal_policies.put(caller, req["Scope"], renew_before=req.get("RenewBefore"),
                                    windows=req.get("MaintenanceWindows"), reuse_key=req.get("ReuseKey"),
                                    strict_eligibility=req.get("StrictEligibility"))
    return {"RenewalPolicy": _policy_shape(record)}


def describe_renewal_policy(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    return {"RenewalPolicy": _policy_shape(c.renewal_policies.describe(caller, req["Scope"]))}


def list_renewal_policies(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    return {"RenewalPolicies": [_policy_shape(r) for r in c.renewal_policies.list(caller)]}


def delete_renewal_policy(c: Container, caller: Caller, req: dict[str, Any]) -> None:
    c.renewal_policies.delete(caller, req["Scope"])


def list_renewals(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    entries, token = c.renewal_status.page(caller, req.get("MaxResults"), req.get("NextToken"))
    return {"Renewals": [_entry_shape(e) for e in entries], "NextToken": token}


def run_renewals(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    """What is due now for the caller's account; without DryRun, those are handed to renewal jobs at once."""
    if req.get("DryRun"):
        mine = c.scheduler.due(limit=100000, scope=(caller.account_id, caller.region))
    else:  # the sweep every worker runs (every account's due certificates); the caller hears of its own
        mine = [d for d in c.scheduler.sweep() if f":{caller.region}:{caller.account_id}:" in d.arn]
    return {"Due": [{"CertificateArn": d.arn, "DueAt": d.due_at} for d in mine[:1000]], "Count": len(mine)}


def list_certificate_versions(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    versions = c.renewal_status.versions(caller, req["CertificateArn"])
    return {"Versions": [{"Version": v.version, "Action": v.action, "Serial": v.serial, "NotBefore": v.not_before,
                          "NotAfter": v.not_after, "IssuedAt": v.issued_at, "KeyId": v.key_id,
                          **({"Issuer": v.issuer} if v.issuer else {}), "Current": v.current} for v in versions]}


def renewal_operations() -> dict[str, Handler]:
    return {
        "PutRenewalPolicy": put_renewal_policy,
        "DescribeRenewalPolicy": describe_renewal_policy,
        "ListRenewalPolicies": list_renewal_policies,
        "DeleteRenewalPolicy": delete_renewal_policy,
        "ListRenewals": list_renewals,
        "RunRenewals": run_renewals,
        "ListCertificateVersions": list_certificate_versions,
    }
