"""What every deployment target must do, whatever its kind: one suite that each kind's test module subclasses.

A subclass provides the fixtures

- ``make_target``: a callable ``(state) -> DeployTarget`` building a fresh target over the same place (the state is
  what an earlier install returned, as the runner keeps it);
- ``served_serial`` (optional): a callable ``() -> str | None`` saying what the live server presents now, or None
  when the kind has no live server to ask (files without a server, a cloud account);
- ``broken_target`` (optional): a target whose install or activation fails (an unwritable folder, a reload command
  that exits 1, a server that is down);

and the suite gives it three versions of one certificate (``materials``), each with its own key and serial.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from certsmith.deploy.targets import DeployError, DeployTarget, Installed, Material
from certsmith.deploy.targets.base import REASONS, same_serial, serial_text

__all__ = ["TargetConformance", "make_materials"]

MakeTarget = Callable[[Mapping[str, Any]], DeployTarget]


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_materials(count: int = 3, names: tuple[str, ...] = ("localhost", "www.example.test"),
                   arn: str = "arn:aws:acm:us-east-1:123456789012:certificate/0d0e0f00-0000-4000-8000-000000000001"
                   ) -> list[Material]:
    """``count`` versions of one certificate for ``names``, each with a new P-256 key, issued by one test CA."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("certsmith conformance CA")
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    ca_pem = ca.public_bytes(serialization.Encoding.PEM).decode()
    materials = []
    for version in range(1, count + 1):
        key = ec.generate_private_key(ec.SECP256R1())
        serial = x509.random_serial_number()
        leaf = (x509.CertificateBuilder().subject_name(_name(names[0])).issuer_name(ca.subject)
                .public_key(key.public_key()).serial_number(serial)
                .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=7))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .sign(ca_key, hashes.SHA256()))
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
        materials.append(Material(certificate_arn=arn, version=version, serial=serial_text(serial),
                                  certificate_pem=leaf.public_bytes(serialization.Encoding.PEM).decode(),
                                  chain_pem=ca_pem, private_key_pem=key_pem))
    return materials


@functools.cache
def _shared_materials() -> list[Material]:
    """The suite's three versions, made once per test session (key generation is not what is tested)."""
    return make_materials()


def _deploy(target: DeployTarget, material: Material) -> Installed:
    """Install and activate, as the runner does for a target alone."""
    installed = target.install(material)
    activation = target.activation()
    if activation is not None:
        activation.run()
    return installed


def _key_body(material: Material) -> str:
    """The base64 body of the private key (what must never appear in a message)."""
    lines = [line for line in material.private_key_pem.splitlines() if line and not line.startswith("-----")]
    return "".join(lines)


class TargetConformance:
    """Subclass it (``class TestFilesConformance(TargetConformance)``) and provide the fixtures named above."""

    @pytest.fixture
    def materials(self) -> list[Material]:
        return _shared_materials()

    @pytest.fixture
    def served_serial(self) -> Callable[[], str | None]:
        return lambda: None

    @pytest.fixture
    def broken_target(self) -> DeployTarget | None:
        return None

    def _served_is(self, served_serial: Callable[[], str | None], material: Material) -> None:
        served = served_serial()
        if served is not None:
            assert same_serial(served, material.serial), (
                f"the server presents serial {served}, expected {material.serial} (version {material.version})")

    def test_kind_and_description(self, make_target: MakeTarget) -> None:
        target = make_target({})
        assert isinstance(target, DeployTarget)
        assert target.kind and target.kind == target.kind.strip().lower()
        assert target.describe().strip()

    def test_check_passes_for_a_good_target(self, make_target: MakeTarget) -> None:
        make_target({}).check()

    def test_deploy_then_held_and_served(self, make_target: MakeTarget, materials: list[Material],
                                         served_serial: Callable[[], str | None]) -> None:
        target = make_target({})
        installed = _deploy(target, materials[0])
        assert same_serial(make_target(dict(installed.state)).held().serial, materials[0].serial)
        self._served_is(served_serial, materials[0])

    def test_a_new_version_replaces_the_old_and_undo_puts_it_back(
            self, make_target: MakeTarget, materials: list[Material], served_serial: Callable[[], str | None]) -> None:
        first = _deploy(make_target({}), materials[0])
        target = make_target(dict(first.state))
        second = _deploy(target, materials[1])
        assert same_serial(make_target(dict(second.state)).held().serial, materials[1].serial)
        self._served_is(served_serial, materials[1])
        second.undo()
        activation = target.activation()
        if activation is not None:
            activation.run()
        held = make_target(dict(first.state)).held()
        if held.serial is not None:  # a target that cannot restore (a cloud import) leaves undo to a redeploy
            assert same_serial(held.serial, materials[0].serial)
            self._served_is(served_serial, materials[0])

    def test_redeploying_the_same_version_is_harmless(self, make_target: MakeTarget, materials: list[Material]) -> None:
        first = _deploy(make_target({}), materials[2])
        again = _deploy(make_target(dict(first.state)), materials[2])
        assert same_serial(make_target(dict(again.state)).held().serial, materials[2].serial)

    def test_remove_leaves_nothing_held(self, make_target: MakeTarget, materials: list[Material]) -> None:
        installed = _deploy(make_target({}), materials[0])
        target = make_target(dict(installed.state))
        target.remove()
        assert make_target(dict(installed.state)).held().serial is None

    def test_a_failure_is_a_deploy_error_with_a_reason_and_no_key_material(
            self, broken_target: DeployTarget | None, materials: list[Material]) -> None:
        if broken_target is None:
            pytest.skip("this kind gives no broken target")
        with pytest.raises(DeployError) as caught:
            _deploy(broken_target, materials[0])
        error = caught.value
        assert error.reason in REASONS
        assert error.problem.strip() and str(error).startswith(f"{error.target}: ")
        body = _key_body(materials[0])
        for chunk in (body[i:i + 24] for i in range(0, len(body) - 24, 24)):
            assert chunk not in str(error), "a deployment error shows private key material"

    def test_material_never_shows_its_key(self, materials: list[Material]) -> None:
        body = _key_body(materials[0])
        assert body[:40] not in repr(materials[0]) and body[:40] not in str(materials[0])
