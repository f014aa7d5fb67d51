"""The per-certificate series: when each certificate expires, written straight in the text format.

One query reads the certificates that have a NotAfter as plain column tuples, in chunks of ``CHUNK`` straight from
the database driver (a server-side cursor on PostgreSQL; SQLAlchemy's result rows cost 3 µs a row more), at most
``metrics_certificate_series`` of them: in table order while every certificate fits (no sort), else the soonest to
expire (``ORDER BY not_after``). Each row becomes two lines, its NotAfter as a Unix time and the days left, written
a chunk at a time so that the page is sent while it is written. The same rows carry, last, the reason the
database found for the certificate's renewal being at risk (``risk.renewal_risk``), which ``risk.at_risk_lines`` writes.

Measured with 100,000 certificates (``bench/metrics_scrape.py``), building ``GaugeMetricFamily`` samples and having
``generate_latest`` format them took about seven times as long as writing the lines here, so these two families
bypass the client library (with the same escaping: backslash, double quote and line feed in label values).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.engine import Connection

from ..store.database import Database
from ..store.tables import CertificateRow
from .exposition import family_header, label_value
from .risk import renewal_risk
from .sql import epoch_seconds, issuer_label

__all__ = [
    "CHUNK", "DAYS_TO_EXPIRY", "LABELS", "NOT_AFTER", "certificate_series", "lines", "series_chunks", "series_query",
    "series_rows",
]

NOT_AFTER = "certsmith_certificate_not_after_timestamp_seconds"
DAYS_TO_EXPIRY = "certsmith_certificate_days_to_expiry"
LABELS = ("arn", "domain", "type", "status", "issuer")
CHUNK = 5000
_NOT_AFTER_HELP = "When the certificate expires (its NotAfter, Unix time)."
_DAYS_HELP = "Days until the certificate expires (negative once expired)."


def series_query(sqlite: bool, limit: int, soonest: bool, now: datetime | None = None) -> Select[Any]:
    """arn, domain, type, status, issuer, NotAfter (Unix time) and the renewal's risk at ``now`` (a reason or None)
    of up to ``limit`` certificates with a NotAfter."""
    c = CertificateRow
    query = (select(c.arn, c.domain_name, c.type, c.status, issuer_label(), epoch_seconds(c.not_after, sqlite),
                    renewal_risk(now or datetime.now(UTC)))
             .where(c.not_after.is_not(None)).limit(limit))
    return query.order_by(c.not_after) if soonest else query


def series_rows(database: Database, limit: int, now: datetime | None = None) -> list[tuple[Any, ...]]:
    """The rows of at most ``limit`` certificates with a NotAfter: in table order when every certificate fits (the
    count of all of them, read from an index, says so), else the soonest to expire, sorted by the database."""
    limit = max(0, limit)
    with database.read() as session:
        connection = session.connection()
        fits = connection.execute(select(func.count()).select_from(CertificateRow)).scalar_one() <= limit
        return list(_rows(connection, series_query(database.is_sqlite, limit, soonest=not fits, now=now)))


def series_chunks(rows: list[tuple[Any, ...]], stamp: float) -> Iterator[str]:
    """Both families' text for rows of ``series_query``, ``CHUNK`` rows at a time; ``stamp`` is now (Unix time)."""
    heads: list[str] = []
    yield family_header(NOT_AFTER, _NOT_AFTER_HELP, "gauge")
    for start in range(0, len(rows), CHUNK):
        chunk: list[str] = []
        add_head, add_line = heads.append, chunk.append
        for arn, domain, kind, status, issuer, at, _ in rows[start:start + CHUNK]:
            if "\\" in domain or '"' in domain or "\n" in domain:
                domain = label_value(domain)
            if "\\" in issuer or '"' in issuer or "\n" in issuer:
                issuer = label_value(issuer)
            head = f'{{arn="{label_value(arn)}",domain="{domain}",type="{kind}",status="{status}",issuer="{issuer}"}} '
            add_head(head)
            add_line(f"{NOT_AFTER}{head}{at}\n")
        yield "".join(chunk)
    yield family_header(DAYS_TO_EXPIRY, _DAYS_HELP, "gauge")
    for start in range(0, len(rows), CHUNK):
        yield "".join([f"{DAYS_TO_EXPIRY}{head}{(row[5] - stamp) / 86400!r}\n"
                       for head, row in zip(heads[start:start + CHUNK], rows[start:start + CHUNK], strict=True)])


def lines(rows: list[tuple[Any, ...]], stamp: float) -> str:
    """``series_chunks`` as one string."""
    return "".join(series_chunks(rows, stamp))


def certificate_series(database: Database, now: datetime, limit: int) -> str:
    """Both per-certificate families, for at most ``limit`` certificates (those that expire first); the page adds
    ``risk.at_risk_lines`` of the same rows."""
    return lines(series_rows(database, limit, now), now.timestamp())


def _rows(connection: Connection, query: Select[Any]) -> Iterator[tuple[Any, ...]]:
    """The query's rows as the driver returns them, ``CHUNK`` at a time (PostgreSQL: from a server-side cursor)."""
    dialect = connection.dialect
    sql = str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))  # constants only
    raw: Any = connection.connection
    cursor = raw.driver_connection.cursor(name="certsmith_metrics") if dialect.name == "postgresql" else raw.cursor()
    try:
        cursor.execute(sql)
        while chunk := cursor.fetchmany(CHUNK):
            yield from chunk
    finally:
        cursor.close()
