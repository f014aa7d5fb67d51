"""Tables of events and monitoring: event rules and their targets, deliveries, monitored endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .tables import Base

__all__ = ["EndpointRow", "EventDeliveryRow", "EventRuleRow", "EventTargetRow"]


class EventRuleRow(Base):
    """A rule of an account: an EventBridge event pattern and whether it is on (ENABLED / DISABLED)."""

    __tablename__ = "event_rules"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(Text)
    event_pattern: Mapped[str] = mapped_column(Text)  # the pattern's JSON text as the user gave it
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    __table_args__ = (UniqueConstraint("account_id", "region", "name", name="uq_event_rule_name"),)


class EventTargetRow(Base):
    """Where a rule sends what it matches: ``kind`` webhook, slack, email or command, with its settings.

    ``config`` holds what is not secret (url, address, command, headers, max_attempts); a webhook's signing
    secret and a Slack URL (which is itself a credential) are sealed in ``secret``. The lease fields let one
    worker at a time deliver a target's queue, in order.
    """

    __tablename__ = "event_targets"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    rule_id: Mapped[str] = mapped_column(String(36), index=True)
    target_id: Mapped[str] = mapped_column(String(64))  # the Id the user gave it, unique within its rule
    kind: Mapped[str] = mapped_column(String(16))
    config: Mapped[dict[str, Any]]
    secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    __table_args__ = (UniqueConstraint("rule_id", "target_id", name="uq_event_target_id"),)


class EventDeliveryRow(Base):
    """One event for one target: PENDING until sent, then DELIVERED; DEAD once retries are spent (the dead letters)."""

    __tablename__ = "event_deliveries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    outbox_id: Mapped[int]
    target_id: Mapped[str] = mapped_column(String(36))  # event_targets.id
    account_id: Mapped[str] = mapped_column(String(12))
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
    __table_args__ = (UniqueConstraint("outbox_id", "target_id", name="uq_event_delivery"),
                      Index("ix_event_deliveries_queue", "target_id", "state", "id"),
                      Index("ix_event_deliveries_due", "state", "next_attempt_at"),
                      {"sqlite_autoincrement": True})  # ids never reused: a delivery's id orders its target's queue


class EndpointRow(Base):
    """A TLS endpoint the worker probes on a schedule, and what its last probe found."""

    __tablename__ = "endpoints"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    host: Mapped[str] = mapped_column(String(253))
    port: Mapped[int]
    server_name: Mapped[str] = mapped_column(String(253))  # the SNI name sent, also the name the chain must match
    certificate_arn: Mapped[str | None] = mapped_column(String(200))  # what it should serve, if known
    trust: Mapped[str | None] = mapped_column(Text)  # PEM bundle to check the chain against; None = by certificate/system
    interval_seconds: Mapped[int]
    created_at: Mapped[datetime]
    next_probe_at: Mapped[datetime] = mapped_column(index=True)
    lease_until: Mapped[datetime | None]
    # the last probe
    status: Mapped[str] = mapped_column(String(16))  # PENDING, OK, DRIFT, UNTRUSTED, MISMATCH, EXPIRED, UNREACHABLE
    probed_at: Mapped[datetime | None]
    handshake_ms: Mapped[float | None] = mapped_column(Float)
    served_serial: Mapped[str | None] = mapped_column(String(128))
    served_not_after: Mapped[datetime | None]
    chain: Mapped[list[Any] | None]  # [{"subject", "issuer", "serial", "not_after"}], leaf first
    hostname_match: Mapped[bool | None]
    trusted: Mapped[bool | None]
    error: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (UniqueConstraint("account_id", "region", "host", "port", "server_name", name="uq_endpoint"),)
