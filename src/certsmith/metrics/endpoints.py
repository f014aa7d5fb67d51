"""The per-endpoint series: what the last probe of each monitored TLS endpoint found, written as text.

Five samples an endpoint; formatting them through the client library costs about 25 µs a sample (a thousand
endpoints: an eighth of a second), writing them here a tenth of that.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from ..store.database import Database
from ..store.event_tables import EndpointRow
from .exposition import gauge_family
from .sql import epoch_seconds

__all__ = ["ENDPOINT_LABELS", "endpoint_series"]

ENDPOINT_LABELS = ("host", "port", "server_name", "arn")
UNREACHABLE, DRIFT = "UNREACHABLE", "DRIFT"


def endpoint_series(database: Database, now: datetime) -> str:
    """Every probed endpoint (one never probed yet has no series): up, drift, days to expiry, handshake, when."""
    e = EndpointRow
    sqlite = database.is_sqlite
    with database.read() as session:
        rows = session.execute(
            select(e.host, e.port, e.server_name, e.certificate_arn, e.status, epoch_seconds(e.probed_at, sqlite),
                   e.handshake_ms, epoch_seconds(e.served_not_after, sqlite))
            .where(e.probed_at.is_not(None)).order_by(e.host, e.port, e.server_name)).all()
    stamp = now.timestamp()
    keyed = [((host, str(port), server_name, arn or ""), status, probed, handshake, not_after)
             for host, port, server_name, arn, status, probed, handshake, not_after in rows]
    return "".join((
        gauge_family("certsmith_endpoint_up", "1 when the last probe completed a TLS handshake, else 0.",
                     ENDPOINT_LABELS, ((k, 0 if status == UNREACHABLE else 1) for k, status, *_ in keyed)),
        gauge_family("certsmith_endpoint_drift",
                     "1 when the endpoint serves another certificate than the current version it should (DRIFT).",
                     ENDPOINT_LABELS, ((k, 1 if status == DRIFT else 0) for k, status, *_ in keyed)),
        gauge_family("certsmith_endpoint_days_to_expiry", "Days until the served certificate expires.", ENDPOINT_LABELS,
                     ((k, (not_after - stamp) / 86400) for k, _, _, _, not_after in keyed if not_after is not None)),
        gauge_family("certsmith_endpoint_handshake_seconds", "Seconds the last probe's TLS handshake took.",
                     ENDPOINT_LABELS, ((k, handshake / 1000) for k, _, _, handshake, _ in keyed if handshake is not None)),
        gauge_family("certsmith_endpoint_probe_timestamp_seconds", "When the endpoint was last probed (Unix time).",
                     ENDPOINT_LABELS, ((k, probed) for k, _, probed, _, _ in keyed)),
    ))
