"""The nginx target against a real nginx on loopback: one port, several TLS server blocks chosen by SNI, each reading
its own folder; what a handshake presents is the proof. One nginx for the module."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from certsmith.deploy.targets import DeployError, DeployTarget, Material, build_target
from certsmith.deploy.targets.base import group_activations, same_serial
from certsmith.testing.tls_servers import TlsNginx, start_tls_nginx

from ..conftest import need_binary
from .conformance import TargetConformance, make_materials

SITES = ("a.deploy.test", "b.deploy.test", "c.deploy.test")
CONFORMANCE = "conformance.deploy.test"


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsNginx]:
    server = start_tls_nginx(tmp_path_factory.mktemp("nginx-deploy"), [*SITES, CONFORMANCE],
                             binary=need_binary("nginx"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def versions() -> dict[str, list[Material]]:
    """Two versions of a certificate of each site's own."""
    return {site: make_materials(2, names=(site,)) for site in SITES}


@pytest.fixture
def fresh_config(nginx: TlsNginx) -> Iterator[TlsNginx]:
    """The server with its configuration written anew after the test (a test may break it)."""
    yield nginx
    nginx.write_config()


def target(nginx: TlsNginx, site: str) -> DeployTarget:
    return build_target("nginx", nginx.target_options(site))


def deploy_all(targets: list[DeployTarget], materials: list[Material]) -> None:
    for each, material in zip(targets, materials, strict=True):
        each.install(material)
    for activation, _ in group_activations(targets).values():
        activation.run()


class TestNginxConformance(TargetConformance):
    @pytest.fixture
    def materials(self, materials: list[Material]) -> list[Material]:
        return materials

    @pytest.fixture
    def make_target(self, nginx: TlsNginx) -> Iterator[Callable[[Mapping[str, Any]], DeployTarget]]:
        yield lambda state: build_target("nginx", nginx.target_options(CONFORMANCE), state)
        nginx.restore_site(CONFORMANCE)  # the removal test leaves no files, which nginx -t would refuse

    @pytest.fixture
    def served_serial(self, nginx: TlsNginx) -> Callable[[], str | None]:
        return lambda: nginx.settled_serial(CONFORMANCE)

    def test_remove_leaves_nothing_held(self, make_target: Callable[[Mapping[str, Any]], DeployTarget],
                                        materials: list[Material], nginx: TlsNginx) -> None:
        nginx.write_config(without=[CONFORMANCE])  # removing is refused while the configuration reads the files
        try:
            super().test_remove_leaves_nothing_held(make_target, materials)
        finally:
            nginx.write_config()

    @pytest.fixture
    def broken_target(self, tmp_path: Path) -> DeployTarget:
        """A valid configuration of an nginx that is not running: the test passes, the reload cannot."""
        down = start_tls_nginx(tmp_path, ["down.deploy.test"], binary=need_binary("nginx"), start=False)
        return build_target("nginx", down.target_options("down.deploy.test"))


@pytest.fixture(scope="module")
def materials() -> list[Material]:
    return make_materials()


def test_three_sites_on_one_port_get_their_new_certificates_with_one_test_and_one_reload(
        nginx: TlsNginx, versions: dict[str, list[Material]], tmp_path: Path) -> None:
    calls = tmp_path / "calls.txt"
    control = nginx.control_script(calls)  # nginx itself, each call's arguments written down
    targets = [build_target("nginx", nginx.target_options(site, control)) for site in SITES]
    groups = group_activations(targets)
    assert [indexes for _, indexes in groups.values()] == [[0, 1, 2]]
    for version in (0, 1):
        deploy_all(targets, [versions[site][version] for site in SITES])
        for site in SITES:
            nginx.wait_serial(site, versions[site][version].serial)
            assert same_serial(target(nginx, site).held().serial, versions[site][version].serial)
        made = calls.read_text().splitlines()
        assert [line.rsplit(" -", 1)[1] for line in made] == ["t", "s reload"] * (version + 1)


def test_a_failed_config_test_leaves_the_old_files_and_the_old_certificate_served(
        fresh_config: TlsNginx, versions: dict[str, list[Material]]) -> None:
    nginx, site = fresh_config, SITES[0]
    old, new = versions[site]
    deploy_all([target(nginx, site)], [old])
    nginx.wait_serial(site, old.serial)
    nginx.write_config(extra="    this_is_not_a_directive on;")
    broken = target(nginx, site)
    installed = broken.install(new)
    activation = broken.activation()
    assert activation is not None
    with pytest.raises(DeployError) as caught:
        activation.run()
    assert caught.value.reason == "config"
    assert "this_is_not_a_directive" in str(caught.value) and "nginx -t" in str(caught.value)
    installed.undo()
    assert same_serial(target(nginx, site).held().serial, old.serial)
    assert same_serial(nginx.served_serial(site), old.serial)


