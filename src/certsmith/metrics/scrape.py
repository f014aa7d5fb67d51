"""``GET /metrics``: who may scrape, and the page, computed from the database off the event loop.

A scrape reads everything it needs from the database before the response starts (a failure there is a 503), and
writes the per-certificate lines while the page is being sent. The aggregate queries run on a second thread beside
the per-certificate read: the database computes them without holding the GIL, while the lines are Python's work.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Collection, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor

from prometheus_client.exposition import generate_latest
from prometheus_client.registry import CollectorRegistry

from ..domain.clock import Clock
from ..store.database import Database
from .certificates import series_chunks, series_rows
from .collector import DatabaseCollector
from .endpoints import endpoint_series
from .requests import ApiRequests
from .risk import at_risk_lines

__all__ = ["Metrics", "Page", "bearer_allows"]

log = logging.getLogger("certsmith.metrics")


class Page:
    """A page whose database reads are done (or, for the aggregates, under way): its bytes, a chunk at a time."""

    def __init__(self, rows: list[tuple[object, ...]], stamp: float, rest: Future[bytes]) -> None:
        self._rows, self._stamp, self._rest = rows, stamp, rest

    def __iter__(self) -> Iterator[bytes]:
        for text in series_chunks(self._rows, self._stamp):
            yield text.encode()
        yield at_risk_lines(self._rows).encode()
        yield self._rest.result()  # a failure here ends the response unfinished: the scraper sees a failed scrape


class Metrics:
    """The metrics of one API process: the database's families, this process's requests, the bearer check."""

    def __init__(self, database: Database, clock: Clock, *, token: str | None, certificate_series: int,
                 operations: Mapping[str, tuple[str, Collection[str]]]) -> None:
        self._db, self._clock, self._token, self._limit = database, clock, token or None, certificate_series
        self.requests = ApiRequests(operations)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(DatabaseCollector(database, clock, certificate_series))
        self.registry.register(self.requests)
        self._beside = ThreadPoolExecutor(max_workers=2, thread_name_prefix="certsmith-metrics")

    def allowed(self, authorization: str | None) -> bool:
        return bearer_allows(self._token, authorization)

    def prepare(self) -> Page:
        """Read the page's data (blocking: up to a few tenths of a second with 100,000 certificates)."""
        rest = self._beside.submit(self._rest)
        now = self._clock.now()
        try:
            rows = series_rows(self._db, self._limit, now)
        except Exception:
            log.exception("reading the certificates for /metrics failed")
            raise
        return Page(rows, now.timestamp(), rest)

    def render(self) -> bytes:
        """The whole page at once."""
        return b"".join(self.prepare())

    def _rest(self) -> bytes:
        try:
            return generate_latest(self.registry) + endpoint_series(self._db, self._clock.now()).encode()
        except Exception:
            log.exception("the aggregate queries of /metrics failed")
            raise


def bearer_allows(token: str | None, authorization: str | None) -> bool:
    """Open without a token; with one, only ``Authorization: Bearer <token>`` (compared in constant time)."""
    if token is None:
        return True
    scheme, _, given = (authorization or "").strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())
