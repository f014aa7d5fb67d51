"""``GET /metrics``: who may scrape, and the page, computed from the database off the event loop."""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Collection, Mapping
from concurrent.futures import ThreadPoolExecutor

from prometheus_client.exposition import generate_latest
from prometheus_client.registry import CollectorRegistry

from ..domain.clock import Clock
from ..store.database import Database
from .certificates import certificate_series
from .collector import DatabaseCollector
from .endpoints import endpoint_series
from .requests import ApiRequests

__all__ = ["Metrics", "bearer_allows"]

log = logging.getLogger("certsmith.metrics")


class Metrics:
    """The metrics of one API process: the database's families, this process's requests, the bearer check."""

    def __init__(self, database: Database, clock: Clock, *, token: str | None, certificate_series: int,
                 operations: Mapping[str, tuple[str, Collection[str]]]) -> None:
        self._db, self._clock, self._token, self._limit = database, clock, token or None, certificate_series
        self.requests = ApiRequests(operations)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(DatabaseCollector(database, clock, certificate_series))
        self.registry.register(self.requests)
        self._running: asyncio.Future[bytes] | None = None

    def allowed(self, authorization: str | None) -> bool:
        return bearer_allows(self._token, authorization)

    def render(self) -> bytes:
        """The whole page in the text format (blocking). The aggregate queries run on a second thread meanwhile: the
        database computes them without holding the GIL, while the per-certificate lines are Python's work."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="certsmith-metrics") as pool:
            aggregates = pool.submit(self._aggregates)
            series = certificate_series(self._db, self._clock.now(), self._limit)
            return aggregates.result() + series.encode()

    def _aggregates(self) -> bytes:
        return generate_latest(self.registry) + endpoint_series(self._db, self._clock.now()).encode()

    async def scrape(self) -> bytes:
        """The page, rendered on a thread; scrapes that arrive while one renders share its page."""
        if self._running is None:
            running = asyncio.ensure_future(asyncio.to_thread(self.render))
            running.add_done_callback(self._finished)
            self._running = running
        return await asyncio.shield(self._running)

    def _finished(self, future: asyncio.Future[bytes]) -> None:
        if self._running is future:
            self._running = None
        if not future.cancelled() and future.exception() is not None:
            log.error("rendering /metrics failed", exc_info=future.exception())


def bearer_allows(token: str | None, authorization: str | None) -> bool:
    """Open without a token; with one, only ``Authorization: Bearer <token>`` (compared in constant time)."""
    if token is None:
        return True
    scheme, _, given = (authorization or "").strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())
