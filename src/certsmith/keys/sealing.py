"""Private keys at rest: AES-256-GCM under the master key, the resource ARN as associated data."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..domain.errors import InternalError

__all__ = ["KeySealer", "load_or_create_master_key"]

_VERSION = b"\x01"


def load_or_create_master_key(data_dir: Path, from_env: str | None = None) -> bytes:
    """The 32-byte master key: CERTSMITH_MASTER_KEY (base64) or ``<data-dir>/master.key`` (0600)."""
    if from_env:
        key = base64.b64decode(from_env)
        if len(key) != 32:
            raise InternalError("CERTSMITH_MASTER_KEY must be 32 bytes, base64-encoded")
        return key
    path = data_dir / "master.key"
    if path.exists():
        key = path.read_bytes()
        if len(key) != 32:
            raise InternalError(f"{path} must hold 32 bytes")
        return key
    key = AESGCM.generate_key(bit_length=256)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


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
