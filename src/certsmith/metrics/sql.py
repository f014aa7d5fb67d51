"""SQL expressions the metrics need that SQLite and PostgreSQL spell differently (times as seconds)."""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import BigInteger, Float, case, cast, extract, func, literal
from sqlalchemy.sql.elements import ColumnElement

from ..store.tables import CertificateRow

__all__ = ["epoch_seconds", "issuer_label", "seconds_between"]

_UNIXEPOCH = sqlite3.sqlite_version_info >= (3, 38)  # unixepoch() parses a little faster than strftime('%s')


def epoch_seconds(column: Any, sqlite: bool) -> ColumnElement[Any]:
    """A UTC timestamp column (stored naive) as whole seconds since the epoch."""
    if sqlite:
        return func.unixepoch(column) if _UNIXEPOCH else cast(func.strftime("%s", column), BigInteger)
    return cast(extract("epoch", column), BigInteger)


def seconds_between(later: Any, earlier: Any, sqlite: bool) -> ColumnElement[Any]:
    """``later - earlier`` in (fractional) seconds."""
    if sqlite:
        return (func.julianday(later) - func.julianday(earlier)) * literal(86400.0)
    return cast(extract("epoch", later - earlier), Float)


def issuer_label() -> ColumnElement[Any]:
    """Who issued a certificate, short: its CA's ARN, the public issuer's name, an imported one's issuer name."""
    c = CertificateRow
    return case(
        (c.type == "IMPORTED", func.coalesce(c.issuer, "imported")),
        else_=func.coalesce(c.authority_arn, c.issuer_name, c.issuer, ""),
    )
