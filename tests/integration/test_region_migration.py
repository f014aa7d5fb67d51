"""Migrating to regions kept apart: rows keep the region they were made in."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from certsmith.store import database as store_database

from ..conftest import backend_url


def _config(url: str, region: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(store_database.__file__).parent / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    config.attributes["certsmith_region"] = region
    return config


def test_account_settings_move_into_the_configured_region(tmp_path: Path) -> None:
    url = backend_url() or f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(_config(url, "eu-central-1"), "0007")
    engine = sa.create_engine(url)
    now = datetime.now(UTC).replace(tzinfo=None)
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO accounts (id, created_at) VALUES ('123456789012', :now)"), {"now": now})
        connection.execute(sa.text("INSERT INTO account_configuration (account_id, days_before_expiry, updated_at) "
                                   "VALUES ('123456789012', 12, :now)"), {"now": now})
    store_database.migrate(url, "eu-central-1")
    with engine.begin() as connection:
        rows = connection.execute(sa.text("SELECT account_id, region, days_before_expiry FROM account_configuration")).all()
        assert [tuple(row) for row in rows] == [("123456789012", "eu-central-1", 12)]
        # the same account may now keep other settings in another region
        connection.execute(sa.text("INSERT INTO account_configuration (account_id, region, days_before_expiry, "
                                   "updated_at) VALUES ('123456789012', 'us-east-1', 30, :now)"), {"now": now})
        indexes = {index["name"] for index in sa.inspect(connection).get_indexes("certificates")}
    assert {"ix_certificates_scope_created", "ix_certificates_scope_key_created"} <= indexes
    engine.dispose()
