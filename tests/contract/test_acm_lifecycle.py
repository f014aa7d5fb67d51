"""ACM export, renewal and revocation against the real server, checked with openssl."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certsmith.testing.pki import root_ca

from ..conftest import Server, need_binary
from .test_acm_private import error_code, issued

PASSPHRASE = b"correct horse battery staple"
CRL_AND_OCSP = {"CrlConfiguration": {"Enabled": True, "ExpirationInDays": 7},
                "OcspConfiguration": {"Enabled": True}}


@pytest.fixture(scope="module")
def acm(server: Server) -> Any:
    return server.client("acm")


@pytest.fixture(scope="module")
def ca(pca: Any) -> str:
    return root_ca(pca, "ACM Lifecycle Root", revocation=CRL_AND_OCSP)


@pytest.fixture
def strict(server: Server) -> Iterator[None]:
    """ACM's eligibility rule on the account: only exported or in-use certificates are renewed."""
    certsmith = server.client("certsmith")
    certsmith.put_renewal_policy(Scope="account", StrictEligibility=True)
    yield
    certsmith.delete_renewal_policy(Scope="account")


def test_every_issued_certificate_is_eligible_by_default(acm: Any, ca: str) -> None:
    _, detail = issued(acm, ca, "eligible.internal.test", KeyAlgorithm="EC_prime256v1")
    assert detail["RenewalEligibility"] == "ELIGIBLE" and not detail.get("InUseBy")


@pytest.mark.usefixtures("strict")
def test_export_gives_an_encrypted_pkcs8_key_that_openssl_reads(acm: Any, ca: str, tmp_path: Path) -> None:
    openssl = need_binary("openssl")
    arn, detail = issued(acm, ca, "export.internal.test", KeyAlgorithm="EC_prime256v1")
    assert detail["RenewalEligibility"] == "INELIGIBLE"  # not exported, not in use
    exported = acm.export_certificate(CertificateArn=arn, Passphrase=PASSPHRASE)
    assert exported["PrivateKey"].startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert "BEGIN CERTIFICATE" in exported["CertificateChain"]
    assert exported["Certificate"] not in exported["CertificateChain"]
    (tmp_path / "key.pem").write_text(exported["PrivateKey"])
    structure = subprocess.run([openssl, "asn1parse", "-in", tmp_path / "key.pem"], capture_output=True, text=True,
                               check=True).stdout
    assert "PBES2" in structure and "aes-256-cbc" in structure.lower()
    clear = subprocess.run([openssl, "pkey", "-in", tmp_path / "key.pem", "-passin", f"pass:{PASSPHRASE.decode()}"],
                           capture_output=True, text=True)
    assert clear.returncode == 0, clear.stderr
    key = serialization.load_pem_private_key(clear.stdout.encode(), None)
    leaf = x509.load_pem_x509_certificate(exported["Certificate"].encode())
    assert key.public_key() == leaf.public_key()
    wrong = subprocess.run([openssl, "pkey", "-in", tmp_path / "key.pem", "-passin", "pass:wrong"],
                           capture_output=True, text=True)
    assert wrong.returncode != 0
    detail = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    assert detail["RenewalEligibility"] == "ELIGIBLE"
    summaries = acm.list_certificates(Includes={"keyTypes": ["EC_prime256v1"]})["CertificateSummaryList"]
    assert [s["Exported"] for s in summaries if s["CertificateArn"] == arn] == [True]


@pytest.mark.parametrize("passphrase", [b"abc", b"pa$$word", b"100%sure", "pässword".encode(), b"x" * 129])
def test_bad_passphrases_are_refused(acm: Any, ca: str, passphrase: bytes) -> None:
    arn, _ = issued(acm, ca, "passphrase.internal.test", KeyAlgorithm="EC_prime256v1")
    code, message = error_code(acm.export_certificate, CertificateArn=arn, Passphrase=passphrase)
    assert code == "ValidationException" and "passphrase" in message.lower()


