"""A renewal rolled out to a real master-worker HAProxy (one port, a crt file per SNI site) through a real
`certsmith serve`: swapped live through the admin socket, and reloaded through the master CLI; in both, the
handshake loop never fails and ends on the new serial."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from certsmith.deploy.targets.base import same_serial
from certsmith.testing.haproxy import Haproxy, start_haproxy
from certsmith.testing.server import free_port

from ..conftest import need_binary
from .rollout import check_rolled, roll_out

LIVE, RELOADED, OTHER = "live.haproxy-rollout.test", "reloaded.haproxy-rollout.test", "other.haproxy-rollout.test"
SITES = (OTHER, LIVE, RELOADED)  # the first crt file is the default certificate


@pytest.fixture(scope="module")
def haproxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Haproxy]:
    home = tmp_path_factory.mktemp("haproxy")
    for site in SITES:
        (home / site).mkdir()
    server = start_haproxy(home, free_port(), {home / site / "haproxy.pem": (site,) for site in SITES},
                           binary=need_binary("haproxy"))
    yield server
    server.stop()


@pytest.mark.parametrize(("site", "via"), [(LIVE, "socket"), (RELOADED, "master")])
def test_a_renewal_reaches_haproxy_with_no_failed_handshake(acm: Any, certsmith: Any, ca: str, ca_pem: str,
                                                            haproxy: Haproxy, site: str, via: str) -> None:
    other = haproxy.serial(OTHER)
    options = haproxy.target_options(haproxy.home / site / "haproxy.pem", via=via)
    rolled = roll_out(acm, certsmith, ca, ca_pem, kind="haproxy", options=options, port=haproxy.port, name=site,
                      served=lambda: haproxy.serial(site))
    check_rolled(rolled, certsmith, lambda: haproxy.serial(site))
    assert same_serial(haproxy.serial(OTHER), other)
