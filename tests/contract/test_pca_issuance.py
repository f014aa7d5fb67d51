"""IssueCertificate in depth: key algorithms, every template, passthrough, validity forms, revocation."""

from __future__ import annotations

import base64
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from certsmith.domain.templates import TEMPLATES, TemplateKind
from certsmith.testing.pki import WAIT, activate_root, create_ca, issue, make_csr, root_ca, rsa_key

from ..conftest import Server, need_binary

CSR_EXTENSION = ObjectIdentifier("1.3.6.1.4.1.55555.1")
API_EXTENSION = ObjectIdentifier("1.3.6.1.4.1.55555.2")


@pytest.mark.parametrize("key_algorithm,signing", [
    ("RSA_2048", "SHA256WITHRSA"),
    ("RSA_3072", "SHA384WITHRSA"),
    ("RSA_4096", "SHA512WITHRSA_PSS"),
    ("EC_prime256v1", "SHA256WITHECDSA"),
    ("EC_secp384r1", "SHA384WITHECDSA"),
    ("EC_secp521r1", "SHA512WITHECDSA"),
])
def test_every_key_algorithm(pca: Any, tmp_path: Path, key_algorithm: str, signing: str) -> None:
    openssl = need_binary("openssl")
    arn = create_ca(pca, "ROOT", f"Root {key_algorithm}", key_algorithm=key_algorithm, signing=signing)
    root_pem = activate_root(pca, arn, signing)
    root = x509.load_pem_x509_certificate(root_pem.encode())
    ca = pca.describe_certificate_authority(CertificateAuthorityArn=arn)["CertificateAuthority"]
    assert ca["Status"] == "ACTIVE" and ca["Serial"] == format(root.serial_number, "x")
    csr, _ = make_csr("leaf.algorithms.test", ["leaf.algorithms.test"], key=rsa_key())
    _, leaf = issue(pca, arn, csr, signing)
    (tmp_path / "root.pem").write_text(root_pem)
    (tmp_path / "leaf.pem").write_text(leaf["Certificate"])
    result = subprocess.run([openssl, "verify", "-CAfile", tmp_path / "root.pem", tmp_path / "leaf.pem"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    text = subprocess.run([openssl, "x509", "-in", tmp_path / "leaf.pem", "-noout", "-text"], capture_output=True,
                          text=True, check=True).stdout
    expected = {"SHA256WITHRSA": "sha256WithRSAEncryption", "SHA384WITHRSA": "sha384WithRSAEncryption",
                "SHA512WITHRSA_PSS": "rsassaPss", "SHA256WITHECDSA": "ecdsa-with-SHA256",
                "SHA384WITHECDSA": "ecdsa-with-SHA384", "SHA512WITHECDSA": "ecdsa-with-SHA512"}[signing]
    assert f"Signature Algorithm: {expected}" in text


@pytest.fixture(scope="module")
def template_root(pca: Any) -> str:
    return root_ca(pca, "Template Root")


def _csr_with_extension(common_name: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
           .add_extension(x509.SubjectAlternativeName([x509.DNSName("csr.template.test")]), critical=False)
           .add_extension(x509.UnrecognizedExtension(CSR_EXTENSION, b"\x0c\x03csr"), critical=False)
           .sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.PEM)


PASSTHROUGH = {
    "Subject": {"CommonName": "api.template.test", "Organization": "From API"},
    "Extensions": {
        "SubjectAlternativeNames": [{"DnsName": "api.template.test"}, {"IpAddress": "10.1.2.3"}],
        "KeyUsage": {"DigitalSignature": True, "KeyAgreement": True},
        "ExtendedKeyUsage": [{"ExtendedKeyUsageType": "EMAIL_PROTECTION"}],
        "CustomExtensions": [{"ObjectIdentifier": API_EXTENSION.dotted_string,
                              "Value": base64.b64encode(b"\x0c\x03api").decode()}],
        "CertificatePolicies": [{"CertPolicyId": "2.23.140.1.2.1",
                                 "PolicyQualifiers": [{"PolicyQualifierId": "CPS",
                                                       "Qualifier": {"CpsUri": "https://cps.example.test"}}]}],
    },
}
NON_ROOT = sorted(name for name, t in TEMPLATES.items() if t.kind is not TemplateKind.ROOT)


def test_every_template(pca: Any, template_root: str) -> None:
    arns = {}
    for index, name in enumerate(NON_ROOT):
        csr = _csr_with_extension(f"t{index}.template.test")
        arns[name] = pca.issue_certificate(
            CertificateAuthorityArn=template_root, Csr=csr, SigningAlgorithm="SHA256WITHECDSA",
            TemplateArn=f"arn:aws:acm-pca:::template/{name}/V1", Validity={"Type": "DAYS", "Value": 10},
            ApiPassthrough=PASSTHROUGH)["CertificateArn"]
    for index, (name, cert_arn) in enumerate(arns.items()):
        template = TEMPLATES[name]
        pca.get_waiter("certificate_issued").wait(CertificateAuthorityArn=template_root, CertificateArn=cert_arn,
                                                  WaiterConfig=WAIT)
        pem = pca.get_certificate(CertificateAuthorityArn=template_root, CertificateArn=cert_arn)["Certificate"]
        cert = x509.load_pem_x509_certificate(pem.encode())
        extensions = {ext.oid: ext for ext in cert.extensions}
        basic = extensions[x509.BasicConstraints.oid]
        assert basic.value.ca is template.is_ca, name
        assert basic.value.path_length == template.path_length, name
        assert basic.critical is (template.is_ca or template.critical_basic_constraints), name
        assert (CSR_EXTENSION in extensions) is template.csr_passthrough, name
        assert (API_EXTENSION in extensions) is template.api_passthrough, name
        key_usage = extensions.get(x509.KeyUsage.oid)
        if not template.blank:
            assert key_usage is not None and key_usage.value == template.key_usage, name
            if template.extended_key_usage:
                eku = extensions[x509.ExtendedKeyUsage.oid]
                assert list(eku.value) == list(template.extended_key_usage), name
                assert eku.critical is template.extended_key_usage_critical, name
        elif template.api_passthrough:
            assert key_usage is not None and key_usage.value.key_agreement, name
            assert list(extensions[x509.ExtendedKeyUsage.oid].value) == [ExtendedKeyUsageOID.EMAIL_PROTECTION], name
        sans = extensions[x509.SubjectAlternativeName.oid].value.get_values_for_type(x509.DNSName)
        if template.api_passthrough:
            assert sans == ["api.template.test"], name
            assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "From API", name
            assert x509.CertificatePolicies.oid in extensions, name
        else:
            assert sans == ["csr.template.test"], name
            assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == f"t{index}.template.test", name
        assert x509.AuthorityKeyIdentifier.oid in extensions and x509.SubjectKeyIdentifier.oid in extensions


def test_validity_forms(pca: Any, template_root: str) -> None:
    now = datetime.now(UTC)
    absolute_end = int((now + timedelta(days=5)).timestamp())
    end_date = (now + timedelta(days=9)).strftime("%Y%m%d%H%M%S")
    short_end_date = (now + timedelta(days=11)).strftime("%y%m%d%H%M%S")
    not_before = int((now + timedelta(days=1)).timestamp())
    day = timedelta(days=1)
    cases: list[tuple[dict[str, Any], dict[str, Any] | None, tuple[timedelta, timedelta] | datetime]] = [
        ({"Type": "DAYS", "Value": 10}, None, (10 * day, 10 * day)),
        ({"Type": "MONTHS", "Value": 2}, None, (59 * day, 62 * day)),
        ({"Type": "YEARS", "Value": 1}, None, (365 * day, 366 * day)),
        ({"Type": "ABSOLUTE", "Value": absolute_end}, None, datetime.fromtimestamp(absolute_end, UTC)),
        ({"Type": "END_DATE", "Value": int(end_date)}, None,
         datetime.strptime(end_date, "%Y%m%d%H%M%S").replace(tzinfo=UTC)),
        ({"Type": "END_DATE", "Value": int(short_end_date)}, None,
         datetime.strptime(short_end_date, "%y%m%d%H%M%S").replace(tzinfo=UTC)),
        ({"Type": "DAYS", "Value": 3}, {"Type": "ABSOLUTE", "Value": not_before}, (3 * day, 3 * day)),
    ]
    for validity, not_before_spec, expected_end in cases:
        csr, _ = make_csr("validity.test")
        extra = {"ValidityNotBefore": not_before_spec} if not_before_spec else {}
        _, issued = issue(pca, template_root, csr, validity=validity, **extra)
        cert = x509.load_pem_x509_certificate(issued["Certificate"].encode())
        end = cert.not_valid_after_utc
        if isinstance(expected_end, datetime):
            assert end == expected_end, validity
        else:
            low, high = expected_end
            assert now + low - timedelta(minutes=2) <= end <= now + high + timedelta(minutes=2), validity
        if not_before_spec:
            assert int(cert.not_valid_before_utc.timestamp()) == not_before
        else:
            assert abs(cert.not_valid_before_utc - (now - timedelta(minutes=60))) < timedelta(minutes=2)


REASONS = {"UNSPECIFIED": x509.ReasonFlags.unspecified, "KEY_COMPROMISE": x509.ReasonFlags.key_compromise,
           "CERTIFICATE_AUTHORITY_COMPROMISE": x509.ReasonFlags.ca_compromise,
           "AFFILIATION_CHANGED": x509.ReasonFlags.affiliation_changed, "SUPERSEDED": x509.ReasonFlags.superseded,
           "CESSATION_OF_OPERATION": x509.ReasonFlags.cessation_of_operation,
           "PRIVILEGE_WITHDRAWN": x509.ReasonFlags.privilege_withdrawn,
           "A_A_COMPROMISE": x509.ReasonFlags.aa_compromise}


def _fetch_crl(url: str, expected: set[int]) -> x509.CertificateRevocationList:
    deadline = time.monotonic() + 30
    while True:
        response = httpx.get(url)
        if response.status_code == 200:
            crl = x509.load_der_x509_crl(response.content)
            if expected <= {entry.serial_number for entry in crl}:
                return crl
        assert time.monotonic() < deadline, f"CRL at {url} never listed {expected}"
        time.sleep(0.2)


def test_every_revocation_reason_and_custom_urls(pca: Any, server: Server) -> None:
    arn = create_ca(pca, "ROOT", "Custom URL Root", revocation={
        "CrlConfiguration": {"Enabled": True, "ExpirationInDays": 2, "CustomPath": "pki/crls"},
        "OcspConfiguration": {"Enabled": True, "OcspCustomCname": "ocsp.custom.test"}})
    activate_root(pca, arn)
    serials = {}
    for reason in REASONS:
        csr, _ = make_csr(f"{reason.lower()}.test")
        _, issued = issue(pca, arn, csr)
        cert = x509.load_pem_x509_certificate(issued["Certificate"].encode())
        serials[reason] = cert.serial_number
    authority_id = arn.rsplit("/", 1)[-1]
    cdp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value[0].full_name[0].value
    assert cdp == f"{server.endpoint}/pki/crls/{authority_id}.crl"
    aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value[0].access_location.value
    assert aia == f"http://ocsp.custom.test/ocsp/{authority_id}"
    for reason, serial in serials.items():
        pca.revoke_certificate(CertificateAuthorityArn=arn, CertificateSerial=format(serial, "x"),
                               RevocationReason=reason)
    crl = _fetch_crl(cdp, set(serials.values()))
    by_serial = {entry.serial_number: entry for entry in crl}
    for reason, serial in serials.items():
        assert by_serial[serial].extensions.get_extension_for_class(x509.CRLReason).value.reason == REASONS[reason]
    assert crl.next_update_utc is not None and crl.last_update_utc is not None
    assert crl.next_update_utc - crl.last_update_utc == timedelta(days=2)
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    csr, _ = make_csr("later.test")
    _, later = issue(pca, arn, csr)
    later_serial = x509.load_pem_x509_certificate(later["Certificate"].encode()).serial_number
    pca.revoke_certificate(CertificateAuthorityArn=arn, CertificateSerial=format(later_serial, "x"),
                           RevocationReason="SUPERSEDED")
    newer = _fetch_crl(cdp, {*serials.values(), later_serial})
    assert newer.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number > number
    root = x509.load_pem_x509_certificate(
        pca.get_certificate_authority_certificate(CertificateAuthorityArn=arn)["Certificate"].encode())
    assert newer.is_signature_valid(root.public_key())


def test_omitted_cdp_and_ocsp_get(pca: Any, server: Server) -> None:
    arn = create_ca(pca, "ROOT", "Omit Root", revocation={
        "CrlConfiguration": {"Enabled": True, "CrlDistributionPointExtensionConfiguration": {"OmitExtension": True}},
        "OcspConfiguration": {"Enabled": True}})
    root_pem = activate_root(pca, arn)
    csr, _ = make_csr("omit.test")
    _, issued = issue(pca, arn, csr)
    cert = x509.load_pem_x509_certificate(issued["Certificate"].encode())
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.CRLDistributionPoints)
    aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value[0].access_location.value
    root = x509.load_pem_x509_certificate(root_pem.encode())
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, root, hashes.SHA1()).build()
    encoded = base64.b64encode(request.public_bytes(serialization.Encoding.DER)).decode()
    response = ocsp.load_der_ocsp_response(httpx.get(f"{aia}/{encoded}").content)
    assert response.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert response.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert response.serial_number == cert.serial_number
    unknown = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        response.issuer_name_hash, response.issuer_key_hash, 12345, hashes.SHA1()).build()
    answer = ocsp.load_der_ocsp_response(httpx.post(aia, content=unknown.public_bytes(serialization.Encoding.DER),
                                                         headers={"Content-Type": "application/ocsp-request"}).content)
    assert answer.certificate_status is ocsp.OCSPCertStatus.UNKNOWN
    garbage = ocsp.load_der_ocsp_response(httpx.post(aia, content=b"junk").content)
    assert garbage.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_short_lived_ca(pca: Any) -> None:
    arn = create_ca(pca, "ROOT", "Short Lived Root", UsageMode="SHORT_LIVED_CERTIFICATE")
    activate_root(pca, arn)
    assert pca.describe_certificate_authority(CertificateAuthorityArn=arn)["CertificateAuthority"]["UsageMode"] == \
        "SHORT_LIVED_CERTIFICATE"
    csr, _ = make_csr("short.test")
    issue(pca, arn, csr, validity={"Type": "DAYS", "Value": 7})
    with pytest.raises(pca.exceptions.InvalidArgsException, match="7 days"):
        pca.issue_certificate(CertificateAuthorityArn=arn, Csr=csr, SigningAlgorithm="SHA256WITHECDSA",
                              Validity={"Type": "DAYS", "Value": 8})
