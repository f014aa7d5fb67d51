"""Delivery: send each target's PENDING deliveries in order, at least once, with retries, leases and dead letters.

A sweep leases targets with due deliveries (``event_targets.lease_owner/lease_until``; ``FOR UPDATE SKIP LOCKED``
on PostgreSQL), then sends each leased target's queue oldest first, outside any transaction. After each send the
delivery is marked DELIVERED, or its failure is counted and the target's queue waits (the head of the line holds
the rest back, so order is kept) until the next attempt: 10 s doubling, at most 15 minutes, or what the receiver
asked for (Retry-After). Once the attempts reach the target's ``max_attempts`` (default 10), the delivery is older
than ``max_age_seconds`` (default 24 hours) or the failure is not worth retrying, the delivery is DEAD (a dead
letter) and the next one goes. The lease is renewed with every mark; a worker that dies loses its lease when it
runs out and another takes the queue over, sending again what was sent but not marked.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from ...domain.clock import Clock
from ...notify.common import DeliveryFailed
from ...store.database import Database
from ...store.tables import EventDeliveryRow, EventOutboxRow, EventRuleRow, EventTargetRow
from .dispatch import PENDING, envelope_of

__all__ = ["DEAD", "DELIVERED", "PENDING", "EventDelivery", "LeasedTarget", "RetryPolicy", "Sender"]

log = logging.getLogger("certsmith.events")

DELIVERED = "DELIVERED"
DEAD = "DEAD"
MAX_ERROR = 1000  # characters of a failure kept in last_error
_QUEUE_BATCH = 100


class Sender(Protocol):
    """What sends one event to one target (``notify.targets.Notifiers``)."""

    def send(self, kind: str, config: Mapping[str, Any], secret: str | None, envelope: dict[str, Any]) -> None: ...


@dataclass(frozen=True, slots=True)
class LeasedTarget:
    """A target this worker holds the lease of, with what sending to it needs."""

    id: str  # event_targets.id
    rule_id: str
    rule: str  # the rule's name
    account_id: str
    region: str
    target_id: str  # the Id the user gave it
    kind: str
    config: dict[str, Any]
    sealed: bytes | None


SecretOpener = Callable[[LeasedTarget], str | None]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When to try a failed delivery again, and when to give it up."""

    first: timedelta = timedelta(seconds=10)
    cap: timedelta = timedelta(minutes=15)
    max_attempts: int = 10
    max_age: timedelta = timedelta(hours=24)

    def of(self, config: Mapping[str, Any]) -> RetryPolicy:
        """This policy with a target's own ``max_attempts`` and ``max_age_seconds``."""
        attempts, age = config.get("max_attempts"), config.get("max_age_seconds")
        return RetryPolicy(self.first, self.cap, int(attempts) if attempts else self.max_attempts,
                           timedelta(seconds=float(age)) if age else self.max_age)

    def delay(self, attempts: int, retry_after: float | None = None) -> timedelta:
        """The wait after the ``attempts``-th failure: ``first`` doubling, capped; at least a Retry-After."""
        wait: timedelta = min(self.first * (2 ** min(max(attempts - 1, 0), 20)), self.cap)
        if retry_after is not None:
            wait = max(wait, min(timedelta(seconds=retry_after), self.cap))
        return wait


@dataclass(frozen=True, slots=True)
class _Item:
    id: int
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    envelope: dict[str, Any]


