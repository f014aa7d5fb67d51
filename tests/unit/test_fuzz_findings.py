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


def test_a_certificate_whose_issuer_does_not_parse_is_malformed() -> None:
    """cryptography parses names lazily: the damage surfaced where the issuer was first read (a ValueError)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Damaged Issuer")])
    certificate = (x509.CertificateBuilder().subject_name(issuer).issuer_name(issuer).public_key(key.public_key())
                   .serial_number(1).not_valid_before(now).not_valid_after(now + timedelta(days=1))
                   .sign(key, hashes.SHA256()))
    der = certificate.public_bytes(serialization.Encoding.DER)
    at = der.index(b"Damaged Issuer")
    damaged = der[:at] + b"\xff" + der[at + 1:]  # not UTF-8 in a UTF8String; the DER around it still holds
    pem = b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(damaged) + b"-----END CERTIFICATE-----\n"
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
