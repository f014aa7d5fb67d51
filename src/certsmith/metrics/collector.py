"""What the database says, as Prometheus metric families: one aggregate query per family, at scrape time.

Several API and worker processes share one database, so the database is the truth: nothing here is counted in
memory. Every query groups in SQL and hands back a few rows; durations are bucketed by ``CASE`` in SQL too.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from ..domain.clock import Clock
from ..store.database import Database
from ..store.event_tables import EndpointRow, EventDeliveryRow
from ..store.jobs import READY
from ..store.renewal_tables import CertificateVersionRow
from ..store.tables import CertificateRow, JobRow
from .sql import epoch_seconds, seconds_between

__all__ = ["DELIVERY_STATES", "ISSUANCE_BUCKETS", "VALIDATION_BUCKETS", "DatabaseCollector"]

ISSUANCE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
                    14400.0, 86400.0, 259200.0)
VALIDATION_BUCKETS = (1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 43200.0, 86400.0, 259200.0)
DELIVERY_STATES = ("PENDING", "DELIVERED", "DEAD")
# A renewal that needs the user or gave up: FAILED, PENDING_VALIDATION, or PENDING_AUTO_RENEWAL with a reason.
_FAILED_RENEWALS = ("FAILED", "PENDING_VALIDATION", "PENDING_AUTO_RENEWAL")
_ENDPOINT_LABELS = ["host", "port", "server_name", "arn"]


class DatabaseCollector(Collector):
    """Every family of /metrics but the per-certificate series (see ``certificates.py``) and the API requests."""

    def __init__(self, database: Database, clock: Clock, series_cap: int) -> None:
        self._db, self._clock, self._cap = database, clock, max(0, series_cap)

    def describe(self) -> list[Metric]:
        return []  # registering must not query the database

    def collect(self) -> Iterator[Metric]:
        now = self._clock.now()
        sqlite = self._db.is_sqlite
        with self._db.read() as session:
            yield from self._certificates(session)
            yield self._renewals(session)
            yield self._renewal_failures(session)
            yield self._issuance(session, sqlite)
            yield HistogramMetricFamily(
                "certsmith_validation_duration_seconds",
                "Seconds from the request of a public certificate until every name was validated (not recorded yet).",
                labels=["type"])
            yield from self._jobs(session, now, sqlite)
            yield from self._deliveries(session)
            yield from self._endpoints(session, now, sqlite)

    def _certificates(self, session: Session) -> Iterator[Metric]:
        c = CertificateRow
        rows = session.execute(select(c.type, c.status, func.count(), func.count(c.not_after))
                               .group_by(c.type, c.status)).all()
        counts = GaugeMetricFamily("certsmith_certificates", "ACM certificates by type and status.",
                                   labels=["type", "status"])
        with_expiry = 0
        for kind, status, count, expiring in rows:
            counts.add_metric([kind, status], count)
            with_expiry += expiring
        yield counts
        yield GaugeMetricFamily("certsmith_certificate_series_dropped",
                                "Certificates left out of the per-certificate series by metrics_certificate_series "
                                "(those expiring latest).", value=max(0, with_expiry - self._cap))

    def _renewals(self, session: Session) -> Metric:
        c, v = CertificateRow, CertificateVersionRow
        rows = session.execute(select(c.type, func.count()).select_from(v).join(c, c.id == v.certificate_id)
                               .where(v.action == "RENEWAL").group_by(c.type)).all()
        family = CounterMetricFamily("certsmith_renewals", "Renewals done (versions stored by a renewal), by type.",
                                     labels=["type"])
        for kind, count in rows:
            family.add_metric([kind], count)
        return family

    def _renewal_failures(self, session: Session) -> Metric:
        c = CertificateRow
        status = c.renewal["RenewalStatus"].as_string()
        reason = c.renewal["RenewalStatusReason"].as_string()
        rows = session.execute(
            select(c.type, status, func.count())
            .where(c.renewal.is_not(None), status.in_(_FAILED_RENEWALS),
                   or_(status != "PENDING_AUTO_RENEWAL", reason.is_not(None)))
            .group_by(c.type, status)).all()
        family = GaugeMetricFamily(
            "certsmith_renewal_failures",
            "Certificates whose renewal failed or waits on the user (FAILED, PENDING_VALIDATION, "
            "PENDING_AUTO_RENEWAL with a reason), by type and renewal status.", labels=["type", "status"])
        for kind, renewal_status, count in rows:
            family.add_metric([kind, renewal_status], count)
        return family

    def _issuance(self, session: Session, sqlite: bool) -> Metric:
        c, v = CertificateRow, CertificateVersionRow
        seconds = seconds_between(v.issued_at, c.created_at, sqlite).label("seconds")
        first = (select(c.type.label("type"), seconds).select_from(v).join(c, c.id == v.certificate_id)
                 .where(v.version == 1, v.action == "ISSUANCE").subquery())
        rows = session.execute(select(first.c.type, *bucket_columns(first.c.seconds, ISSUANCE_BUCKETS))
                               .group_by(first.c.type)).all()
        family = HistogramMetricFamily(
            "certsmith_issuance_duration_seconds",
            "Seconds from the request of a certificate until its first version was issued, by type.", labels=["type"])
        for kind, *figures in rows:
            buckets, total = histogram(ISSUANCE_BUCKETS, figures)
            family.add_metric([kind], buckets, total)
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
                                      .where(j.state == READY, j.run_after <= now).group_by(j.kind)).tuples().all())
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

    def _endpoints(self, session: Session, now: datetime, sqlite: bool) -> Iterator[Metric]:
        e = EndpointRow
        rows = session.execute(
            select(e.host, e.port, e.server_name, e.certificate_arn, e.status, epoch_seconds(e.probed_at, sqlite),
                   e.handshake_ms, epoch_seconds(e.served_not_after, sqlite))
            .where(e.probed_at.is_not(None)).order_by(e.host, e.port, e.server_name)).all()
        up = gauge("certsmith_endpoint_up", "1 when the last probe completed a TLS handshake, else 0.")
        drift = gauge("certsmith_endpoint_drift",
                      "1 when the endpoint serves another certificate than the current version it should (DRIFT).")
        days = gauge("certsmith_endpoint_days_to_expiry", "Days until the served certificate expires.")
        handshake = gauge("certsmith_endpoint_handshake_seconds", "Seconds the last probe's TLS handshake took.")
        probed = gauge("certsmith_endpoint_probe_timestamp_seconds", "When the endpoint was last probed (Unix time).")
        stamp = now.timestamp()
        for host, port, server_name, arn, status, probed_at, handshake_ms, not_after in rows:
            values = [host, str(port), server_name, arn or ""]
            up.add_metric(values, 0 if status == "UNREACHABLE" else 1)
            drift.add_metric(values, 1 if status == "DRIFT" else 0)
            probed.add_metric(values, probed_at)
            if not_after is not None:
                days.add_metric(values, (not_after - stamp) / 86400)
            if handshake_ms is not None:
                handshake.add_metric(values, handshake_ms / 1000)
        yield from (up, drift, days, handshake, probed)


def gauge(name: str, help_text: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_text, labels=_ENDPOINT_LABELS)


def bucket_columns(seconds: Any, bounds: Sequence[float]) -> list[Any]:
    """Per bound, how many values are at most it (cumulative: CASE in SQL); then the count and the sum."""
    return [*(func.sum(case((seconds <= bound, 1), else_=0)) for bound in bounds), func.count(), func.sum(seconds)]


def histogram(bounds: Iterable[float], figures: Sequence[Any]) -> tuple[list[tuple[str, float]], float]:
    """``bucket_columns``' row as the buckets HistogramMetricFamily takes (``+Inf`` = the count) and the sum."""
    *cumulative, count, total = figures
    buckets = [(repr(float(bound)), float(n or 0)) for bound, n in zip(bounds, cumulative, strict=True)]
    buckets.append(("+Inf", float(count or 0)))
    return buckets, float(total or 0)
