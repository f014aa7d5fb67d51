"""A renewal rolled out to a real Apache (two SNI virtual hosts on one port, `apachectl -k graceful`) through a real
`certsmith serve`: the handshake loop on the bound site never fails and ends on the new serial."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from certsmith.deploy.targets.base import same_serial
from certsmith.testing.tls_servers import TlsApache, apache_binary, apache_modules, start_tls_apache

from ..conftest import IN_CI, need_binary
from .rollout import check_rolled, roll_out

SITE, OTHER = "www.apache-rollout.test", "other.apache-rollout.test"


@pytest.fixture(scope="module")
def apache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsApache]:
    binary = apache_binary() or need_binary("apache2")  # skipped on a laptop without Apache, a failure in CI
    if apache_modules() is None:
        if IN_CI:
            pytest.fail("Apache's mod_ssl is required in CI but is not installed")
        pytest.skip("Apache's mod_ssl is not installed")
    server = start_tls_apache(tmp_path_factory.mktemp("apache"), [SITE, OTHER], binary=binary)
    yield server
    server.stop()


def test_a_renewal_reaches_apache_with_no_failed_handshake(acm: Any, certsmith: Any, ca: str, ca_pem: str,
                                                           apache: TlsApache) -> None:
    other = apache.served_serial(OTHER)
    rolled = roll_out(acm, certsmith, ca, ca_pem, kind="apache", options=apache.target_options(SITE), port=apache.port,
                      name=SITE, served=lambda: apache.settled_serial(SITE))
    check_rolled(rolled, certsmith, lambda: apache.settled_serial(SITE))
    assert same_serial(apache.served_serial(OTHER), other)
