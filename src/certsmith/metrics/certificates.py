"""The per-certificate series: when each certificate expires, written straight in the text format.

One query reads the certificates that have a NotAfter, soonest first, as plain column tuples in chunks (no ORM
objects; a server-side cursor on PostgreSQL), at most ``metrics_certificate_series`` of them. Each row becomes
two lines: its NotAfter as a Unix time and the days left. Measured with 100,000 certificates (see
``bench/metrics_scrape.py``), building ``GaugeMetricFamily`` samples and formatting them with ``generate_latest``
took several times as long as writing the lines here, so these two families bypass the client library.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from ..store.database import Database
from ..store.tables import CertificateRow
from .exposition import family_header, label_value
from .sql import epoch_seconds, issuer_label

__all__ = ["CHUNK", "DAYS_TO_EXPIRY", "NOT_AFTER", "certificate_series"]

NOT_AFTER = "certsmith_certificate_not_after_timestamp_seconds"
DAYS_TO_EXPIRY = "certsmith_certificate_days_to_expiry"
CHUNK = 5000
_NOT_AFTER_HELP = "When the certificate expires (its NotAfter, Unix time)."
_DAYS_HELP = "Days until the certificate expires (negative once expired)."


def certificate_series(database: Database, now: datetime, limit: int) -> str:
    """Both per-certificate families, for the ``limit`` certificates that expire first."""
    c = CertificateRow
    query = (select(c.arn, c.domain_name, c.type, c.status, issuer_label(), epoch_seconds(c.not_after, database.is_sqlite))
             .where(c.not_after.is_not(None)).order_by(c.not_after).limit(max(0, limit)))
    stamp = now.timestamp()
    heads: list[str] = []
    stamps: list[int] = []
    with database.read() as session:
        result = session.connection().execution_options(yield_per=CHUNK).execute(query)
        for partition in result.partitions():
            for arn, domain, kind, status, issuer, not_after in partition:
                heads.append(f'{{arn="{label_value(arn)}",domain="{label_value(domain)}",type="{kind}",'
                             f'status="{status}",issuer="{label_value(issuer)}"}} ')
                stamps.append(not_after)
    lines = [family_header(NOT_AFTER, _NOT_AFTER_HELP, "gauge")]
    lines.extend([f"{NOT_AFTER}{head}{at}\n" for head, at in zip(heads, stamps, strict=True)])
    lines.append(family_header(DAYS_TO_EXPIRY, _DAYS_HELP, "gauge"))
    lines.extend([f"{DAYS_TO_EXPIRY}{head}{(at - stamp) / 86400!r}\n" for head, at in zip(heads, stamps, strict=True)])
    return "".join(lines)