def test_a_broken_key_file_fails_the_test_and_undo_brings_the_old_certificate_back(
        nginx: TlsNginx, versions: dict[str, list[Material]]) -> None:
    site = SITES[1]
    old, new = versions[site]
    deploy_all([target(nginx, site)], [old])
    nginx.wait_serial(site, old.serial)
    installing = target(nginx, site)
    installed = installing.install(new)
    (nginx.folder(site) / "privkey.pem").write_text("-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n")
    activation = installing.activation()
    assert activation is not None
    with pytest.raises(DeployError) as caught:
        activation.run()
    assert caught.value.reason == "config" and "privkey.pem" in str(caught.value)
    installed.undo()  # what the runner does: undo the group's installs, activate again
    activation.run()
    nginx.wait_serial(site, old.serial)
    assert same_serial(target(nginx, site).held().serial, old.serial)


def test_a_key_that_does_not_match_is_refused_before_nginx_sees_it(
        nginx: TlsNginx, versions: dict[str, list[Material]]) -> None:
    site = SITES[2]
    old, new = versions[site]
    deploy_all([target(nginx, site)], [old])
    mixed = Material(new.certificate_arn, new.version, new.serial, new.certificate_pem, new.chain_pem,
                     old.private_key_pem)
    with pytest.raises(DeployError) as caught:
        target(nginx, site).install(mixed)
    assert caught.value.reason == "config"
    assert same_serial(target(nginx, site).held().serial, old.serial)


def test_check_proves_the_binary_and_the_folder(nginx: TlsNginx, tmp_path: Path) -> None:
    target(nginx, SITES[0]).check()
    with pytest.raises(DeployError) as caught:
        build_target("nginx", {**nginx.target_options(SITES[0]), "nginx": str(tmp_path / "no-nginx")}).check()
    assert caught.value.reason == "missing" and "no-nginx" in str(caught.value)
    with pytest.raises(DeployError) as missing:
        build_target("nginx", {**nginx.target_options(SITES[0]), "config": str(tmp_path / "none.conf")}).check()
    assert missing.value.reason == "config" and "none.conf" in str(missing.value)


def test_the_activation_names_the_server_and_its_commands(nginx: TlsNginx) -> None:
    activation = target(nginx, SITES[0]).activation()
    assert activation is not None
    assert str(nginx.conf_path) in activation.key and str(nginx.home) in activation.key
    assert "-t" in activation.description and "reload" in activation.description
    other = build_target("nginx", {**nginx.target_options(SITES[0]), "config": "/etc/nginx/nginx.conf"}).activation()
    assert other is not None and other.key != activation.key


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {path.name: (path.read_bytes(), path.stat().st_mode) for path in sorted(folder.iterdir())}


def test_remove_puts_the_files_back_while_the_configuration_reads_them(
        fresh_config: TlsNginx, versions: dict[str, list[Material]]) -> None:
    nginx, site = fresh_config, SITES[0]
    deploy_all([target(nginx, site)], [versions[site][0]])
    before = _snapshot(nginx.folder(site))
    with pytest.raises(DeployError) as caught:
        target(nginx, site).remove()
    error = caught.value
    assert error.reason == "config"
    assert f"edit {nginx.conf_path} so it no longer reads {nginx.folder(site)}/fullchain.pem" in error.problem
    assert "cannot load certificate" in error.problem  # nginx's own words
    assert _snapshot(nginx.folder(site)) == before
    subprocess.run(nginx.command("-t"), check=True, capture_output=True)  # other bindings can still test and reload
    nginx.write_config(without=[site])
    target(nginx, site).remove()
    assert target(nginx, site).held().serial is None
    subprocess.run(nginx.command("-t"), check=True, capture_output=True)
    nginx.restore_site(site)


def test_check_refuses_a_folder_the_configuration_does_not_read(fresh_config: TlsNginx, tmp_path: Path) -> None:
    nginx, site = fresh_config, SITES[1]
    nginx.write_config(without=[site])
    with pytest.raises(DeployError) as caught:
        target(nginx, site).check()
    error = caught.value
    folder = nginx.folder(site)
    assert error.reason == "config"
    assert f"nginx's configuration ({nginx.conf_path}) reads no certificate from {folder}" in error.problem
    assert f"ssl_certificate {folder}/fullchain.pem; ssl_certificate_key {folder}/privkey.pem;" in error.problem
    assert "--option config=" in error.problem
    target(nginx, SITES[0]).check()  # a folder it does read
    nginx.write_config(extra="    this_is_not_a_directive on;")
    target(nginx, site).check()  # nginx -T fails: nothing to go by, the first deployment reports nginx's words
