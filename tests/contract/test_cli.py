"""The certsmith CLI against the real server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from cryptography import x509

from certsmith.testing.pki import make_csr

from ..conftest import Server


def cli(server: Server, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "certsmith", *args], capture_output=True, text=True,
                            env=server.env(), timeout=120)
    if ok:
        assert result.returncode == 0, result.stderr
    return result


def test_ca_commands(server: Server, tmp_path: Path) -> None:
    root = json.loads(cli(server, "ca", "create", "--root", "-n", "CLI Root", "--crl", "--ocsp", "--json").stdout)
    assert root["Status"] == "ACTIVE" and root["Type"] == "ROOT"
    sub = json.loads(cli(server, "ca", "create", "--parent", root["Arn"], "-n", "CLI Issuing",
                         "--key-algorithm", "RSA_2048", "--crl", "--json").stdout)
    assert sub["Status"] == "ACTIVE" and sub["Type"] == "SUBORDINATE"
    listed = json.loads(cli(server, "ca", "list", "--json").stdout)
    assert {root["Arn"], sub["Arn"]} <= {ca["Arn"] for ca in listed}
    table = cli(server, "ca", "list").stdout
    assert "CLI" in table and "ACTIVE" in table

    csr, _ = make_csr("cli.example.test", ["cli.example.test"])
    (tmp_path / "leaf.csr").write_bytes(csr)
    issued = json.loads(cli(server, "ca", "issue", sub["Arn"], "--csr", str(tmp_path / "leaf.csr"), "--days", "10",
                            "--out", str(tmp_path / "bundle.pem"), "--json").stdout)
    leaf = x509.load_pem_x509_certificate(issued["Certificate"].encode())
    assert len(x509.load_pem_x509_certificates((tmp_path / "bundle.pem").read_bytes())) == 3
    serial = format(leaf.serial_number, "x")
    cli(server, "ca", "revoke", sub["Arn"], serial, "--reason", "SUPERSEDED")
    crl: dict[str, Any] = {}
    for _ in range(50):
        crl = json.loads(cli(server, "ca", "crl", sub["Arn"], "--json").stdout)
        if any(entry["serial"] == serial for entry in crl["revoked"]):
            break
    assert [entry["reason"] for entry in crl["revoked"] if entry["serial"] == serial] == ["superseded"]
    table = cli(server, "ca", "crl", sub["Arn"]).stdout
    assert serial in table and "superseded" in table

    described = cli(server, "ca", "describe", sub["Arn"]).stdout
    assert "Subject: CommonName=CLI Issuing" in described and "Signing: SHA256WITHRSA" in described
    assert "CRL: enabled, valid 7 days" in described and "OCSP: disabled" in described

    pending = json.loads(cli(server, "ca", "create", "-n", "CLI Later", "--json").stdout)
    assert pending["Status"] in ("CREATING", "PENDING_CERTIFICATE")
    cli(server, "ca", "activate", pending["Arn"])
    assert json.loads(cli(server, "ca", "describe", pending["Arn"], "--json").stdout)["Status"] == "ACTIVE"

    failed = cli(server, "ca", "describe", "arn:aws:acm-pca:us-east-1:123456789012:nope/x", ok=False)
    assert failed.returncode == 1 and "InvalidArnException" in failed.stderr and "Traceback" not in failed.stderr


def test_ca_create_checks_before_it_creates(server: Server) -> None:
    def count() -> int:
        return len(json.loads(cli(server, "ca", "list", "--json").stdout))

    before = count()
    empty = cli(server, "ca", "create", "--root", "-n", "  ", ok=False)
    assert empty.returncode == 1 and "--common-name must not be empty" in empty.stderr
    years = cli(server, "ca", "create", "--root", "-n", "Zero Years", "--validity-years", "0", ok=False)
    assert years.returncode == 2 and "--validity-years" in years.stderr
    missing = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/00000000-0000-0000-0000-000000000000"
    orphan = cli(server, "ca", "create", "--parent", missing, "-n", "Orphan", ok=False)
    assert orphan.returncode == 1 and "ResourceNotFoundException" in orphan.stderr
    pending = json.loads(cli(server, "ca", "create", "-n", "Not Yet", "--json").stdout)["Arn"]
    under_pending = cli(server, "ca", "create", "--parent", pending, "-n", "Under Pending", ok=False)
    assert under_pending.returncode == 1 and "PENDING_CERTIFICATE; it signs only when ACTIVE" in under_pending.stderr
    assert count() == before + 1  # only the CA created on purpose without --root
    mismatch = cli(server, "ca", "create", "--root", "-n", "Mismatch", "--signing-algorithm", "SHA256WITHRSA", ok=False)
    assert mismatch.returncode == 1 and "choose one of the EC signing algorithms" in mismatch.stderr
    assert "Traceback" not in empty.stderr + years.stderr + orphan.stderr + under_pending.stderr + mismatch.stderr

    # The parent's path length, read from its certificate, is checked before anything is created too.
    root = json.loads(cli(server, "ca", "create", "--root", "-n", "Path Root", "--json").stdout)["Arn"]
    leaf_ca = json.loads(cli(server, "ca", "create", "--parent", root, "-n", "Path 0", "--json").stdout)["Arn"]
    before = count()
    too_deep = cli(server, "ca", "create", "--parent", leaf_ca, "-n", "Too Deep", ok=False)
    assert too_deep.returncode == 1 and f"the parent CA {leaf_ca} has path length 0" in too_deep.stderr
    assert "was created" not in too_deep.stderr and "Traceback" not in too_deep.stderr
    assert count() == before
