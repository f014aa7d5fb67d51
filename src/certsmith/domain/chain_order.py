"""Which certificate of a bundle is the leaf, and the order of the others above it.

People hand over bundles in whatever order their tools wrote them (intermediate first, root first,
leaf last). The leaf is the certificate whose public key is the private key's; without a usable
key, it is the one certificate that signs no other certificate of the bundle. The chain then runs
from the leaf's issuer up to the root, each certificate signing the one before it.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID

from .issuance import verify_signed_by

__all__ = ["MAX_SEARCHED", "LeafChoice", "describe", "find_leaf", "is_self_signed", "order_chain", "signs"]

# Finding the leaf by structure and ordering a chain compare every pair of certificates. Real chains
# hold a handful; a bundle larger than this is checked as given, so that a request of many
# certificates sharing one name cannot make the server check a quadratic number of signatures.
MAX_SEARCHED = 32


@dataclass(frozen=True, slots=True)
class LeafChoice:
    """Where the leaf stands in the bundle as given (0: first, as it should), and how it was known."""

    position: int
    by_key: bool  # True: its public key is the private key's; False: it signs nothing else in the bundle

    def __post_init__(self) -> None:
        if self.position < 0:
            raise ValueError(f"position is {self.position}; it counts from 0")


def signs(issuer: x509.Certificate, subject: x509.Certificate) -> bool:
    """True when ``issuer`` signed ``subject`` (names and signature both)."""
    return verify_signed_by(subject, issuer)


def is_self_signed(certificate: x509.Certificate) -> bool:
    return signs(certificate, certificate)


def describe(certificate: x509.Certificate) -> str:
    """The certificate's common name (else its subject) as people read it; a self-signed one is named the root."""
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    text = repr(str(names[0].value)) if names else certificate.subject.rfc4514_string() or "(no subject)"
    return f"{text} (root)" if is_self_signed(certificate) else text


def find_leaf(certificates: list[x509.Certificate], public_key: object | None) -> LeafChoice:
    """The leaf of ``certificates`` (in the order given): the first whose public key is ``public_key``;
    else the one certificate that signs no other; else, when that is not one certificate, the first."""
    if public_key is not None:
        for position, certificate in enumerate(certificates):
            if certificate.public_key() == public_key:
                return LeafChoice(position, by_key=True)
    distinct = list(dict.fromkeys(certificates))  # the leaf repeated in the chain is still one certificate
    if len(distinct) < 2 or len(distinct) > MAX_SEARCHED:
        return LeafChoice(0, by_key=False)
    signing_nothing = [c for c in distinct if not any(signs(c, other) for other in distinct if other != c)]
    if len(signing_nothing) != 1:
        return LeafChoice(0, by_key=False)
    return LeafChoice(certificates.index(signing_nothing[0]), by_key=False)


def order_chain(leaf: x509.Certificate, chain: list[x509.Certificate]) -> list[x509.Certificate] | None:
    """The chain's certificates ordered from the leaf's issuer upwards, when all of them form that one
    path; else None (a certificate off the path, or a missing link, is not for a repair to guess)."""
    if len(chain) > MAX_SEARCHED:
        return None
    remaining, ordered, current = list(chain), [], leaf
    while remaining:
        parent = next((c for c in remaining if signs(c, current)), None)
        if parent is None:
            return None
        ordered.append(parent)
        remaining.remove(parent)
        current = parent
    return ordered
