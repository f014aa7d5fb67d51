"""The apache target against a real Apache on loopback (self-contained configuration, the server binary in the
foreground): one port, a virtual host per name chosen by SNI, each reading its own folder; what a handshake presents
is the proof. One Apache for the module."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from certsmith.deploy.targets import DeployError, DeployTarget, Material, build_target
from certsmith.deploy.targets.base import group_activations, same_serial
from certsmith.testing.tls_servers import TlsApache, apache_binary, apache_modules, start_tls_apache

from ..conftest import IN_CI, need_binary
from .conformance import TargetConformance, make_materials

SITES = ("a.deploy.test", "b.deploy.test", "c.deploy.test")
CONFORMANCE = "conformance.deploy.test"


def server_binary() -> str:
    """apache2 (Debian) or httpd; skipped on a laptop without either, a failure in CI."""
    return apache_binary() or need_binary("apache2")


@pytest.fixture(scope="module")
def apache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsApache]:
    binary = server_binary()
    if apache_modules() is None:
        if IN_CI:
            pytest.fail("Apache's mod_ssl is required in CI but is not installed")
        pytest.skip("Apache's mod_ssl is not installed")
    server = start_tls_apache(tmp_path_factory.mktemp("apache-deploy"), [*SITES, CONFORMANCE], binary=binary)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def versions() -> dict[str, list[Material]]:
    """Two versions of a certificate of each site's own."""
    return {site: make_materials(2, names=(site,)) for site in SITES}


@pytest.fixture(scope="module")
def materials() -> list[Material]:
    return make_materials()


def target(apache: TlsApache, site: str, apachectl: str | None = None) -> DeployTarget:
    return build_target("apache", apache.target_options(site, apachectl))


def deploy_all(targets: list[DeployTarget], materials: list[Material]) -> None:
    for each, material in zip(targets, materials, strict=True):
        each.install(material)
    for activation, _ in group_activations(targets).values():
        activation.run()


class TestApacheConformance(TargetConformance):
    @pytest.fixture
    def materials(self, materials: list[Material]) -> list[Material]:
        return materials

    @pytest.fixture
    def make_target(self, apache: TlsApache) -> Iterator[Callable[[Mapping[str, Any]], DeployTarget]]:
        # Through the control script, which returns once Apache has restarted: the removal test deletes the files
        # right after a deployment, and Apache stops when a restart still under way finds them gone.
        control = apache.control_script()
        yield lambda state: build_target("apache", apache.target_options(CONFORMANCE, control), state)
        apache.restore_site(CONFORMANCE)  # the removal test leaves no files, which a restart would stop at

    @pytest.fixture
    def served_serial(self, apache: TlsApache) -> Callable[[], str | None]:
        return lambda: apache.settled_serial(CONFORMANCE)

    def test_remove_leaves_nothing_held(self, make_target: Callable[[Mapping[str, Any]], DeployTarget],
                                        materials: list[Material], apache: TlsApache) -> None:
        apache.write_config(without=[CONFORMANCE])  # removing is refused while the configuration reads the files
        try:
            super().test_remove_leaves_nothing_held(make_target, materials)
        finally:
            apache.write_config()

    @pytest.fixture
    def broken_target(self, apache: TlsApache, tmp_path: Path) -> DeployTarget:
        """An Apache whose configuration does not pass the test (never started: -k graceful would start it)."""
        broken = start_tls_apache(tmp_path, ["broken.deploy.test"], binary=apache.binary, start=False)
        broken.write_config(extra="ThisIsNotADirective on")
        return build_target("apache", broken.target_options("broken.deploy.test"))


def test_three_sites_on_one_port_get_their_new_certificates_with_one_test_and_one_restart(
        apache: TlsApache, versions: dict[str, list[Material]], tmp_path: Path) -> None:
    calls = tmp_path / "calls.txt"
    control = apache.control_script(calls)  # Apache itself, each call's arguments written down
    targets = [target(apache, site, control) for site in SITES]
    assert [indexes for _, indexes in group_activations(targets).values()] == [[0, 1, 2]]
    for version in (0, 1):
        deploy_all(targets, [versions[site][version] for site in SITES])
        for site in SITES:
            apache.wait_serial(site, versions[site][version].serial)
            assert same_serial(target(apache, site).held().serial, versions[site][version].serial)
        made = calls.read_text().splitlines()
        assert [line.rsplit(" -", 1)[1] for line in made] == ["t", "k graceful"] * (version + 1)


