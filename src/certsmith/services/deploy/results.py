"""What a deployment's outcome changes: the item, its binding, the certificate's InUseBy, the deployment, events."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...domain.certsmith_events import deployment_failed, deployment_succeeded
from ...store.tables import CertificateRow, DeployBindingRow, DeploymentItemRow, DeploymentRow
from ..events.outbox import EventOutbox
from ..renewal.recorder import RenewalRecorder
from .deployments import FINAL_ITEM

__all__ = ["Outcome", "add_in_use", "apply_outcome", "settle"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one binding's part ended: SUCCEEDED, FAILED, ROLLED_BACK, or PENDING (run again later)."""

    status: str
    error: str | None = None
    verified_serial: str | None = None
    state: Mapping[str, Any] | None = field(default=None)  # what the target asked to keep (after an install)


def add_in_use(session: Session, certificate: CertificateRow, arn: str, now: datetime) -> None:
    """Put ``arn`` in the certificate's InUseBy and plan its renewal anew (StrictEligibility reads InUseBy)."""
    if arn in (certificate.in_use_by or []):
        return
    certificate.in_use_by = [*(certificate.in_use_by or []), arn]
    if not (certificate.renewal_plan or {}).get("renewing"):
        RenewalRecorder.plan(session, certificate, now)


def apply_outcome(session: Session, outbox: EventOutbox, deployment: DeploymentRow, item: DeploymentItemRow,
                  binding: DeployBindingRow | None, certificate: CertificateRow | None, outcome: Outcome, target: str,
                  now: datetime) -> None:
    """Record ``outcome`` of ``item``; on a final one also the binding's state and the event."""
    item.updated_at = now
    item.error = outcome.error
    if outcome.verified_serial is not None:
        item.verified_serial = outcome.verified_serial
    if outcome.status == "PENDING":
        item.status = "PENDING"
        if binding is not None:
            binding.last_error, binding.updated_at = outcome.error, now
        return
    item.status, item.finished_at = outcome.status, now
    if binding is None:
        return
    binding.updated_at = now
    if outcome.state is not None:
        binding.target_state = dict(outcome.state)
    names = tuple(certificate.names) if certificate is not None else ()
    not_after = certificate.not_after if certificate is not None and certificate.version == deployment.version \
        else None
    if outcome.status == "SUCCEEDED":
        binding.status, binding.last_error = "DEPLOYED", None
        binding.deployed_version, binding.deployed_serial, binding.deployed_at = \
            deployment.version, deployment.serial, now
        if binding.agent and certificate is not None:
            add_in_use(session, certificate, binding.arn, now)
        outbox.add(session, binding.account_id, binding.region,
                   deployment_succeeded(deployment.certificate_arn, target, now, names=names, serial=deployment.serial,
                                        not_after=not_after, target_arn=binding.arn), now)
        return
    binding.status, binding.last_error = "FAILED", outcome.error
    outbox.add(session, binding.account_id, binding.region,
               deployment_failed(deployment.certificate_arn, target, outcome.error or outcome.status, now, names=names,
                                 not_after=not_after, target_arn=binding.arn), now)


def settle(session: Session, deployment: DeploymentRow, now: datetime) -> None:
    """The deployment's status from its items: SUCCEEDED or FAILED once every item is final."""
    statuses = list(session.scalars(select(DeploymentItemRow.status).where(
        DeploymentItemRow.deployment_id == deployment.id)))
    if statuses and not all(s in FINAL_ITEM for s in statuses):
        if deployment.status == "PENDING" and any(s != "PENDING" for s in statuses):
            deployment.status, deployment.started_at = "IN_PROGRESS", deployment.started_at or now
        return
    deployment.status = "SUCCEEDED" if all(s == "SUCCEEDED" for s in statuses) else "FAILED"
    deployment.started_at = deployment.started_at or now
    deployment.finished_at = now
