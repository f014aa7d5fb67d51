"""Building and signing certificates and CSRs: the X.509 core of the private CA."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtensionOID, ObjectIdentifier

from .algorithms import KeyAlgorithm, SigningAlgorithm, check_family, key_algorithm_of, signature_params
from .errors import InvalidArgsError, MalformedCSRError
from .passthrough import Passthrough
from .templates import Template, TemplateKind

__all__ = ["IssuerContext", "build_csr", "load_csr", "new_serial", "sign_certificate", "sign_with"]

_CSR_MAX = 32768


def new_serial() -> int:
    """A random positive 127-bit serial whose lowercase hex is always 32 digits."""
    return secrets.randbits(127) | (1 << 124)


def _unreadable(pem_input: bool, error: ValueError) -> str:
    """Why a CSR could not be parsed, in a user's words (the parser's own texts name its internals)."""
    text = str(error)
    if not pem_input:
        return "it is neither PEM (-----BEGIN CERTIFICATE REQUEST-----) nor a DER request"
    if text.startswith("Valid PEM but no BEGIN CERTIFICATE REQUEST"):
        return "its PEM block is not a CERTIFICATE REQUEST (is it a certificate or a key?)"
    if text.startswith("Unable to load PEM file"):
        return "its PEM block cannot be decoded (bad base64 or a broken BEGIN/END line)"
    return "its PEM block does not hold a well-formed request"


def load_csr(data: bytes, field: str = "Csr") -> x509.CertificateSigningRequest:
    """Parse and check a PEM (or DER) CSR; raises MalformedCSRError with the reason."""
    if not data:
        raise MalformedCSRError(f"{field} is empty", field=field)
    if len(data) > _CSR_MAX:
        raise MalformedCSRError(f"{field} is {len(data)} bytes; the limit is {_CSR_MAX}", field=field)
    pem_input = b"-----BEGIN" in data
    try:
        csr = x509.load_pem_x509_csr(data) if pem_input else x509.load_der_x509_csr(data)
    except ValueError as exc:
        raise MalformedCSRError(f"{field} is not a certificate signing request: {_unreadable(pem_input, exc)}",
                                field=field) from None
    try:
        valid = csr.is_signature_valid
    except (UnsupportedAlgorithm, ValueError):
        valid = False
    if not valid:
        raise MalformedCSRError(f"{field} signature does not verify against its own public key", field=field)
    try:
        public_key = csr.public_key()
    except (UnsupportedAlgorithm, ValueError):
        raise MalformedCSRError(f"{field} has a public key certsmith cannot read", field=field) from None
    if key_algorithm_of(public_key) is None:
        raise MalformedCSRError(f"{field} key is not one certsmith issues for (RSA 2048/3072/4096 or "
                                "EC P-256/P-384/P-521)", field=field)
    return csr


def sign_with(builder: x509.CertificateBuilder, key: CertificateIssuerPrivateKeyTypes,
              algorithm: SigningAlgorithm) -> x509.Certificate:
    params = signature_params(algorithm)
    if params.rsa_padding is not None:
        return builder.sign(key, params.hash_algorithm, rsa_padding=params.rsa_padding)
    return builder.sign(key, params.hash_algorithm)


def build_csr(key: CertificateIssuerPrivateKeyTypes, subject: x509.Name, algorithm: SigningAlgorithm,
              key_usage: x509.KeyUsage | None = None,
              subject_information_access: list[x509.AccessDescription] | None = None) -> x509.CertificateSigningRequest:
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    if key_usage is not None:
        builder = builder.add_extension(key_usage, critical=True)
    if subject_information_access:
        builder = builder.add_extension(x509.SubjectInformationAccess(subject_information_access), critical=False)
    params = signature_params(algorithm)
    if params.rsa_padding is not None:
        return builder.sign(key, params.hash_algorithm, rsa_padding=params.rsa_padding)
    return builder.sign(key, params.hash_algorithm)


@dataclass(frozen=True, slots=True)
class IssuerContext:
    """What a CA contributes to every certificate it signs (built once, used for many)."""

    key: CertificateIssuerPrivateKeyTypes
    name: x509.Name
    certificate: x509.Certificate | None
    crl_url: str | None
    ocsp_url: str | None
    key_algorithm: KeyAlgorithm | None = field(init=False)
    # What the CA adds to every certificate it signs for others: AKI, CRL distribution point, OCSP.
    issuer_extensions: tuple[x509.Extension[x509.ExtensionType], ...] = field(init=False)

    def __post_init__(self) -> None:
        public_key = self.key.public_key()
        object.__setattr__(self, "key_algorithm", key_algorithm_of(public_key))
        values: list[x509.ExtensionType] = [x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key)]
        if self.crl_url:
            values.append(x509.CRLDistributionPoints([x509.DistributionPoint(
                [x509.UniformResourceIdentifier(self.crl_url)], None, None, None)]))
        if self.ocsp_url:
            values.append(x509.AuthorityInformationAccess([x509.AccessDescription(
                AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(self.ocsp_url))]))
        object.__setattr__(self, "issuer_extensions", tuple(x509.Extension(v.oid, False, v) for v in values))


def _ski(public_key: object) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(public_key)  # type: ignore[arg-type]


def _extensions_from_csr(csr: x509.CertificateSigningRequest) -> dict[ObjectIdentifier, x509.Extension[x509.ExtensionType]]:
    try:
        return {ext.oid: ext for ext in csr.extensions}
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as exc:
        raise MalformedCSRError(f"Csr extensions cannot be read: {exc}", field="Csr") from None


def sign_certificate(*, csr: x509.CertificateSigningRequest, template: Template, passthrough: Passthrough,
                     issuer: IssuerContext, serial: int, not_before: datetime, not_after: datetime,
                     signing_algorithm: SigningAlgorithm) -> x509.Certificate:
    """Apply ``template`` (template > API passthrough > CSR passthrough) and sign with the issuer's key."""
    key_algorithm = issuer.key_algorithm
    if key_algorithm is None:
        raise InvalidArgsError("the CA key algorithm is not supported", field="CertificateAuthorityArn")
    check_family(key_algorithm, signing_algorithm)
    public_key = csr.public_key()
    if not isinstance(public_key, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey)):
        raise MalformedCSRError("Csr public key must be RSA or EC", field="Csr")
    csr_extensions = _extensions_from_csr(csr)
    self_signed = template.kind is TemplateKind.ROOT
    if self_signed and public_key != issuer.key.public_key():
        raise InvalidArgsError("a RootCACertificate template signs the CA's own CSR only: the CSR key is not the "
                               "CA's key", field="Csr")

    extensions: dict[ObjectIdentifier, x509.Extension[x509.ExtensionType]] = {}
    if template.csr_passthrough:
        extensions.update(csr_extensions)
    if template.api_passthrough:
        extensions.update({ext.oid: ext for ext in passthrough.extensions})
    elif ExtensionOID.SUBJECT_ALTERNATIVE_NAME in csr_extensions:
        extensions[ExtensionOID.SUBJECT_ALTERNATIVE_NAME] = csr_extensions[ExtensionOID.SUBJECT_ALTERNATIVE_NAME]
    if not template.blank:
        # Base templates copy the SAN from the CSR even without passthrough.
        if ExtensionOID.SUBJECT_ALTERNATIVE_NAME not in extensions and \
                ExtensionOID.SUBJECT_ALTERNATIVE_NAME in csr_extensions:
            extensions[ExtensionOID.SUBJECT_ALTERNATIVE_NAME] = csr_extensions[ExtensionOID.SUBJECT_ALTERNATIVE_NAME]
        if template.key_usage is not None:
            extensions[ExtensionOID.KEY_USAGE] = x509.Extension(ExtensionOID.KEY_USAGE, True, template.key_usage)
        if template.extended_key_usage:
            eku = x509.ExtendedKeyUsage(list(template.extended_key_usage))
            extensions[eku.oid] = x509.Extension(eku.oid, template.extended_key_usage_critical, eku)
        elif template.is_ca:
            extensions.pop(ExtensionOID.EXTENDED_KEY_USAGE, None)
    basic = x509.BasicConstraints(ca=template.is_ca, path_length=template.path_length)
    extensions[basic.oid] = x509.Extension(basic.oid, template.critical_basic_constraints or template.is_ca, basic)
    ski = _ski(public_key)
    extensions[ski.oid] = x509.Extension(ski.oid, False, ski)
    # Fields the CA owns: never taken from a request.
    for oid in (ExtensionOID.AUTHORITY_KEY_IDENTIFIER, ExtensionOID.CRL_DISTRIBUTION_POINTS,
                ExtensionOID.AUTHORITY_INFORMATION_ACCESS):
        if not (template.api_passthrough and oid == ExtensionOID.AUTHORITY_KEY_IDENTIFIER and self_signed):
            extensions.pop(oid, None)
    if not self_signed:
        extensions.update((extension.oid, extension) for extension in issuer.issuer_extensions)

    subject = csr.subject
    if template.api_passthrough and passthrough.subject is not None:
        subject = passthrough.subject
    if template.is_ca and not list(subject):
        raise InvalidArgsError("a CA certificate needs a subject", field="Csr")
    # The extensions go in through the constructor, in one list: they are unique by OID already, and
    # add_extension would copy the builder and re-check the list once per extension.
    builder = (x509.CertificateBuilder(extensions=list(extensions.values()))
               .subject_name(subject)
               .issuer_name(subject if self_signed else issuer.name)
               .public_key(public_key)
               .serial_number(serial)
               .not_valid_before(not_before)
               .not_valid_after(not_after))
    try:
        return sign_with(builder, issuer.key, signing_algorithm)
    except (ValueError, TypeError) as exc:
        raise InvalidArgsError(f"the certificate cannot be built: {exc}", field="Csr") from None


def verify_signed_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True when ``issuer``'s key made ``certificate``'s signature and the names chain."""
    if certificate.issuer != issuer.subject:
        return False
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
