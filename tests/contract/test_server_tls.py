"""HTTPS: `serve --tls auto` (certsmith's own internal root) and `--tls-cert/--tls-key`, reloaded when renewed."""

from __future__ import annotations

import datetime as dt
import json
import ssl
import subprocess
import time
from pathlib import Path

import boto3
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from certsmith.testing.pki import WAIT, activate_root, create_ca

from ..conftest import Server, backend_url, need_binary, start_server


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Server:
    server = start_server(tmp_path_factory.mktemp("tls"), backend_url(), extra=["--tls", "auto"])
    yield server  # type: ignore[misc]
    server.stop()
    assert "Traceback" not in server.log_path.read_text()


def _served_certificate(endpoint: str) -> x509.Certificate:
    host, port = endpoint.removeprefix("https://").rsplit(":", 1)
    return x509.load_pem_x509_certificate(ssl.get_server_certificate((host, int(port))).encode())


def test_auto_tls_serves_the_api_to_boto3_and_the_aws_cli(tls_server: Server) -> None:
    ca_bundle = tls_server.data_dir / "tls" / "ca.pem"
    assert ca_bundle.exists()
    assert f"AWS_CA_BUNDLE={ca_bundle}" in tls_server.log_path.read_text()
    session = boto3.session.Session()
    key_id, secret = tls_server.access_key
    pca = session.client("acm-pca", endpoint_url=tls_server.endpoint, region_name="us-east-1", verify=str(ca_bundle),
                         aws_access_key_id=key_id, aws_secret_access_key=secret)
    acm = session.client("acm", endpoint_url=tls_server.endpoint, region_name="us-east-1", verify=str(ca_bundle),
                         aws_access_key_id=key_id, aws_secret_access_key=secret)
    ca_arn = create_ca(pca, "ROOT", "TLS Root", revocation={"CrlConfiguration": {"Enabled": True}})
    activate_root(pca, ca_arn)
    cert_arn = acm.request_certificate(DomainName="tls.internal.test", CertificateAuthorityArn=ca_arn,
                                       KeyAlgorithm="EC_prime256v1")["CertificateArn"]
    acm.get_waiter("certificate_validated").wait(CertificateArn=cert_arn, WaiterConfig=WAIT)
    exported = acm.export_certificate(CertificateArn=cert_arn, Passphrase=b"over-https-only")
    leaf = x509.load_pem_x509_certificate(exported["Certificate"].encode())
    cdp = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints).value[0].full_name[0].value
    assert cdp.startswith(f"{tls_server.endpoint}/crl/")  # the public URL follows the scheme served
    assert httpx.get(cdp, verify=ssl.create_default_context(cafile=str(ca_bundle))).status_code == 200

    env = tls_server.env()
    env["AWS_CA_BUNDLE"] = str(ca_bundle)
    result = subprocess.run([need_binary("aws"), "acm-pca", "list-certificate-authorities", "--endpoint-url",
                             tls_server.endpoint], capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0, result.stderr
    assert [ca["Arn"] for ca in json.loads(result.stdout)["CertificateAuthorities"]] == [ca_arn]

    env.pop("AWS_CA_BUNDLE")  # without the bundle the server is not trusted
    result = subprocess.run([need_binary("aws"), "acm", "list-certificates", "--endpoint-url", tls_server.endpoint],
                            capture_output=True, text=True, env=env, check=False)
    assert result.returncode != 0 and "SSL" in result.stderr


def test_auto_tls_certificate_checks_with_openssl(tls_server: Server) -> None:
    ca_bundle = tls_server.data_dir / "tls" / "ca.pem"
    host_port = tls_server.endpoint.removeprefix("https://")
    result = subprocess.run([need_binary("openssl"), "s_client", "-connect", host_port, "-CAfile", str(ca_bundle),
                             "-verify_return_error", "-verify_ip", "127.0.0.1", "-brief"],
                            input="", capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    assert "Verification: OK" in result.stderr
    with pytest.raises(httpx.HTTPError):  # plain HTTP is not served on the TLS port
        httpx.get(tls_server.endpoint.replace("https://", "http://") + "/healthz", timeout=3)
    for key_file in ("ca.key", "server.key"):  # the keys are encrypted at rest
        assert b"ENCRYPTED PRIVATE KEY" in (tls_server.data_dir / "tls" / key_file).read_bytes()


def _issue_server_certificate(directory: Path, serial: int) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(serial).not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / f"server-{serial}.pem", directory / f"server-{serial}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_given_certificate_is_reloaded_when_its_files_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert_path, key_path = tmp_path / "server.pem", tmp_path / "server.key"
    first = _issue_server_certificate(tmp_path, 1001)
    cert_path.write_bytes(first[0].read_bytes())
    key_path.write_bytes(first[1].read_bytes())
    monkeypatch.setenv("CERTSMITH_TLS_CHECK_SECONDS", "0.2")
    server = start_server(tmp_path, backend_url(), extra=["--tls-cert", str(cert_path), "--tls-key", str(key_path)])
    try:
        assert _served_certificate(server.endpoint).serial_number == 1001
        second = _issue_server_certificate(tmp_path, 2002)  # as a renewal by another tool would
        key_path.write_bytes(second[1].read_bytes())
        cert_path.write_bytes(second[0].read_bytes())
        deadline = time.monotonic() + 10
        while _served_certificate(server.endpoint).serial_number != 2002:
            assert time.monotonic() < deadline, "the renewed certificate was not served"
            time.sleep(0.2)
    finally:
        server.stop()
    assert "Traceback" not in server.log_path.read_text()
