"""ACM certificates: statuses, the domain-name rules of a request, and what a certificate says about itself."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .algorithms import KeyAlgorithm, key_algorithm_of
from .errors import ValidationError

__all__ = [
    "CertificateFacts", "CertificateStatus", "CertificateType", "FailureReason",
    "certificate_facts", "check_domain_name", "colon_hex", "request_names", "signature_algorithm_name",
]

MAX_NAMES = 100
CN_MAX = 64
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


class CertificateStatus(StrEnum):
    PENDING_VALIDATION = "PENDING_VALIDATION"
    ISSUED = "ISSUED"
    INACTIVE = "INACTIVE"
    EXPIRED = "EXPIRED"
    VALIDATION_TIMED_OUT = "VALIDATION_TIMED_OUT"
    REVOKED = "REVOKED"
    FAILED = "FAILED"


class CertificateType(StrEnum):
    IMPORTED = "IMPORTED"
    AMAZON_ISSUED = "AMAZON_ISSUED"
    PRIVATE = "PRIVATE"


class FailureReason(StrEnum):
    PCA_INVALID_STATE = "PCA_INVALID_STATE"
    PCA_INVALID_ARN = "PCA_INVALID_ARN"
    PCA_INVALID_ARGS = "PCA_INVALID_ARGS"
    PCA_INVALID_DURATION = "PCA_INVALID_DURATION"
    PCA_RESOURCE_NOT_FOUND = "PCA_RESOURCE_NOT_FOUND"
    PCA_NAME_CONSTRAINTS_VALIDATION = "PCA_NAME_CONSTRAINTS_VALIDATION"
    PCA_REQUEST_FAILED = "PCA_REQUEST_FAILED"
    PCA_LIMIT_EXCEEDED = "PCA_LIMIT_EXCEEDED"
    DOMAIN_VALIDATION_DENIED = "DOMAIN_VALIDATION_DENIED"
    CAA_ERROR = "CAA_ERROR"
    INVALID_PUBLIC_DOMAIN = "INVALID_PUBLIC_DOMAIN"
    DOMAIN_NOT_ALLOWED = "DOMAIN_NOT_ALLOWED"
    OTHER = "OTHER"


def request_names(domain_name: str, sans: list[str], check: Callable[[str, str], str]) -> list[str]:
    """DomainName first, then the SANs in request order, each once, as ``check(name, field)`` returns them;
    at most MAX_NAMES in all (ValidationError naming SubjectAlternativeNames)."""
    names = [check(domain_name, "DomainName")]
    for index, name in enumerate(sans):
        checked = check(name, f"SubjectAlternativeNames[{index}]")
        if checked not in names:
            names.append(checked)
    if len(names) > MAX_NAMES:
        raise ValidationError(f"SubjectAlternativeNames: a certificate has at most {MAX_NAMES} names, DomainName "
                              f"included; this request has {len(names)}", field="SubjectAlternativeNames")
    return names


def check_domain_name(name: str, field: str) -> str:
    """A requested name by the rules of ACM (§10.12); returns it lower-cased."""
    problem = _domain_problem(name)
    if problem:
        raise ValidationError(f"{field} {name!r} is not a valid domain name: {problem}", field=field)
    return name.lower()


def _domain_problem(name: str) -> str | None:
    if not name.isascii():
        return "only ASCII is allowed; write internationalised names in Punycode (xn--...)"
    if len(name) > 253:
        return f"it is {len(name)} characters long; the limit is 253"
    labels = name.split(".")
    if labels[0] == "*":
        labels = labels[1:]
    elif "*" in name:
        return "a wildcard must be the whole leftmost label (*.example.com)"
    if len(labels) < 2:
        return "it needs at least two labels (example.com)"
    for label in labels:
        if not _LABEL.match(label):
            return f"label {label!r} must be 1-63 letters, digits or hyphens, not starting or ending with a hyphen"
        if label[2:4] == "--" and not label.lower().startswith("xn--"):
            return f"label {label!r} has '--' in positions 3-4 but is not Punycode (xn--)"
    return None


def signature_algorithm_name(certificate: x509.Certificate) -> str:
    """``SHA256WITHRSA``, ``SHA384WITHECDSA``, ``SHA256WITHRSAPSS`` … as ACM spells them."""
    oid_name = certificate.signature_algorithm_oid._name  # e.g. "sha256WithRSAEncryption", "ecdsa-with-SHA384"
    digest = certificate.signature_hash_algorithm.name.upper() if certificate.signature_hash_algorithm else ""
    if "ecdsa" in oid_name.lower():
        return f"{digest}WITHECDSA"
    if "pss" in oid_name.lower():
        return f"{digest}WITHRSAPSS"
    return f"{digest}WITHRSA"


_KEY_USAGE_NAMES = (
    ("digital_signature", "DIGITAL_SIGNATURE"), ("content_commitment", "NON_REPUDIATION"),
    ("key_encipherment", "KEY_ENCIPHERMENT"), ("data_encipherment", "DATA_ENCIPHERMENT"),
    ("key_agreement", "KEY_AGREEMENT"), ("key_cert_sign", "CERTIFICATE_SIGNING"), ("crl_sign", "CRL_SIGNING"),
)
_EKU_NAMES = {
    ExtendedKeyUsageOID.SERVER_AUTH: "TLS_WEB_SERVER_AUTHENTICATION",
    ExtendedKeyUsageOID.CLIENT_AUTH: "TLS_WEB_CLIENT_AUTHENTICATION",
    ExtendedKeyUsageOID.CODE_SIGNING: "CODE_SIGNING",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "EMAIL_PROTECTION",
    ExtendedKeyUsageOID.TIME_STAMPING: "TIME_STAMPING",
    ExtendedKeyUsageOID.OCSP_SIGNING: "OCSP_SIGNING",
    x509.ObjectIdentifier("1.3.6.1.5.5.7.3.5"): "IPSEC_END_SYSTEM",
    x509.ObjectIdentifier("1.3.6.1.5.5.7.3.6"): "IPSEC_TUNNEL",
    x509.ObjectIdentifier("1.3.6.1.5.5.7.3.7"): "IPSEC_USER",
}


@dataclass(frozen=True, slots=True)
class CertificateFacts:
    """What DescribeCertificate and ListCertificates report about a certificate's contents."""

    serial: str
    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    key_algorithm: KeyAlgorithm | None
    signature_algorithm: str
    key_usages: list[str]
    extended_key_usages: list[dict[str, str]]
    names: list[str]


