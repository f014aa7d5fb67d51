"""The wire itself: SigV4, unknown operations, body limits, RPC v2 CBOR, keys at rest, the AWS CLI."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import cbor2
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sqlalchemy import create_engine, text

from certsmith.testing.pki import create_ca, root_ca

from ..conftest import Server, need_binary

CONFIG = {"KeyAlgorithm": "EC_prime256v1", "SigningAlgorithm": "SHA256WITHECDSA", "Subject": {"CommonName": "wire"}}


def signed(server: Server, target: str, body: bytes, *, service: str = "acm-pca", secret: str | None = None,
           key: str | None = None, when: datetime | None = None, path: str = "/",
           content_type: str = "application/x-amz-json-1.1") -> httpx.Response:
    access, real_secret = server.access_key
    request = AWSRequest(method="POST", url=server.endpoint + path, data=body,
                         headers={"Content-Type": content_type, **({"X-Amz-Target": target} if target else {})})
    signer = SigV4Auth(Credentials(key or access, secret or real_secret), service, "us-east-1")
    if when is not None:
        with mock.patch("botocore.auth.get_current_datetime", lambda: when.replace(tzinfo=None)):
            signer.add_auth(request)
    else:
        signer.add_auth(request)
    return httpx.post(server.endpoint + path, content=body, headers=dict(request.headers.items()))


def test_unsigned_request_is_refused(server: Server) -> None:
    response = httpx.post(server.endpoint + "/", content=b"{}",
                          headers={"X-Amz-Target": "ACMPrivateCA.ListCertificateAuthorities",
                                   "Content-Type": "application/x-amz-json-1.1"})
    assert response.status_code == 403
    assert response.json()["__type"] == "UnrecognizedClientException"


@pytest.mark.parametrize("kwargs,code", [
    ({"secret": "wrong-secret"}, "InvalidSignatureException"),
    ({"key": "CSAKNOSUCHKEY0000000"}, "UnrecognizedClientException"),
    ({"when": datetime.now(UTC) - timedelta(minutes=20)}, "InvalidSignatureException"),
    ({"service": "s3"}, "InvalidSignatureException"),
])
def test_bad_signatures(server: Server, kwargs: dict[str, Any], code: str) -> None:
    response = signed(server, "ACMPrivateCA.ListCertificateAuthorities", b"{}", **kwargs)
    assert response.status_code == 403
    assert response.json()["__type"] == code


def test_signed_request_with_small_skew_is_accepted(server: Server) -> None:
    response = signed(server, "ACMPrivateCA.ListCertificateAuthorities", b"{}",
                      when=datetime.now(UTC) - timedelta(minutes=10))
    assert response.status_code == 200, response.text


def test_unknown_operation(server: Server) -> None:
    response = signed(server, "ACMPrivateCA.DoSomethingElse", b"{}")
    assert response.status_code == 400 and response.json()["__type"] == "UnknownOperationException"


def test_body_that_is_not_json(server: Server) -> None:
    response = signed(server, "ACMPrivateCA.ListCertificateAuthorities", b"{not json")
    assert response.status_code == 400 and response.json()["__type"] == "SerializationException"


def test_oversized_body(server: Server) -> None:
    response = httpx.post(server.endpoint + "/", content=b"x" * (5 * 1024 * 1024),
                          headers={"X-Amz-Target": "ACMPrivateCA.ListCertificateAuthorities"})
    assert response.status_code == 413 and "limit" in response.json()["message"]


def test_rpc_v2_cbor(server: Server) -> None:
    body = cbor2.dumps({"CertificateAuthorityType": "ROOT", "CertificateAuthorityConfiguration": CONFIG})
    response = signed(server, "", body, path="/service/ACMPrivateCA/operation/CreateCertificateAuthority",
                      content_type="application/cbor")
    assert response.status_code == 200, response.content
    assert response.headers["smithy-protocol"] == "rpc-v2-cbor"
    arn = cbor2.loads(response.content)["CertificateAuthorityArn"]
    body = cbor2.dumps({"CertificateAuthorityArn": arn})
    response = signed(server, "", body, path="/service/ACMPrivateCA/operation/DescribeCertificateAuthority",
                      content_type="application/cbor")
    described = cbor2.loads(response.content)["CertificateAuthority"]
    assert described["Arn"] == arn and isinstance(described["CreatedAt"], datetime)
    bad = signed(server, "", cbor2.dumps({"CertificateAuthorityArn": "arn:nope:x"}),
                 path="/service/ACMPrivateCA/operation/DescribeCertificateAuthority", content_type="application/cbor")
    assert bad.status_code == 400 and cbor2.loads(bad.content)["__type"] == "InvalidArnException"


def public_key_bytes(pem: str) -> bytes:
    """The public key's own bytes (EC point or RSA modulus) of a certificate or CSR."""
    loaded = x509.load_pem_x509_certificate(pem.encode()) if "CERTIFICATE-----" in pem and "REQUEST" not in pem \
        else x509.load_pem_x509_csr(pem.encode())
    key = loaded.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    assert isinstance(key, rsa.RSAPublicKey)
    modulus = key.public_numbers().n
    return modulus.to_bytes((modulus.bit_length() + 7) // 8, "big")


def test_private_keys_are_encrypted_at_rest(server: Server, pca: Any) -> None:
    root_ca(pca, "At Rest Root")
    if server.database_url is None:
        raw = b"".join(p.read_bytes() for p in server.data_dir.glob("certsmith.db*"))
        assert b"PRIVATE KEY" not in raw
        with sqlite3.connect(server.data_dir / "certsmith.db") as db:
            sealed = db.execute("SELECT sealed_key, coalesce(certificate_pem, csr_pem) FROM certificate_authorities "
                                "WHERE sealed_key IS NOT NULL").fetchall()
        assert sealed
        for blob, public_pem in sealed:
            # A private key in the clear (PKCS#8, PKCS#1, SEC1) holds its public key: the sealed blob must not.
            assert blob[:1] == b"\x01"
            assert public_key_bytes(public_pem) not in blob
    assert (server.data_dir / "master.key").stat().st_mode & 0o777 == 0o600
    assert (server.credentials).stat().st_mode & 0o777 == 0o600


def test_aws_cli(server: Server, pca: Any, tmp_path: Any) -> None:
    aws = need_binary("aws")
    env = server.env()

    def run(*args: str) -> Any:
        result = subprocess.run([aws, "acm-pca", *args, "--endpoint-url", server.endpoint, "--output", "json"],
                                capture_output=True, text=True, env=env, timeout=60)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout) if result.stdout.strip() else None

    config = tmp_path / "config.json"
    config.write_text(json.dumps(CONFIG))
    arn = run("create-certificate-authority", "--certificate-authority-type", "ROOT",
              "--certificate-authority-configuration", f"file://{config}")["CertificateAuthorityArn"]
    run("wait", "certificate-authority-csr-created", "--certificate-authority-arn", arn)
    csr = run("get-certificate-authority-csr", "--certificate-authority-arn", arn)["Csr"]
    (tmp_path / "ca.csr").write_text(csr)
    cert_arn = run("issue-certificate", "--certificate-authority-arn", arn, "--csr", f"fileb://{tmp_path / 'ca.csr'}",
                   "--signing-algorithm", "SHA256WITHECDSA",
                   "--template-arn", "arn:aws:acm-pca:::template/RootCACertificate/V1",
                   "--validity", "Value=5,Type=YEARS")["CertificateArn"]
    run("wait", "certificate-issued", "--certificate-authority-arn", arn, "--certificate-arn", cert_arn)
    certificate = run("get-certificate", "--certificate-authority-arn", arn, "--certificate-arn", cert_arn)
    (tmp_path / "ca.pem").write_text(certificate["Certificate"])
    run("import-certificate-authority-certificate", "--certificate-authority-arn", arn,
        "--certificate", f"fileb://{tmp_path / 'ca.pem'}")
    described = run("describe-certificate-authority", "--certificate-authority-arn", arn)
    assert described["CertificateAuthority"]["Status"] == "ACTIVE"
    listed = run("list-certificate-authorities")
    assert arn in [ca["Arn"] for ca in listed["CertificateAuthorities"]]
    result = subprocess.run([aws, "acm-pca", "describe-certificate-authority", "--certificate-authority-arn",
                             "arn:aws:acm-pca:us-east-1:1:bad",
                             "--endpoint-url", server.endpoint], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode != 0 and "InvalidArnException" in result.stderr


def test_mutating_calls_are_audited(server: Server, pca: Any) -> None:
    arn = create_ca(pca, "ROOT", "Audited Root")
    with pytest.raises(pca.exceptions.InvalidStateException):
        pca.update_certificate_authority(CertificateAuthorityArn=arn, Status="DISABLED")
    pca.describe_certificate_authority(CertificateAuthorityArn=arn)
    url = server.database_url or f"sqlite:///{server.data_dir / 'certsmith.db'}"
    engine = create_engine(url)
    expected = [("CreateCertificateAuthority", "Success"), ("UpdateCertificateAuthority", "InvalidStateException")]
    deadline = time.monotonic() + 5  # entries are committed with the next group, within milliseconds
    while True:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT principal, operation, resource, result FROM audit_log "
                                     "WHERE resource = :arn ORDER BY id"), {"arn": arn}).all()
        if len(rows) >= len(expected) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    engine.dispose()
    assert [(r.operation, r.result) for r in rows] == expected
    assert all(r.principal.startswith("arn:aws:iam::") for r in rows)
