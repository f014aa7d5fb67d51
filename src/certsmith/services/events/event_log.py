"""The event log of an account: its events with their delivery states, the dead letters, and replays.

Replaying dead letters puts them back in their target's queue (PENDING, no attempts counted). Replaying past
events to a rule queues each event its pattern matches as a new delivery to each of its targets, behind what the
target already has, like EventBridge's replay; a delivery of that event still pending stays as it is.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from ...domain.clock import Clock
from ...domain.errors import InvalidNextTokenError, ResourceNotFoundError, ValidationError
from ...domain.event_patterns import PatternError, compile_pattern
from ...store.database import Database
from ...store.tables import Base, EventDeliveryRow, EventOutboxRow, EventRuleRow, EventTargetRow
from ..context import Caller
from .delivery import DEAD, DELIVERED, PENDING
from .dispatch import DISPATCH_LOCK, delivery_values, envelope_of

__all__ = ["MAX_REPLAY", "DeadLetter", "DeliveryState", "EventEntry", "EventLog", "parse_after"]

MAX_REPLAY = 10000  # events one replay of past events may cover
MAX_SCAN = 5000  # outbox rows one ListEvents call looks at before it answers with a NextToken
_DELIVERIES = Base.metadata.tables["event_deliveries"]
_DIGITS = re.compile(r"^[0-9]{1,18}$")


@dataclass(frozen=True, slots=True)
class DeliveryState:
    delivery_id: int
    rule: str | None  # None once the target was removed
    target_id: str | None
    state: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True)
class EventEntry:
    """One event: its outbox number, its envelope, whether it was dispatched to the rules, its deliveries."""

    id: int
    envelope: dict[str, Any]
    dispatched: bool
    deliveries: list[DeliveryState]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    delivery_id: int
    rule: str | None
    target_id: str | None
    event_id: str
    detail_type: str
    attempts: int
    last_error: str | None
    created_at: datetime


def parse_after(value: str | None) -> tuple[int, datetime | None]:
    """``After``: an event's number (from ListEvents) or a time (ISO 8601, or seconds since the epoch with a dot)."""
    if value is None or value == "":
        return 0, None
    text = value.strip()
    if _DIGITS.match(text):
        return int(text), None
    try:
        moment = datetime.fromtimestamp(float(text), UTC) if re.match(r"^[0-9]+\.[0-9]*$", text) else \
            datetime.fromisoformat(text.replace("z", "Z"))
    except (ValueError, OverflowError, OSError):
        raise ValidationError(f"After: {text[:40]!r} is neither an event number nor a time such as 2026-01-02T03:04:05Z",
                              field="After") from None
    return 0, moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _token(after: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode()


def _untoken(token: str | None) -> int:
    if token is None:
        return 0
    try:
        after = json.loads(base64.urlsafe_b64decode(token.encode()))["after"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        after = None
    if not isinstance(after, int) or isinstance(after, bool) or after < 0:
        raise InvalidNextTokenError("NextToken is not a token this service returned", field="NextToken")
    return after


class EventLog:
    """Reads an account's events and dead letters; replays."""

    def __init__(self, database: Database, clock: Clock) -> None:
        self._db, self._clock = database, clock

    # ---- reading ----------------------------------------------------------------------------------------

    def events(self, caller: Caller, *, source: str | None = None, detail_type: str | None = None,
               resource: str | None = None, after: str | None = None, limit: int | None = None,
               token: str | None = None) -> tuple[list[EventEntry], str | None]:
        """The caller's events in the order they were written (newest last), and a NextToken when there are more."""
        cursor, since = parse_after(after)
        cursor = max(cursor, _untoken(token))
        limit = limit or 100
        found: list[EventOutboxRow] = []
        scanned = 0
        with self._db.read() as session:
            while len(found) < limit and scanned < MAX_SCAN:
                query = (select(EventOutboxRow).where(EventOutboxRow.account_id == caller.account_id,
                                                      EventOutboxRow.region == caller.region,
                                                      EventOutboxRow.id > cursor)
                         .order_by(EventOutboxRow.id).limit(min(MAX_SCAN - scanned, max(limit, 200))))
                if source is not None:
                    query = query.where(EventOutboxRow.source == source)
                if detail_type is not None:
                    query = query.where(EventOutboxRow.detail_type == detail_type)
                if since is not None:
                    query = query.where(EventOutboxRow.time >= since)
                rows = session.scalars(query).all()
                if not rows:
                    cursor = -1
                    break
                for row in rows:
                    scanned += 1
                    cursor = row.id
                    if resource is None or resource in row.resources:
                        found.append(row)
                        if len(found) == limit:
                            break
            states = self._states(session, [row.id for row in found])
        more = _token(cursor) if cursor >= 0 and (len(found) == limit or scanned >= MAX_SCAN) else None
        entries = [EventEntry(row.id, envelope_of(row), row.delivered_at is not None, states.get(row.id, []))
                   for row in found]
        return entries, more

    @staticmethod
    def _states(session: Session, outbox_ids: Sequence[int]) -> dict[int, list[DeliveryState]]:
        states: dict[int, list[DeliveryState]] = {}
        for start in range(0, len(outbox_ids), 500):
            query = (select(EventDeliveryRow, EventRuleRow.name, EventTargetRow.target_id)
                     .outerjoin(EventTargetRow, EventTargetRow.id == EventDeliveryRow.target_id)
                     .outerjoin(EventRuleRow, EventRuleRow.id == EventTargetRow.rule_id)
                     .where(EventDeliveryRow.outbox_id.in_(outbox_ids[start:start + 500]))
                     .order_by(EventDeliveryRow.id))
            for row, rule, target in session.execute(query).all():
                states.setdefault(row.outbox_id, []).append(DeliveryState(
                    row.id, rule, target, row.state, row.attempts, row.last_error,
                    row.next_attempt_at if row.state == PENDING else None, row.delivered_at))
        return states

    def dead_letters(self, caller: Caller, *, rule: str | None = None, target_id: str | None = None,
                     limit: int | None = None, token: str | None = None) -> tuple[list[DeadLetter], str | None]:
        """The caller's dead letters, oldest first."""
        limit = limit or 100
        after = _untoken(token)
        with self._db.read() as session:
            if rule is not None:
                self._rule(session, caller, rule)
            query = (select(EventDeliveryRow, EventRuleRow.name, EventTargetRow.target_id, EventOutboxRow.event_id,
                            EventOutboxRow.detail_type)
                     .join(EventOutboxRow, EventOutboxRow.id == EventDeliveryRow.outbox_id)
                     .outerjoin(EventTargetRow, EventTargetRow.id == EventDeliveryRow.target_id)
                     .outerjoin(EventRuleRow, EventRuleRow.id == EventTargetRow.rule_id)
                     .where(EventDeliveryRow.state == DEAD, EventDeliveryRow.account_id == caller.account_id,
                            EventOutboxRow.region == caller.region, EventDeliveryRow.id > after)
                     .order_by(EventDeliveryRow.id).limit(limit + 1))
            if rule is not None:
                query = query.where(EventRuleRow.name == rule)
            if target_id is not None:
                query = query.where(EventTargetRow.target_id == target_id)
            rows = session.execute(query).all()
        letters = [DeadLetter(row.id, name, target, event_id, detail_type, row.attempts, row.last_error, row.created_at)
                   for row, name, target, event_id, detail_type in rows[:limit]]
        return letters, _token(letters[-1].delivery_id) if len(rows) > limit else None

    # ---- replay -----------------------------------------------------------------------------------------

    def replay_dead(self, caller: Caller, *, delivery_ids: Sequence[int] | None = None, rule: str | None = None,
                    target_id: str | None = None, everything: bool = False) -> list[int]:
        """Put dead letters back in their queues (PENDING, attempts 0): the given deliveries (DEAD or DELIVERED, to
        send again), those of a rule (and one of its targets), or with ``everything`` all of the account's."""
        if target_id is not None and rule is None:
            raise ValidationError("TargetId: is only taken with Rule", field="TargetId")
        chosen = [name for name, given in (("DeliveryIds", delivery_ids is not None), ("Rule", rule is not None),
                                           ("All", everything)) if given]
        if len(chosen) != 1:
            got = ", ".join(chosen) or "none"
            raise ValidationError("ReplayEvents: give exactly one of DeliveryIds, Rule (with TargetId if you like) or "
                                  f"All, or Rule with EventIds or From/To to replay past events (got {got})",
                                  field="DeliveryIds")
        now = self._clock.now()
        with self._db.transaction() as session:
            query = (select(EventDeliveryRow.id, EventDeliveryRow.state, EventDeliveryRow.target_id)
                     .join(EventOutboxRow, EventOutboxRow.id == EventDeliveryRow.outbox_id)
                     .where(EventDeliveryRow.account_id == caller.account_id, EventOutboxRow.region == caller.region))
            if delivery_ids is not None:
                wanted = sorted(set(delivery_ids))
                if not wanted:
                    raise ValidationError("DeliveryIds: give at least one delivery id", field="DeliveryIds")
                rows = session.execute(query.where(EventDeliveryRow.id.in_(wanted))).all()
                missing = sorted(set(wanted) - {row.id for row in rows})
                if missing:
                    raise ResourceNotFoundError(f"DeliveryIds: no delivery {', '.join(map(str, missing[:10]))} in this "
                                                "account and region", field="DeliveryIds")
                rows = [row for row in rows if row.state in (DEAD, DELIVERED)]
            else:
                query = query.where(EventDeliveryRow.state == DEAD)
                if rule is not None:
                    rule_row = self._rule(session, caller, rule)
                    targets = select(EventTargetRow.id).where(EventTargetRow.rule_id == rule_row.id)
                    if target_id is not None:
                        self._target(session, rule_row, target_id)
                        targets = targets.where(EventTargetRow.target_id == target_id)
                    query = query.where(EventDeliveryRow.target_id.in_(targets))
                rows = session.execute(query).all()
            ids = sorted(row.id for row in rows)
            for start in range(0, len(ids), 500):
                session.execute(update(EventDeliveryRow).where(EventDeliveryRow.id.in_(ids[start:start + 500]))
                                .values(state=PENDING, attempts=0, last_error=None, next_attempt_at=now, created_at=now,
                                        delivered_at=None))
            self._unhold(session, {row.target_id for row in rows})
        return ids

    def replay_past(self, caller: Caller, rule: str, *, target_id: str | None = None,
                    event_ids: Sequence[str] | None = None, start: datetime | None = None,
                    end: datetime | None = None) -> list[int]:
        """Queue again the past events (by id, or written from ``start`` to ``end``) that the rule's pattern matches,
        to each of its targets (or one); returns the new delivery ids."""
        if event_ids is not None and (start is not None or end is not None):
            raise ValidationError("EventIds: give EventIds or From/To, not both", field="EventIds")
        if event_ids is None and start is None:
            raise ValidationError("From: replaying past events needs EventIds or From (and To, default now)", field="From")
        now = self._clock.now()
        end = end or now
        if start is not None and start > end:
            raise ValidationError("From: is after To", field="From")
        with self._db.transaction() as session:
            if session.get_bind().dialect.name == "postgresql":  # new deliveries in order, as the dispatcher's
                session.execute(select(func.pg_advisory_xact_lock(DISPATCH_LOCK)))
            rule_row = self._rule(session, caller, rule)
            try:
                pattern = compile_pattern(rule_row.event_pattern)
            except PatternError as error:
                raise ValidationError(f"Rule: the pattern of rule {rule} does not compile ({error})", field="Rule") from None
            targets = ([self._target(session, rule_row, target_id).id] if target_id is not None else
                       list(session.scalars(select(EventTargetRow.id).where(EventTargetRow.rule_id == rule_row.id)
                                            .order_by(EventTargetRow.target_id))))
            query = (select(EventOutboxRow).where(EventOutboxRow.account_id == caller.account_id,
                                                  EventOutboxRow.region == caller.region,
                                                  EventOutboxRow.delivered_at.is_not(None))
                     .order_by(EventOutboxRow.id).limit(MAX_REPLAY + 1))
            if event_ids is not None:
                wanted = set(event_ids)
                if not wanted or len(wanted) > 1000:
                    raise ValidationError("EventIds: give 1 to 1000 event ids", field="EventIds")
                query = query.where(EventOutboxRow.event_id.in_(sorted(wanted)))
            else:
                assert start is not None
                query = query.where(EventOutboxRow.time >= start, EventOutboxRow.time <= end)
            rows = session.scalars(query).all()
            if event_ids is not None:
                missing = sorted(set(event_ids) - {row.event_id for row in rows})
                if missing:
                    raise ResourceNotFoundError(f"EventIds: no event {', '.join(missing[:5])} in this account and region "
                                                "(or not dispatched yet)", field="EventIds")
            elif len(rows) > MAX_REPLAY:
                raise ValidationError(f"From: more than {MAX_REPLAY} events were written from From to To; replay a "
                                      "shorter span", field="From")
            matched = [row for row in rows if pattern.matches(envelope_of(row))]
            if not matched or not targets:
                return []
            queued = select(EventDeliveryRow.outbox_id, EventDeliveryRow.target_id).where(
                EventDeliveryRow.target_id.in_(targets), EventDeliveryRow.state == PENDING,
                EventDeliveryRow.outbox_id.in_([row.id for row in matched]))
            pending: set[tuple[int, str]] = {(outbox_id, target) for outbox_id, target in session.execute(queued)}
            values = [delivery_values(row.id, target, caller.account_id, now) for row in matched for target in targets
                      if (row.id, target) not in pending]
            for begin in range(0, len(matched), 500):
                chunk = [row.id for row in matched[begin:begin + 500]]
                session.execute(delete(EventDeliveryRow).where(EventDeliveryRow.outbox_id.in_(chunk),
                                                               EventDeliveryRow.target_id.in_(targets),
                                                               EventDeliveryRow.state != PENDING))
            made: list[int] = []
            if values:
                result = session.execute(insert(_DELIVERIES).returning(_DELIVERIES.c.id, sort_by_parameter_order=True),
                                         values)
                made = [int(id_) for id_ in result.scalars().all()]
            self._unhold(session, set(targets))
        return made

    # ---- helpers ----------------------------------------------------------------------------------------

    @staticmethod
    def _rule(session: Session, caller: Caller, name: str) -> EventRuleRow:
        row = session.scalars(select(EventRuleRow).where(EventRuleRow.account_id == caller.account_id,
                                                         EventRuleRow.region == caller.region,
                                                         EventRuleRow.name == name)).first()
        if row is None:
            raise ResourceNotFoundError(f"Rule: no rule named {name!r} in this account and region", field="Rule")
        return row

    @staticmethod
    def _target(session: Session, rule: EventRuleRow, target_id: str) -> EventTargetRow:
        row = session.scalars(select(EventTargetRow).where(EventTargetRow.rule_id == rule.id,
                                                           EventTargetRow.target_id == target_id)).first()
        if row is None:
            raise ResourceNotFoundError(f"TargetId: rule {rule.name} has no target {target_id!r}", field="TargetId")
        return row

    @staticmethod
    def _unhold(session: Session, targets: set[str]) -> None:
        """Targets whose queue waited for a retry take the replayed deliveries at once."""
        if targets:
            session.execute(update(EventTargetRow).where(EventTargetRow.id.in_(sorted(targets)),
                                                         EventTargetRow.lease_owner.is_(None))
                            .values(lease_until=None))
