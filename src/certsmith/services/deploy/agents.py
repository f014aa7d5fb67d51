"""Agents: hosts that deploy their bindings themselves, with an access key that may only poll and report.

An agent's key acts as the principal ``arn:aws:certsmith:<region>:<account>:agent/<name>``. It may call only
PollAgentWork and ReportDeployment (:func:`check_agent_may_call`, used by the API endpoint for every request).
A binding of an agent wants the version of its newest deployment item (or, when it has none, the certificate's
current version); a poll answers with every binding whose wanted version is not the one the agent holds, the key
encrypted with the poll's passphrase as ExportCertificate does. A version whose item failed is not offered again
until a new deployment (RunDeployment or a new version) asks for it. Secret options never travel to an agent
(kinds with secrets are deployed by the server). A report settles the item of its version and supersedes the
binding's older open items, so no deployment waits for a version the agent has moved past.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives import serialization
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from ...deploy.targets.base import Material, same_serial
from ...domain.arns import partition_of
from ...domain.clock import Clock
from ...domain.errors import AccessDeniedError, ConflictError, ResourceInUseError, ResourceNotFoundError, ValidationError
from ...store.database import Database
from ...store.tables import (
    AccessKeyRow,
    CertificateRow,
    CertificateVersionRow,
    DeployAgentRow,
    DeployBindingRow,
    DeploymentItemRow,
    DeploymentRow,
)
from ..accounts import AccountService, Credential
from ..acm.certificate_lifecycle import check_passphrase
from ..context import Caller
from ..events.outbox import EventOutbox
from ..ports import SecretSealer
from .naming import binding_id_of, certificate_of, target_text
from .results import OPEN_ITEM, Outcome, apply_outcome, settle, supersede

__all__ = ["AGENT_OPERATIONS", "AgentRecord", "AgentReport", "AgentService", "AgentWork", "agent_arn", "agent_name_of",
           "check_agent_may_call"]

AGENT_OPERATIONS = frozenset({"PollAgentWork", "ReportDeployment"})
SERIAL_MAX = 128  # the longest serial a report may name (the columns' length)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_PRINCIPAL = re.compile(r"^arn:[a-z-]+:certsmith:([a-z0-9-]+):(\d{12}):agent/([A-Za-z0-9][A-Za-z0-9._-]{0,63})$")

# (session, certificate, version) -> that version with its key opened; DeploymentService.material
MaterialSource = Callable[[Session, CertificateRow, int], Material]


def agent_arn(region: str, account_id: str, name: str) -> str:
    return f"arn:{partition_of(region)}:certsmith:{region}:{account_id}:agent/{name}"


def agent_name_of(principal: str) -> tuple[str, str, str] | None:
    """(region, account, name) when ``principal`` is an agent's, else None."""
    found = _PRINCIPAL.match(principal)
    return None if found is None else (found.group(1), found.group(2), found.group(3))


def check_agent_may_call(principal: str, service: str, operation: str) -> None:
    """AccessDeniedError when an agent's key calls anything but the agent operations; others pass."""
    if agent_name_of(principal) is None:
        return
    if service != "certsmith" or operation not in AGENT_OPERATIONS:
        raise AccessDeniedError(f"{principal} is an agent's key: it may call only PollAgentWork and ReportDeployment, "
                                f"not {operation}")


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValidationError(f"Name {name!r} must be 1 to 64 letters, digits, dots, dashes or underscores, starting "
                              "with a letter or digit", field="Name")
    return name


@dataclass(frozen=True, slots=True)
class AgentRecord:
    name: str
    arn: str
    access_key_id: str
    created_at: datetime
    last_seen_at: datetime | None

    @classmethod
    def of(cls, row: DeployAgentRow) -> AgentRecord:
        return cls(row.name, agent_arn(row.region, row.account_id, row.name), row.access_key_id, row.created_at,
                   row.last_seen_at)


@dataclass(frozen=True, slots=True)
class AgentWork:
    """One version to deploy to one binding; ``private_key_pem`` is encrypted with the poll's passphrase."""

    binding_arn: str
    certificate_arn: str
    kind: str
    options: dict[str, str]
    verify: dict[str, Any] | None
    version: int
    serial: str
    certificate_pem: str
    chain_pem: str
    private_key_pem: str
    deployment_id: str | None
    rollback: bool = False  # put the previous version back when the verification fails

    def __repr__(self) -> str:
        return f"AgentWork({self.binding_arn}, version {self.version})"


@dataclass(frozen=True, slots=True)
class AgentReport:
    """ReportDeployment: how deploying ``version`` (``serial``) to a binding went."""

    binding_arn: str
    version: int
    serial: str
    status: str  # SUCCEEDED or FAILED
    error: str | None = None
    verified_serial: str | None = None


@dataclass(frozen=True, slots=True)
class _Wanted:
    binding: DeployBindingRow
    certificate: CertificateRow
    version: int
    deployment_id: str | None