class EventDelivery:
    """The ``event delivery`` task: leases targets and sends their queues; one per process (``kick`` runs it off the
    worker loop, on a thread of its own, so a slow receiver never holds up jobs)."""

    def __init__(self, database: Database, clock: Clock, sender: Sender, open_secret: SecretOpener, *,
                 lease: timedelta = timedelta(minutes=5), policy: RetryPolicy | None = None, parallel: int = 8,
                 owner: str | None = None) -> None:
        self._db, self._clock, self._sender, self._open_secret = database, clock, sender, open_secret
        self._lease, self._policy, self._parallel = lease, policy or RetryPolicy(), max(1, parallel)
        self.owner = owner or f"events-{uuid.uuid4().hex[:12]}"
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._running = self._again = False

    def sweep(self) -> int:
        """Lease the targets with due deliveries and send their queues; returns how many sends were made."""
        if self._stop.is_set():
            return 0
        targets = self._lease_targets(self._clock.now())
        if len(targets) <= 1:
            return sum(self._drain(target) for target in targets)
        with ThreadPoolExecutor(max_workers=min(self._parallel, len(targets)), thread_name_prefix="event-send") as pool:
            return sum(pool.map(self._drain, targets))

    def kick(self) -> None:
        """Start sweeping on a thread of this process unless one already does; returns at once."""
        with self._lock:
            self._again = True  # a running sweep looks once more before it ends
            if self._stop.is_set() or self._running:
                return
            self._running = True
            self._thread = threading.Thread(target=self._pump, name="event-delivery", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop after the sends under way; their targets' leases are given back."""
        self._stop.set()
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _pump(self) -> None:
        """Sweep while there is work, or while kicks keep coming."""
        try:
            while not self._stop.is_set():
                with self._lock:
                    self._again = False
                sent = self.sweep()
                with self._lock:
                    if not sent and not self._again:
                        self._running = False
                        return
        except Exception:  # the database may be briefly unavailable; the next kick tries again
            log.exception("%s: event delivery failed", self.owner)
        with self._lock:
            self._running = False

    # ---- leases -----------------------------------------------------------------------------------------

    def _lease_targets(self, now: datetime) -> list[LeasedTarget]:
        due = (select(EventDeliveryRow.id).where(EventDeliveryRow.target_id == EventTargetRow.id,
                                                 EventDeliveryRow.state == PENDING,
                                                 EventDeliveryRow.next_attempt_at <= now).exists())
        query = (select(EventTargetRow, EventRuleRow.name, EventRuleRow.account_id, EventRuleRow.region)
                 .join(EventRuleRow, EventRuleRow.id == EventTargetRow.rule_id)
                 .where(or_(EventTargetRow.lease_until.is_(None), EventTargetRow.lease_until <= now), due)
                 .order_by(EventTargetRow.id).limit(self._parallel))
        with self._db.read() as session:  # idle sweeps take no write lock
            if not session.execute(query).first():
                return []
        with self._db.transaction() as session:
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True, of=EventTargetRow)
            found = [LeasedTarget(t.id, t.rule_id, name, account, region, t.target_id, t.kind, dict(t.config or {}),
                                  t.secret) for t, name, account, region in session.execute(query).all()]
            if found:
                session.execute(update(EventTargetRow).where(EventTargetRow.id.in_([t.id for t in found]))
                                .values(lease_owner=self.owner, lease_until=now + self._lease))
        return found

    def _renew(self, session: Session, target: LeasedTarget, now: datetime) -> bool:
        result = session.execute(update(EventTargetRow).where(EventTargetRow.id == target.id,
                                                              EventTargetRow.lease_owner == self.owner)
                                 .values(lease_until=now + self._lease))
        return bool(getattr(result, "rowcount", 0))

    def _release(self, target: LeasedTarget, until: datetime | None) -> None:
        """Give the lease back; ``until``: nobody takes the target before then (its head waits for a retry)."""
        with self._db.transaction() as session:
            session.execute(update(EventTargetRow).where(EventTargetRow.id == target.id,
                                                         EventTargetRow.lease_owner == self.owner)
                            .values(lease_owner=None, lease_until=until))

    # ---- one target's queue -----------------------------------------------------------------------------

    def _drain(self, target: LeasedTarget) -> int:
        """Send the target's queue in order until it is empty or its head must wait; returns the sends made."""
        sends, after, until = 0, 0, None
        policy = self._policy.of(target.config)
        try:
            while not self._stop.is_set():
                batch = self._queue(target.id, after)
                if not batch:
                    break
                for item in batch:
                    if self._stop.is_set():
                        return sends
                    after = item.id
                    now = self._clock.now()
                    if item.next_attempt_at > now:
                        until = item.next_attempt_at
                        return sends
                    if now - item.created_at >= policy.max_age:
                        self._give_up(target, item, f"not delivered within {_span(policy.max_age)}", now)
                        continue
                    failure = self._send(target, item)
                    sends += 1
                    if failure is None:
                        if not self._delivered(target, item):
                            return sends  # the lease was lost: whoever holds it now goes on
                        continue
                    until = self._failed(target, item, failure, policy)
                    if until is not None:
                        return sends
            return sends
        finally:
            self._release(target, until)

    def _queue(self, target_id: str, after: int) -> list[_Item]:
        query = (select(EventDeliveryRow.id, EventDeliveryRow.attempts, EventDeliveryRow.next_attempt_at,
                        EventDeliveryRow.created_at, EventOutboxRow)
                 .join(EventOutboxRow, EventOutboxRow.id == EventDeliveryRow.outbox_id)
                 .where(EventDeliveryRow.target_id == target_id, EventDeliveryRow.state == PENDING,
                        EventDeliveryRow.id > after)
                 .order_by(EventDeliveryRow.id).limit(_QUEUE_BATCH))
        with self._db.read() as session:
            return [_Item(id_, attempts, next_at, created, envelope_of(row))
                    for id_, attempts, next_at, created, row in session.execute(query).all()]

    def _send(self, target: LeasedTarget, item: _Item) -> DeliveryFailed | None:
        try:
            secret = self._open_secret(target)
            self._sender.send(target.kind, target.config, secret, item.envelope)
        except DeliveryFailed as failure:
            return failure
        except Exception as error:  # noqa: BLE001 - a target's failure never stops the others; its text may hold secrets
            log.error("event delivery %s to %s/%s: %s", item.id, target.rule, target.target_id, type(error).__name__)
            return DeliveryFailed(f"certsmith could not send the event ({type(error).__name__})", retryable=True)
        return None

    def _delivered(self, target: LeasedTarget, item: _Item) -> bool:
        """Mark DELIVERED and renew the lease; False when the lease is no longer this worker's."""
        now = self._clock.now()
        with self._db.transaction() as session:
            session.execute(update(EventDeliveryRow).where(EventDeliveryRow.id == item.id,
                                                           EventDeliveryRow.state == PENDING)
                            .values(state=DELIVERED, delivered_at=now, attempts=EventDeliveryRow.attempts + 1))
            return self._renew(session, target, now)

    def _failed(self, target: LeasedTarget, item: _Item, failure: DeliveryFailed, policy: RetryPolicy) -> datetime | None:
        """Count a failed attempt; returns when the next one is due, or None when the delivery is now DEAD."""
        now = self._clock.now()
        attempts = item.attempts + 1
        message = failure.message[:MAX_ERROR]
        if not failure.retryable or attempts >= policy.max_attempts:
            self._give_up(target, item, message, now, attempts)
            return None
        due = now + policy.delay(attempts, failure.retry_after)
        if due - item.created_at >= policy.max_age:
            self._give_up(target, item, message, now, attempts)
            return None
        log.info("event delivery %s to %s/%s failed (attempt %s, next at %s): %s", item.id, target.rule,
                 target.target_id, attempts, due.isoformat(timespec="seconds"), message)
        with self._db.transaction() as session:
            session.execute(update(EventDeliveryRow).where(EventDeliveryRow.id == item.id,
                                                           EventDeliveryRow.state == PENDING)
                            .values(attempts=attempts, last_error=message, next_attempt_at=due))
        return due

    def _give_up(self, target: LeasedTarget, item: _Item, message: str, now: datetime, attempts: int | None = None) -> None:
        log.warning("event delivery %s to %s/%s is a dead letter after %s attempts: %s", item.id, target.rule,
                    target.target_id, attempts if attempts is not None else item.attempts, message)
        values: dict[str, Any] = {"state": DEAD, "last_error": message[:MAX_ERROR]}
        if attempts is not None:
            values["attempts"] = attempts
        with self._db.transaction() as session:
            session.execute(update(EventDeliveryRow).where(EventDeliveryRow.id == item.id,
                                                           EventDeliveryRow.state == PENDING).values(**values))
            self._renew(session, target, now)


def _span(age: timedelta) -> str:
    seconds = int(age.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} s"
