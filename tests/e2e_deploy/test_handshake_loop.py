"""The handshake loop the rollout tests rely on, against a real nginx: it counts every handshake, records the serials
in the order first seen, sees a server that goes away as failures, and stops by itself at its bounds."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from certsmith.deploy.targets.base import same_serial
from certsmith.testing.handshakes import HandshakeLoop, served_serial
from certsmith.testing.tls_servers import TlsNginx, start_tls_nginx

from ..conftest import need_binary
from .world import until

HOST = "127.0.0.1"
SITE, OTHER = "loop.handshakes.test", "other.handshakes.test"


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[TlsNginx]:
    server = start_tls_nginx(tmp_path / "nginx", [SITE, OTHER], binary=need_binary("nginx"))
    yield server
    server.stop()


def test_a_swap_is_seen_and_a_server_that_goes_away_is_counted_as_failures(nginx: TlsNginx) -> None:
    first, other = nginx.served_serial(SITE), nginx.served_serial(OTHER)
    assert first and other and same_serial(served_serial(HOST, nginx.port, SITE), first)
    with HandshakeLoop(HOST, nginx.port, SITE, threads=2, max_seconds=60) as loop:
        assert loop.saw(first) and loop.running
        # the other site's certificate, given to this one; a reload switches over
        for name in ("fullchain.pem", "privkey.pem"):
            (nginx.folder(SITE) / name).write_bytes((nginx.folder(OTHER) / name).read_bytes())
        subprocess.run(nginx.command("-s", "reload"), check=True, capture_output=True, timeout=30)
        loop.wait_for_serial(other, within=20)
        assert loop.failed == 0, loop.summary()
        nginx.stop()
        until("failed handshakes once nginx is gone", lambda: loop.failed >= 3)
    assert not loop.running
    assert loop.serials == [first, other], loop.summary()  # both as certsmith shows serials, in the order seen
    assert loop.seen[0].count >= 1 and loop.seen[1].first >= loop.seen[0].first
    # the handshakes under way when nginx went are cut off; the ones after it are refused
    assert loop.failures[-1].error == "connection refused", loop.summary()
    assert loop.handshakes >= loop.failed + sum(seen.count for seen in loop.seen) - 2  # each thread's last may be in flight
    assert served_serial(HOST, nginx.port, SITE) is None
    with pytest.raises(TimeoutError, match="did not present serial"):
        loop.wait_for_serial("01:02", within=0.1)


def test_the_loop_stops_by_itself_at_its_bounds(nginx: TlsNginx) -> None:
    loop = HandshakeLoop(HOST, nginx.port, SITE, threads=2, max_handshakes=30).start()
    until("the loop stopped at 30 handshakes", lambda: not loop.running, within=30)
    assert loop.handshakes == 30 and loop.failed == 0, loop.summary()
    loop.stop()
    timed = HandshakeLoop(HOST, nginx.port, SITE, threads=1, max_seconds=0.5).start()
    until("the loop stopped after half a second", lambda: not timed.running, within=10)
    timed.stop()
    assert timed.handshakes > 0 and timed.failed == 0, timed.summary()


def test_a_chain_that_does_not_verify_is_a_failure(nginx: TlsNginx) -> None:
    unrelated = (nginx.folder(OTHER) / "fullchain.pem").read_text()  # a self-signed certificate of another site
    with HandshakeLoop(HOST, nginx.port, SITE, threads=1, trust_pem=unrelated, max_seconds=30) as loop:
        until("a failed verification", lambda: loop.failed >= 1)
    assert "certificate not trusted" in loop.failures[0].error and not loop.serials, loop.summary()
