"""ImportCertificate's checks over the vectors of tests/vectors (see its README)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings
from hypothesis import strategies as st

from certsmith.domain.import_check import Bundle, Report, inspect_bundle, repair_bundle

VECTORS = Path(__file__).parent.parent / "vectors"
NOW = datetime.now(UTC)


def bundle(certificate: str, key: str, chain: str | None) -> Bundle:
    return Bundle((VECTORS / certificate).read_bytes(), (VECTORS / key).read_bytes(),
                  (VECTORS / chain).read_bytes() if chain else None)


GOOD = [
    ("rsa/leaf.pem", "rsa/leaf.key", "rsa/chain.pem", "RSA_2048"),
    ("ec/leaf.pem", "ec/leaf.key", "ec/chain.pem", "EC_prime256v1"),
    ("rsa/leaf.pem", "rsa/leaf.pkcs1.key", "rsa/chain.pem", "RSA_2048"),
    ("ec/leaf.pem", "ec/leaf.sec1.key", "ec/chain.pem", "EC_prime256v1"),
    ("rsa/rsa1024.pem", "rsa/rsa1024.key", "rsa/chain.pem", "RSA_1024"),
]
# (certificate, key, chain, the problem reported, whether --fix repairs it)
BAD = [
    ("rsa/leaf.pem", "rsa/leaf.key", "rsa/chain-wrong-order.pem", "wrong order", True),
    ("rsa/leaf.pem", "rsa/leaf.key", "rsa/chain-missing-intermediate.pem", "add that intermediate", False),
    ("rsa/leaf.pem", "rsa/leaf.key", None, "give that CA's certificate", False),
    ("rsa/leaf.pem", "rsa/leaf.key", "rsa/chain-with-leaf.pem", "includes the certificate itself", True),
    ("rsa/leaf.pem", "rsa/leaf.encrypted.key", "rsa/chain.pem", "openssl pkey -in key.pem", False),
    ("rsa/leaf.crlf.pem", "rsa/leaf.key", "rsa/chain.pem", "CRLF", True),
    ("rsa/leaf.trailing-garbage.pem", "rsa/leaf.key", "rsa/chain.pem", "text outside the PEM blocks", True),
    ("rsa/leaf.whitespace.pem", "rsa/leaf.key", "rsa/chain.pem", "whitespace", True),
    ("rsa/leaf.der", "rsa/leaf.key", "rsa/chain.pem", "DER", False),
    ("rsa/leaf.pem", "rsa/leaf.der.key", "rsa/chain.pem", "DER", False),
    ("rsa/expired.pem", "rsa/expired.key", "rsa/chain.pem", "expired on 2002-01-01", False),
    ("rsa/not-yet-valid.pem", "rsa/not-yet-valid.key", "rsa/chain.pem", "not valid until 2090-01-01", False),
    ("rsa/leaf.pem", "rsa/other.key", "rsa/chain.pem", "does not match the certificate", False),
    ("ec/secp256k1.pem", "ec/secp256k1.key", "ec/chain.pem", "secp256k1", False),
]


@pytest.mark.parametrize(("certificate", "key", "chain", "algorithm"), GOOD)
def test_good_bundles_import(certificate: str, key: str, chain: str, algorithm: str) -> None:
    report = inspect_bundle(bundle(certificate, key, chain), NOW)
    assert report.ok, report.problems
    assert report.key_algorithm == algorithm


@pytest.mark.parametrize(("certificate", "key", "chain", "problem", "repairable"), BAD)
def test_bad_bundles_say_what_is_wrong(certificate: str, key: str, chain: str | None, problem: str,
                                       repairable: bool) -> None:
    given = bundle(certificate, key, chain)
    report = inspect_bundle(given, NOW)
    assert any(problem in str(p) for p in report.problems), report.problems
    repaired, changes = repair_bundle(given, NOW)
    assert inspect_bundle(repaired, NOW).ok is repairable
    assert bool(changes) is repairable


def test_every_problem_is_listed_not_just_the_first() -> None:
    report = inspect_bundle(bundle("rsa/leaf.crlf.pem", "rsa/other.key", "rsa/chain-wrong-order.pem"), NOW)
    assert [p.field for p in report.problems] == ["Certificate", "PrivateKey", "CertificateChain"]
    repaired, changes = repair_bundle(bundle("rsa/leaf.crlf.pem", "rsa/other.key", "rsa/chain-wrong-order.pem"), NOW)
    assert len(changes) == 2 and [str(p) for p in inspect_bundle(repaired, NOW).problems] == [
        str(p) for p in report.problems if p.field == "PrivateKey"]


def _pem(der: bytes, label: bytes = b"CERTIFICATE") -> bytes:
    body = base64.encodebytes(der).replace(b"\n", b"")
    lines = b"\n".join(body[i:i + 64] for i in range(0, len(body), 64))
    return b"-----BEGIN " + label + b"-----\n" + lines + b"\n-----END " + label + b"-----\n"


_LEAF_DER = x509.load_pem_x509_certificate((VECTORS / "ec/leaf.pem").read_bytes()).public_bytes(
    serialization.Encoding.DER)


@settings(max_examples=300, deadline=None)
@given(flips=st.lists(st.tuples(st.integers(0, len(_LEAF_DER) - 1), st.integers(1, 255)), min_size=1, max_size=3))
def test_damaged_der_inside_pem_is_reported_never_raised(flips: list[tuple[int, int]]) -> None:
    report = _checked(Bundle(_pem(_damaged(_LEAF_DER, flips)), (VECTORS / "ec/leaf.key").read_bytes(),
                             (VECTORS / "ec/chain.pem").read_bytes()))
    if report.ok:
        assert report.certificate is not None and report.key_algorithm is not None


def _damaged(der: bytes, flips: list[tuple[int, int]]) -> bytes:
    damaged = bytearray(der)
    for position, mask in flips:
        damaged[position] ^= mask
    return bytes(damaged)


def _checked(bundle: Bundle) -> Report:
    """The check and the repair of a bundle; neither may raise, whatever the bytes."""
    report = inspect_bundle(bundle, NOW)
    repair_bundle(bundle, NOW)
    return report


_KEY_DER = serialization.load_pem_private_key((VECTORS / "rsa/leaf.key").read_bytes(), None).private_bytes(
    serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
_RSA_OID = bytes.fromhex("06092a864886f70d010101")


def test_a_key_of_an_unknown_algorithm_is_named() -> None:
    assert _RSA_OID in _KEY_DER
    unknown = _KEY_DER.replace(_RSA_OID, _RSA_OID[:-1] + b"\x09", 1)  # 1.2.840.113549.1.1.9: no key type
    report = inspect_bundle(Bundle((VECTORS / "rsa/leaf.pem").read_bytes(), _pem(unknown, b"PRIVATE KEY"),
                                   (VECTORS / "rsa/chain.pem").read_bytes()), NOW)
    assert [p.field for p in report.problems] == ["PrivateKey"]
    assert "key type certsmith cannot read" in str(report.problems[0])


_EC_KEY_DER = serialization.load_pem_private_key((VECTORS / "ec/leaf.key").read_bytes(), None).private_bytes(
    serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


@settings(max_examples=300, deadline=None)
@given(flips=st.lists(st.tuples(st.integers(0, len(_EC_KEY_DER) - 1), st.integers(1, 255)), min_size=1, max_size=3))
def test_a_damaged_key_is_reported_never_raised(flips: list[tuple[int, int]]) -> None:
    report = _checked(Bundle((VECTORS / "ec/leaf.pem").read_bytes(), _pem(_damaged(_EC_KEY_DER, flips), b"PRIVATE KEY"),
                             (VECTORS / "ec/chain.pem").read_bytes()))
    if report.ok:
        assert report.key is not None
