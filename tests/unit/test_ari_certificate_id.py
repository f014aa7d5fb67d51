"""ACME Renewal Information (RFC 9773): the certificate id of §4.1 and the renewalInfo answer of §4.2."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from certsmith.acme import AcmeError, certificate_id
from certsmith.acme.ari import check_certificate_id, first_certificate, parse_renewal_info

# RFC 9773 Appendix A: the example certificate of §4.1 (AKI keyId 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:
# DE:01:C8:D4, serial 0x0087654321), whose id is "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE".
RFC_EXAMPLE = """-----BEGIN CERTIFICATE-----
MIIBQzCB66ADAgECAgUAh2VDITAKBggqhkjOPQQDAjAVMRMwEQYDVQQDEwpFeGFt
cGxlIENBMCIYDzAwMDEwMTAxMDAwMDAwWhgPMDAwMTAxMDEwMDAwMDBaMBYxFDAS
BgNVBAMTC2V4YW1wbGUuY29tMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEeBZu
7cbpAYNXZLbbh8rNIzuOoqOOtmxA1v7cRm//AwyMwWxyHz4zfwmBhcSrf47NUAFf
qzLQ2PPQxdTXREYEnKMjMCEwHwYDVR0jBBgwFoAUaYhba4dGQEHhs3uEe6CuLN4B
yNQwCgYIKoZIzj0EAwIDRwAwRAIge09+S5TZAlw5tgtiVvuERV6cT4mfutXIlwTb
+FYN/8oCIClDsqBklhB9KAelFiYt9+6FDj3z4KGVelYM5MdsO3pK
-----END CERTIFICATE-----
"""
WHERE = "renewalInfo"


def make_certificate(serial: int, key_identifier: bytes | None = b"\x01\x02\x03\x04") -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leaf.example.test")])
    now = datetime.now(UTC)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(serial).not_valid_before(now).not_valid_after(now + timedelta(days=1)))
    if key_identifier is not None:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier(key_identifier, None, None), critical=False)
    return builder.sign(key, hashes.SHA256())


def test_the_rfc_example_certificate() -> None:
    certificate = x509.load_pem_x509_certificate(RFC_EXAMPLE.encode())
    assert certificate_id(certificate) == "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"
    assert certificate_id(first_certificate(RFC_EXAMPLE + RFC_EXAMPLE)) == "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"


@pytest.mark.parametrize(("serial", "content"), [
    (0x87654321, b"\x00\x87\x65\x43\x21"),  # top bit set: a leading zero keeps the INTEGER positive
    (0x7F, b"\x7f"),
    (0x80, b"\x00\x80"),
    (0x0100, b"\x01\x00"),
    (1, b"\x01"),
    ((1 << 159) - 1, b"\x7f" + b"\xff" * 19),  # the largest serial RFC 5280 allows (20 octets)
])
def test_the_serial_is_the_der_integer_content(serial: int, content: bytes) -> None:
    aki, encoded = certificate_id(make_certificate(serial)).split(".")
    assert aki == "AQIDBA"
    assert base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)) == content
    assert "=" not in encoded


def test_a_certificate_without_an_authority_key_identifier_has_no_id() -> None:
    with pytest.raises(ValueError, match="certificate: it has no Authority Key Identifier"):
        certificate_id(make_certificate(5, key_identifier=None))
    with pytest.raises(ValueError, match="certificate_pem: no PEM certificate"):
        first_certificate("not a certificate")


def test_replaces_must_look_like_a_certificate_id() -> None:
    assert check_certificate_id("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE") == "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"
    for bad in ("aYhba4dGQEHhs3uEe6CuLN4ByNQ", "a.b.c", ".AIdlQyE", "aYhb=.AIdlQyE", "a/b.c", ""):
        with pytest.raises(ValueError, match=r"replaces: .* is not an ACME certificate id"):
            check_certificate_id(bad)


def test_a_renewal_info_answer() -> None:
    info = parse_renewal_info({"suggestedWindow": {"start": "2027-01-02T04:00:00Z", "end": "2027-01-03T04:00:00Z"},
                               "explanationURL": "https://acme.example.test/docs/ari"}, 21600.0, WHERE)
    assert info.start == datetime(2027, 1, 2, 4, tzinfo=UTC) and info.end == datetime(2027, 1, 3, 4, tzinfo=UTC)
    assert info.start.tzinfo is UTC and info.retry_after == 21600.0
    assert info.explanation_url == "https://acme.example.test/docs/ari"
    # Offsets become UTC; nanoseconds (as Pebble sends) are cut to microseconds; explanationURL is optional.
    info = parse_renewal_info({"suggestedWindow": {"start": "2026-11-30T13:33:55.670315027Z",
                                                   "end": "2026-11-30T16:03:55+02:00"}}, None, WHERE)
    assert info.start == datetime(2026, 11, 30, 13, 33, 55, 670315, tzinfo=UTC)
    assert info.end == datetime(2026, 11, 30, 14, 3, 55, tzinfo=UTC)
    assert info.explanation_url is None and info.retry_after is None


@pytest.mark.parametrize(("document", "message"), [
    ([], "renewalInfo: the answer is not a JSON object"),
    ({}, "renewalInfo: suggestedWindow is missing"),
    ({"suggestedWindow": "soon"}, "renewalInfo: suggestedWindow is not an object"),
    ({"suggestedWindow": {"end": "2027-01-03T04:00:00Z"}}, "renewalInfo: suggestedWindow.start is missing"),
    ({"suggestedWindow": {"start": "2027-01-03T04:00:00Z"}}, "renewalInfo: suggestedWindow.end is missing"),
    ({"suggestedWindow": {"start": "2027-01-02", "end": "2027-01-03T04:00:00Z"}},
     "suggestedWindow.start '2027-01-02' is not an RFC 3339 timestamp"),
    ({"suggestedWindow": {"start": "2027-01-02T04:00:00", "end": "2027-01-03T04:00:00Z"}},
     "suggestedWindow.start '2027-01-02T04:00:00' is not an RFC 3339 timestamp"),  # no offset: which zone?
    ({"suggestedWindow": {"start": "2027-01-02T04:00:00Z", "end": 1700000000}},
     "suggestedWindow.end 1700000000 is not an RFC 3339 timestamp"),
    ({"suggestedWindow": {"start": "2027-02-30T04:00:00Z", "end": "2027-03-03T04:00:00Z"}},
     "suggestedWindow.start '2027-02-30T04:00:00Z' is not a valid date and time"),
    ({"suggestedWindow": {"start": "2027-01-03T04:00:00Z", "end": "2027-01-02T04:00:00Z"}},
     r"suggestedWindow.end \(2027-01-02T04:00:00\+00:00\) is not later than suggestedWindow.start"),
    ({"suggestedWindow": {"start": "2027-01-03T04:00:00Z", "end": "2027-01-03T06:00:00+02:00"}},
     "is not later than suggestedWindow.start"),
    ({"suggestedWindow": {"start": "2027-01-02T04:00:00Z", "end": "2027-01-03T04:00:00Z"}, "explanationURL": 7},
     "renewalInfo: explanationURL is not a URL"),
])
def test_a_malformed_answer_names_its_field(document: object, message: str) -> None:
    with pytest.raises(AcmeError, match=message):
        parse_renewal_info(document, None, WHERE)
