"""What bench/fuzz_api.py found behind the API layer, each answered 500 before: kept here as plain checks."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from certsmith.domain.ca_import import load_pem_certificates
from certsmith.domain.errors import MalformedCertificateError, ValidationError
from certsmith.domain.names import subject_name


def damaged_certificate(where: bytes | None, replacement: bytes) -> bytes:
    """A certificate with bytes replaced at ``where`` (None: in the middle of its public key's point)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Damaged Issuer")])
    certificate = (x509.CertificateBuilder().subject_name(issuer).issuer_name(issuer).public_key(key.public_key())
                   .serial_number(1).not_valid_before(now).not_valid_after(now + timedelta(days=1))
                   .sign(key, hashes.SHA256()))
    der = certificate.public_bytes(serialization.Encoding.DER)
    point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    at = der.index(where) if where is not None else der.index(point) + 20
    if where is None:
        replacement = bytes([der[at] ^ 0x01])  # a different byte, whatever it was: the point leaves the curve
    damaged = der[:at] + replacement + der[at + len(replacement):]  # same lengths: the DER around it still holds
    return b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(damaged) + b"-----END CERTIFICATE-----\n"


P256 = bytes.fromhex("2a8648ce3d030107")  # the OID 1.2.840.10045.3.1.7 in DER


@pytest.mark.parametrize("where,replacement", [
    (b"Damaged Issuer", b"\xff"),  # not UTF-8 in a UTF8String
    (P256, bytes.fromhex("2a8648ce38f30107")),  # a curve no one knows
    (None, b""),  # a point off the curve
])
def test_a_certificate_whose_name_or_key_does_not_parse_is_malformed(where: bytes | None, replacement: bytes) -> None:
    """cryptography parses names and keys lazily: the damage surfaced where they were first read (500)."""
    pem = damaged_certificate(where, replacement)
    x509.load_pem_x509_certificate(pem)  # loads: the damage is found later
    with pytest.raises(MalformedCertificateError) as caught:
        load_pem_certificates(pem, "Certificate", 32768)
    assert caught.value.field == "Certificate" and "cannot be parsed" in caught.value.message


@pytest.mark.parametrize("subject,field", [
    ({"CommonName": "é" * 64}, "Subject.CommonName"),  # 64 characters, 128 bytes
    ({"CommonName": "😀" * 20}, "Subject.CommonName"),
    ({"CustomAttributes": [{"ObjectIdentifier": "2.5.4.3", "Value": "x" * 65}]}, "Subject.CustomAttributes[0].Value"),
])
def test_a_name_attribute_too_long_in_utf8_names_the_member(subject: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        subject_name(subject)
    assert caught.value.field == field and "bytes in UTF-8" in caught.value.message


def test_a_common_name_of_64_ascii_characters_is_fine() -> None:
    assert subject_name({"CommonName": "x" * 64}).rfc4514_string() == "CN=" + "x" * 64
