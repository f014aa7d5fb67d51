"""Dispatch: each outbox event, in order, becomes one delivery per target of every enabled rule that matches it.

A sweep takes the undispatched outbox rows in id order, matches each against the enabled rules of its account and
region, inserts a PENDING ``event_deliveries`` row per (event, target) and marks the outbox row dispatched, all in
one transaction. Sweeps are serialised (SQLite's write lock; on PostgreSQL a transaction-scoped advisory lock that
a second sweeper does not wait for), so a target's deliveries get increasing ids in the order of the events.
Events written before any rule matched them are dispatched to nothing, as EventBridge drops them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from ...domain.clock import Clock
from ...domain.event_patterns import EventPattern, PatternError, RuleMatcher, compile_pattern
from ...domain.events import Event, envelope
from ...store.database import Database
from ...store.tables import Base, EventOutboxRow, EventRuleRow, EventTargetRow

__all__ = ["DISPATCH_LOCK", "EventDispatcher", "RuleTargets", "enabled_rules", "envelope_of"]

log = logging.getLogger("certsmith.events")

DISPATCH_LOCK = 0x63657274_0001  # PostgreSQL advisory lock key of the dispatcher ("cert" 1)
ENABLED = "ENABLED"
PENDING = "PENDING"
_DELIVERIES = Base.metadata.tables["event_deliveries"]


@dataclass(frozen=True, slots=True)
class RuleTargets:
    """An enabled rule, its compiled pattern and its targets (``event_targets.id``, in a stable order)."""

    rule_id: str
    name: str
    pattern: EventPattern
    targets: tuple[str, ...]


RuleSource = Callable[[Session, str, str], Sequence[RuleTargets]]


def enabled_rules(session: Session, account_id: str, region: str) -> list[RuleTargets]:
    """The enabled rules of one account and region with their targets; a rule whose stored pattern no longer
    compiles is left out (and logged)."""
    rules = session.execute(select(EventRuleRow.id, EventRuleRow.name, EventRuleRow.event_pattern).where(
        EventRuleRow.account_id == account_id, EventRuleRow.region == region, EventRuleRow.state == ENABLED)
        .order_by(EventRuleRow.name)).all()
    if not rules:
        return []
    targets: dict[str, list[str]] = {}
    query = (select(EventTargetRow.rule_id, EventTargetRow.id).where(EventTargetRow.rule_id.in_([r.id for r in rules]))
             .order_by(EventTargetRow.target_id))
    for rule_id, target in session.execute(query):
        targets.setdefault(rule_id, []).append(target)
    found = []
    for rule_id, name, text in rules:
        try:
            pattern = compile_pattern(text)
        except PatternError as error:
            log.error("event rule %s of account %s: its pattern does not compile (%s); it matches nothing",
                      name, account_id, error)
            continue
        found.append(RuleTargets(rule_id, name, pattern, tuple(targets.get(rule_id, ()))))
    return found


def envelope_of(row: EventOutboxRow) -> dict[str, Any]:
    """The EventBridge envelope of one outbox row."""
    event = Event(row.detail_type, tuple(row.resources), dict(row.detail), row.time, row.source)
    return envelope(event, event_id=row.event_id, account=row.account_id, region=row.region)


def delivery_values(outbox_id: int, target: str, account_id: str, now: datetime) -> dict[str, Any]:
    """A new PENDING delivery, due at once."""
    return {"outbox_id": outbox_id, "target_id": target, "account_id": account_id, "state": PENDING, "attempts": 0,
            "next_attempt_at": now, "last_error": None, "created_at": now, "delivered_at": None}


class EventDispatcher:
    """Turns outbox events into deliveries (the ``event dispatch`` task every worker runs)."""

    def __init__(self, database: Database, clock: Clock, rules: RuleSource = enabled_rules, batch: int = 500,
                 on_dispatched: Callable[[], object] | None = None) -> None:
        self._db, self._clock, self._rules, self._batch = database, clock, rules, batch
        self._on_dispatched = on_dispatched

    def sweep(self, max_batches: int = 20) -> int:
        """Dispatch what the outbox holds, a batch to a transaction; returns how many events were dispatched."""
        total = deliveries = 0
        for _ in range(max_batches):
            events, made = self._batch_once()
            total, deliveries = total + events, deliveries + made
            if events < self._batch:
                break
        if deliveries and self._on_dispatched is not None:
            self._on_dispatched()
        return total

    def _batch_once(self) -> tuple[int, int]:
        """(events dispatched, deliveries made) by one transaction."""
        with self._db.read() as session:  # idle sweeps take no write lock
            if session.scalar(select(EventOutboxRow.id).where(EventOutboxRow.delivered_at.is_(None)).limit(1)) is None:
                return 0, 0
        with self._db.transaction() as session:
            if session.get_bind().dialect.name == "postgresql":
                # One dispatcher at a time keeps delivery ids in outbox order; another sweeper does not wait.
                if not session.execute(select(func.pg_try_advisory_xact_lock(DISPATCH_LOCK))).scalar_one():
                    return 0, 0
            heads = session.execute(select(EventOutboxRow.id, EventOutboxRow.account_id, EventOutboxRow.region)
                                    .where(EventOutboxRow.delivered_at.is_(None))
                                    .order_by(EventOutboxRow.id).limit(self._batch)).all()
            if not heads:
                return 0, 0
            now = self._clock.now()
            matchers: dict[tuple[str, str], tuple[RuleMatcher[int], list[RuleTargets]] | None] = {}
            for scope in dict.fromkeys((account, region) for _, account, region in heads):
                rules = list(self._rules(session, *scope))
                matchers[scope] = (RuleMatcher([(i, r.pattern) for i, r in enumerate(rules)]), rules) if rules else None
            # Only events of a scope with rules are read whole; the others are marked dispatched by id.
            wanted = [id_ for id_, account, region in heads if matchers[(account, region)] is not None]
            rows = session.scalars(select(EventOutboxRow).where(EventOutboxRow.id.in_(wanted))
                                   .order_by(EventOutboxRow.id)).all() if wanted else []
            values: list[dict[str, Any]] = []
            for row in rows:
                found = matchers[(row.account_id, row.region)]
                assert found is not None
                matcher, rules = found
                targets: list[str] = []
                for index in sorted(matcher.match(envelope_of(row))):
                    targets += [t for t in rules[index].targets if t not in targets]
                values += [delivery_values(row.id, target, row.account_id, now) for target in targets]
            if values:
                session.execute(insert(_DELIVERIES), values)
            session.execute(update(EventOutboxRow).where(EventOutboxRow.id.in_([head.id for head in heads]))
                            .values(delivered_at=now))
            return len(heads), len(values)
