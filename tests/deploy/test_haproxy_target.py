"""The haproxy target against a real master-worker HAProxy on loopback: one port, several crt files chosen by SNI, the
runtime API on the admin socket and reloads on the master CLI; what a TLS handshake presents is the proof. One HAProxy
for the module."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from certsmith.deploy.targets import DeployError, DeployTarget, build_target
from certsmith.deploy.targets.base import group_activations, same_serial
from certsmith.domain.errors import ValidationError
from certsmith.testing.haproxy import Haproxy, start_haproxy, write_placeholder_crt
from certsmith.testing.server import free_port

from ..conftest import need_binary
from .conformance import TargetConformance, make_materials

CONFORMANCE = "localhost"  # the conformance suite's certificates name localhost
LOOP, RELOAD, REFUSE = "loop.deploy.test", "reload.deploy.test", "refuse.deploy.test"
SITES = (CONFORMANCE, LOOP, RELOAD, REFUSE)


@pytest.fixture(scope="module")
def haproxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Haproxy]:
    home = tmp_path_factory.mktemp("haproxy-deploy")
    for site in SITES:
        (home / site).mkdir()
    server = start_haproxy(home, free_port(), {home / site / "haproxy.pem": (site,) for site in SITES},
                           binary=need_binary("haproxy"))
    yield server
    server.stop()


def options(haproxy: Haproxy, site: str, **extra: Any) -> dict[str, Any]:
    return {**haproxy.target_options(haproxy.home / site / "haproxy.pem"), **extra}


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file()}


def no_transaction(haproxy: Haproxy) -> bool:
    return "# transaction" not in haproxy.admin("show ssl cert")


class TestHaproxyConformance(TargetConformance):
    @pytest.fixture
    def make_target(self, haproxy: Haproxy) -> Iterator[Callable[[Mapping[str, Any]], DeployTarget]]:
        yield lambda state: build_target("haproxy", options(haproxy, CONFORMANCE), state)
        crt = haproxy.home / CONFORMANCE / "haproxy.pem"
        if not crt.exists():  # the removal test leaves no file, which a reload would refuse
            write_placeholder_crt(crt, (CONFORMANCE,))

    @pytest.fixture
    def served_serial(self, haproxy: Haproxy) -> Callable[[], str | None]:
        return lambda: haproxy.serial(CONFORMANCE)

    @pytest.fixture
    def broken_target(self, tmp_path: Path) -> DeployTarget:
        """An HAProxy that is not running: its admin socket is not there."""
        return build_target("haproxy", {"path": str(tmp_path), "socket": str(tmp_path / "admin.sock")})


def test_handshakes_during_twenty_installs_never_fail_and_end_on_the_newest(haproxy: Haproxy) -> None:
    versions = make_materials(20, names=(LOOP,))
    known = {version.serial for version in versions} | {haproxy.serial(LOOP)}
    seen: list[str] = []
    failures: list[str] = []
    stop = threading.Event()

    def handshakes() -> None:
        while not stop.is_set():
            try:
                seen.append(haproxy.serial(LOOP))  # a new connection each time, with SNI
            except OSError as exc:
                failures.append(f"{type(exc).__name__}: {exc}")

    client = threading.Thread(target=handshakes, daemon=True)
    client.start()
    try:
        for version in versions:
            build_target("haproxy", options(haproxy, LOOP)).install(version)
            deadline = time.monotonic() + 10
            while not (seen and same_serial(seen[-1], version.serial)):  # the client sees each version in turn
                assert time.monotonic() < deadline and client.is_alive(), f"the client never saw version {version.version}"
                time.sleep(0.005)
    finally:
        stop.set()
        client.join(timeout=10)
    assert not failures, failures[:5]
    assert len(set(seen) & {version.serial for version in versions}) == 20, "some versions were never served"
    assert set(seen) <= known, "a handshake was given a certificate that no install put there"
    assert same_serial(haproxy.serial(LOOP), versions[-1].serial)
    assert build_target("haproxy", options(haproxy, LOOP)).held().serial == versions[-1].serial
    assert no_transaction(haproxy)


def test_an_installed_certificate_survives_a_master_reload(haproxy: Haproxy) -> None:
    first, second = make_materials(2, names=(RELOAD,))
    build_target("haproxy", options(haproxy, RELOAD)).install(first)
    assert same_serial(haproxy.serial(RELOAD), first.serial)
    haproxy.reload()  # the new worker reads the files: the runtime swap alone would have been lost
    assert same_serial(haproxy.serial(RELOAD), first.serial)

    by_master = build_target("haproxy", haproxy.target_options(haproxy.home / RELOAD / "haproxy.pem", via="master"))
    by_master.install(second)
    assert same_serial(haproxy.serial(RELOAD), first.serial), "without the admin socket nothing is live before the reload"
    activation = by_master.activation()
    assert activation is not None and "master" in activation.key
    activation.run()
    assert same_serial(haproxy.serial(RELOAD), second.serial)
    assert by_master.held().serial == second.serial


def test_a_failed_master_reload_is_a_reload_error_and_haproxy_keeps_serving(haproxy: Haproxy) -> None:
    target = build_target("haproxy", {"path": str(haproxy.home / RELOAD), "master_socket": str(haproxy.master_socket)})
    served = haproxy.serial(RELOAD)
    haproxy.conf_path.write_text(haproxy.conf_path.read_text() + "this is not haproxy configuration\n")
    try:
        activation = target.activation()
        assert activation is not None
        with pytest.raises(DeployError) as caught:
            activation.run()
        assert caught.value.reason == "reload"
        assert haproxy.serial(RELOAD) == served
    finally:
        haproxy.write_config()
        haproxy.reload()


def test_haproxy_down_is_unreachable_and_the_files_stay_as_they_were(haproxy: Haproxy, tmp_path: Path) -> None:
    old, new = make_materials(2, names=(REFUSE,))
    folder = tmp_path / "down"
    folder.mkdir()
    down = {"path": str(folder), "socket": str(tmp_path / "gone.sock")}
    build_target("haproxy", {"path": str(folder), "reload_command": "true"}).install(old)
    before = folder_bytes(folder)
    target = build_target("haproxy", down)
    with pytest.raises(DeployError) as caught:
        target.install(new)
    assert caught.value.reason == "unreachable"
    assert str(tmp_path / "gone.sock") in caught.value.problem
    assert folder_bytes(folder) == before
    with pytest.raises(DeployError):
        target.check()
    held = target.held()  # HAProxy cannot be asked: the file says what is in place
    assert held.serial == old.serial and "haproxy" in held.detail


def test_a_refused_payload_changes_nothing(haproxy: Haproxy) -> None:
    good, other = make_materials(2, names=(REFUSE,))
    target = build_target("haproxy", options(haproxy, REFUSE))
    target.install(good)
    before, served = folder_bytes(haproxy.home / REFUSE), haproxy.serial(REFUSE)
    mismatched = replace(other, private_key_pem=good.private_key_pem)  # HAProxy accepts it, then refuses the commit
    unreadable = replace(other, certificate_pem="-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    for bad in (mismatched, unreadable):
        with pytest.raises(DeployError) as caught:
            target.install(bad)
        assert caught.value.reason == "refused"
        assert "HAProxy refused the certificate" in caught.value.problem
        assert folder_bytes(haproxy.home / REFUSE) == before
        assert haproxy.serial(REFUSE) == served
        assert no_transaction(haproxy)
    assert target.held().serial == good.serial


def test_another_update_under_way_is_waited_for_then_unreachable(haproxy: Haproxy) -> None:
    version = make_materials(1, names=(REFUSE,))[0]
    target = build_target("haproxy", options(haproxy, REFUSE, timeout=1))
    target.install(version)
    before = folder_bytes(haproxy.home / REFUSE)
    other = str(haproxy.home / LOOP / "haproxy.pem")
    assert "Transaction created" in haproxy.admin(f"set ssl cert {other}", (haproxy.home / LOOP / "haproxy.pem").read_text())
    try:
        with pytest.raises(DeployError) as caught:
            target.install(make_materials(1, names=(REFUSE,))[0])
        assert caught.value.reason == "unreachable" and other in caught.value.problem
        assert folder_bytes(haproxy.home / REFUSE) == before
    finally:
        haproxy.admin(f"abort ssl cert {other}")
    assert no_transaction(haproxy)


def test_a_file_haproxy_does_not_load_is_a_config_error_before_anything_is_written(haproxy: Haproxy,
                                                                                   tmp_path: Path) -> None:
    target = build_target("haproxy", {"path": str(tmp_path), "socket": str(haproxy.admin_socket)})
    with pytest.raises(DeployError) as caught:
        target.install(make_materials(1)[0])
    assert caught.value.reason == "config" and f"ssl crt {tmp_path / 'haproxy.pem'}" in caught.value.problem
    assert list(tmp_path.iterdir()) == []


def test_the_crt_file_holds_chain_and_key_and_the_four_files_are_beside_it(haproxy: Haproxy) -> None:
    version = make_materials(1, names=(REFUSE,))[0]
    build_target("haproxy", options(haproxy, REFUSE)).install(version)
    folder = haproxy.home / REFUSE
    crt = (folder / "haproxy.pem").read_text()
    assert crt.count("BEGIN CERTIFICATE") == 2 and "BEGIN PRIVATE KEY" in crt and "\n\n" not in crt
    assert {"cert.pem", "chain.pem", "fullchain.pem", "privkey.pem"} <= set(folder_bytes(folder))
    assert (folder / "haproxy.pem").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(("raw", "field"), [
    ({"path": "/srv/certs"}, "socket"),
    ({"path": "/srv/certs", "socket": "run/admin.sock"}, "socket"),
    ({"path": "/srv/certs", "socket": "/run/admin.sock", "crt_name": "../x.pem"}, "crt_name"),
    ({"path": "/srv/certs", "socket": "/run/admin.sock", "crt_name": "privkey.pem"}, "crt_name"),
    ({"path": "/srv/my certs", "socket": "/run/admin.sock"}, "crt_name"),
    ({"path": "/srv/certs", "master_socket": "master.sock"}, "master_socket"),
])
def test_options_are_checked(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        build_target("haproxy", raw)
    assert caught.value.field == field


def test_options_from_strings_and_the_describe(haproxy: Haproxy) -> None:
    target = build_target("haproxy", options(haproxy, REFUSE, timeout="5", crt_name="site.pem"))
    assert target.describe() == f"haproxy {haproxy.home / REFUSE / 'site.pem'}"
    assert target.activation() is None
    command = build_target("haproxy", {"path": "/srv/certs", "reload_command": "systemctl reload haproxy"})
    activation = command.activation()
    assert activation is not None and "systemctl reload haproxy" in activation.key


def test_a_reload_command_makes_the_files_live_and_master_reloads_of_one_haproxy_are_shared(haproxy: Haproxy) -> None:
    assert haproxy.process is not None
    version = make_materials(1, names=(RELOAD,))[0]
    by_command = build_target("haproxy", {**haproxy.target_options(haproxy.home / RELOAD / "haproxy.pem", via="master"),
                                          "master_socket": None, "reload_command": f"kill -USR2 {haproxy.process.pid}"})
    by_command.install(version)
    activation = by_command.activation()
    assert activation is not None
    activation.run()
    deadline = time.monotonic() + 10
    while not same_serial(haproxy.serial(RELOAD), version.serial):  # USR2 returns before the new worker serves
        assert time.monotonic() < deadline, "the reload command did not make the new certificate live"
        time.sleep(0.02)

    targets = [build_target("haproxy", haproxy.target_options(haproxy.home / site / "haproxy.pem", via="master"))
               for site in (RELOAD, LOOP)]
    assert len(group_activations(targets)) == 1
    assert group_activations([build_target("haproxy", options(haproxy, site)) for site in (RELOAD, LOOP)]) == {}
