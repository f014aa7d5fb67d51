"""Tables of deployment: bindings of certificates to targets, deployment runs and their items, agents."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .tables import Base

__all__ = ["DeployAgentRow", "DeployBindingRow", "DeploymentItemRow", "DeploymentRow"]


class DeployBindingRow(Base):
    """A certificate tied to one target: ``kind`` and its options (secret ones sealed under the binding's ARN).

    ``agent`` names the agent that deploys it on its host (None: the server deploys it). ``verify`` is the endpoint
    that serves it ({"Host", "Port", "ServerName"}), handshaken after each deployment; ``rollback`` puts the previous
    version back when that check fails. ``target_state`` is what the target asked to keep (e.g. the ARN it imported
    to); ``deployed_*`` what it holds as far as certsmith knows (reported by the agent for agent bindings).
    ``lease_owner``/``lease_until``: the deployment run that works on the binding now (one at a time), until when; an
    expired lease (its worker died) may be taken over by another run.
    """

    __tablename__ = "deploy_bindings"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    arn: Mapped[str] = mapped_column(String(200), unique=True)
    account_id: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    certificate_arn: Mapped[str] = mapped_column(String(200), index=True)
    name: Mapped[str | None] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32))
    options: Mapped[dict[str, Any]]
    sealed_secrets: Mapped[bytes | None] = mapped_column(LargeBinary)
    agent: Mapped[str | None] = mapped_column(String(64))
    verify: Mapped[dict[str, Any] | None]
    rollback: Mapped[bool] = mapped_column(Boolean, default=False)
    target_state: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16))  # PENDING, DEPLOYED, FAILED
    deployed_version: Mapped[int | None]
    deployed_serial: Mapped[str | None] = mapped_column(String(128))
    deployed_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    __table_args__ = (Index("ix_deploy_bindings_agent", "account_id", "region", "agent"),)


class DeploymentRow(Base):
    """One deployment of one version of a certificate to its bindings (the DeploymentId of the API).

    ``trigger``: ISSUANCE, RENEWAL, IMPORT, REIMPORT, REISSUE (enqueued with the new version), MANUAL (RunDeployment)
    or ROLLBACK. ``status``: PENDING, IN_PROGRESS, SUCCEEDED, FAILED (some item failed), SUPERSEDED (every item was
    superseded by a later deployment; superseded items count neither way when others are final).
    """

    __tablename__ = "deployments"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    certificate_arn: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[int]
    serial: Mapped[str] = mapped_column(String(128))
    trigger: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class DeploymentItemRow(Base):
    """One binding's part of a deployment: PENDING, IN_PROGRESS, WAITING_FOR_AGENT, SUCCEEDED, FAILED, ROLLED_BACK,
    or SUPERSEDED (a later deployment of the binding was enqueued before this one was done: never run).

    ``verified_serial`` is the serial the endpoint served after the deployment (when the binding names one).
    """

    __tablename__ = "deployment_items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    deployment_id: Mapped[str] = mapped_column(String(36), index=True)
    binding_id: Mapped[str] = mapped_column(String(36), index=True)
    status: Mapped[str] = mapped_column(String(24))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    previous_version: Mapped[int | None]
    verified_serial: Mapped[str | None] = mapped_column(String(128))
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    __table_args__ = {"sqlite_autoincrement": True}


class DeployAgentRow(Base):
    """An agent: a host that deploys its bindings itself with an access key limited to them (``access_key_id``)."""

    __tablename__ = "deploy_agents"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(64))
    access_key_id: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime | None]
    __table_args__ = (UniqueConstraint("account_id", "region", "name", name="uq_deploy_agent_name"),)
