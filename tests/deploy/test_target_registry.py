"""The kinds of deployment target: the built-ins, a third party's through the entry-point group, broken ones skipped."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import pytest

from certsmith.deploy.targets import GROUP, DeployTarget, build_target, plugin, plugins
from certsmith.deploy.targets.base import same_serial
from certsmith.domain.errors import ValidationError

from .conformance import make_materials

BUILTIN = {"files", "nginx", "apache", "haproxy", "aws-acm", "aws-elbv2", "aws-cloudfront"}

# A third party's target: the certificate's PEM in one file (enough to show a plugin gets the same treatment).
DEMO = '''
import os
from dataclasses import dataclass
from pathlib import Path
from cryptography import x509
from certsmith.deploy.targets import Held, Installed, TargetPlugin
from certsmith.deploy.targets.base import serial_text

@dataclass(frozen=True)
class Options:
    file: str
    token: str | None = None

class OneFile:
    kind = "one-file"
    def __init__(self, options, state):
        self.options = options
    def describe(self):
        return "one file " + self.options.file
    def check(self):
        pass
    def install(self, material):
        path = Path(self.options.file)
        before = path.read_text() if path.exists() else None
        path.write_text(material.certificate_pem)
        def undo():
            if before is None:
                path.unlink()
            else:
                path.write_text(before)
        return Installed(undo)
    def activation(self):
        return None
    def held(self):
        if not os.path.exists(self.options.file):
            return Held(None)
        return Held(serial_text(x509.load_pem_x509_certificate(Path(self.options.file).read_bytes()).serial_number))
    def remove(self):
        os.unlink(self.options.file)

PLUGIN = TargetPlugin("one-file", "the certificate in one file", Options, ("token",), OneFile)
TAKEN = TargetPlugin("files", "steals a kind", Options, (), OneFile)
NOT_A_PLUGIN = object()
'''


def _distribution(root: Path, module: str, entry_points: str) -> None:
    """A real installed distribution (dist-info on sys.path) with entry points in the targets' group."""
    info = root / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{GROUP}]\n" + entry_points)


def test_the_built_in_kinds_are_known() -> None:
    assert BUILTIN <= set(plugins())
    with pytest.raises(ValidationError) as info:
        plugin("ftp")
    assert info.value.field == "Kind" and "files" in info.value.message


def test_a_third_party_kind_loads_and_deploys_broken_ones_are_skipped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    module = f"cs_target_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(DEMO)
    _distribution(tmp_path, module, f"one-file = {module}:PLUGIN\nbroken = {module}_missing:PLUGIN\n"
                                    f"odd = {module}:NOT_A_PLUGIN\ntaken = {module}:TAKEN\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with caplog.at_level(logging.WARNING):
        found = plugins()
    assert found["one-file"].description == "the certificate in one file"
    assert found["files"].description != "steals a kind"  # a third party cannot take a built-in kind
    assert set(found) == BUILTIN | {"one-file"}
    assert "'broken'" in caplog.text and "ModuleNotFoundError" in caplog.text
    assert "'odd'" in caplog.text and "not a TargetPlugin" in caplog.text
    assert "'taken'" in caplog.text

    with pytest.raises(ValidationError) as info:
        build_target("one-file", {})
    assert info.value.field == "file"
    target = build_target("one-file", {"file": str(tmp_path / "cert.pem"), "token": "s3cret"})
    assert isinstance(target, DeployTarget)
    assert plugin("one-file").secret_options(plugin("one-file").parse({"file": "x", "token": "s3cret"})) == {
        "token": "s3cret"}
    first, second = make_materials(2)
    target.install(first)
    undo = target.install(second).undo
    assert same_serial(target.held().serial, second.serial)
    undo()
    assert same_serial(target.held().serial, first.serial)
