"""Private keys at rest: AES-256-GCM under the master key, the resource ARN as associated data."""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..domain.errors import InternalError

__all__ = ["KeySealer"]

_VERSION = b"\x01"


class KeySealer:
    """Seals and opens secrets bound to the resource they belong to."""

    def __init__(self, master_key: bytes) -> None:
        self._aead = AESGCM(master_key)

    def seal(self, plaintext: bytes, resource: str) -> bytes:
        nonce = os.urandom(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, resource.encode())

    def open(self, sealed: bytes, resource: str) -> bytes:
        if sealed[:1] != _VERSION:
            raise InternalError("sealed secret has an unknown format version")
        try:
            return self._aead.decrypt(sealed[1:13], sealed[13:], resource.encode())
        except InvalidTag:  # wrong master key, or a secret moved to another resource
            raise InternalError(f"the sealed secret of {resource} does not open with this master key") from None

    def seal_private_key(self, key: CertificateIssuerPrivateKeyTypes, resource: str) -> bytes:
        der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        return self.seal(der, resource)

    def open_private_key(self, sealed: bytes, resource: str) -> CertificateIssuerPrivateKeyTypes:
        key = serialization.load_der_private_key(self.open(sealed, resource), password=None)
        return key  # type: ignore[return-value]
