"""Checks for ImportCertificateAuthorityCertificate (a CA's own certificate and chain)."""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import ExtensionOID

from .authority import AuthorityType
from .errors import CertificateMismatchError, InvalidRequestError, MalformedCertificateError
from .issuance import verify_signed_by

__all__ = ["load_pem_certificates", "validate_ca_certificate"]

_ALLOWED_CRITICAL = {
    ExtensionOID.AUTHORITY_KEY_IDENTIFIER, ExtensionOID.BASIC_CONSTRAINTS, ExtensionOID.CERTIFICATE_POLICIES,
    ExtensionOID.EXTENDED_KEY_USAGE, ExtensionOID.INHIBIT_ANY_POLICY, ExtensionOID.ISSUER_ALTERNATIVE_NAME,
    ExtensionOID.KEY_USAGE, ExtensionOID.NAME_CONSTRAINTS, ExtensionOID.POLICY_MAPPINGS,
    ExtensionOID.SUBJECT_ALTERNATIVE_NAME, ExtensionOID.SUBJECT_DIRECTORY_ATTRIBUTES,
    ExtensionOID.SUBJECT_KEY_IDENTIFIER, ExtensionOID.SUBJECT_INFORMATION_ACCESS,
}


def load_pem_certificates(data: bytes, field: str, max_bytes: int) -> list[x509.Certificate]:
    if len(data) > max_bytes:
        raise MalformedCertificateError(f"{field} is {len(data)} bytes; the limit is {max_bytes}", field=field)
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise MalformedCertificateError(f"{field} is not PEM: expected -----BEGIN CERTIFICATE-----", field=field)
    try:
        certificates = x509.load_pem_x509_certificates(data)
        for certificate in certificates:  # parsed lazily: a damaged name or key would raise later, where it is read
            _ = certificate.issuer, certificate.subject, certificate.not_valid_before_utc, certificate.not_valid_after_utc
            certificate.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise MalformedCertificateError(f"{field} cannot be parsed: {exc}", field=field) from None
    return certificates


def _check_extensions(certificate: x509.Certificate, field: str) -> None:
    try:
        extensions = certificate.extensions
    except ValueError as exc:
        raise MalformedCertificateError(f"{field} has extensions that cannot be parsed: {exc}", field=field) from None
    for extension in extensions:
        if extension.critical and extension.oid not in _ALLOWED_CRITICAL:
            name = getattr(extension.oid, "_name", extension.oid.dotted_string)
            raise InvalidRequestError(f"{field} marks extension {name} critical, which is not allowed", field=field)
    try:
        basic = extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        raise InvalidRequestError(f"{field} has no basic constraints extension; a CA certificate needs a critical "
                                  "CA:TRUE", field=field) from None
    if not basic.critical or not basic.value.ca:
        raise InvalidRequestError(f"{field} basic constraints must be critical with CA:TRUE", field=field)


def validate_ca_certificate(authority_type: AuthorityType, ca_public_key: PublicKeyTypes, certificate_pem: bytes,
                            chain_pem: bytes | None) -> tuple[x509.Certificate, list[x509.Certificate]]:
    certificates = load_pem_certificates(certificate_pem, "Certificate", 32768)
    if len(certificates) != 1:
        raise MalformedCertificateError(f"Certificate must hold exactly one certificate, not {len(certificates)}",
                                        field="Certificate")
    certificate = certificates[0]
    if certificate.public_key() != ca_public_key:
        raise CertificateMismatchError("Certificate's public key is not the CA's key (the one in its CSR)",
                                       field="Certificate")
    _check_extensions(certificate, "Certificate")
    self_signed = certificate.issuer == certificate.subject and verify_signed_by(certificate, certificate)
    if authority_type is AuthorityType.ROOT:
        if not self_signed:
            raise InvalidRequestError("a ROOT CA takes only a self-signed certificate", field="Certificate")
        if chain_pem:
            raise InvalidRequestError("CertificateChain must be omitted for a ROOT CA", field="CertificateChain")
        return certificate, []
    if self_signed:
        raise InvalidRequestError("a SUBORDINATE CA cannot take a self-signed certificate", field="Certificate")
    if not chain_pem:
        raise InvalidRequestError("CertificateChain is required for a SUBORDINATE CA (its issuer first, root last)",
                                  field="CertificateChain")
    chain = load_pem_certificates(chain_pem, "CertificateChain", 2 * 1024 * 1024)
    previous = certificate
    for position, link in enumerate(chain):
        if link == certificate:
            raise InvalidRequestError("CertificateChain must not contain the certificate being imported",
                                      field="CertificateChain")
        _check_extensions(link, f"CertificateChain[{position}]")
        if not verify_signed_by(previous, link):
            what = "Certificate" if position == 0 else f"CertificateChain[{position - 1}]"
            raise CertificateMismatchError(f"CertificateChain[{position}] did not sign {what}: the chain must be in "
                                           "order, each certificate signing the one before it, root last",
                                           field="CertificateChain")
        previous = link
    if not verify_signed_by(previous, previous):
        raise InvalidRequestError("CertificateChain must end with a self-signed root certificate",
                                  field="CertificateChain")
    return certificate, chain
