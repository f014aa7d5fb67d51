"""A CA with CRLs on publishes a signed CRL from activation on, even when only ACM issues from it.

The CRL is fetched from the URL in the issued certificate's CRL distribution point and verified with
openssl against the CA certificate, as a relying party would.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509

from certsmith.testing.pki import WAIT, create_ca, root_ca

from ..conftest import Server, need_binary

CRL_DAYS = 3
WITH_CRL = {"CrlConfiguration": {"Enabled": True, "ExpirationInDays": CRL_DAYS}}
PASSPHRASE = b"crl publication passphrase"


@pytest.fixture(scope="module")
def acm(server: Server) -> Any:
    return server.client("acm")


def crl_url_of(ca_arn: str, server: Server) -> str:
    return f"{server.endpoint}/crl/{ca_arn.rsplit('/', 1)[-1]}.crl"


def fetch_crl(url: str, until: Any = None, seconds: float = 30) -> tuple[bytes, x509.CertificateRevocationList]:
    """GET the CRL until it is served (and ``until(crl)`` holds); fail with the last answer after ``seconds``."""
    deadline, last = time.monotonic() + seconds, "nothing"
    while time.monotonic() < deadline:
        response = httpx.get(url, timeout=5)
        last = f"HTTP {response.status_code}"
        if response.status_code == 200:
            assert response.headers["content-type"] == "application/pkix-crl"
            crl = x509.load_der_x509_crl(response.content)
            if until is None or until(crl):
                return response.content, crl
            last = f"a CRL with {len(crl)} entries"
        time.sleep(0.2)
    raise AssertionError(f"{url} never served the expected CRL; the last answer was {last}")


def openssl_verifies(crl_der: bytes, ca_pem: str, folder: Path) -> None:
    """``openssl crl -verify``: the CRL's signature checks out under the CA certificate."""
    openssl = need_binary("openssl")
    (folder / "ca.pem").write_text(ca_pem)
    (folder / "crl.der").write_bytes(crl_der)
    result = subprocess.run([openssl, "crl", "-inform", "DER", "-in", folder / "crl.der", "-CAfile", folder / "ca.pem",
                             "-verify", "-noout"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and "verify OK" in result.stderr, result.stderr + result.stdout


def check_crl(crl: x509.CertificateRevocationList, ca_pem: str) -> None:
    ca_certificate = x509.load_pem_x509_certificate(ca_pem.encode())
    assert crl.issuer == ca_certificate.subject and crl.is_signature_valid(ca_certificate.public_key())
    assert crl.next_update_utc is not None and crl.next_update_utc - crl.last_update_utc == timedelta(days=CRL_DAYS)
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number > 0


def cdp_of(certificate_pem: str) -> str:
    leaf = x509.load_pem_x509_certificate(certificate_pem.encode())
    points = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    url = points[0].full_name[0].value
    assert isinstance(url, str)
    return url


def acm_certificate(acm: Any, ca_arn: str, domain: str) -> tuple[str, dict[str, Any]]:
    arn: str = acm.request_certificate(DomainName=domain, CertificateAuthorityArn=ca_arn,
                                       KeyAlgorithm="EC_prime256v1")["CertificateArn"]
    acm.get_waiter("certificate_validated").wait(CertificateArn=arn, WaiterConfig=WAIT)
    return arn, acm.get_certificate(CertificateArn=arn)


def certsmith(server: Server, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "certsmith", *args], capture_output=True, text=True,
                            env=server.env(), timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_ca_only_acm_issues_from_serves_its_crl(acm: Any, pca: Any, server: Server, tmp_path: Path) -> None:
    ca_arn = root_ca(pca, "CRL via ACM Root", revocation=WITH_CRL)
    ca_pem = pca.get_certificate_authority_certificate(CertificateAuthorityArn=ca_arn)["Certificate"]
    # Published on activation, before anything is issued from the CA.
    crl_der, crl = fetch_crl(crl_url_of(ca_arn, server))
    check_crl(crl, ca_pem)
    assert len(crl) == 0
    openssl_verifies(crl_der, ca_pem, tmp_path)

    _, issued = acm_certificate(acm, ca_arn, "crl.acm.internal.test")
    url = cdp_of(issued["Certificate"])
    assert url == crl_url_of(ca_arn, server)
    crl_der, crl = fetch_crl(url)
    check_crl(crl, ca_pem)
    openssl_verifies(crl_der, ca_pem, tmp_path)

    shown = json.loads(certsmith(server, "ca", "crl", ca_arn, "--json"))
    assert shown["revoked"] == [] and shown["this_update"] == crl.last_update_utc.isoformat()
    assert shown["next_update"] == (crl.next_update_utc.isoformat() if crl.next_update_utc else None)


def test_acm_revocation_is_on_the_next_crl(acm: Any, pca: Any, server: Server, tmp_path: Path) -> None:
    openssl = need_binary("openssl")
    ca_arn = root_ca(pca, "CRL Revocation Root", revocation=WITH_CRL)
    ca_pem = pca.get_certificate_authority_certificate(CertificateAuthorityArn=ca_arn)["Certificate"]
    arn, issued = acm_certificate(acm, ca_arn, "revoked.acm.internal.test")
    url = cdp_of(issued["Certificate"])
    _, before = fetch_crl(url)
    acm.export_certificate(CertificateArn=arn, Passphrase=PASSPHRASE)  # ACM revokes only exported certificates
    acm.revoke_certificate(CertificateArn=arn, RevocationReason="SUPERSEDED")
    serial = x509.load_pem_x509_certificate(issued["Certificate"].encode()).serial_number
    crl_der, after = fetch_crl(url, lambda crl: crl.get_revoked_certificate_by_serial_number(serial) is not None)
    check_crl(after, ca_pem)
    number = x509.CRLNumber
    assert after.extensions.get_extension_for_class(number).value.crl_number > \
        before.extensions.get_extension_for_class(number).value.crl_number
    entry = after.get_revoked_certificate_by_serial_number(serial)
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason is x509.ReasonFlags.superseded
    openssl_verifies(crl_der, ca_pem, tmp_path)
    # A relying party that checks the CRL refuses the certificate.
    (tmp_path / "leaf.pem").write_text(issued["Certificate"])
    pem_crl = subprocess.run([openssl, "crl", "-inform", "DER", "-in", tmp_path / "crl.der"], capture_output=True,
                             check=True, timeout=30).stdout
    (tmp_path / "crl.pem").write_bytes(pem_crl)
    verify = subprocess.run([openssl, "verify", "-crl_check", "-CAfile", tmp_path / "ca.pem", "-CRLfile",
                             tmp_path / "crl.pem", tmp_path / "leaf.pem"], capture_output=True, text=True, timeout=30)
    assert verify.returncode != 0 and "certificate revoked" in verify.stdout + verify.stderr
    shown = json.loads(certsmith(server, "ca", "crl", ca_arn, "--json"))
    assert [entry["reason"] for entry in shown["revoked"] if entry["serial"] == format(serial, "x")] == ["superseded"]


def test_turning_crls_on_for_an_active_ca_publishes_one(acm: Any, pca: Any, server: Server, tmp_path: Path) -> None:
    ca_arn = root_ca(pca, "CRL Turned On Root")
    ca_pem = pca.get_certificate_authority_certificate(CertificateAuthorityArn=ca_arn)["Certificate"]
    url = crl_url_of(ca_arn, server)
    assert httpx.get(url, timeout=5).status_code == 404
    _, without = acm_certificate(acm, ca_arn, "before.crl.internal.test")
    leaf = x509.load_pem_x509_certificate(without["Certificate"].encode())
    with pytest.raises(x509.ExtensionNotFound):
        leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints)

    pca.update_certificate_authority(CertificateAuthorityArn=ca_arn, RevocationConfiguration=WITH_CRL)
    crl_der, crl = fetch_crl(url)
    check_crl(crl, ca_pem)
    openssl_verifies(crl_der, ca_pem, tmp_path)
    _, issued = acm_certificate(acm, ca_arn, "after.crl.internal.test")
    assert cdp_of(issued["Certificate"]) == url
    squashed = "".join(certsmith(server, "ca", "crl", ca_arn).split())  # Rich wraps lines at the terminal width
    assert f"CRLof{ca_arn}" in squashed and "0revoked" in squashed


def test_a_subordinate_ca_publishes_its_own_crl(acm: Any, pca: Any, server: Server, tmp_path: Path) -> None:
    root_arn = root_ca(pca, "CRL Parent Root")
    sub_arn = create_ca(pca, "SUBORDINATE", "CRL Issuing CA", revocation=WITH_CRL)
    csr = pca.get_certificate_authority_csr(CertificateAuthorityArn=sub_arn)["Csr"].encode()
    cert_arn = pca.issue_certificate(
        CertificateAuthorityArn=root_arn, Csr=csr, SigningAlgorithm="SHA256WITHECDSA",
        TemplateArn="arn:aws:acm-pca:::template/SubordinateCACertificate_PathLen0/V1",
        Validity={"Type": "YEARS", "Value": 2})["CertificateArn"]
    pca.get_waiter("certificate_issued").wait(CertificateAuthorityArn=root_arn, CertificateArn=cert_arn,
                                              WaiterConfig=WAIT)
    sub = pca.get_certificate(CertificateAuthorityArn=root_arn, CertificateArn=cert_arn)
    pca.import_certificate_authority_certificate(CertificateAuthorityArn=sub_arn,
                                                 Certificate=sub["Certificate"].encode(),
                                                 CertificateChain=sub["CertificateChain"].encode())
    _, issued = acm_certificate(acm, sub_arn, "sub.crl.internal.test")
    assert cdp_of(issued["Certificate"]) == crl_url_of(sub_arn, server)
    crl_der, crl = fetch_crl(cdp_of(issued["Certificate"]))
    check_crl(crl, sub["Certificate"])
    openssl_verifies(crl_der, sub["Certificate"], tmp_path)
    assert httpx.get(crl_url_of(root_arn, server), timeout=5).status_code == 404  # the root has CRLs off