class AgentService:
    def __init__(self, database: Database, accounts: AccountService, sealer: SecretSealer, clock: Clock,
                 material: MaterialSource, outbox: EventOutbox) -> None:
        self._db, self._accounts, self._sealer, self._clock = database, accounts, sealer, clock
        self._material, self._outbox = material, outbox

    # -- agents (admin keys) ------------------------------------------------------------------------------------------
    def create(self, caller: Caller, name: str) -> tuple[AgentRecord, Credential]:
        """A new agent and its access key (the secret is returned here only)."""
        _refuse_agent(caller)
        name = _check_name(name)
        now = self._clock.now()
        with self._db.transaction() as session:
            if self._find(session, caller, name) is not None:
                raise ConflictError(f"Name: there is an agent named {name} already", field="Name")
            credential = self._accounts.add_access_key(session, caller.account_id,
                                                       agent_arn(caller.region, caller.account_id, name))
            row = DeployAgentRow(id=str(uuid.uuid4()), account_id=caller.account_id, region=caller.region, name=name,
                                 access_key_id=credential.access_key_id, created_at=now, last_seen_at=None)
            session.add(row)
            session.flush()
            return AgentRecord.of(row), credential

    def agents(self, caller: Caller) -> list[AgentRecord]:
        _refuse_agent(caller)
        with self._db.read() as session:
            rows = session.scalars(select(DeployAgentRow).where(
                DeployAgentRow.account_id == caller.account_id, DeployAgentRow.region == caller.region)
                .order_by(DeployAgentRow.name)).all()
            return [AgentRecord.of(row) for row in rows]

    def delete(self, caller: Caller, name: str) -> None:
        """Delete the agent and its key; ResourceInUseError while bindings name it (delete or move them first)."""
        _refuse_agent(caller)
        with self._db.transaction() as session:
            row = self._find(session, caller, _check_name(name))
            if row is None:
                raise ResourceNotFoundError(f"Name: there is no agent named {name}", field="Name")
            bound = session.scalar(select(func.count()).select_from(DeployBindingRow).where(
                DeployBindingRow.account_id == caller.account_id, DeployBindingRow.region == caller.region,
                DeployBindingRow.agent == name)) or 0
            if bound:
                raise ResourceInUseError(f"agent {name} deploys {bound} binding(s): delete them (DeleteBinding) before "
                                         "the agent", arn=agent_arn(caller.region, caller.account_id, name))
            session.execute(delete(AccessKeyRow).where(AccessKeyRow.access_key_id == row.access_key_id))
            session.delete(row)
            key = row.access_key_id
        self._accounts.forget(key)

    def exists(self, caller: Caller, name: str) -> bool:
        with self._db.read() as session:
            return self._find(session, caller, name) is not None

    @staticmethod
    def _find(session: Session, caller: Caller, name: str) -> DeployAgentRow | None:
        return session.scalar(select(DeployAgentRow).where(
            DeployAgentRow.account_id == caller.account_id, DeployAgentRow.region == caller.region,
            DeployAgentRow.name == name))

    # -- the agent's own calls ----------------------------------------------------------------------------------------
    def _me(self, session: Session, caller: Caller) -> DeployAgentRow:
        found = agent_name_of(caller.principal)
        if found is None:
            raise AccessDeniedError("only an agent's access key may call PollAgentWork and ReportDeployment "
                                    "(CreateAgent makes one)")
        region, account, name = found
        if region != caller.region or account != caller.account_id:
            raise AccessDeniedError(f"agent {name} belongs to region {region}: sign its requests for that region")
        row = self._find(session, caller, name)
        if row is None:
            raise AccessDeniedError(f"agent {name} was deleted")
        return row

    def touch(self, caller: Caller) -> None:
        """Note that the agent is alive (its LastSeenAt); AccessDeniedError for anyone but an agent."""
        with self._db.transaction() as session:
            self._me(session, caller).last_seen_at = self._clock.now()

    def work(self, caller: Caller, held: Mapping[str, int], passphrase: bytes) -> list[AgentWork]:
        """What the agent should deploy now (nothing when it holds what its bindings want)."""
        check_passphrase(passphrase)
        with self._db.read() as session:
            me = self._me(session, caller)
            wanted = self._wanted(session, me, held)
            return [self._work(session, want, passphrase) for want in wanted]

    def _wanted(self, session: Session, me: DeployAgentRow, held: Mapping[str, int]) -> list[_Wanted]:
        bindings = session.scalars(select(DeployBindingRow).where(
            DeployBindingRow.account_id == me.account_id, DeployBindingRow.region == me.region,
            DeployBindingRow.agent == me.name).order_by(DeployBindingRow.created_at, DeployBindingRow.id)).all()
        found: list[_Wanted] = []
        for binding in bindings:
            certificate = session.scalar(select(CertificateRow).where(CertificateRow.arn == binding.certificate_arn))
            if certificate is None or not certificate.version:
                continue
            latest = session.execute(select(DeploymentItemRow, DeploymentRow).join(
                DeploymentRow, DeploymentRow.id == DeploymentItemRow.deployment_id).where(
                DeploymentItemRow.binding_id == binding.id).order_by(DeploymentItemRow.id.desc()).limit(1)).first()
            if latest is None:  # never deployed through a deployment: the current version
                if held.get(binding.arn) != certificate.version:
                    found.append(_Wanted(binding, certificate, certificate.version, None))
                continue
            item, deployment = latest
            if item.status in OPEN_ITEM or (item.status == "SUCCEEDED" and held.get(binding.arn) != deployment.version):
                found.append(_Wanted(binding, certificate, deployment.version, deployment.id))
        return found

    def _work(self, session: Session, want: _Wanted, passphrase: bytes) -> AgentWork:
        material = self._material(session, want.certificate, want.version)
        key = serialization.load_pem_private_key(material.private_key_pem.encode("ascii"), None)
        encrypted = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.BestAvailableEncryption(passphrase)).decode("ascii")
        binding = want.binding
        # public options only: a binding with secrets is never an agent's (CreateBinding refuses it)
        options = {k: v if isinstance(v, str) else json.dumps(v) for k, v in (binding.options or {}).items()
                   if v is not None}
        return AgentWork(binding.arn, want.certificate.arn, binding.kind, options, binding.verify, want.version,
                         material.serial, material.certificate_pem, material.chain_pem, encrypted, want.deployment_id,
                         rollback=bool(binding.rollback))

    def report(self, caller: Caller, report: AgentReport) -> None:
        """ReportDeployment: the agent says how deploying a version to one of its bindings went."""
        if report.status not in ("SUCCEEDED", "FAILED"):
            raise ValidationError(f"Status {report.status!r} must be SUCCEEDED or FAILED", field="Status")
        for name, value in (("Serial", report.serial), ("VerifiedSerial", report.verified_serial)):
            if value is not None and not 1 <= len(value) <= SERIAL_MAX:
                raise ValidationError(f"{name} must be 1 to {SERIAL_MAX} characters (a serial number in hex), not "
                                      f"{len(value)}", field=name)
        now = self._clock.now()
        with self._db.transaction() as session:
            me = self._me(session, caller)
            me.last_seen_at = now
            binding_id = binding_id_of(caller, report.binding_arn)
            binding = session.get(DeployBindingRow, binding_id)
            if binding is None or binding.arn != report.binding_arn:
                raise ResourceNotFoundError(f"BindingArn: binding {report.binding_arn} was not found",
                                            field="BindingArn", arn=report.binding_arn)
            if binding.agent != me.name:
                raise AccessDeniedError(f"binding {report.binding_arn} is not deployed by agent {me.name}")
            certificate = certificate_of(session, caller, binding.certificate_arn, lock=True)
            if not 1 <= report.version <= certificate.version:
                raise ValidationError(f"Version {report.version} is not a version of {certificate.arn} (it has 1 to "
                                      f"{certificate.version})", field="Version")
            serial = _serial_of(session, certificate, report.version)
            if not same_serial(serial, report.serial):
                raise ValidationError(f"Serial {report.serial} is not the serial of version {report.version} "
                                      f"({serial})", field="Serial")
            self._record(session, binding, certificate, report, serial, now)

    def _record(self, session: Session, binding: DeployBindingRow, certificate: CertificateRow, report: AgentReport,
                serial: str, now: datetime) -> None:
        """The report on the binding's open item of that version; without one (the agent deployed a binding that had
        no deployment yet), on the binding alone."""
        found = session.execute(select(DeploymentItemRow, DeploymentRow).join(
            DeploymentRow, DeploymentRow.id == DeploymentItemRow.deployment_id).where(
            DeploymentItemRow.binding_id == binding.id, DeploymentItemRow.status.in_(OPEN_ITEM),
            DeploymentRow.version == report.version).order_by(DeploymentItemRow.id.desc()).limit(1)).first()
        if found is None:
            deployment = DeploymentRow(id="", account_id=binding.account_id, region=binding.region,
                                       certificate_arn=certificate.arn, version=report.version, serial=serial,
                                       trigger="MANUAL", status="IN_PROGRESS", created_at=now)
            item = DeploymentItemRow(deployment_id="", binding_id=binding.id, status="WAITING_FOR_AGENT", attempts=0,
                                     updated_at=now)
        else:
            item, deployment = found
        item.attempts = (item.attempts or 0) + 1
        item.started_at = item.started_at or now
        error = (report.error or "the agent reported a failure")[:2000] if report.status == "FAILED" else None
        outcome = Outcome(report.status, error, report.verified_serial)
        apply_outcome(session, self._outbox, deployment, item, binding, certificate, outcome, target_text(binding), now)
        if found is not None:
            settle(session, deployment, now)
            supersede(session, [binding.id], now, f"deployment {deployment.id} (version {deployment.version}, reported "
                      "by the agent)", before_item=item.id)


def _serial_of(session: Session, certificate: CertificateRow, version: int) -> str:
    if version == certificate.version:
        return certificate.serial or ""
    serial = session.scalar(select(CertificateVersionRow.serial).where(
        CertificateVersionRow.certificate_id == certificate.id, CertificateVersionRow.version == version))
    if serial is None:
        raise ValidationError(f"Version {version} of {certificate.arn} is not kept", field="Version")
    return serial


def _refuse_agent(caller: Caller) -> None:
    if agent_name_of(caller.principal) is not None:
        raise AccessDeniedError("an agent's key may not manage agents")
