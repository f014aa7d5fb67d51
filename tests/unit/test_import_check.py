"""ImportCertificate's checks over the vectors of tests/vectors (see its README)."""

from __future__ import annotations

import base64
import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from certsmith.domain.chain_order import MAX_SEARCHED, LeafChoice, find_leaf, order_chain
from certsmith.domain.import_check import Bundle, Report, assemble_bundle, inspect_bundle, repair_bundle

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
    ("rsa/leaf.pem", "rsa/leaf.key", "rsa/chain-with-leaf.pem", "includes the certificate itself", True),
    ("rsa/fullchain-intermediate-first.pem", "rsa/leaf.key", None, "the bundle is out of order", True),
    ("ec/fullchain-reversed.pem", "ec/leaf.key", None, "the bundle is out of order", True),
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


def test_a_certificate_without_its_chain_imports_with_a_note() -> None:
    """The chain is optional, as in ACM; the report says clients will need it from elsewhere."""
    report = inspect_bundle(bundle("rsa/leaf.pem", "rsa/leaf.key", None), NOW)
    assert report.ok and report.chain == []
    assert [w.field for w in report.warnings] == ["CertificateChain"]
    assert "clients must already hold that CA's certificate" in str(report.warnings[0])
    assert inspect_bundle(bundle("rsa/leaf.pem", "rsa/leaf.key", "rsa/chain.pem"), NOW).warnings == []


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


# Bundles out of order: the leaf is the certificate of the private key (or, without a usable key, the
# one certificate that signs no other), wherever it stands; the others follow it as a chain.

