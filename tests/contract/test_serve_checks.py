"""What `certsmith serve` refuses before it starts, and the command's own habits."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from ..conftest import Server, backend_url, free_port, no_database, start_server
from .local_cli import certsmith


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_a_wildcard_host_needs_a_public_url(tmp_path: Path, host: str) -> None:
    result = certsmith("serve", "--host", host, "--port", free_port(), "--data-dir", tmp_path / "data")
    assert result.returncode == 2
    assert "--public-url" in result.stderr and "CRL and OCSP URLs" in result.stderr
    assert "listening" not in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists()  # nothing made before the refusal


def test_a_taken_port_is_named_before_listening(server: Server) -> None:
    port = server.endpoint.rsplit(":", 1)[1]
    result = certsmith("serve", "--port", port, "--data-dir", server.data_dir.parent / "other")
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is taken" in result.stderr
    assert "listening" not in result.stderr and "Traceback" not in result.stderr


def test_tls_options_are_checked(tmp_path: Path) -> None:
    result = certsmith("serve", "--tls-cert", tmp_path / "none.pem", "--port", free_port(), "--data-dir", tmp_path)
    assert result.returncode == 2 and "--tls-cert and --tls-key go together" in result.stderr
    result = certsmith("serve", "--tls", "yes", "--port", free_port(), "--data-dir", tmp_path)
    assert result.returncode == 2 and "--tls is 'off' or 'auto', not 'yes'" in result.stderr


@no_database
def test_version_and_short_help() -> None:
    version = certsmith("--version")
    assert version.returncode == 0 and re.fullmatch(r"certsmith \d+\.\d+\.\d+\S*\n", version.stdout)
    for command in ([], ["serve"], ["credentials"], ["credentials", "create"], ["master-key", "rotate"]):
        result = certsmith(*command, "-h")
        assert result.returncode == 0 and "Usage:" in result.stdout, command
        assert "<bool>" not in result.stdout and "<str>" not in result.stdout
    serve_help = certsmith("serve", "--help", env={"COLUMNS": "200"}).stdout
    assert "CERTSMITH_PUBLIC_URL" in serve_help and "[default: 127.0.0.1]" in serve_help


def test_access_log_and_a_quiet_start(tmp_path: Path) -> None:
    server = start_server(tmp_path, backend_url(), extra=["--access-log"])
    try:
        server.client("acm").list_certificates()
        httpx.get(f"{server.endpoint}/healthz")
        httpx.get(f"{server.endpoint}/approve/secret-link-token")
    finally:
        server.stop()
    log = server.log_path.read_text()
    assert re.search(r'certsmith\.access: 127\.0\.0\.1 "POST /" CertificateManager\.ListCertificates 200 [\d.]+ms', log), log
    assert re.search(r'"GET /healthz" - 200', log), log
    assert re.search(r'"GET /approve/…" - 400', log) and "secret-link-token" not in log, log  # a link is a credential
    assert "alembic" not in log.lower(), log


def test_no_request_lines_without_access_log(server: Server) -> None:
    server.client("acm").list_certificates()
    assert "certsmith.access" not in server.log_path.read_text()
