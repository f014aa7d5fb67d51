"""Shared fixtures: a real certsmith server on loopback, on SQLite or PostgreSQL."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"
PG_URL = os.environ.get("CERTSMITH_TEST_PG_URL")  # e.g. postgresql+psycopg://postgres@127.0.0.1:55432/postgres
BACKEND = os.environ.get("CERTSMITH_TEST_BACKEND", "sqlite")


def need_binary(name: str) -> str:
    """The path of a binary a test needs: skipped on a laptop without it, a failure in CI."""
    beside = Path(sys.executable).parent / name  # the test venv's own tools (aws) come first
    path = str(beside) if beside.exists() else shutil.which(name)
    if path is None:
        if IN_CI:
            pytest.fail(f"{name} is required in CI but is not installed")
        pytest.skip(f"{name} is not installed")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
class Server:
    endpoint: str
    data_dir: Path
    database_url: str | None
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def credentials(self) -> Path:
        return self.data_dir / "credentials"

    def client(self, service: str, **kwargs: Any) -> Any:
        session = boto3.session.Session()
        return session.client(service, endpoint_url=self.endpoint, region_name=kwargs.pop("region_name", "us-east-1"),
                              aws_access_key_id=self.access_key[0], aws_secret_access_key=self.access_key[1], **kwargs)

    @property
    def access_key(self) -> tuple[str, str]:
        values = {}
        for line in self.credentials.read_text().splitlines():
            if "=" in line and not line.startswith("#"):
                key, _, value = line.partition("=")
                values[key.strip()] = value.strip()
        return values["aws_access_key_id"], values["aws_secret_access_key"]

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(AWS_SHARED_CREDENTIALS_FILE=str(self.credentials), AWS_DEFAULT_REGION="us-east-1",
                   AWS_CONFIG_FILE="/dev/null", CERTSMITH_ENDPOINT=self.endpoint)
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
            env.pop(key, None)
        return env

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_server(tmp: Path, database_url: str | None = None, extra: list[str] | None = None) -> Server:
    port = free_port()
    data_dir = tmp / "data"
    log_path = tmp / "server.log"
    args = [sys.executable, "-m", "certsmith", "serve", "--port", str(port), "--data-dir", str(data_dir)]
    if database_url:
        args += ["--database-url", database_url]
    args += extra or []
    with open(log_path, "wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    tls = any(arg.startswith("--tls") for arg in extra or [])
    endpoint = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"certsmith serve exited: {log_path.read_text()}")
        try:  # readiness only: the TLS tests check the server's certificate themselves
            if httpx.get(f"{endpoint}/healthz", timeout=1, verify=False).status_code == 200:
                return Server(endpoint, data_dir, database_url, process, log_path)
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"certsmith serve did not become ready: {log_path.read_text()}")


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
