"""What the database says, as Prometheus metric families: a few aggregate queries, at scrape time.

Several API and worker processes share one database, so the database is the truth: nothing here is counted in
memory. Every query groups in SQL and hands back a few rows; durations are bucketed in SQL too (each row's bucket by
one ``CASE``, grouped on; Python makes the buckets cumulative).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from ..domain.clock import Clock
from ..store.database import Database
from ..store.event_tables import EventDeliveryRow
from ..store.jobs import READY
from ..store.renewal_tables import CertificateVersionRow
from ..store.tables import CertificateRow, JobRow
from .sql import epoch_seconds, seconds_between

__all__ = ["DELIVERY_STATES", "ISSUANCE_BUCKETS", "VALIDATION_BUCKETS", "DatabaseCollector", "bucket_index",
           "histogram"]

ISSUANCE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
                    14400.0, 86400.0, 259200.0)
# Validation waits for people (a DNS record, an approval mail) up to 72 hours; seconds when the records are there.
VALIDATION_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 43200.0, 86400.0, 259200.0)
DELIVERY_STATES = ("PENDING", "DELIVERED", "DEAD")


class DatabaseCollector(Collector):
    """The aggregate families of /metrics (the per-certificate and per-endpoint series are written as text)."""

    def __init__(self, database: Database, clock: Clock, series_cap: int) -> None:
        self._db, self._clock, self._cap = database, clock, max(0, series_cap)

    def describe(self) -> list[Metric]:
        return []  # registering must not query the database

    def collect(self) -> Iterator[Metric]:
        now = self._clock.now()
        sqlite = self._db.is_sqlite
        with self._db.read() as session:
            yield from self._certificates(session, sqlite)
            yield self._renewals(session)
            yield from self._jobs(session, now, sqlite)
            yield from self._deliveries(session)

    def _certificates(self, session: Session, sqlite: bool) -> Iterator[Metric]:
        """Counts by type and status, renewals failed or waiting, issuance and validation durations, how many have a
        NotAfter.

        One pass over the certificates (the widest table: each scan of it is most of a query's time) with their
        first version beside them, grouped in SQL; Python adds up the few rows by family. Validation is measured for
        the first request: from ``created_at`` to ``validated_at`` when that is not after the first version was
        issued (a later ``validated_at``, a renewal's, is not counted).
        """
        c, v = CertificateRow, CertificateVersionRow
        status = c.renewal["RenewalStatus"].as_string()
        failing = case((c.renewal.is_(None), None),
                       (status.in_(("FAILED", "PENDING_VALIDATION")), status),
                       (and_(status == "PENDING_AUTO_RENEWAL", c.renewal["RenewalStatusReason"].as_string().is_not(None)),
                        status), else_=None)
        issuance = case((v.action == "ISSUANCE", seconds_between(v.issued_at, c.created_at, sqlite)), else_=None)
        validation = case((and_(c.validated_at.is_not(None), or_(v.issued_at.is_(None), c.validated_at <= v.issued_at)),
                           seconds_between(c.validated_at, c.created_at, sqlite)), else_=None)
        # Materialized, so that each row's durations are computed once rather than once per use.
        each = (select(c.type.label("type"), c.status.label("status"), failing.label("failing"),
                       c.not_after.label("not_after"), issuance.label("seconds"), validation.label("validation"))
                .select_from(c).outerjoin(v, and_(v.certificate_id == c.id, v.version == 1))
                .cte("each_certificate").prefix_with("MATERIALIZED"))
        issued_in = bucket_index(each.c.seconds, ISSUANCE_BUCKETS).label("issued_in")
        validated_in = bucket_index(each.c.validation, VALIDATION_BUCKETS).label("validated_in")
        rows = session.execute(
            select(each.c.type, each.c.status, each.c.failing, issued_in, validated_in, func.count(),
                   func.count(each.c.not_after), func.sum(each.c.seconds), func.sum(each.c.validation))
            .group_by(each.c.type, each.c.status, each.c.failing, issued_in, validated_in)).all()
        by_status: dict[tuple[str, str], int] = {}
        by_failure: dict[tuple[str, str], int] = {}
        durations: dict[str, list[float]] = {}
        validations: dict[str, list[float]] = {}
        with_expiry = 0
        for kind, state, renewal, issued, validated, count, expiring, issuing, validating in rows:
            by_status[kind, state] = by_status.get((kind, state), 0) + count
            if renewal is not None:
                by_failure[kind, renewal] = by_failure.get((kind, renewal), 0) + count
            with_expiry += expiring
            _observe(durations, kind, issued, count, issuing, len(ISSUANCE_BUCKETS))
            _observe(validations, kind, validated, count, validating, len(VALIDATION_BUCKETS))
        counts = GaugeMetricFamily("certsmith_certificates", "ACM certificates by type and status.",
                                   labels=["type", "status"])
        for key, count in sorted(by_status.items()):
            counts.add_metric(list(key), count)
        yield counts
        failures = GaugeMetricFamily(
            "certsmith_renewal_failures",
            "Certificates whose renewal failed or waits on the user (FAILED, PENDING_VALIDATION, "
            "PENDING_AUTO_RENEWAL with a reason), by type and renewal status.", labels=["type", "status"])
        for key, count in sorted(by_failure.items()):
            failures.add_metric(list(key), count)
        yield failures
        yield GaugeMetricFamily("certsmith_certificate_series_dropped",
                                "Certificates left out of the per-certificate series by metrics_certificate_series "
                                "(those expiring latest).", value=max(0, with_expiry - self._cap))
        family = HistogramMetricFamily(
            "certsmith_issuance_duration_seconds",
            "Seconds from the request of a certificate until its first version was issued, by type.", labels=["type"])
        for kind, figures in sorted(durations.items()):
            family.add_metric([kind], *histogram(ISSUANCE_BUCKETS, figures))
        yield family
        family = HistogramMetricFamily(
            "certsmith_validation_duration_seconds",
            "Seconds from the request of a certificate until every name of it was validated (DNS or HTTP record found, "
            "every approval mail answered, or, with a DNS provider answering DNS-01, the ACME CA's authorizations "
            "valid), by type. First requests only, not renewals.", labels=["type"])
        for kind, figures in sorted(validations.items()):
            family.add_metric([kind], *histogram(VALIDATION_BUCKETS, figures))
        yield family

    def _renewals(self, session: Session) -> Metric:
        c, v = CertificateRow, CertificateVersionRow
        rows = session.execute(select(c.type, func.count()).select_from(v).join(c, c.id == v.certificate_id)
                               .where(v.action == "RENEWAL").group_by(c.type)).all()
        family = CounterMetricFamily("certsmith_renewals", "Renewals done (versions stored by a renewal), by type.",
                                     labels=["type"])
        for kind, count in rows:
            family.add_metric([kind], count)
        return family

    def _jobs(self, session: Session, now: datetime, sqlite: bool) -> Iterator[Metric]:
        j = JobRow
        counts = GaugeMetricFamily("certsmith_jobs", "Jobs in the queue by kind and state (ready, leased, dead).",
                                   labels=["kind", "state"])
        kinds: set[str] = set()
        for kind, state, count in session.execute(select(j.kind, j.state, func.count()).group_by(j.kind, j.state)):
            counts.add_metric([kind, state], count)
            kinds.add(kind)
        yield counts
        oldest: dict[str, int] = dict(session.execute(select(j.kind, func.min(epoch_seconds(j.run_after, sqlite)))
                                      .where(j.state == READY, j.run_after <= now).group_by(j.kind)).all())
        age = GaugeMetricFamily("certsmith_job_oldest_age_seconds",
                                "Seconds the oldest job ready to run has waited for a worker, by kind (0: none waits).",
                                labels=["kind"])
        stamp = now.timestamp()
        for kind in sorted(kinds | set(oldest)):
            since = oldest.get(kind)
            age.add_metric([kind], max(0.0, stamp - since) if since is not None else 0.0)
        yield age

    def _deliveries(self, session: Session) -> Iterator[Metric]:
        d = EventDeliveryRow
        rows = session.execute(select(d.state, func.count(), func.sum(case((d.state == "PENDING", d.attempts),
                                                                           else_=0))).group_by(d.state)).all()
        by_state = {state: count for state, count, _ in rows}
        failed = sum(int(attempts or 0) for _, _, attempts in rows)
        family = GaugeMetricFamily("certsmith_event_deliveries", "Event deliveries by state (PENDING, DELIVERED, DEAD).",
                                   labels=["state"])
        for state in sorted(set(DELIVERY_STATES) | set(by_state)):
            family.add_metric([state], by_state.get(state, 0))
        yield family
        yield GaugeMetricFamily("certsmith_event_delivery_attempts_failed",
                                "Failed attempts counted on deliveries still pending.", value=failed)


def _observe(into: dict[str, list[float]], kind: str, index: int | None, count: int, total: Any, bounds: int) -> None:
    """Add a group of ``count`` observations in bucket ``index`` (``bounds``: above every bound) summing to ``total``
    to its type's figures: a count per bucket, then the sum. A group with no observation has no index."""
    if index is None:
        return
    figures = into.setdefault(kind, [0.0] * (bounds + 2))
    figures[index] += count
    figures[-1] += float(total or 0)


def bucket_index(seconds: Any, bounds: Sequence[float]) -> ColumnElement[Any]:
    """The index of the first bound a value is at most (``len(bounds)`` above them all), NULL for no value."""
    return case((seconds.is_(None), None), *((seconds <= bound, i) for i, bound in enumerate(bounds)),
                else_=len(bounds))


def histogram(bounds: Sequence[float], figures: Sequence[float]) -> tuple[list[tuple[str, float]], float]:
    """A count per bucket (the last: above every bound) and the sum, as HistogramMetricFamily takes them: cumulative
    buckets ending in ``+Inf`` (the count), and the sum."""
    buckets, seen = [], 0.0
    for bound, count in zip(bounds, figures, strict=False):
        seen += count
        buckets.append((repr(float(bound)), seen))
    buckets.append(("+Inf", seen + figures[len(bounds)]))
    return buckets, float(figures[-1])
