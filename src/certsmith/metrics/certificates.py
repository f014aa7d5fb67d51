"""The per-certificate series: when each certificate expires, written straight in the text format.

One query reads the certificates that have a NotAfter as plain column tuples, in chunks of ``CHUNK`` straight from
the database driver (a server-side cursor on PostgreSQL; SQLAlchemy's result rows cost 3 µs a row more), at most
``metrics_certificate_series`` of them: read in table order while they fit (no sort), else the soonest to expire
(``ORDER BY not_after``). Each row becomes two lines, its NotAfter as a Unix time and the days left.

Measured with 100,000 certificates (``bench/metrics_scrape.py``), building ``GaugeMetricFamily`` samples and having
``generate_latest`` format them took about twice as long as writing the lines here, so these two families bypass
the client library (with the same escaping: backslash, double quote and line feed in label values).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.engine import Connection

from ..store.database import Database
from ..store.tables import CertificateRow
from .exposition import family_header, label_value
from .sql import epoch_seconds, issuer_label

__all__ = ["CHUNK", "DAYS_TO_EXPIRY", "LABELS", "NOT_AFTER", "certificate_series", "series_query"]

NOT_AFTER = "certsmith_certificate_not_after_timestamp_seconds"
DAYS_TO_EXPIRY = "certsmith_certificate_days_to_expiry"
LABELS = ("arn", "domain", "type", "status", "issuer")
CHUNK = 5000
_NOT_AFTER_HELP = "When the certificate expires (its NotAfter, Unix time)."
_DAYS_HELP = "Days until the certificate expires (negative once expired)."


def series_query(sqlite: bool, limit: int, soonest: bool) -> Select[Any]:
    """arn, domain, type, status, issuer, NotAfter (Unix time) of up to ``limit`` certificates with a NotAfter."""
    c = CertificateRow
    query = (select(c.arn, c.domain_name, c.type, c.status, issuer_label(), epoch_seconds(c.not_after, sqlite))
             .where(c.not_after.is_not(None)).limit(limit))
    return query.order_by(c.not_after) if soonest else query


def certificate_series(database: Database, now: datetime, limit: int) -> str:
    """Both per-certificate families, for at most ``limit`` certificates (those that expire first)."""
    limit = max(0, limit)
    with database.read() as session:
        connection = session.connection()
        rows = list(_rows(connection, series_query(database.is_sqlite, limit + 1, soonest=False)))
        if len(rows) > limit:  # more than the cap: the soonest to expire, sorted by the database
            rows = list(_rows(connection, series_query(database.is_sqlite, limit, soonest=True)))
    return lines(rows, now.timestamp())


def lines(rows: list[tuple[Any, ...]], stamp: float) -> str:
    """The two families' text for rows of ``series_query``; ``stamp`` is now as a Unix time."""
    first: list[str] = [family_header(NOT_AFTER, _NOT_AFTER_HELP, "gauge")]
    second: list[str] = [family_header(DAYS_TO_EXPIRY, _DAYS_HELP, "gauge")]
    add_first, add_second = first.append, second.append
    for arn, domain, kind, status, issuer, at in rows:
        if "\\" in domain or '"' in domain or "\n" in domain:
            domain = label_value(domain)
        if "\\" in issuer or '"' in issuer or "\n" in issuer:
            issuer = label_value(issuer)
        head = f'{{arn="{label_value(arn)}",domain="{domain}",type="{kind}",status="{status}",issuer="{issuer}"}} '
        add_first(f"{NOT_AFTER}{head}{at}\n")
        add_second(f"{DAYS_TO_EXPIRY}{head}{(at - stamp) / 86400!r}\n")
    return "".join(first) + "".join(second)


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
