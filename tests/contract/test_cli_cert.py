"""``certsmith cert ...`` against the real server, as a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ..conftest import Server, need_binary
from ..unit.test_import_check import VECTORS
from .test_cli import cli


def test_cert_commands(server: Server, tmp_path: Path) -> None:
    openssl = need_binary("openssl")
    ca = json.loads(cli(server, "ca", "create", "--root", "-n", "CLI Cert Root", "--key-algorithm", "RSA_2048",
                        "--crl", "--ocsp", "--json").stdout)["Arn"]
    detail = json.loads(cli(server, "cert", "request", "web.cli.test", "--ca", ca, "--san", "api.cli.test",
                            "--tag", "team=web", "--json").stdout)
    arn = detail["CertificateArn"]
    assert detail["Status"] == "ISSUED" and detail["SubjectAlternativeNames"] == ["web.cli.test", "api.cli.test"]
    table = subprocess.run([sys.executable, "-m", "certsmith", "cert", "list"], capture_output=True, text=True,
                           env={**server.env(), "COLUMNS": "240"}, timeout=120, check=True).stdout
    assert "web.cli.test" in table and "ISSUED" in table and arn in table
    listed = json.loads(cli(server, "cert", "list", "--json").stdout)
    assert arn in [item["CertificateArn"] for item in listed]
    assert json.loads(cli(server, "cert", "describe", arn, "--json").stdout)["DomainName"] == "web.cli.test"
    cli(server, "cert", "get", arn, "--out", str(tmp_path / "bundle.pem"))
    assert len(x509.load_pem_x509_certificates((tmp_path / "bundle.pem").read_bytes())) == 2

    (tmp_path / "pass.txt").write_text("cli passphrase\n")
    cli(server, "cert", "export", arn, "--out", str(tmp_path / "export"), "--passphrase-file", str(tmp_path / "pass.txt"))
    key_file = tmp_path / "export" / "private-key.pem"
    assert key_file.stat().st_mode & 0o777 == 0o600
    opened = subprocess.run([openssl, "pkey", "-in", key_file, "-passin", "pass:cli passphrase", "-noout"],
                            capture_output=True, text=True)
    assert opened.returncode == 0, opened.stderr
    certificate = x509.load_pem_x509_certificate((tmp_path / "export" / "certificate.pem").read_bytes())
    key = serialization.load_pem_private_key(key_file.read_bytes(), b"cli passphrase")
    assert key.public_key() == certificate.public_key()

    assert "renewal started" in cli(server, "cert", "renew", arn).stdout
    deadline = time.monotonic() + 30
    while json.loads(cli(server, "cert", "describe", arn, "--json").stdout)["RenewalSummary"]["RenewalStatus"] != \
            "SUCCESS" and time.monotonic() < deadline:
        time.sleep(0.2)
    renewed = json.loads(cli(server, "cert", "describe", arn, "--json").stdout)
    assert renewed["RenewalSummary"]["RenewalStatus"] == "SUCCESS" and renewed["Serial"] != detail["Serial"]
    # Revocation is for exported certificates, and the renewed key has not left certsmith yet.
    assert "exported" in cli(server, "cert", "revoke", arn, ok=False).stderr
    cli(server, "cert", "export", arn, "--out", str(tmp_path / "renewed"), "--passphrase-file",
        str(tmp_path / "pass.txt"))
    assert cli(server, "cert", "tag", arn, "env=prod", "--remove", "team").stdout.strip() == "env=prod"
    cli(server, "cert", "revoke", arn, "--reason", "SUPERSEDED")
    revoked = json.loads(cli(server, "cert", "describe", arn, "--json").stdout)
    assert revoked["Status"] == "REVOKED" and revoked["RevocationReason"] == "SUPERSEDED"
    failed = cli(server, "cert", "revoke", arn, ok=False)
    assert failed.returncode == 1 and "ConflictException" in failed.stderr and "Traceback" not in failed.stderr


def test_cert_request_follows_the_ca_key_family(server: Server) -> None:
    ca = json.loads(cli(server, "ca", "create", "--root", "-n", "CLI EC Root", "--json").stdout)["Arn"]
    detail = json.loads(cli(server, "cert", "request", "ec.cli.test", "--ca", ca, "--json").stdout)
    assert detail["Status"] == "ISSUED" and detail["KeyAlgorithm"] == "EC_prime256v1"
    refused = cli(server, "cert", "request", "rsa.cli.test", "--ca", ca, "--key-algorithm", "RSA_2048", ok=False)
    assert refused.returncode == 1 and "failed: PCA_INVALID_ARGS" in refused.stderr and "RSA_2048" in refused.stderr
    assert "Traceback" not in refused.stderr and "Waiter" not in refused.stderr


def test_cert_import_check_fix_and_import(server: Server, tmp_path: Path) -> None:
    bad = [str(VECTORS / name) for name in ("rsa/leaf.crlf.pem", "rsa/other.key", "rsa/chain-wrong-order.pem")]
    report = cli(server, "cert", "import", "--check", *bad, ok=False)
    assert report.returncode == 1 and "3 problem(s)" in report.stdout
    text = " ".join(report.stdout.split())
    assert "CRLF" in text and "does not match the certificate" in text and "wrong order" in text
    assert "--fix repairs this" in text

    repairable = [str(VECTORS / name) for name in ("rsa/leaf.crlf.pem", "rsa/leaf.key", "rsa/chain-with-leaf.pem")]
    fixed = cli(server, "cert", "import", "--check", "--fix", *repairable, "--out", str(tmp_path / "fixed")).stdout
    assert "line endings" in fixed and "removed the certificate itself from the chain" in fixed
    assert "ready to import" in fixed
    assert b"\r\n" not in (tmp_path / "fixed" / "certificate.pem").read_bytes()

    imported = cli(server, "cert", "import", "--fix", *repairable, "--tag", "source=vectors").stdout
    arn = imported.split("imported:")[1].split()[0]
    detail = json.loads(cli(server, "cert", "describe", arn, "--json").stdout)
    assert detail["Type"] == "IMPORTED" and detail["DomainName"] == "rsa.vectors.test"
    # A fullchain file and a key, the layout certbot writes, in either order.
    (tmp_path / "fullchain.pem").write_bytes((VECTORS / "ec/leaf.pem").read_bytes() +
                                             (VECTORS / "ec/chain.pem").read_bytes())
    again = cli(server, "cert", "import", str(VECTORS / "ec/leaf.key"), str(tmp_path / "fullchain.pem")).stdout
    assert "imported:" in again
    cli(server, "cert", "delete", arn)
    gone = cli(server, "cert", "describe", arn, ok=False)
    assert gone.returncode == 1 and "ResourceNotFoundException" in gone.stderr
