"""The certsmith CLI against an HTTPS certsmith: --ca-bundle, CERTSMITH_CA_BUNDLE and AWS_CA_BUNDLE."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..conftest import Server, backend_url, start_server

BUNDLE_VARIABLES = ("AWS_CA_BUNDLE", "CERTSMITH_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _root(folder: Path, common_name: str) -> tuple[Path, x509.Certificate, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    certificate = (x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(_name(common_name))
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                                key_encipherment=False, data_encipherment=False, key_agreement=False,
                                                key_cert_sign=True, crl_sign=True, encipher_only=False,
                                                decipher_only=False), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                   .sign(key, hashes.SHA256()))
    path = folder / f"{common_name.replace(' ', '-').lower()}.pem"
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path, certificate, key


def _server_certificate(folder: Path, issuer: x509.Certificate, issuer_key: Any) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    certificate = (x509.CertificateBuilder().subject_name(_name("127.0.0.1")).issuer_name(issuer.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                  critical=False)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                                  critical=False)
                   .sign(issuer_key, hashes.SHA256()))
    cert_path, key_path = folder / "server.pem", folder / "server.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


@pytest.fixture(scope="module")
def https(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path, Path]]:
    folder = tmp_path_factory.mktemp("cli-tls")
    trusted, certificate, key = _root(folder, "CLI TLS Root")
    stranger, _, _ = _root(folder, "Some Other Root")
    cert_path, key_path = _server_certificate(folder, certificate, key)
    server = start_server(folder, backend_url(), extra=["--tls-cert", str(cert_path), "--tls-key", str(key_path)])
    yield server, trusted, stranger
    server.stop()
    assert "Traceback" not in server.log_path.read_text()


def _cli(server: Server, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "certsmith", *args], capture_output=True, text=True, timeout=120,
                          env=env or _env(server))


def _env(server: Server, **extra: str) -> dict[str, str]:
    env = server.env()
    for name in BUNDLE_VARIABLES:
        env.pop(name, None)
    return {**env, **extra}


def test_the_cli_trusts_an_https_certsmith_through_its_ca_bundle(https: tuple[Server, Path, Path]) -> None:
    server, trusted, stranger = https
    assert server.endpoint.startswith("https://")

    untrusted = _cli(server, "ca", "list")
    assert untrusted.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr
    assert "not trusted by the system's CAs: pass --ca-bundle" in " ".join(untrusted.stderr.split())
    wrong = _cli(server, "ca", "list", "--ca-bundle", str(stranger))
    assert wrong.returncode == 1 and f"not trusted by the CA in {stranger}" in " ".join(wrong.stderr.split())
    missing = _cli(server, "ca", "list", "--ca-bundle", str(trusted.parent / "missing.pem"))
    assert missing.returncode == 2 and "--ca-bundle" in missing.stderr
    for result in (untrusted, wrong, missing):
        assert "Traceback" not in result.stderr and result.stdout == ""

    created = _cli(server, "ca", "create", "--root", "-n", "Over HTTPS", "--crl", "-q", "--ca-bundle", str(trusted))
    assert created.returncode == 0, created.stderr
    ca_arn = created.stdout.strip()
    by_aws_variable = _cli(server, "cert", "request", "https.cli.test", "--ca", ca_arn, "--json",
                           env=_env(server, AWS_CA_BUNDLE=str(trusted)))
    assert by_aws_variable.returncode == 0, by_aws_variable.stderr
    assert json.loads(by_aws_variable.stdout)["Status"] == "ISSUED"
    by_own_variable = _cli(server, "ca", "list", "-q", env=_env(server, CERTSMITH_CA_BUNDLE=str(trusted)))
    assert by_own_variable.returncode == 0 and ca_arn in by_own_variable.stdout.split()

    # ca crl downloads the CRL itself (not through botocore): the system's CAs alone would refuse this server.
    env = _env(server, CERTSMITH_CA_BUNDLE=str(trusted))
    deadline = time.monotonic() + 30
    while (crl := _cli(server, "ca", "crl", ca_arn, "--json", env=env)).returncode != 0 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert crl.returncode == 0, crl.stderr
    assert json.loads(crl.stdout)["revoked"] == []
