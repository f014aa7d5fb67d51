"""Bindings: a certificate tied to a deployment target (its options, secrets sealed), where it is verified, by whom.

A server-side binding is deployed by the server's workers; an agent binding by the agent on its host, which reports
back through :meth:`AgentService.report`. Kinds with secret options (the aws-* kinds) are deployed by the server
only: their secrets never travel to an agent.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ...deploy.targets.base import DeployError
from ...deploy.targets.registry import plugin
from ...domain.clock import Clock
from ...domain.errors import ConflictError, ResourceNotFoundError, ValidationError
from ...store.database import Database
from ...store.tables import CertificateRow, DeployAgentRow, DeployBindingRow, DeploymentItemRow, DeploymentRow
from ..context import Caller
from ..events.outbox import EventOutbox
from ..pca.lookup import decode_token, encode_token
from ..ports import SecretSealer
from ..renewal.recorder import RenewalRecorder
from .deployments import DeploymentService
from .naming import Place, binding_arn, binding_id_of, certificate_of, commands_refused, place_of, target_text
from .results import add_in_use, settle
from .verify import check_verify

__all__ = ["BindingRecord", "BindingService", "BindingSpec"]

_PAGE = 100
CREATE_LOCK = 0x63657274_0015  # PostgreSQL advisory lock key: bindings are created one at a time ("cert" 15)


@dataclass(frozen=True, slots=True)
class BindingSpec:
    certificate_arn: str
    kind: str
    options: Mapping[str, Any]
    name: str | None = None
    agent: str | None = None
    verify: Mapping[str, Any] | None = None  # {"Host", "Port", "ServerName"}
    rollback: bool = False
    deploy: bool = True


@dataclass(frozen=True, slots=True)
class BindingRecord:
    arn: str
    binding_id: str
    name: str | None
    certificate_arn: str
    kind: str
    target: str
    options: dict[str, Any]  # public options only
    secrets_set: list[str]
    agent: str | None
    verify: dict[str, Any] | None
    rollback: bool
    status: str
    deployed_version: int | None
    deployed_serial: str | None
    deployed_at: datetime | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime


class BindingService:
    def __init__(self, database: Database, sealer: SecretSealer, clock: Clock, deployments: DeploymentService,
                 outbox: EventOutbox, *, allow_commands: bool = False) -> None:
        self._db, self._sealer, self._clock, self._deployments, self._outbox = (database, sealer, clock, deployments,
                                                                                 outbox)
        self._allow_commands = allow_commands  # the deploy_commands setting: server-side targets may run programs

    # -- create (a server-side target is checked: run it off the event loop) -------------------------------------
    def create(self, caller: Caller, spec: BindingSpec) -> tuple[BindingRecord, str | None]:
        """The new binding and the id of the deployment of the current version (None with ``deploy`` false)."""
        found = plugin(spec.kind)
        try:
            options = found.parse(spec.options or {})
        except ValidationError as error:
            name = error.field if error.field and error.field != "Options" else None
            raise ValidationError(f"Options: {error.message}", field=f"Options.{name}" if name else "Options") from None
        if spec.agent is not None and found.secret_fields:
            raise ValidationError(f"Agent: {found.kind} is deployed by the server, not an agent (its secret options "
                                  f"{', '.join(found.secret_fields)} are never sent to agents)", field="Agent")
        if spec.agent is None and (refused := commands_refused(found, options, self._allow_commands)) is not None:
            raise ValidationError(f"{refused[1]}: {refused[0]}", field=refused[1])
        if spec.rollback and not spec.verify:
            raise ValidationError("Rollback needs Verify: the version is put back when the endpoint does not serve it",
                                  field="Rollback")
        name = spec.name.strip() if spec.name else None
        if name is not None and not (1 <= len(name) <= 128):
            raise ValidationError("Name must be 1 to 128 characters", field="Name")
        with self._db.read() as session:
            found_certificate = certificate_of(session, caller, spec.certificate_arn)
            self._check_certificate(found_certificate)
            if spec.agent is not None:
                self._check_agent(session, caller, spec.agent)
        verify = check_verify(dict(spec.verify) if spec.verify else None, found_certificate.domain_name)
        secrets = found.secret_options(options)
        public = found.public_options(options)
        target = found.factory(options, {})
        if spec.agent is None:
            try:
                target.check()
            except DeployError as error:
                raise ValidationError(f"Options: the target cannot be used: {error.message}", field="Options") from None
        now = self._clock.now()
        binding_id = str(uuid.uuid4())
        arn = binding_arn(caller.region, caller.account_id, binding_id)
        row = DeployBindingRow(
            id=binding_id, arn=arn, account_id=caller.account_id, region=caller.region, certificate_arn="", name=name,
            kind=found.kind, options=_plain(public),
            sealed_secrets=self._sealer.seal(json.dumps(_plain(secrets)).encode(), arn) if secrets else None,
            agent=spec.agent, verify=verify, rollback=bool(spec.rollback), target_state={}, status="PENDING",
            deployed_version=None, deployed_serial=None, deployed_at=None, last_error=None, created_at=now,
            updated_at=now)
        with self._db.transaction() as session:
            if session.get_bind().dialect.name == "postgresql":  # two creations never both pass the checks below
                session.execute(select(func.pg_advisory_xact_lock(CREATE_LOCK)))
            certificate = certificate_of(session, caller, spec.certificate_arn, lock=True)
            self._check_certificate(certificate)
            self._check_unique(session, caller, spec.agent, name,
                               place_of(found.kind, _plain(public), certificate.arn, local=spec.agent is None))
            row.certificate_arn = certificate.arn
            session.add(row)
            session.flush()
            if spec.agent is None:
                add_in_use(session, certificate, arn, now)
            deployment_id = self._deployments.enqueue(session, certificate, "MANUAL", now, [binding_id]) \
                if spec.deploy else None
        if deployment_id is not None:
            self._deployments.notify()
        return self._record(row, target.describe(), sorted(secrets)), deployment_id

    @staticmethod
    def _check_certificate(certificate: CertificateRow) -> None:
        if certificate.status != "ISSUED" or certificate.sealed_key is None or not certificate.certificate_pem:
            raise ValidationError(f"CertificateArn: certificate {certificate.arn} is {certificate.status}; only an "
                                  "issued certificate whose key certsmith holds can be deployed", field="CertificateArn")

    @staticmethod
    def _check_unique(session: Session, caller: Caller, agent: str | None, name: str | None,
                      place: Place | None) -> None:
        """ConflictError when another binding of the account has ``name``, or deploys to ``place`` on the same host
        (the server's, for every account; an agent's)."""
        if name is not None:
            other = session.scalar(select(DeployBindingRow).where(
                DeployBindingRow.account_id == caller.account_id, DeployBindingRow.region == caller.region,
                DeployBindingRow.name == name))
            if other is not None:
                raise ConflictError(f"Name: binding {other.id} ({target_text(other)}) is already named {name!r}; "
                                    "a name is given to one binding", field="Name")
        if place is None:
            return
        query = select(DeployBindingRow)
        if agent is None:
            query = query.where(DeployBindingRow.agent.is_(None))
        else:
            query = query.where(DeployBindingRow.account_id == caller.account_id,
                                DeployBindingRow.region == caller.region, DeployBindingRow.agent == agent)
        for other in session.scalars(query.order_by(DeployBindingRow.created_at, DeployBindingRow.id)):
            found = place_of(other.kind, other.options or {}, other.certificate_arn, local=agent is None)
            if found is None or found.key != place.key:
                continue
            if (other.account_id, other.region) != (caller.account_id, caller.region):
                raise ConflictError(f"{place.field}: a binding of another account or region {place.words}",
                                    field=place.field)
            raise ConflictError(f"{place.field}: binding {other.id} ({target_text(other)}) {place.words}",
                                field=place.field)

    @staticmethod
    def _check_agent(session: Session, caller: Caller, agent: str) -> None:
        found = session.scalar(select(DeployAgentRow.id).where(
            DeployAgentRow.account_id == caller.account_id, DeployAgentRow.region == caller.region,
            DeployAgentRow.name == agent))
        if found is None:
            raise ValidationError(f"Agent: there is no agent named {agent!r} (CreateAgent makes one)", field="Agent")

    # -- read -----------------------------------------------------------------------------------------------------
    def secrets_of(self, row: DeployBindingRow) -> dict[str, Any]:
        if row.sealed_secrets is None:
            return {}
        loaded: dict[str, Any] = json.loads(self._sealer.open(row.sealed_secrets, row.arn))
        return loaded

    def options_of(self, row: DeployBindingRow) -> dict[str, Any]:
        """Every option of the binding, its secrets opened (for a deployment now; never stored or logged)."""
        return {**row.options, **self.secrets_of(row)}

    def _record(self, row: DeployBindingRow, target: str | None = None,
                secrets_set: list[str] | None = None) -> BindingRecord:
        if secrets_set is None:
            secret_fields = set(plugin(row.kind).secret_fields) if row.sealed_secrets is not None else set()
            secrets_set = sorted(self.secrets_of(row)) if secret_fields else []
        return BindingRecord(
            arn=row.arn, binding_id=row.id, name=row.name, certificate_arn=row.certificate_arn, kind=row.kind,
            target=target if target is not None else target_text(row), options=dict(row.options),
            secrets_set=secrets_set, agent=row.agent, verify=dict(row.verify) if row.verify else None,
            rollback=row.rollback, status=row.status, deployed_version=row.deployed_version,
            deployed_serial=row.deployed_serial, deployed_at=row.deployed_at, last_error=row.last_error,
            created_at=row.created_at, updated_at=row.updated_at)

    def _load(self, session: Session, caller: Caller, arn: str, field: str = "BindingArn") -> DeployBindingRow:
        row = session.scalar(select(DeployBindingRow).where(
            DeployBindingRow.id == binding_id_of(caller, arn, field), DeployBindingRow.account_id == caller.account_id,
            DeployBindingRow.region == caller.region))
        if row is None:
            raise ResourceNotFoundError(f"{field}: binding {arn} was not found", field=field, arn=arn)
        return row

    def describe(self, caller: Caller, arn: str) -> BindingRecord:
        with self._db.read() as session:
            row = self._load(session, caller, arn)
        return self._record(row)

    def page(self, caller: Caller, certificate_arn: str | None = None, agent: str | None = None,
             max_results: int | None = None, token: str | None = None) -> tuple[list[BindingRecord], str | None]:
        offset, limit = decode_token(token), max_results or _PAGE
        query = select(DeployBindingRow).where(DeployBindingRow.account_id == caller.account_id,
                                               DeployBindingRow.region == caller.region)
        if certificate_arn is not None:
            query = query.where(DeployBindingRow.certificate_arn == certificate_arn)
        if agent is not None:
            query = query.where(DeployBindingRow.agent == agent)
        with self._db.read() as session:
            rows = list(session.scalars(query.order_by(DeployBindingRow.created_at, DeployBindingRow.id)
                                        .offset(offset).limit(limit + 1)))
        more = encode_token(offset + limit) if len(rows) > limit else None
        return [self._record(row) for row in rows[:limit]], more

    # -- delete (RemoveFromTarget talks to the target: run it off the event loop) --------------------------------
    def delete(self, caller: Caller, arn: str, remove_from_target: bool = False) -> None:
        with self._db.read() as session:
            row = self._load(session, caller, arn)
        if remove_from_target:
            if row.agent is not None:
                raise ValidationError(f"RemoveFromTarget: binding {arn} is deployed by agent {row.agent!r}; remove the "
                                      "files on its host", field="RemoveFromTarget")
            try:
                plugin(row.kind).build(self.options_of(row), row.target_state).remove()
            except DeployError as error:
                raise ValidationError(f"RemoveFromTarget: {error.message}", field="RemoveFromTarget") from None
        now = self._clock.now()
        with self._db.transaction() as session:
            current = self._load(session, caller, arn)
            certificate = session.scalar(select(CertificateRow).where(CertificateRow.arn == current.certificate_arn)
                                         .with_for_update().execution_options(populate_existing=True))
            if certificate is not None and current.arn in (certificate.in_use_by or []):
                certificate.in_use_by = [u for u in certificate.in_use_by if u != current.arn]
                if not (certificate.renewal_plan or {}).get("renewing"):
                    RenewalRecorder.plan(session, certificate, now)
            for item in session.scalars(select(DeploymentItemRow).where(
                    DeploymentItemRow.binding_id == current.id,
                    DeploymentItemRow.status.in_(("PENDING", "IN_PROGRESS", "WAITING_FOR_AGENT")))):
                item.status, item.error, item.finished_at, item.updated_at = "FAILED", "the binding was deleted", now, now
                deployment = session.get(DeploymentRow, item.deployment_id)
                if deployment is not None:
                    settle(session, deployment, now)
            session.delete(current)


def _plain(values: Mapping[str, Any]) -> dict[str, Any]:
    """Options as JSON keeps them (str, int, float, bool)."""
    return {k: v for k, v in values.items() if v is not None}
