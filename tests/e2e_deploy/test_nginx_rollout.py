"""A renewal rolled out to a real nginx (SNI sites on one port) through a real `certsmith serve`: the handshake loop
on the bound site never fails and ends on the new serial, and the other site is left alone; running version 1 again
(a ROLLBACK deployment of the kept earlier version) brings it back the same way."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from certsmith.deploy.targets.base import same_serial
from certsmith.testing.handshakes import HandshakeLoop
from certsmith.testing.tls_servers import TlsNginx, start_tls_nginx

from ..conftest import need_binary
from .rollout import check_rolled, roll_out
from .world import wait_binding, wait_deployment

SITE, OTHER, BACK = "www.nginx-rollout.test", "other.nginx-rollout.test", "back.nginx-rollout.test"


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsNginx]:
    server = start_tls_nginx(tmp_path_factory.mktemp("nginx"), [SITE, OTHER, BACK], binary=need_binary("nginx"))
    yield server
    server.stop()


def test_a_renewal_reaches_nginx_with_no_failed_handshake(acm: Any, certsmith: Any, ca: str, ca_pem: str,
                                                          nginx: TlsNginx) -> None:
    other = nginx.served_serial(OTHER)
    rolled = roll_out(acm, certsmith, ca, ca_pem, kind="nginx", options=nginx.target_options(SITE), port=nginx.port,
                      name=SITE, served=lambda: nginx.settled_serial(SITE))
    check_rolled(rolled, certsmith, lambda: nginx.settled_serial(SITE))
    assert same_serial(nginx.served_serial(OTHER), other)


def test_running_an_earlier_version_rolls_nginx_back_with_no_failed_handshake(acm: Any, certsmith: Any, ca: str,
                                                                               ca_pem: str, nginx: TlsNginx) -> None:
    rolled = roll_out(acm, certsmith, ca, ca_pem, kind="nginx", options=nginx.target_options(BACK), port=nginx.port,
                      name=BACK, served=lambda: nginx.settled_serial(BACK))
    check_rolled(rolled, certsmith, lambda: nginx.settled_serial(BACK))
    with HandshakeLoop("127.0.0.1", nginx.port, BACK, threads=2, trust_pem=ca_pem, check_name=True,
                       timeout=10, max_seconds=120) as loop:
        back = wait_deployment(certsmith, certsmith.run_deployment(CertificateArn=rolled.arn, Version=1)["DeploymentId"])
        loop.wait_for_serial(rolled.first_serial, within=30)
    assert back["Status"] == "SUCCEEDED" and back["Trigger"] == "ROLLBACK" and back["Version"] == 1, back
    [item] = back["Items"]
    assert item["Status"] == "SUCCEEDED" and same_serial(item["VerifiedSerial"], rolled.first_serial), item
    assert item.get("PreviousVersion") == 2, item
    assert loop.failed == 0, loop.summary()
    assert [serial.lower() for serial in loop.serials] == [rolled.new_serial.lower(), rolled.first_serial.lower()], \
        loop.summary()
    binding = wait_binding(certsmith, rolled.binding["BindingArn"], rolled.first_serial)
    assert binding["DeployedVersion"] == 1, binding
    assert same_serial(nginx.settled_serial(BACK), rolled.first_serial)
