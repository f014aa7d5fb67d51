"""Real peers for public certificates, started once per test session: BIND (the user's zone example.test, the
validation zone forwarded to certsmith), Pebble (the ACME CA, asking BIND), and one certsmith server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from certsmith.testing.bind import Bind, free_dns_port, start_bind
from certsmith.testing.pebble import Pebble, start_pebble

from ..conftest import Server, backend_url, need_binary, start_server

ZONE = "acme.test"
TERMINAL = ("ISSUED", "FAILED", "VALIDATION_TIMED_OUT", "REVOKED", "EXPIRED")


@dataclass
class PublicWorld:
    server: Server
    bind: Bind
    pebble: Pebble
    home: Path

    def add_records(self, arn: str) -> list[dict[str, str]]:
        """Add every validation CNAME the certificate asks for, with nsupdate; returns the records."""
        records = pending_records(self.server.client("acm"), arn)
        for record in records:
            self.bind.set_cname(record["Name"].rstrip("."), record["Value"].rstrip("."))
        return records


def pending_records(acm: Any, arn: str) -> list[dict[str, str]]:
    options = acm.describe_certificate(CertificateArn=arn)["Certificate"]["DomainValidationOptions"]
    unique: dict[str, dict[str, str]] = {}
    for option in options:
        unique[option["ResourceRecord"]["Name"]] = option["ResourceRecord"]
    return list(unique.values())


def wait_status(acm: Any, arn: str, wanted: tuple[str, ...] = TERMINAL, seconds: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        detail: dict[str, Any] = acm.describe_certificate(CertificateArn=arn)["Certificate"]
        if detail["Status"] in wanted or time.monotonic() > deadline:
            return detail
        time.sleep(0.1)


@pytest.fixture(scope="session")
def public_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PublicWorld]:
    need_binary("named")
    need_binary("nsupdate")
    need_binary("pebble")
    home = tmp_path_factory.mktemp("public")
    home.chmod(0o755)
    dns_port = free_dns_port()
    bind = start_bind(home / "bind", zones=("example.test",), forwards={ZONE: ("127.0.0.1", dns_port)})
    pebble = start_pebble(home / "pebble", bind.address)
    (home / "server").mkdir()
    server = start_server(home / "server", backend_url(),
                          ["--validation-zone", ZONE, "--dns-listen", f"127.0.0.1:{dns_port}", "--resolvers", bind.address])
    try:
        server.client("certsmith").create_issuer(Name="pebble", AcmeDirectoryUrl=pebble.directory_url,
                                                 ContactEmail="admin@example.test", CaBundle=pebble.tls_cert_pem,
                                                 CaaIdentities=["pebble.letsencrypt.org"], Default=True)
        yield PublicWorld(server, bind, pebble, home)
    finally:
        server.stop()
        pebble.stop()
        bind.stop()
