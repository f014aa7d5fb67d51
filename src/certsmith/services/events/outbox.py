"""The event outbox: an event is a row written in the same transaction as the change that caused it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from ...domain.events import Event, envelope
from ...store.tables import Base, EventOutboxRow

__all__ = ["EventOutbox"]

_OUTBOX = Base.metadata.tables["event_outbox"]


class EventOutbox:
    """Adds events to the outbox and reads them back as EventBridge envelopes."""

    @staticmethod
    def values(event: Event, account_id: str, region: str, now: datetime) -> dict[str, Any]:
        return {"event_id": str(uuid.uuid4()), "account_id": account_id, "region": region, "source": event.source,
                "detail_type": event.detail_type, "resources": list(event.resources), "detail": event.detail,
                "time": event.time, "created_at": now, "delivered_at": None}

    def add(self, session: Session, account_id: str, region: str, event: Event, now: datetime) -> None:
        session.execute(insert(_OUTBOX), [self.values(event, account_id, region, now)])

    def add_many(self, session: Session, rows: Sequence[dict[str, Any]]) -> None:
        """Rows made by :meth:`values` (a sweep writes many at once)."""
        if rows:
            session.execute(insert(_OUTBOX), list(rows))

    @staticmethod
    def read(session: Session, *, account_id: str | None = None, detail_type: str | None = None,
             resource: str | None = None, after_id: int = 0, limit: int = 1000) -> list[tuple[int, dict[str, Any]]]:
        """(outbox id, envelope) in the order the events were written."""
        query = select(EventOutboxRow).where(EventOutboxRow.id > after_id).order_by(EventOutboxRow.id).limit(limit)
        if account_id is not None:
            query = query.where(EventOutboxRow.account_id == account_id)
        if detail_type is not None:
            query = query.where(EventOutboxRow.detail_type == detail_type)
        rows = session.scalars(query).all()
        found: list[tuple[int, dict[str, Any]]] = []
        for row in rows:
            if resource is not None and resource not in row.resources:
                continue
            event = Event(row.detail_type, tuple(row.resources), dict(row.detail), row.time, row.source)
            found.append((row.id, envelope(event, event_id=row.event_id, account=row.account_id, region=row.region)))
        return found
