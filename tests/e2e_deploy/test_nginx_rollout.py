"""A renewal rolled out to a real nginx (two SNI sites on one port) through a real `certsmith serve`: the
handshake loop on the bound site never fails and ends on the new serial; the other site is left alone."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from certsmith.deploy.targets.base import same_serial
from certsmith.testing.tls_servers import TlsNginx, start_tls_nginx

from ..conftest import need_binary
from .rollout import check_rolled, roll_out

SITE, OTHER = "www.nginx-rollout.test", "other.nginx-rollout.test"


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsNginx]:
    server = start_tls_nginx(tmp_path_factory.mktemp("nginx"), [SITE, OTHER], binary=need_binary("nginx"))
    yield server
    server.stop()


def test_a_renewal_reaches_nginx_with_no_failed_handshake(acm: Any, certsmith: Any, ca: str, ca_pem: str,
                                                          nginx: TlsNginx) -> None:
    other = nginx.served_serial(OTHER)
    rolled = roll_out(acm, certsmith, ca, ca_pem, kind="nginx", options=nginx.target_options(SITE), port=nginx.port,
                      name=SITE, served=lambda: nginx.settled_serial(SITE))
    check_rolled(rolled, certsmith, lambda: nginx.settled_serial(SITE))
    assert same_serial(nginx.served_serial(OTHER), other)
