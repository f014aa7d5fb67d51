"""One real `certsmith serve` per test module (deployment retries and verification handshakes made fast), its
clients, and a private CA."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from certsmith.testing.pki import root_ca

from ..conftest import Server, backend_url, start_server
from .world import FAST


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("deploy-e2e"), backend_url(), settings=FAST)
    yield srv
    srv.stop()
    assert not srv.errors(), srv.errors()


@pytest.fixture(scope="module")
def acm(server: Server) -> Any:
    return server.client("acm")


@pytest.fixture(scope="module")
def pca(server: Server) -> Any:
    return server.client("acm-pca")


@pytest.fixture(scope="module")
def certsmith(server: Server) -> Any:
    return server.client("certsmith")


@pytest.fixture(scope="module")
def ca(pca: Any) -> str:
    return root_ca(pca, "Deployment E2E Root")


@pytest.fixture(scope="module")
def ca_pem(pca: Any, ca: str) -> str:
    """The root's certificate: what the handshake loop trusts."""
    return str(pca.get_certificate_authority_certificate(CertificateAuthorityArn=ca)["Certificate"])
