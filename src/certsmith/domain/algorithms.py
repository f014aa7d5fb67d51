"""Key and signature algorithms, and which of them go together."""

from __future__ import annotations

from enum import StrEnum

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes, PublicKeyTypes

from .errors import InvalidArgsError

__all__ = [
    "KeyAlgorithm",
    "SignatureParams",
    "SigningAlgorithm",
    "check_family",
    "generate_private_key",
    "key_algorithm_of",
    "signature_params",
]


class KeyAlgorithm(StrEnum):
    RSA_2048 = "RSA_2048"
    RSA_3072 = "RSA_3072"
    RSA_4096 = "RSA_4096"
    EC_prime256v1 = "EC_prime256v1"
    EC_secp384r1 = "EC_secp384r1"
    EC_secp521r1 = "EC_secp521r1"
    ML_DSA_44 = "ML_DSA_44"
    ML_DSA_65 = "ML_DSA_65"
    ML_DSA_87 = "ML_DSA_87"
    SM2 = "SM2"

    @property
    def family(self) -> str:
        return self.value.split("_")[0] if not self.value.startswith("ML_DSA") else "ML_DSA"

    @property
    def supported(self) -> bool:
        return self.family in ("RSA", "EC")


class SigningAlgorithm(StrEnum):
    SHA256WITHECDSA = "SHA256WITHECDSA"
    SHA384WITHECDSA = "SHA384WITHECDSA"
    SHA512WITHECDSA = "SHA512WITHECDSA"
    SHA256WITHRSA = "SHA256WITHRSA"
    SHA384WITHRSA = "SHA384WITHRSA"
    SHA512WITHRSA = "SHA512WITHRSA"
    SHA256WITHRSA_PSS = "SHA256WITHRSA_PSS"
    SHA384WITHRSA_PSS = "SHA384WITHRSA_PSS"
    SHA512WITHRSA_PSS = "SHA512WITHRSA_PSS"
    SM3WITHSM2 = "SM3WITHSM2"
    ML_DSA_44 = "ML_DSA_44"
    ML_DSA_65 = "ML_DSA_65"
    ML_DSA_87 = "ML_DSA_87"

    @property
    def family(self) -> str:
        if "ECDSA" in self.value:
            return "EC"
        if "RSA" in self.value:
            return "RSA"
        if self.value.startswith("ML_DSA"):
            return "ML_DSA"
        return "SM2"


_CURVES: dict[KeyAlgorithm, ec.EllipticCurve] = {
    KeyAlgorithm.EC_prime256v1: ec.SECP256R1(),
    KeyAlgorithm.EC_secp384r1: ec.SECP384R1(),
    KeyAlgorithm.EC_secp521r1: ec.SECP521R1(),
}
_RSA_SIZES = {KeyAlgorithm.RSA_2048: 2048, KeyAlgorithm.RSA_3072: 3072, KeyAlgorithm.RSA_4096: 4096}
_HASHES: dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    "SHA256": hashes.SHA256, "SHA384": hashes.SHA384, "SHA512": hashes.SHA512,
}


def check_family(key: KeyAlgorithm, signing: SigningAlgorithm, field: str = "SigningAlgorithm") -> None:
    """Raise InvalidArgsError unless ``signing`` belongs to the family of ``key``."""
    if key.family != signing.family:
        raise InvalidArgsError(
            f"{field} {signing.value} cannot be used with the {key.value} key; "
            f"choose one of the {key.family} signing algorithms", field=field)
    if not key.supported:
        raise InvalidArgsError(f"KeyAlgorithm {key.value} is not supported by certsmith; "
                               "use an RSA or EC algorithm", field="KeyAlgorithm")


def generate_private_key(algorithm: KeyAlgorithm) -> CertificateIssuerPrivateKeyTypes:
    if algorithm in _RSA_SIZES:
        return rsa.generate_private_key(public_exponent=65537, key_size=_RSA_SIZES[algorithm])
    if algorithm in _CURVES:
        return ec.generate_private_key(_CURVES[algorithm])
    raise InvalidArgsError(f"KeyAlgorithm {algorithm.value} is not supported by certsmith", field="KeyAlgorithm")


def key_algorithm_of(public_key: PublicKeyTypes) -> KeyAlgorithm | None:
    """The KeyAlgorithm name of a public key, or None when it has none (e.g. RSA-1024, Ed25519)."""
    if isinstance(public_key, rsa.RSAPublicKey):
        for algorithm, size in _RSA_SIZES.items():
            if size == public_key.key_size:
                return algorithm
        return None
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        for algorithm, curve in _CURVES.items():
            if curve.name == public_key.curve.name:
                return algorithm
    return None


Digest = hashes.SHA256 | hashes.SHA384 | hashes.SHA512


class SignatureParams:
    """What cryptography needs to sign with a SigningAlgorithm."""

    __slots__ = ("hash_algorithm", "rsa_padding")

    def __init__(self, hash_algorithm: Digest, rsa_padding: padding.PSS | None):
        self.hash_algorithm = hash_algorithm
        self.rsa_padding = rsa_padding


def signature_params(signing: SigningAlgorithm) -> SignatureParams:
    digest = _HASHES.get(signing.value[:6])
    if digest is None:
        raise InvalidArgsError(f"SigningAlgorithm {signing.value} is not supported by certsmith",
                               field="SigningAlgorithm")
    if signing.value.endswith("_PSS"):
        return SignatureParams(digest(), padding.PSS(mgf=padding.MGF1(digest()),
                                                     salt_length=digest().digest_size))
    return SignatureParams(digest(), None)
