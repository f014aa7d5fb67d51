"""ImportCertificateAuthorityCertificate rules that need a key the API never hands out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from certsmith.domain.authority import AuthorityType
from certsmith.domain.ca_import import validate_ca_certificate
from certsmith.domain.errors import InvalidRequestError


def certificate(subject_key: Any, issuer_key: Any, issuer: str, subject: str) -> bytes:
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(subject_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(issuer_key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def test_subordinate_refuses_a_self_signed_certificate() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(InvalidRequestError, match="SUBORDINATE CA cannot take a self-signed"):
        validate_ca_certificate(AuthorityType.SUBORDINATE, key.public_key(), certificate(key, key, "Sub", "Sub"), None)


def test_root_takes_only_a_self_signed_certificate() -> None:
    key, outside = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(InvalidRequestError, match="only a self-signed"):
        validate_ca_certificate(AuthorityType.ROOT, key.public_key(), certificate(key, outside, "Other", "Root"), None)
    cert, chain = validate_ca_certificate(AuthorityType.ROOT, key.public_key(), certificate(key, key, "R", "R"), None)
    assert cert.subject == cert.issuer and chain == []
