"""Building a CA hierarchy through the ACM-PCA API and making CSRs: for the tests and the benchmarks."""

from __future__ import annotations

from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

ROOT_TEMPLATE = "arn:aws:acm-pca:::template/RootCACertificate/V1"
WAIT = {"Delay": 1, "MaxAttempts": 60}


def make_csr(common_name: str, sans: list[str] | None = None, key: Any = None) -> tuple[bytes, Any]:
    key = key or ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False)
    csr = builder.sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM), key


def rsa_key(bits: int = 2048) -> Any:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def create_ca(pca: Any, ca_type: str, common_name: str, key_algorithm: str = "EC_prime256v1",
              signing: str = "SHA256WITHECDSA", revocation: dict[str, Any] | None = None, **extra: Any) -> str:
    arn: str = pca.create_certificate_authority(
        CertificateAuthorityType=ca_type,
        CertificateAuthorityConfiguration={"KeyAlgorithm": key_algorithm, "SigningAlgorithm": signing,
                                           "Subject": {"CommonName": common_name, "Organization": "certsmith tests"}},
        RevocationConfiguration=revocation or {}, **extra)["CertificateAuthorityArn"]
    pca.get_waiter("certificate_authority_csr_created").wait(CertificateAuthorityArn=arn, WaiterConfig=WAIT)
    return arn


def issue(pca: Any, ca_arn: str, csr: bytes, signing: str = "SHA256WITHECDSA", template: str | None = None,
          validity: dict[str, Any] | None = None, **extra: Any) -> tuple[str, dict[str, Any]]:
    kwargs: dict[str, Any] = {"CertificateAuthorityArn": ca_arn, "Csr": csr, "SigningAlgorithm": signing,
                              "Validity": validity or {"Type": "DAYS", "Value": 30}, **extra}
    if template:
        kwargs["TemplateArn"] = template
    cert_arn: str = pca.issue_certificate(**kwargs)["CertificateArn"]
    pca.get_waiter("certificate_issued").wait(CertificateAuthorityArn=ca_arn, CertificateArn=cert_arn,
                                              WaiterConfig=WAIT)
    return cert_arn, pca.get_certificate(CertificateAuthorityArn=ca_arn, CertificateArn=cert_arn)


def activate_root(pca: Any, arn: str, signing: str = "SHA256WITHECDSA", years: int = 10) -> str:
    csr = pca.get_certificate_authority_csr(CertificateAuthorityArn=arn)["Csr"].encode()
    _, issued = issue(pca, arn, csr, signing, ROOT_TEMPLATE, {"Type": "YEARS", "Value": years})
    pca.import_certificate_authority_certificate(CertificateAuthorityArn=arn, Certificate=issued["Certificate"].encode())
    return str(issued["Certificate"])


def activate_subordinate(pca: Any, arn: str, parent: str, signing: str = "SHA256WITHECDSA", path_length: int = 0,
                         years: int = 5) -> dict[str, Any]:
    csr = pca.get_certificate_authority_csr(CertificateAuthorityArn=arn)["Csr"].encode()
    _, issued = issue(pca, parent, csr, signing,
                      f"arn:aws:acm-pca:::template/SubordinateCACertificate_PathLen{path_length}/V1",
                      {"Type": "YEARS", "Value": years})
    pca.import_certificate_authority_certificate(CertificateAuthorityArn=arn, Certificate=issued["Certificate"].encode(),
                                                 CertificateChain=issued["CertificateChain"].encode())
    return issued


def root_ca(pca: Any, name: str = "Test Root", **kwargs: Any) -> str:
    arn = create_ca(pca, "ROOT", name, **kwargs)
    activate_root(pca, arn, kwargs.get("signing", "SHA256WITHECDSA"))
    return arn