@pytest.mark.usefixtures("strict")
def test_renewal_keeps_the_arn_and_changes_key_and_serial(acm: Any, ca: str) -> None:
    arn, before = issued(acm, ca, "renew.internal.test", KeyAlgorithm="EC_prime256v1")
    code, message = error_code(acm.renew_certificate, CertificateArn=arn)
    assert code == "ValidationException" and "not been exported" in message
    old_key = acm.export_certificate(CertificateArn=arn, Passphrase=PASSPHRASE)["PrivateKey"]
    acm.renew_certificate(CertificateArn=arn)
    deadline = time.monotonic() + 30
    detail = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    while detail["RenewalSummary"]["RenewalStatus"] == "PENDING_AUTO_RENEWAL" and time.monotonic() < deadline:
        time.sleep(0.2)
        detail = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    assert detail["RenewalSummary"]["RenewalStatus"] == "SUCCESS"
    assert detail["CertificateArn"] == arn and detail["Status"] == "ISSUED"
    assert detail["Serial"] != before["Serial"] and detail["NotAfter"] >= before["NotAfter"]
    assert detail["RenewalEligibility"] == "INELIGIBLE"  # the new key has not been exported yet
    new_key = acm.export_certificate(CertificateArn=arn, Passphrase=PASSPHRASE)["PrivateKey"]
    opened = [serialization.load_pem_private_key(k.encode(), PASSPHRASE).public_key() for k in (old_key, new_key)]
    assert opened[0] != opened[1]


def test_revocation_reaches_the_cas_crl_and_ocsp(acm: Any, ca: str, pca: Any, tmp_path: Path) -> None:
    openssl = need_binary("openssl")
    arn, _ = issued(acm, ca, "revoke.internal.test", KeyAlgorithm="EC_prime256v1")
    code, message = error_code(acm.revoke_certificate, CertificateArn=arn, RevocationReason="KEY_COMPROMISE")
    assert code == "ValidationException" and "exported" in message
    exported = acm.export_certificate(CertificateArn=arn, Passphrase=PASSPHRASE)
    code, _ = error_code(acm.revoke_certificate, CertificateArn=arn, RevocationReason="CERTIFICATE_HOLD")
    assert code == "ValidationException"
    assert acm.revoke_certificate(CertificateArn=arn, RevocationReason="KEY_COMPROMISE")["CertificateArn"] == arn
    detail = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    assert detail["Status"] == "REVOKED" and detail["RevocationReason"] == "KEY_COMPROMISE" and "RevokedAt" in detail
    assert error_code(acm.revoke_certificate, CertificateArn=arn, RevocationReason="KEY_COMPROMISE")[0] == \
        "ConflictException"

    leaf = x509.load_pem_x509_certificate(exported["Certificate"].encode())
    crl_url = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints).value[0].full_name[0].value
    ocsp_url = leaf.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value[0].access_location.value
    deadline, listed = time.monotonic() + 30, False
    while not listed and time.monotonic() < deadline:
        response = httpx.get(crl_url)
        listed = response.status_code == 200 and any(
            r.serial_number == leaf.serial_number for r in x509.load_der_x509_crl(response.content))
        time.sleep(0.2)
    assert listed, "the revoked serial never appeared on the CA's CRL"
    (tmp_path / "leaf.pem").write_text(exported["Certificate"])
    (tmp_path / "ca.pem").write_text(exported["CertificateChain"])
    result = subprocess.run([openssl, "ocsp", "-issuer", tmp_path / "ca.pem", "-cert", tmp_path / "leaf.pem",
                             "-url", ocsp_url, "-CAfile", tmp_path / "ca.pem"], capture_output=True, text=True,
                            timeout=30)
    assert "Response verify OK" in result.stderr and f"{tmp_path / 'leaf.pem'}: revoked" in result.stdout, \
        result.stderr + result.stdout


def test_aws_cli_export(server: Server, acm: Any, ca: str, tmp_path: Path) -> None:
    aws = need_binary("aws")
    arn, _ = issued(acm, ca, "cli-export.internal.test", KeyAlgorithm="EC_prime256v1")
    (tmp_path / "passphrase.txt").write_bytes(PASSPHRASE)
    result = subprocess.run([aws, "acm", "export-certificate", "--certificate-arn", arn, "--passphrase",
                             f"fileb://{tmp_path / 'passphrase.txt'}", "--endpoint-url", server.endpoint,
                             "--output", "json"], capture_output=True, text=True, env=server.env(), timeout=60)
    assert result.returncode == 0, result.stderr
    key = json.loads(result.stdout)["PrivateKey"]
    assert serialization.load_pem_private_key(key.encode(), PASSPHRASE) is not None
