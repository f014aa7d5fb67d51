"""Probing monitored endpoints: the worker's sweep hands due endpoints to a small thread pool; ProbeEndpoint probes
one at once. A probe runs outside any transaction; its result, and the events it raises, are one short transaction.

Claiming an endpoint moves its ``next_probe_at`` a lease ahead and sets ``lease_until`` (``FOR UPDATE SKIP LOCKED``
on PostgreSQL), so each due endpoint goes to one worker; if that worker dies, the endpoint is due again when the
lease has passed. Recording the result plans the next probe an interval later.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from sqlalchemy import select, update

from ...domain.clock import Clock
from ...domain.endpoints import Observation, Verdict, evaluate, events_for
from ...store.database import Database
from ...store.tables import EndpointRow
from ...tls.probe import PROBE_TIMEOUT, probe_tls
from ..context import Caller
from ..events.outbox import EventOutbox
from .registry import EndpointRecord, EndpointRegistry, ProbeTarget

__all__ = ["LEASE", "EndpointProber", "Probe"]

log = logging.getLogger("certsmith.endpoints")

LEASE = timedelta(seconds=60)  # a claimed endpoint is its worker's this long (several probe timeouts)
Probe = Callable[[str, int, str, "str | None", float], Observation]


class EndpointProber:
    def __init__(self, database: Database, clock: Clock, registry: EndpointRegistry, outbox: EventOutbox, *,
                 threads: int = 8, timeout: float = PROBE_TIMEOUT, probe: Probe = probe_tls) -> None:
        self._db, self._clock, self._registry, self._outbox = database, clock, registry, outbox
        self._threads, self._timeout, self._probe = threads, timeout, probe
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._in_flight = 0  # claimed (or being claimed) and not yet recorded
        self._backlog = False  # the last claim took all it asked for: more may be due
        self._closed = False

    # -- the worker's sweep -----------------------------------------------------------------------------------------
    def sweep(self) -> int:
        """Claim the due endpoints the pool has room for and start probing them; returns how many (it does not wait).

        While a claim takes all it asked for, the pool's threads claim more themselves as they free up, so a backlog
        is worked through between sweeps without holding up the worker's loop.
        """
        with self._lock:
            room = 0 if self._closed else 2 * self._threads - self._in_flight
            if room <= 0:
                return 0
            self._in_flight += room  # reserved: a sweep and a refilling thread never claim the same room twice
        try:
            claimed = self.claim(self._clock.now(), room)
        except BaseException:
            with self._lock:
                self._in_flight -= room
            raise
        with self._lock:
            self._in_flight -= room - len(claimed)
            self._backlog = len(claimed) == room
            if claimed and self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self._threads, thread_name_prefix="endpoint-probe")
            pool = self._pool
        if pool is not None:
            for endpoint_id in claimed:
                pool.submit(self._run_claimed, endpoint_id)
        return len(claimed)

    def claim(self, now: datetime, limit: int) -> list[str]:
        """Take up to ``limit`` due endpoints: their next probe moves a lease ahead, so no other worker takes them."""
        with self._db.transaction() as session:
            query = (select(EndpointRow.id).where(EndpointRow.next_probe_at <= now)
                     .order_by(EndpointRow.next_probe_at).limit(limit))
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            ids = list(session.scalars(query))
            if ids:
                session.execute(update(EndpointRow).where(EndpointRow.id.in_(ids))
                                .values(next_probe_at=now + LEASE, lease_until=now + LEASE),
                                execution_options={"synchronize_session": False})
        return ids

    def close(self) -> None:
        """Let the probes under way finish and stop the pool; claimed endpoints not probed are due after the lease."""
        with self._lock:
            pool, self._pool, self._closed = self._pool, None, True
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _run_claimed(self, endpoint_id: str) -> None:
        try:
            target = self._registry.target(endpoint_id)
            if target is not None:
                self.probe(target)
        except Exception:  # the database may be briefly unavailable: the lease runs out and it is probed again
            log.exception("probing endpoint %s failed", endpoint_id)
        finally:
            with self._lock:
                self._in_flight -= 1
                refill = self._backlog and not self._closed and self._in_flight <= self._threads
        if refill:
            try:
                self.sweep()
            except Exception as exc:  # noqa: BLE001 - the worker's next sweep tries again
                log.warning("claiming due endpoints failed: %s", exc)

    # -- one probe --------------------------------------------------------------------------------------------------
    def probe(self, target: ProbeTarget) -> Verdict:
        """Probe now and record the result (and its events); returns the verdict."""
        facts = target.facts
        observation = self._probe(facts.host, facts.port, facts.server_name, target.trust_pem, self._timeout)
        now = self._clock.now()
        verdict = evaluate(observation, facts.server_name, target.expected, now)
        with self._db.transaction() as session:
            query = select(EndpointRow).where(EndpointRow.id == facts.endpoint_id)
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update()
            row = session.scalar(query)
            if row is None:  # removed while it was probed
                return verdict
            events = events_for(facts, row.status, row.probed_at, verdict, target.expected, now, row.created_at)
            row.status, row.probed_at, row.error = verdict.status, now, verdict.message
            row.handshake_ms = round(observation.handshake_ms, 3) if observation.handshake_ms is not None else None
            row.served_serial, row.served_not_after = verdict.served_serial, verdict.served_not_after
            row.chain = [entry.to_json() for entry in verdict.chain] if verdict.chain else None
            row.hostname_match, row.trusted = verdict.hostname_match, verdict.trusted
            row.next_probe_at, row.lease_until = now + timedelta(seconds=row.interval_seconds), None
            for event in events:
                self._outbox.add(session, row.account_id, row.region, event, now)
        if events:
            log.info("endpoint %s (%s:%s) is %s", facts.endpoint_id, facts.host, facts.port, verdict.status)
        return verdict

    def probe_now(self, caller: Caller, endpoint_id: str) -> EndpointRecord:
        """ProbeEndpoint: probe at once (the network: call it off the event loop) and return the endpoint."""
        target = self._registry.target_of(caller, endpoint_id)
        self.probe(target)
        return self._registry.describe(caller, target.facts.endpoint_id)
