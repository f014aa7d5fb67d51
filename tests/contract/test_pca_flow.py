"""The whole private-CA story through boto3 and openssl, against the real server."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509

from certsmith.testing.pki import activate_root, activate_subordinate, create_ca, issue, make_csr

from ..conftest import Server, need_binary

REVOCATION = {"CrlConfiguration": {"Enabled": True, "ExpirationInDays": 7},
              "OcspConfiguration": {"Enabled": True}}


@pytest.fixture(scope="module")
def hierarchy(pca: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = create_ca(pca, "ROOT", "Flow Root", revocation=REVOCATION)
    root_pem = activate_root(pca, root)
    sub = create_ca(pca, "SUBORDINATE", "Flow Issuing CA", revocation=REVOCATION)
    sub_issued = activate_subordinate(pca, sub, root)
    csr, _key = make_csr("www.flow.test", ["www.flow.test", "api.flow.test"])
    leaf_arn, leaf = issue(pca, sub, csr)
    folder = tmp_path_factory.mktemp("flow")
    (folder / "root.pem").write_text(root_pem)
    (folder / "sub.pem").write_text(sub_issued["Certificate"])
    (folder / "leaf.pem").write_text(leaf["Certificate"])
    return {"root": root, "sub": sub, "leaf_arn": leaf_arn, "leaf": leaf, "dir": folder}


def test_root_and_subordinate_are_active(pca: Any, hierarchy: dict[str, Any]) -> None:
    for arn, ca_type in ((hierarchy["root"], "ROOT"), (hierarchy["sub"], "SUBORDINATE")):
        ca = pca.describe_certificate_authority(CertificateAuthorityArn=arn)["CertificateAuthority"]
        assert ca["Status"] == "ACTIVE"
        assert ca["Type"] == ca_type
        assert ca["NotAfter"] > ca["NotBefore"]
    certificate = pca.get_certificate_authority_certificate(CertificateAuthorityArn=hierarchy["sub"])
    assert "CertificateChain" in certificate
    assert "CertificateChain" not in pca.get_certificate_authority_certificate(CertificateAuthorityArn=hierarchy["root"])


def test_openssl_verifies_the_chain(hierarchy: dict[str, Any]) -> None:
    openssl = need_binary("openssl")
    folder: Path = hierarchy["dir"]
    result = subprocess.run([openssl, "verify", "-CAfile", folder / "root.pem", "-untrusted", folder / "sub.pem",
                             folder / "leaf.pem"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "leaf.pem: OK" in result.stdout


def test_leaf_follows_the_end_entity_template(hierarchy: dict[str, Any]) -> None:
    leaf = x509.load_pem_x509_certificate(hierarchy["leaf"]["Certificate"].encode())
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    key_usage = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert key_usage.critical and key_usage.value.digital_signature and key_usage.value.key_encipherment
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert [oid.dotted_string for oid in eku] == ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["www.flow.test", "api.flow.test"]
    assert hierarchy["leaf_arn"].endswith("/certificate/" + format(leaf.serial_number, "x"))
    chain = x509.load_pem_x509_certificates(hierarchy["leaf"]["CertificateChain"].encode())
    assert chain[0].subject.rfc4514_string().startswith("CN=Flow Issuing CA")


def _urls(leaf_pem: str) -> tuple[str, str]:
    leaf = x509.load_pem_x509_certificate(leaf_pem.encode())
    cdp = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    aia = leaf.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    return cdp[0].full_name[0].value, aia[0].access_location.value


def test_revocation_shows_in_crl_and_ocsp(pca: Any, server: Server, hierarchy: dict[str, Any]) -> None:
    openssl = need_binary("openssl")
    folder: Path = hierarchy["dir"]
    csr, _ = make_csr("revoked.flow.test", ["revoked.flow.test"])
    _, issued = issue(pca, hierarchy["sub"], csr)
    (folder / "revoked.pem").write_text(issued["Certificate"])
    certificate = x509.load_pem_x509_certificate(issued["Certificate"].encode())
    crl_url, ocsp_url = _urls(issued["Certificate"])
    assert crl_url.startswith(server.endpoint + "/crl/") and crl_url.endswith(".crl")

    def ocsp_status(path: Path) -> str:
        result = subprocess.run([openssl, "ocsp", "-issuer", folder / "sub.pem", "-cert", path, "-url", ocsp_url,
                                 "-CAfile", folder / "root.pem", "-resp_text"], capture_output=True, text=True,
                                timeout=30)
        assert "Response verify OK" in result.stderr, result.stderr + result.stdout
        return result.stdout

    assert f"{folder / 'revoked.pem'}: good" in ocsp_status(folder / "revoked.pem")
    serial = ":".join(f"{b:02x}" for b in certificate.serial_number.to_bytes(16, "big"))
    pca.revoke_certificate(CertificateAuthorityArn=hierarchy["sub"], CertificateSerial=serial,
                           RevocationReason="KEY_COMPROMISE")
    deadline = time.monotonic() + 30
    revoked: list[x509.RevokedCertificate] = []
    while time.monotonic() < deadline:
        response = httpx.get(crl_url)
        if response.status_code == 200:
            crl = x509.load_der_x509_crl(response.content)
            revoked = [r for r in crl if r.serial_number == certificate.serial_number]
            if revoked:
                break
        time.sleep(0.3)
    assert revoked, "the revoked serial never appeared on the CRL"
    reason = revoked[0].extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason == x509.ReasonFlags.key_compromise
    (folder / "crl.der").write_bytes(response.content)
    text = subprocess.run([openssl, "crl", "-inform", "DER", "-in", folder / "crl.der", "-noout", "-text"],
                          capture_output=True, text=True, check=True).stdout
    assert "X509v3 CRL Number" in text and "Key Compromise" in text
    issuer_text = (folder / "sub.pem").read_text()
    chain_file = folder / "crl-check.pem"
    chain_file.write_text((folder / "root.pem").read_text() + issuer_text)
    pem_crl = subprocess.run([openssl, "crl", "-inform", "DER", "-in", folder / "crl.der"], capture_output=True,
                             check=True).stdout
    (folder / "crl.pem").write_bytes(pem_crl)
    verify = subprocess.run([openssl, "verify", "-crl_check", "-CAfile", chain_file, "-CRLfile", folder / "crl.pem",
                             folder / "revoked.pem"], capture_output=True, text=True)
    assert verify.returncode != 0 and "certificate revoked" in (verify.stdout + verify.stderr)
    status = ocsp_status(folder / "revoked.pem")
    assert f"{folder / 'revoked.pem'}: revoked" in status
    assert "Key Compromise" in status or "keyCompromise" in status
    assert f"{folder / 'leaf.pem'}: good" in ocsp_status(folder / "leaf.pem")
    with pytest.raises(pca.exceptions.RequestAlreadyProcessedException):
        pca.revoke_certificate(CertificateAuthorityArn=hierarchy["sub"], CertificateSerial=serial,
                               RevocationReason="KEY_COMPROMISE")


def test_audit_report_lists_issued_and_revoked(pca: Any, server: Server, hierarchy: dict[str, Any]) -> None:
    csr, _ = make_csr("audited.flow.test")
    audited_arn, issued = issue(pca, hierarchy["sub"], csr)
    serial = format(x509.load_pem_x509_certificate(issued["Certificate"].encode()).serial_number, "x")
    pca.revoke_certificate(CertificateAuthorityArn=hierarchy["sub"], CertificateSerial=serial,
                           RevocationReason="SUPERSEDED")
    report = pca.create_certificate_authority_audit_report(
        CertificateAuthorityArn=hierarchy["sub"], S3BucketName="audit-bucket", AuditReportResponseFormat="JSON")
    pca.get_waiter("audit_report_created").wait(CertificateAuthorityArn=hierarchy["sub"],
                                                AuditReportId=report["AuditReportId"],
                                                WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    described = pca.describe_certificate_authority_audit_report(CertificateAuthorityArn=hierarchy["sub"],
                                                                AuditReportId=report["AuditReportId"])
    assert described["AuditReportStatus"] == "SUCCESS" and described["S3Key"] == report["S3Key"]
    records = json.loads(httpx.get(f"{server.endpoint}/{report['S3Key']}").content)
    arns = {r["certificateArn"] for r in records}
    assert {hierarchy["leaf_arn"], audited_arn} <= arns
    audited = next(r for r in records if r["certificateArn"] == audited_arn)
    assert audited["revocationReason"] == "SUPERSEDED" and audited["revokedAt"].endswith("+0000")
    assert "revokedAt" not in next(r for r in records if r["certificateArn"] == hierarchy["leaf_arn"])
    for record in records:
        assert set(record) >= {"awsAccountId", "certificateArn", "serial", "subject", "notBefore", "notAfter",
                               "issuedAt", "templateArn"}
        assert ":" in record["serial"] and record["notBefore"].endswith("+0000")
    with pytest.raises(pca.exceptions.RequestInProgressException):
        pca.create_certificate_authority_audit_report(
            CertificateAuthorityArn=hierarchy["sub"], S3BucketName="audit-bucket", AuditReportResponseFormat="CSV")


def test_no_key_storage_standard_is_claimed(pca: Any, hierarchy: dict[str, Any]) -> None:
    """CA keys are sealed in software: certsmith reports no FIPS or CCPC level, even when one was asked for."""
    arn = create_ca(pca, "ROOT", "Storage Claim Root", KeyStorageSecurityStandard="FIPS_140_2_LEVEL_3_OR_HIGHER")
    described = pca.describe_certificate_authority(CertificateAuthorityArn=arn)["CertificateAuthority"]
    assert "KeyStorageSecurityStandard" not in described
    listed = pca.list_certificate_authorities()["CertificateAuthorities"]
    assert all("KeyStorageSecurityStandard" not in ca for ca in listed)
