"""What a deployment's outcome changes: the item, its binding, the certificate's InUseBy, the deployment, events."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...deploy.targets.base import DeployTarget
from ...domain.certsmith_events import deployment_failed, deployment_succeeded
from ...store.tables import CertificateRow, DeployBindingRow, DeploymentItemRow, DeploymentRow
from ..events.outbox import EventOutbox
from ..renewal.recorder import RenewalRecorder

__all__ = ["FINAL_DEPLOYMENT", "FINAL_ITEM", "OPEN_ITEM", "Outcome", "add_in_use", "apply_outcome", "holds_nothing",
           "moves_forward", "note_done", "settle", "supersede"]

OPEN_ITEM = ("PENDING", "IN_PROGRESS", "WAITING_FOR_AGENT")
FINAL_ITEM = frozenset({"SUCCEEDED", "FAILED", "ROLLED_BACK", "SUPERSEDED"})
FINAL_DEPLOYMENT = frozenset({"SUCCEEDED", "FAILED", "SUPERSEDED"})


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one binding's part ended: SUCCEEDED, FAILED, ROLLED_BACK, or PENDING (run again later)."""

    status: str
    error: str | None = None
    verified_serial: str | None = None
    state: Mapping[str, Any] | None = field(default=None)  # what the target asked to keep (after an install)
    installed: bool = False  # a failure after which the target holds the new version (a verification that failed)


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
    if outcome.status == "SUCCEEDED" or outcome.installed:
        if moves_forward(binding, deployment):
            binding.deployed_version, binding.deployed_serial, binding.deployed_at = \
                deployment.version, deployment.serial, now
    if outcome.status == "SUCCEEDED":
        binding.status, binding.last_error = "DEPLOYED", None
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


def moves_forward(binding: DeployBindingRow, deployment: DeploymentRow) -> bool:
    """Whether the binding's deployed version may become the deployment's: only forward, except by a ROLLBACK."""
    return deployment.trigger == "ROLLBACK" or binding.deployed_version is None \
        or deployment.version >= binding.deployed_version


def supersede(session: Session, binding_ids: Sequence[str], now: datetime, by: str, *, before_item: int | None = None,
              keep_deployment: str | None = None) -> None:
    """Open items of ``binding_ids`` become SUPERSEDED (``by`` says by what): those of deployments other than
    ``keep_deployment``, or those older than item ``before_item``; their deployments settle."""
    if not binding_ids:
        return
    query = select(DeploymentItemRow).where(DeploymentItemRow.binding_id.in_(list(binding_ids)),
                                            DeploymentItemRow.status.in_(OPEN_ITEM))
    if before_item is not None:
        query = query.where(DeploymentItemRow.id < before_item)
    if keep_deployment is not None:
        query = query.where(DeploymentItemRow.deployment_id != keep_deployment)
    touched: set[str] = set()
    for item in session.scalars(query):
        item.status, item.error, item.finished_at, item.updated_at = "SUPERSEDED", f"superseded by {by}", now, now
        touched.add(item.deployment_id)
    session.flush()
    for deployment_id in sorted(touched):
        deployment = session.get(DeploymentRow, deployment_id)
        if deployment is not None:
            settle(session, deployment, now)


def settle(session: Session, deployment: DeploymentRow, now: datetime) -> None:
    """The deployment's status from its items once every item is final: SUPERSEDED when every item was superseded,
    else SUCCEEDED when every other item succeeded, else FAILED."""
    statuses = list(session.scalars(select(DeploymentItemRow.status).where(
        DeploymentItemRow.deployment_id == deployment.id)))
    if statuses and not all(s in FINAL_ITEM for s in statuses):
        if deployment.status == "PENDING" and any(s != "PENDING" for s in statuses):
            deployment.status, deployment.started_at = "IN_PROGRESS", deployment.started_at or now
        return
    ran = [s for s in statuses if s != "SUPERSEDED"]
    deployment.status = "SUPERSEDED" if statuses and not ran else \
        "SUCCEEDED" if all(s == "SUCCEEDED" for s in ran) else "FAILED"
    deployment.started_at = deployment.started_at or now
    deployment.finished_at = now


def note_done(binding: DeployBindingRow | None, deployment: DeploymentRow, outcome: Outcome, now: datetime) -> None:
    """What an item settled by someone else while it ran changed on its target (its state, the version it holds)."""
    if binding is None:
        return
    if outcome.state is not None and outcome.status != "ROLLED_BACK":
        binding.target_state = dict(outcome.state)
    if (outcome.status == "SUCCEEDED" or outcome.installed) and moves_forward(binding, deployment):
        binding.deployed_version, binding.deployed_serial, binding.deployed_at = \
            deployment.version, deployment.serial, now
        binding.updated_at = now


def holds_nothing(target: DeployTarget) -> bool:
    """Whether the target's folder holds no certificate (and nothing unreadable either); False for targets without
    a folder or when that cannot be told."""
    try:
        held = target.held()
    except Exception:  # noqa: BLE001 - not known
        return False
    return held.serial is None and "path" in held.detail and "problem" not in held.detail
