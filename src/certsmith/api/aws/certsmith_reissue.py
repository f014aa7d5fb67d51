"""certsmith's CA rotation and fleet re-issue operations (``Certsmith.*``)."""

from __future__ import annotations

import asyncio
from typing import Any

from ...services.context import Caller
from ...services.pca.reissue import ReissueItem, ReissuePlan, ReissueRecord, format_rate
from ...services.wiring import Container
from .pca import Handler

__all__ = ["reissue_operations", "reissue_shape"]

DEFAULT_RATE = "50/s"


def reissue_shape(record: ReissueRecord) -> dict[str, Any]:
    return {"ReissueId": record.id, "State": record.state, "SourceCertificateAuthorityArn": record.source_arn,
            "TargetCertificateAuthorityArn": record.target_arn, "Rate": format_rate(record.rate),
            "Total": record.total, "Done": record.done, "Failed": record.failed, "RevokeSource": record.revoke_source,
            "CreatedAt": record.created_at, "UpdatedAt": record.updated_at, "FinishedAt": record.finished_at,
            "Message": record.message}


def _item_shape(item: ReissueItem) -> dict[str, Any]:
    return {"Kind": item.kind, "SourceSerial": item.source_serial, "CertificateArn": item.certificate_arn,
            "TargetSerial": item.target_serial, "State": item.state, "Error": item.error}


def _plan_shape(plan: ReissuePlan) -> dict[str, Any]:
    return {"AcmCertificates": plan.acm, "PcaCertificates": plan.pca,
            "Samples": [{"Kind": s.kind, "SourceSerial": s.source_serial, "CertificateArn": s.certificate_arn}
                        for s in plan.samples]}


async def rotate_certificate_authority(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    result = await c.rotation.rotate(caller, req["CertificateAuthorityArn"])
    return {"CertificateAuthorityArn": result.arn, "Status": result.status}


async def start_certificate_reissue(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    # Counting the source CA's certificates reads the database at length for a large CA: off the event loop.
    record, plan = await asyncio.to_thread(
        c.reissue.start, caller, req["SourceCertificateAuthorityArn"], req["TargetCertificateAuthorityArn"],
        req.get("Rate", DEFAULT_RATE), bool(req.get("RevokeSource", False)), bool(req.get("DryRun", False)))
    result: dict[str, Any] = {"ReissueId": record.id, "Reissue": reissue_shape(record)}
    if plan is not None:
        result["Plan"] = _plan_shape(plan)
    return result


def describe_certificate_reissue(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    return {"Reissue": reissue_shape(c.reissue.describe(caller, req["ReissueId"]))}


def list_certificate_reissue_items(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    items, token = c.reissue.items(caller, req["ReissueId"], req.get("MaxResults"), req.get("NextToken"))
    return {"Items": [_item_shape(item) for item in items], "NextToken": token}


def reissue_operations() -> dict[str, Handler]:
    return {
        "RotateCertificateAuthority": rotate_certificate_authority,
        "StartCertificateReissue": start_certificate_reissue,
        "DescribeCertificateReissue": describe_certificate_reissue,
        "ListCertificateReissueItems": list_certificate_reissue_items,
    }