def colon_hex(value: int) -> str:
    """A serial as ACM shows it: lowercase hex bytes joined by colons (``07:71:71:f4``)."""
    text = format(value, "x")
    text = "0" + text if len(text) % 2 else text
    return ":".join(text[i:i + 2] for i in range(0, len(text), 2))


def certificate_facts(certificate: x509.Certificate) -> CertificateFacts:
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
        key_usages = [name for attribute, name in _KEY_USAGE_NAMES if getattr(usage, attribute)]
        if usage.key_agreement:
            key_usages += [n for a, n in (("encipher_only", "ENCIPHER_ONLY"), ("decipher_only", "DECIPHER_ONLY"))
                           if getattr(usage, a)]
    except x509.ExtensionNotFound:
        key_usages = []
    try:
        ekus = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        extended = [{"Name": _EKU_NAMES.get(oid, "CUSTOM"), "OID": oid.dotted_string} for oid in ekus]
    except x509.ExtensionNotFound:
        extended = []
    try:
        sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [str(n) for n in sans.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        names = []
    issuer_cn = certificate.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    issuer_org = certificate.issuer.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    issuer = str((issuer_org or issuer_cn)[0].value) if (issuer_org or issuer_cn) else certificate.issuer.rfc4514_string()
    return CertificateFacts(
        serial=colon_hex(certificate.serial_number), subject=certificate.subject.rfc4514_string(), issuer=issuer,
        not_before=certificate.not_valid_before_utc, not_after=certificate.not_valid_after_utc,
        key_algorithm=key_algorithm_of(certificate.public_key()),
        signature_algorithm=signature_algorithm_name(certificate), key_usages=key_usages,
        extended_key_usages=extended, names=names)
