"""What the database says, as Prometheus metric families: a few aggregate queries, at scrape time.

Several API and worker processes share one database, so the database is the truth: nothing here is counted in
memory. Every query groups in SQL and hands back a few rows; durations are bucketed by ``CASE`` in SQL too.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from ..domain.clock import Clock
from ..store.database import Database
from ..store.event_tables import EventDeliveryRow
from ..store.jobs import READY
from ..store.renewal_tables import CertificateVersionRow
from ..store.tables import CertificateRow, JobRow
from .sql import epoch_seconds, seconds_between

__all__ = ["DELIVERY_STATES", "ISSUANCE_BUCKETS", "VALIDATION_BUCKETS", "DatabaseCollector", "bucket_columns",
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
        # Materialized, so that each row's durations are computed once rather than once per bucket.
        each = (select(c.type.label("type"), c.status.label("status"), failing.label("failing"),
                       c.not_after.label("not_after"), issuance.label("seconds"), validation.label("validation"))
                .select_from(c).outerjoin(v, and_(v.certificate_id == c.id, v.version == 1))
                .cte("each_certificate").prefix_with("MATERIALIZED"))
        rows = session.execute(
            select(each.c.type, each.c.status, each.c.failing, func.count(), func.count(each.c.not_after),
                   *bucket_columns(each.c.seconds, ISSUANCE_BUCKETS),
                   *bucket_columns(each.c.validation, VALIDATION_BUCKETS))
            .group_by(each.c.type, each.c.status, each.c.failing)).all()
        by_status: dict[tuple[str, str], int] = {}
        by_failure: dict[tuple[str, str], int] = {}
        durations: dict[str, list[float]] = {}
        validations: dict[str, list[float]] = {}
        with_expiry = 0
        split = len(ISSUANCE_BUCKETS) + 2
        for kind, state, renewal, count, expiring, *figures in rows:
            by_status[kind, state] = by_status.get((kind, state), 0) + count
            if renewal is not None:
                by_failure[kind, renewal] = by_failure.get((kind, renewal), 0) + count
            with_expiry += expiring
            _add(durations, kind, figures[:split])
            _add(validations, kind, figures[split:])
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
            buckets, total = histogram(ISSUANCE_BUCKETS, figures)
            family.add_metric([kind], buckets, total)
        yield family
        family = HistogramMetricFamily(
            "certsmith_validation_duration_seconds",
            "Seconds from the request of a certificate until every name of it was validated (DNS or HTTP record found, "
            "every approval mail answered, or, with a DNS provider answering DNS-01, the ACME CA's authorizations "
            "valid), by type. First requests only, not renewals.", labels=["type"])
        for kind, figures in sorted(validations.items()):
            buckets, total = histogram(VALIDATION_BUCKETS, figures)
            family.add_metric([kind], buckets, total)
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


def _add(into: dict[str, list[float]], kind: str, figures: Sequence[Any]) -> None:
    """Add one group's ``bucket_columns`` figures to its type's, when the group observed any (its count)."""
    if figures[-2]:
        added = into.setdefault(kind, [0.0] * len(figures))
        into[kind] = [a + float(f or 0) for a, f in zip(added, figures, strict=True)]


def bucket_columns(seconds: Any, bounds: Sequence[float]) -> list[Any]:
    """Per bound, how many values are at most it (cumulative: CASE in SQL); then the count and the sum (NULLs are
    no observation)."""
    return [*(func.sum(case((seconds <= bound, 1), else_=0)) for bound in bounds), func.count(seconds), func.sum(seconds)]


def histogram(bounds: Iterable[float], figures: Sequence[Any]) -> tuple[list[tuple[str, float]], float]:
    """``bucket_columns``' row as the buckets HistogramMetricFamily takes (``+Inf`` = the count) and the sum."""
    *cumulative, count, total = figures
    buckets = [(repr(float(bound)), float(n or 0)) for bound, n in zip(bounds, cumulative, strict=True)]
    buckets.append(("+Inf", float(count or 0)))
    return buckets, float(total or 0)
