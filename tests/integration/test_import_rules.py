"""ImportCertificate rules that need certificates made for the case: re-import limits, quota, AIA length."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from certsmith.domain.errors import LimitExceededError, ValidationError
from certsmith.domain.import_check import Bundle

from .ca_world import world

__all__ = ["world"]

SERVER, CLIENT, CODE = (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH,
                        ExtendedKeyUsageOID.CODE_SIGNING)


def self_signed(names: list[str], usages: list[x509.ObjectIdentifier], aia_url: str | None = None) -> Bundle:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(datetime(2029, 1, 1, tzinfo=UTC)).not_valid_after(datetime(2035, 1, 1, tzinfo=UTC))
               .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
               .add_extension(x509.ExtendedKeyUsage(usages), critical=False))
    if aia_url:
        builder = builder.add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
            AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(aia_url))]), critical=False)
    certificate = builder.sign(key, hashes.SHA256())
    return Bundle(certificate.public_bytes(serialization.Encoding.PEM),
                  key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))


def test_reimport_may_add_but_not_take_away(world: Any) -> None:
    container, caller, _ = world
    imports = container.imports
    arn = imports.import_certificate(caller, self_signed(["a.test"], [SERVER, CLIENT]), None, None)
    grown = imports.import_certificate(caller, self_signed(["a.test", "b.test"], [SERVER, CLIENT, CODE]), arn, None)
    assert grown == arn and container.certificates.describe(caller, arn).names == ["a.test", "b.test"]
    with pytest.raises(ValidationError, match="TLS_WEB_CLIENT_AUTHENTICATION"):
        imports.import_certificate(caller, self_signed(["a.test"], [SERVER, CODE]), arn, None)
    with pytest.raises(ValidationError, match="no domain name"):
        imports.import_certificate(caller, self_signed(["c.test"], [SERVER, CLIENT, CODE]), arn, None)


def test_long_aia_urls_are_refused(world: Any) -> None:
    container, caller, _ = world
    with pytest.raises(ValidationError, match="longer than 1000"):
        container.imports.import_certificate(
            caller, self_signed(["aia.test"], [SERVER], "http://ocsp.test/" + "a" * 1000), None, None)


def test_the_imported_certificate_quota(world: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    container, caller, _ = world
    monkeypatch.setattr("certsmith.services.acm.certificate_import.MAX_IMPORTED", 2)
    first = container.imports.import_certificate(caller, self_signed(["q1.test"], [SERVER]), None, None)
    container.imports.import_certificate(caller, self_signed(["q2.test"], [SERVER]), None, None)
    with pytest.raises(LimitExceededError, match="limit is 2"):
        container.imports.import_certificate(caller, self_signed(["q3.test"], [SERVER]), None, None)
    # A re-import replaces, so it is not held against the quota.
    assert container.imports.import_certificate(caller, self_signed(["q1.test"], [SERVER]), first, None) == first
