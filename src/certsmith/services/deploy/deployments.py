"""Deployments: one version of a certificate sent to its bindings; enqueued with each new version or on request."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives import serialization
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from ...deploy.targets.base import Material
from ...domain.clock import Clock
from ...domain.errors import InvalidArnError, ResourceNotFoundError, ValidationError
from ...store.database import Database
from ...store.jobs import JobQueue
from ...store.tables import CertificateRow, CertificateVersionRow, DeployBindingRow, DeploymentItemRow, DeploymentRow
from ..context import Caller
from ..pca.lookup import decode_token, encode_token
from ..ports import KeyVault, WorkSignal
from .naming import binding_arn, binding_id_of, certificate_of, target_text
from .results import FINAL_DEPLOYMENT, FINAL_ITEM, supersede

__all__ = ["DEPLOY_JOB", "FINAL_DEPLOYMENT", "FINAL_ITEM", "TRIGGERS", "DeploymentItem", "DeploymentRecord",
           "DeploymentService"]

DEPLOY_JOB = "deploy"
TRIGGERS = ("ISSUANCE", "RENEWAL", "IMPORT", "REIMPORT", "REISSUE", "MANUAL", "ROLLBACK")
_PAGE = 100


@dataclass(frozen=True, slots=True)
class DeploymentItem:
    binding_arn: str
    kind: str
    target: str
    status: str
    attempts: int
    previous_version: int | None
    verified_serial: str | None
    error: str | None
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class DeploymentRecord:
    deployment_id: str
    certificate_arn: str
    version: int
    serial: str
    trigger: str
    status: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    items: tuple[DeploymentItem, ...] | None  # None in lists


class DeploymentService:
    def __init__(self, database: Database, jobs: JobQueue, vault: KeyVault, clock: Clock, signal: WorkSignal) -> None:
        self._db, self._jobs, self._vault, self._clock, self._signal = database, jobs, vault, clock, signal

    # -- enqueue (in the caller's transaction: the job runs once it commits) -----------------------------------------
    def enqueue(self, session: Session, certificate: CertificateRow, trigger: str, now: datetime,
                binding_ids: Sequence[str] | None = None, version: int | None = None) -> str | None:
        """A deployment of ``version`` (default the current one) to the certificate's bindings (or those named);
        None when there is no binding to deploy to."""
        query = select(DeployBindingRow).where(DeployBindingRow.certificate_arn == certificate.arn)
        if binding_ids is not None:
            query = query.where(DeployBindingRow.id.in_(list(binding_ids)))
        bindings = list(session.scalars(query.order_by(DeployBindingRow.created_at, DeployBindingRow.id)))
        if not bindings:
            return None
        if version is None or version == certificate.version:
            version, serial = certificate.version, certificate.serial or ""
        else:
            serial = self._version_row(session, certificate, version).serial
        deployment = DeploymentRow(id=str(uuid.uuid4()), account_id=certificate.account_id, region=certificate.region,
                                   certificate_arn=certificate.arn, version=version, serial=serial, trigger=trigger,
                                   status="PENDING", created_at=now, started_at=None, finished_at=None)
        session.add(deployment)
        # The newest wish wins: what earlier deployments still had to do for these bindings is never done.
        supersede(session, [b.id for b in bindings], now, f"deployment {deployment.id} (version {version}, {trigger})")
        for binding in bindings:
            session.add(DeploymentItemRow(deployment_id=deployment.id, binding_id=binding.id,
                                          status="WAITING_FOR_AGENT" if binding.agent else "PENDING", attempts=0,
                                          previous_version=binding.deployed_version, updated_at=now))
        if any(not b.agent for b in bindings):
            self._jobs.enqueue(session, DEPLOY_JOB, {"deployment_id": deployment.id}, now)
        else:
            deployment.status = "IN_PROGRESS"
            deployment.started_at = now
        return deployment.id

    def on_new_version(self, session: Session, certificate: CertificateRow, action: str, now: datetime) -> None:
        """The hook of a new version (in its transaction): deploy it to the certificate's bindings, if it has any.

        A first version has no binding (a binding needs an issued certificate): no query at all then.
        """
        if certificate.version <= 1:
            return
        if self.enqueue(session, certificate, action if action in TRIGGERS else "RENEWAL", now) is not None:
            # wake this process's workers once the version (and its deployment) is committed, not at their next poll
            event.listen(session, "after_commit", lambda _session: self._signal.notify(), once=True)

    def notify(self) -> None:
        """Tell the local workers a deployment was committed."""
        self._signal.notify()

    # -- run on request -----------------------------------------------------------------------------------------------
    def run(self, caller: Caller, certificate_arn: str, binding_arns: Sequence[str] | None,
            version: int | None) -> str:
        """RunDeployment: MANUAL for the current version (or a later one), ROLLBACK for an earlier one."""
        now = self._clock.now()
        with self._db.transaction() as session:
            certificate = certificate_of(session, caller, certificate_arn)
            if version is not None and (version < 1 or version > certificate.version):
                raise ValidationError(f"Version {version} is not a version of {certificate_arn}: it has versions 1 "
                                      f"to {certificate.version}", field="Version")
            ids = None
            if binding_arns:
                ids = [binding_id_of(caller, arn, "BindingArns") for arn in binding_arns]
                known = set(session.scalars(select(DeployBindingRow.id).where(
                    DeployBindingRow.id.in_(ids), DeployBindingRow.certificate_arn == certificate.arn)))
                missing = [arn for arn, i in zip(binding_arns, ids, strict=True) if i not in known]
                if missing:
                    raise ResourceNotFoundError(f"BindingArns: {', '.join(missing)} is not a binding of "
                                                f"{certificate_arn}", field="BindingArns")
            if version is not None and version != certificate.version:
                self.material(session, certificate, version, check_only=True)
            trigger = "ROLLBACK" if version is not None and version < certificate.version else "MANUAL"
            deployment_id = self.enqueue(session, certificate, trigger, now, ids, version)
            if deployment_id is None:
                raise ValidationError(f"CertificateArn: {certificate_arn} has no binding to deploy to (CreateBinding "
                                      "adds one)", field="CertificateArn")
        self.notify()
        return deployment_id

    # -- what is deployed ---------------------------------------------------------------------------------------------
    @staticmethod
    def _version_row(session: Session, certificate: CertificateRow, version: int) -> CertificateVersionRow:
        row = session.scalar(select(CertificateVersionRow).where(
            CertificateVersionRow.certificate_id == certificate.id, CertificateVersionRow.version == version))
        if row is None:
            raise ValidationError(f"Version {version} of {certificate.arn} is not kept", field="Version")
        return row

    def material(self, session: Session, certificate: CertificateRow, version: int | None = None, *,
                 check_only: bool = False) -> Material:
        """One version of the certificate with its key opened (in memory only); ValidationError when its key is not
        kept. The key of an earlier version is its own, or the certificate's when the version has the same key."""
        version = certificate.version if version is None else version
        if version == certificate.version:
            sealed, pem = certificate.sealed_key, certificate.certificate_pem
            chain, serial = certificate.chain_pem, certificate.serial
        else:
            row = self._version_row(session, certificate, version)
            sealed, pem, chain, serial = row.sealed_key, row.certificate_pem, row.chain_pem, row.serial
            if sealed is None and certificate.sealed_key is not None:
                mine = session.scalar(select(CertificateVersionRow.key_id).where(
                    CertificateVersionRow.certificate_id == certificate.id,
                    CertificateVersionRow.version == certificate.version))
                if mine is not None and mine == row.key_id:
                    sealed = certificate.sealed_key
        if sealed is None or not pem:
            raise ValidationError(f"Version {version} of {certificate.arn} cannot be deployed: its private key was not "
                                  "kept (versions recorded before certsmith kept keys cannot be deployed again)",
                                  field="Version")
        certificate_pem, chain, serial = pem, chain or "", serial or ""
        if check_only:
            return Material(certificate.arn, version, serial, certificate_pem, chain, "")
        key = self._vault.open_private_key(sealed, certificate.arn)
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode("ascii")
        return Material(certificate.arn, version, serial, certificate_pem, chain, key_pem)

    # -- read ---------------------------------------------------------------------------------------------------------
    def _load(self, session: Session, caller: Caller, deployment_id: str) -> DeploymentRow:
        if deployment_id.startswith("arn:"):
            raise InvalidArnError("DeploymentId is the id CreateBinding or RunDeployment returned, not an ARN",
                                  field="DeploymentId")
        row = session.scalar(select(DeploymentRow).where(
            DeploymentRow.id == deployment_id, DeploymentRow.account_id == caller.account_id,
            DeploymentRow.region == caller.region))
        if row is None:
            raise ResourceNotFoundError(f"deployment {deployment_id} was not found", field="DeploymentId")
        return row

    @staticmethod
    def _record(row: DeploymentRow, items: tuple[DeploymentItem, ...] | None) -> DeploymentRecord:
        return DeploymentRecord(row.id, row.certificate_arn, row.version, row.serial, row.trigger, row.status,
                                row.created_at, row.started_at, row.finished_at, items)

    def describe(self, caller: Caller, deployment_id: str) -> DeploymentRecord:
        with self._db.read() as session:
            row = self._load(session, caller, deployment_id)
            pairs = session.execute(select(DeploymentItemRow, DeployBindingRow).outerjoin(
                DeployBindingRow, DeployBindingRow.id == DeploymentItemRow.binding_id)
                .where(DeploymentItemRow.deployment_id == row.id).order_by(DeploymentItemRow.id)).all()
            items = tuple(DeploymentItem(
                binding_arn=binding.arn if binding is not None else binding_arn(row.region, row.account_id, item.binding_id),
                kind=binding.kind if binding is not None else "", target=target_text(binding) if binding else "",
                status=item.status, attempts=item.attempts, previous_version=item.previous_version,
                verified_serial=item.verified_serial, error=item.error, started_at=item.started_at,
                finished_at=item.finished_at) for item, binding in pairs)
            return self._record(row, items)

    def page(self, caller: Caller, certificate_arn: str | None, max_results: int | None,
             token: str | None) -> tuple[list[DeploymentRecord], str | None]:
        offset, limit = decode_token(token), max_results or _PAGE
        query = select(DeploymentRow).where(DeploymentRow.account_id == caller.account_id,
                                            DeploymentRow.region == caller.region)
        if certificate_arn is not None:
            query = query.where(DeploymentRow.certificate_arn == certificate_arn)
        with self._db.read() as session:
            rows = list(session.scalars(query.order_by(DeploymentRow.created_at.desc(), DeploymentRow.id)
                                        .offset(offset).limit(limit + 1)))
        more = encode_token(offset + limit) if len(rows) > limit else None
        return [self._record(row, None) for row in rows[:limit]], more
