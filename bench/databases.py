"""Databases for the benchmarks."""

from __future__ import annotations

import uuid

__all__ = ["pg_database"]


def pg_database(server_url: str, prefix: str) -> str:
    """A new, empty database on the PostgreSQL server of ``server_url`` (a SQLAlchemy URL); its URL."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + "/" + name