def test_a_failed_config_test_leaves_the_old_files_and_the_old_certificate_served(
        apache: TlsApache, versions: dict[str, list[Material]]) -> None:
    site = SITES[0]
    old, new = versions[site]
    deploy_all([target(apache, site)], [old])
    apache.wait_serial(site, old.serial)
    apache.write_config(extra="ThisIsNotADirective on")
    try:
        broken = target(apache, site)
        installed = broken.install(new)
        activation = broken.activation()
        assert activation is not None
        with pytest.raises(DeployError) as caught:
            activation.run()
        assert caught.value.reason == "config"
        assert "ThisIsNotADirective" in str(caught.value) and "apachectl -t" in str(caught.value)
        installed.undo()
    finally:
        apache.write_config()
    assert same_serial(target(apache, site).held().serial, old.serial)
    assert same_serial(apache.served_serial(site), old.serial)
    assert apache.process is not None and apache.process.poll() is None, "Apache stopped"


def test_a_key_that_does_not_match_is_refused_so_a_restart_cannot_stop_apache(
        apache: TlsApache, versions: dict[str, list[Material]]) -> None:
    site = SITES[1]
    old, new = versions[site]
    deploy_all([target(apache, site)], [old])
    mixed = Material(new.certificate_arn, new.version, new.serial, new.certificate_pem, new.chain_pem,
                     old.private_key_pem)
    with pytest.raises(DeployError) as caught:
        target(apache, site).install(mixed)
    assert caught.value.reason == "config" and "does not match" in str(caught.value)
    assert same_serial(target(apache, site).held().serial, old.serial)
    apache.wait_serial(site, old.serial)


def test_the_system_apachectl_drives_the_same_server(apache: TlsApache, versions: dict[str, list[Material]]) -> None:
    apachectl = need_binary("apachectl")
    site = SITES[2]
    through_apachectl = target(apache, site, apachectl)
    through_apachectl.check()
    for material in versions[site]:
        deploy_all([through_apachectl], [material])
        apache.wait_serial(site, material.serial)


def test_check_names_a_missing_control_command(apache: TlsApache, tmp_path: Path) -> None:
    target(apache, SITES[0]).check()
    with pytest.raises(DeployError) as caught:
        target(apache, SITES[0], str(tmp_path / "no-apachectl")).check()
    assert caught.value.reason == "missing" and "no-apachectl" in str(caught.value)


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {path.name: (path.read_bytes(), path.stat().st_mode) for path in sorted(folder.iterdir())}


def test_remove_puts_the_files_back_while_the_configuration_reads_them(
        apache: TlsApache, versions: dict[str, list[Material]]) -> None:
    site = SITES[0]
    deploy_all([target(apache, site)], [versions[site][0]])
    apache.wait_serial(site, versions[site][0].serial)
    before = _snapshot(apache.folder(site))
    with pytest.raises(DeployError) as caught:
        target(apache, site).remove()
    error = caught.value
    assert error.reason == "config"
    assert f"edit {apache.conf_path} so it no longer reads {apache.folder(site)}/fullchain.pem" in error.problem
    assert _snapshot(apache.folder(site)) == before
    subprocess.run(apache.command("-t"), check=True, capture_output=True)
    apache.write_config(without=[site])
    try:
        target(apache, site).remove()
        assert target(apache, site).held().serial is None
        subprocess.run(apache.command("-t"), check=True, capture_output=True)
    finally:
        apache.restore_site(site)
        apache.write_config()
    assert apache.process is not None and apache.process.poll() is None, "Apache stopped"


def test_check_refuses_a_folder_the_configuration_does_not_read(apache: TlsApache) -> None:
    site = SITES[1]
    apache.write_config(without=[site])
    try:
        with pytest.raises(DeployError) as caught:
            target(apache, site).check()
        error = caught.value
        folder = apache.folder(site)
        assert error.reason == "config"
        assert f"Apache's configuration ({apache.conf_path}) reads no certificate from {folder}" in error.problem
        assert f"SSLCertificateFile {folder}/fullchain.pem" in error.problem and "--option config=" in error.problem
        target(apache, SITES[0]).check()  # a folder it does read
        apache.write_config(extra="ThisIsNotADirective on")
        target(apache, site).check()  # the test fails: nothing to go by, the first deployment reports Apache's words
    finally:
        apache.write_config()
