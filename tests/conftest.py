"""Shared fixtures: a real certsmith server on loopback, on SQLite or PostgreSQL."""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from certsmith.testing import server as testing_server
from certsmith.testing.server import free_port

__all__ = ["BACKEND", "IN_CI", "PG_URL", "Server", "backend_url", "free_port", "need_binary", "new_pg_database",
           "start_server"]

IN_CI = os.environ.get("CI", "").lower() == "true"
PG_URL = os.environ.get("CERTSMITH_TEST_PG_URL")  # e.g. postgresql+psycopg://postgres@127.0.0.1:55432/postgres
BACKEND = os.environ.get("CERTSMITH_TEST_BACKEND", "sqlite")
# For tests that touch no database (help pages, version): run once, in the SQLite stage.
no_database = pytest.mark.skipif(BACKEND == "postgres", reason="touches no database: the SQLite stage runs it")


def need_binary(name: str) -> str:
    """The path of a binary a test needs: skipped on a laptop without it, a failure in CI."""
    beside = Path(sys.executable).parent / name  # the test venv's own tools (aws) come first
    path = str(beside) if beside.exists() else shutil.which(name)
    if path is None:
        if IN_CI:
            pytest.fail(f"{name} is required in CI but is not installed")
        pytest.skip(f"{name} is not installed")
    return path


def new_pg_database() -> str:
    """A fresh, empty PostgreSQL database on the test cluster; returns its SQLAlchemy URL."""
    import psycopg

    if not PG_URL:
        if IN_CI:
            pytest.fail("CERTSMITH_TEST_PG_URL must be set in CI (the test command starts PostgreSQL)")
        pytest.skip("no PostgreSQL (set CERTSMITH_TEST_PG_URL)")
    name = f"cs_{uuid.uuid4().hex[:12]}"
    plain = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return PG_URL.rsplit("/", 1)[0] + "/" + name


@dataclass
class Server(testing_server.RunningServer):
    """A running `certsmith serve`, with the clients and environment the tests use."""

    database_url: str | None = None

    @property
    def credentials(self) -> Path:
        return self.data_dir / "credentials"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(AWS_SHARED_CREDENTIALS_FILE=str(self.credentials), AWS_DEFAULT_REGION="us-east-1",
                   AWS_CONFIG_FILE="/dev/null", CERTSMITH_ENDPOINT=self.endpoint)
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
            env.pop(key, None)
        return env


def start_server(tmp: Path, database_url: str | None = None, extra: list[str] | None = None,
                 settings: Mapping[str, object] | None = None) -> Server:
    running = testing_server.start_server(tmp, database_url, extra, settings=settings)
    return Server(running.endpoint, running.data_dir, running.process, running.log_path, database_url)


def backend_url() -> str | None:
    return new_pg_database() if BACKEND == "postgres" else None


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("server"), backend_url())
    yield srv
    srv.stop()
    log = srv.log_path.read_text()
    assert "Traceback" not in log, f"the server logged a traceback:\n{log}"


@pytest.fixture(scope="session")
def pca(server: Server) -> Any:
    return server.client("acm-pca")