def _certificates(name: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates((VECTORS / name).read_bytes())


def _pems(certificates: list[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def _family(folder: str) -> dict[str, x509.Certificate]:
    intermediate, root = _certificates(f"{folder}/chain.pem")
    return {"leaf": _certificates(f"{folder}/leaf.pem")[0], "intermediate": intermediate, "root": root}


def _split(given: list[x509.Certificate], key: str, in_certificate: int = 1) -> Bundle:
    return Bundle(_pems(given[:in_certificate]), (VECTORS / key).read_bytes(), _pems(given[in_certificate:]) or None)


def test_a_fullchain_with_the_intermediate_first_is_out_of_order_not_a_key_mismatch() -> None:
    """The layout of the issue: fullchain.pem (intermediate, leaf, root) and privkey.pem, as the CLI assembles them."""
    given = assemble_bundle([(VECTORS / "rsa/fullchain-intermediate-first.pem").read_bytes(),
                             (VECTORS / "rsa/leaf.key").read_bytes()])
    report = inspect_bundle(given, NOW)
    assert [(p.field, p.repairable) for p in report.problems] == [("Certificate", True)], report.problems
    assert str(report.problems[0]) == (
        "Certificate: the bundle is out of order: it starts with 'Vector rsa Intermediate', but the certificate to "
        "import is 'rsa.vectors.test' (the private key is its key); put the leaf first, then each certificate's "
        "issuer: 'rsa.vectors.test', then 'Vector rsa Intermediate', then 'Vector rsa Root' (root)")
    assert report.certificate == _family("rsa")["leaf"] and report.key_algorithm == "RSA_2048"

    repaired, changes = repair_bundle(given, NOW)
    assert changes == ["put the leaf first: 'rsa.vectors.test', the certificate of the private key"]
    assert repaired.certificate == (VECTORS / "rsa/leaf.pem").read_bytes()
    assert repaired.chain == (VECTORS / "rsa/chain.pem").read_bytes()
    assert inspect_bundle(repaired, NOW).ok


def test_a_reversed_fullchain_is_one_problem_with_the_order_to_use() -> None:
    given = assemble_bundle([(VECTORS / "ec/leaf.key").read_bytes(), (VECTORS / "ec/fullchain-reversed.pem").read_bytes()])
    report = inspect_bundle(given, NOW)
    assert len(report.problems) == 1 and report.problems[0].repairable
    assert "it starts with 'Vector ec Root' (root), but the certificate to import is 'ec.vectors.test'" in \
        report.problems[0].message
    assert report.problems[0].message.endswith(
        "'ec.vectors.test', then 'Vector ec Intermediate', then 'Vector ec Root' (root)")
    repaired, changes = repair_bundle(given, NOW)
    assert changes[0].startswith("put the leaf first") and changes[1] == \
        "reordered the chain: 'Vector ec Intermediate', then 'Vector ec Root' (root)"
    assert (repaired.certificate, repaired.chain) == ((VECTORS / "ec/leaf.pem").read_bytes(),
                                                     (VECTORS / "ec/chain.pem").read_bytes())
    assert inspect_bundle(repaired, NOW).ok


_ORDER_KEYS = [  # (family, key file, the problems no repair takes away)
    ("rsa", "rsa/leaf.key", set()), ("rsa", "rsa/other.key", {"PrivateKey"}),
    ("rsa", "rsa/leaf.encrypted.key", {"PrivateKey"}), ("ec", "ec/leaf.sec1.key", set()),
    ("ec", "rsa/other.key", {"PrivateKey"}), ("ec", "rsa/leaf.encrypted.key", {"PrivateKey"}),
]


@pytest.mark.parametrize(("folder", "key", "kept"), _ORDER_KEYS)
def test_every_order_and_split_is_put_right(folder: str, key: str, kept: set[str]) -> None:
    """Each order of leaf, intermediate and root, split anywhere between Certificate and the chain: the
    leaf is found by its key, or by structure when the key is of another pair or cannot be read."""
    family = _family(folder)
    for order in itertools.permutations(family.values()):
        for in_certificate in (1, 2, 3):
            given = _split(list(order), key, in_certificate)
            report = inspect_bundle(given, NOW)
            assert report.certificate == family["leaf"], (order, in_certificate)
            assert {p.field for p in report.problems if not p.repairable} == kept, report.problems
            assert not any("signed by" in p.message or "does not hold" in p.message for p in report.problems)
            repaired, _ = repair_bundle(given, NOW)
            assert repaired.certificate == (VECTORS / folder / "leaf.pem").read_bytes()
            assert repaired.chain == (VECTORS / folder / "chain.pem").read_bytes()
            assert {p.field for p in inspect_bundle(repaired, NOW).problems} == kept


def test_without_a_key_the_leaf_is_the_certificate_signing_no_other() -> None:
    family = _family("rsa")
    given = _split([family["intermediate"], family["root"], family["leaf"]], "rsa/leaf.encrypted.key")
    report = inspect_bundle(given, NOW)
    assert [p.field for p in report.problems] == ["PrivateKey", "Certificate"]
    assert "'rsa.vectors.test' (the one certificate that signs no other in the bundle)" in report.problems[1].message
    _, changes = repair_bundle(given, NOW)
    assert changes[0] == "put the leaf first: 'rsa.vectors.test', the one certificate signing no other"


def test_a_key_of_another_pair_is_still_reported_against_the_leaf() -> None:
    family = _family("rsa")
    report = inspect_bundle(_split([family["intermediate"], family["leaf"], family["root"]], "rsa/other.key"), NOW)
    assert [p.field for p in report.problems] == ["PrivateKey", "Certificate"]
    assert "does not match the certificate" in report.problems[0].message
    assert "out of order" in report.problems[1].message


def test_two_candidate_leaves_without_a_key_are_left_as_given() -> None:
    """Two certificates sign nothing: which one is meant is not for the checks to guess."""
    family = _family("rsa")
    other_leaf = _certificates("rsa/rsa1024.pem")[0]
    given = _split([family["intermediate"], family["leaf"], other_leaf, family["root"]], "rsa/leaf.encrypted.key")
    report = inspect_bundle(given, NOW)
    assert report.certificate == family["intermediate"]
    assert not any("out of order" in p.message for p in report.problems)
    assert not any(change.startswith("put the leaf first") for change in repair_bundle(given, NOW)[1])


def test_a_leaf_moved_first_keeps_the_chain_problems_that_remain() -> None:
    """Root given first and the leaf after it, the intermediate missing: the leaf is moved, the gap is named."""
    family = _family("rsa")
    given = _split([family["root"], family["leaf"]], "rsa/leaf.key")
    report = inspect_bundle(given, NOW)
    assert [(p.field, p.repairable) for p in report.problems] == [("Certificate", True), ("CertificateChain", False)]
    assert report.problems[0].message.endswith("put the leaf first, its issuers after it in the chain")
    assert "add that intermediate certificate" in report.problems[1].message
    repaired, changes = repair_bundle(given, NOW)
    assert repaired.certificate == (VECTORS / "rsa/leaf.pem").read_bytes() and len(changes) == 1
    assert [p.field for p in inspect_bundle(repaired, NOW).problems] == ["CertificateChain"]


def test_a_misordered_chain_names_the_self_signed_root() -> None:
    report = inspect_bundle(bundle("rsa/leaf.pem", "rsa/leaf.key", "rsa/chain-wrong-order.pem"), NOW)
    assert str(report.problems[0]).endswith("(expected 'Vector rsa Intermediate', then 'Vector rsa Root' (root))")


def test_a_self_signed_certificate_alone_needs_no_chain() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "self.vectors.test")])
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(1).not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=1))
                   .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    report = inspect_bundle(Bundle(_pems([certificate]), key_pem), NOW)
    assert report.ok and report.leaf_choice == LeafChoice(0, by_key=True)


def test_bundles_larger_than_any_real_chain_are_not_searched() -> None:
    """Finding the leaf by structure compares every pair: above MAX_SEARCHED certificates the bundle is taken as given."""
    family = _family("ec")
    many = [family["intermediate"], family["leaf"], family["root"], *_self_signed(MAX_SEARCHED)]
    assert find_leaf(many, None) == LeafChoice(0, by_key=False)
    assert find_leaf(many[:3], None) == LeafChoice(1, by_key=False)
    assert find_leaf(many, family["leaf"].public_key()) == LeafChoice(1, by_key=True)  # a key costs no search
    assert order_chain(family["leaf"], many[:1] + many[2:]) is None


def _self_signed(count: int) -> list[x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "filler.vectors.test")])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=1)))
    return [builder.serial_number(serial).sign(key, hashes.SHA256()) for serial in range(1, count + 1)]
