"""Tables of managed renewal: certificate versions, the event outbox, renewal policies, CA re-issue runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .tables import Base

__all__ = ["CaReissueItemRow", "CaReissueRow", "CertificateVersionRow", "EventOutboxRow", "RenewalPolicyRow"]


class CertificateVersionRow(Base):
    """One version of an ACM certificate: what was issued (or imported) under its ARN, oldest first."""

    __tablename__ = "certificate_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    certificate_id: Mapped[str] = mapped_column(String(36))
    version: Mapped[int]
    action: Mapped[str] = mapped_column(String(16))  # ISSUANCE, RENEWAL, IMPORT, REIMPORT, REISSUE
    serial: Mapped[str] = mapped_column(String(128))
    not_before: Mapped[datetime]
    not_after: Mapped[datetime]
    issued_at: Mapped[datetime]
    key_id: Mapped[str] = mapped_column(String(64))  # SHA-256 of the public key (SubjectPublicKeyInfo), hex
    issuer: Mapped[str | None] = mapped_column(Text)  # the issuer's distinguished name
    certificate_pem: Mapped[str] = mapped_column(Text)
    # The version's chain and its key (sealed as the certificate's own, under its ARN), so an earlier version can be
    # deployed again (a rollback); None for versions recorded before certsmith kept them.
    chain_pem: Mapped[str | None] = mapped_column(Text)
    sealed_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    __table_args__ = (UniqueConstraint("certificate_id", "version", name="uq_certificate_version"),)


class EventOutboxRow(Base):
    """An event written in the same transaction as the change that caused it; delivered later."""

    __tablename__ = "event_outbox"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    account_id: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(32))
    detail_type: Mapped[str] = mapped_column(String(80))
    resources: Mapped[list[Any]]
    detail: Mapped[dict[str, Any]]
    time: Mapped[datetime]
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
    __table_args__ = (Index("ix_event_outbox_pending", "delivered_at", "id"),)


class RenewalPolicyRow(Base):
    """Renewal settings of an account (scope ``account``) or of the certificates with one tag (``tag:Key=Value``)."""

    __tablename__ = "renewal_policies"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    scope: Mapped[str] = mapped_column(String(400))
    renew_before: Mapped[str | None] = mapped_column(String(32))
    windows: Mapped[list[Any]]
    reuse_key: Mapped[bool | None]
    strict_eligibility: Mapped[bool | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    __table_args__ = (UniqueConstraint("account_id", "region", "scope", name="uq_renewal_policy_scope"),)


class CaReissueRow(Base):
    """A run that re-issues every live certificate of one CA from another, at a given rate; resumable."""

    __tablename__ = "ca_reissues"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    source_arn: Mapped[str] = mapped_column(String(200), index=True)
    target_arn: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16))  # RUNNING, SUCCEEDED, FAILED
    rate: Mapped[float] = mapped_column(Float)
    revoke_source: Mapped[bool]
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    cursor: Mapped[str | None] = mapped_column(String(200))
    message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class CaReissueItemRow(Base):
    """One certificate of a re-issue run: the old serial, and the new one once re-issued."""

    __tablename__ = "ca_reissue_items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    reissue_id: Mapped[str] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(8))  # ACM (a certificate with an ARN of its own) or PCA (IssueCertificate)
    source_serial: Mapped[str] = mapped_column(String(128))
    certificate_arn: Mapped[str | None] = mapped_column(String(200))
    target_serial: Mapped[str | None] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16))  # DONE, FAILED, REVOKED
    error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime]
    __table_args__ = (UniqueConstraint("reissue_id", "kind", "source_serial", name="uq_reissue_item"),)
