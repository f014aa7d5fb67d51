"""A subordinate CA signed by an outside root, and the checks on what may be imported."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from certsmith.testing.pki import create_ca, issue, make_csr


def external_root() -> tuple[Any, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Outside Root")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA384()))
    return key, cert


def sign_subordinate(csr_pem: str, root_key: Any, root: x509.Certificate, critical_cdp: bool = False) -> bytes:
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    now = datetime.now(UTC)
    builder = (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(root.subject)
               .public_key(csr.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=365))
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True))
    if critical_cdp:
        builder = builder.add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
            [x509.UniformResourceIdentifier("http://crl.outside.test/root.crl")], None, None, None)]), critical=True)
    return builder.sign(root_key, hashes.SHA384()).public_bytes(serialization.Encoding.PEM)


def test_subordinate_under_an_outside_root(pca: Any) -> None:
    root_key, root = external_root()
    root_pem = root.public_bytes(serialization.Encoding.PEM)
    arn = create_ca(pca, "SUBORDINATE", "Outside Issuing CA")
    csr = pca.get_certificate_authority_csr(CertificateAuthorityArn=arn)["Csr"]
    with pytest.raises(ClientError) as info:
        pca.import_certificate_authority_certificate(
            CertificateAuthorityArn=arn, Certificate=sign_subordinate(csr, root_key, root, critical_cdp=True),
            CertificateChain=root_pem)
    assert info.value.response["Error"]["Code"] == "InvalidRequestException"
    assert "critical" in info.value.response["Error"]["Message"]
    pca.import_certificate_authority_certificate(CertificateAuthorityArn=arn,
                                                 Certificate=sign_subordinate(csr, root_key, root),
                                                 CertificateChain=root_pem)
    assert pca.describe_certificate_authority(CertificateAuthorityArn=arn)["CertificateAuthority"]["Status"] == "ACTIVE"
    leaf_csr, _ = make_csr("outside.leaf.test")
    _, issued = issue(pca, arn, leaf_csr)
    chain = x509.load_pem_x509_certificates(issued["CertificateChain"].encode())
    assert [c.subject.rfc4514_string() for c in chain][-1] == "CN=Outside Root"
    leaf = x509.load_pem_x509_certificate(issued["Certificate"].encode())
    leaf.verify_directly_issued_by(chain[0])
    chain[0].verify_directly_issued_by(root)


def test_csr_extensions_of_the_ca(pca: Any) -> None:
    arn = pca.create_certificate_authority(
        CertificateAuthorityType="ROOT",
        CertificateAuthorityConfiguration={
            "KeyAlgorithm": "EC_prime256v1", "SigningAlgorithm": "SHA256WITHECDSA",
            "Subject": {"CommonName": "CSR Extensions Root", "Country": "DE", "Locality": "Berlin"},
            "CsrExtensions": {
                "KeyUsage": {"KeyCertSign": True, "CRLSign": True, "DigitalSignature": True},
                "SubjectInformationAccess": [{"AccessMethod": {"AccessMethodType": "CA_REPOSITORY"},
                                              "AccessLocation": {"UniformResourceIdentifier": "http://repo.test/"}}]}},
    )["CertificateAuthorityArn"]
    pca.get_waiter("certificate_authority_csr_created").wait(CertificateAuthorityArn=arn,
                                                             WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    csr = x509.load_pem_x509_csr(pca.get_certificate_authority_csr(CertificateAuthorityArn=arn)["Csr"].encode())
    assert csr.is_signature_valid
    assert csr.subject.rfc4514_string() == "CN=CSR Extensions Root,L=Berlin,C=DE"
    key_usage = csr.extensions.get_extension_for_class(x509.KeyUsage).value
    assert key_usage.key_cert_sign and key_usage.crl_sign and key_usage.digital_signature
    access = csr.extensions.get_extension_for_class(x509.SubjectInformationAccess).value
    assert access[0].access_location.value == "http://repo.test/"
