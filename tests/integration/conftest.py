"""Fixtures of the integration tests: a migrated database of the backend under test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from certsmith.store.database import Database, migrate

from ..conftest import backend_url


@pytest.fixture()
def database(tmp_path: Path) -> Iterator[Database]:
    """SQLite in the test's folder, or a fresh PostgreSQL database with CERTSMITH_TEST_BACKEND=postgres."""
    url = backend_url() or f"sqlite:///{tmp_path / 'certsmith.db'}"
    migrate(url)
    db = Database(url)
    yield db
    db.dispose()
