"""The master key: where it comes from, and the proof that it is the one that sealed the database.

A database that holds sealed secrets also holds a *check value*: a constant sealed under the
master key. At every start the key from ``master_key`` (CERTSMITH_MASTER_KEY) or
``<data-dir>/master.key`` must open it; a missing or different key stops the start with a message
that names the file or setting, and certsmith never makes a new key for a database that has secrets.
A rotation writes the new key to ``master.key.new`` before it re-seals anything, so a start after a
crash half-way finds the key that matches and finishes the rotation.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..domain.errors import InternalError
from .sealing import KeySealer

__all__ = ["CHECK_RESOURCE", "MasterKeyError", "MasterKeySource", "check_value", "new_key",
           "opens_check_value", "read_key_file", "write_key_file"]

CHECK_RESOURCE = "certsmith:master-key-check"
_CHECK_PLAINTEXT = b"certsmith master key check v1"


class MasterKeyError(Exception):
    """The master key is missing, malformed, or not the one that sealed the database. Its text says
    which file or setting to fix; it never holds key material."""


@dataclass(frozen=True, slots=True)
class MasterKeySource:
    """Where the master key is read from: the ``master_key`` setting, else ``<data-dir>/master.key``."""

    data_dir: Path
    from_setting: str | None = None

    @property
    def path(self) -> Path:
        return self.data_dir / "master.key"

    @property
    def pending_path(self) -> Path:
        """The new key of a rotation that has not finished."""
        return self.data_dir / "master.key.new"

    def describe(self) -> str:
        return "the master_key setting (CERTSMITH_MASTER_KEY)" if self.from_setting else str(self.path)

    def read(self) -> bytes | None:
        """The key, or None when neither the setting nor the file exists."""
        if self.from_setting:
            try:
                key = base64.b64decode(self.from_setting, validate=True)
            except (binascii.Error, ValueError):
                raise MasterKeyError("the master_key setting (CERTSMITH_MASTER_KEY) is not valid base64") from None
            if len(key) != 32:
                raise MasterKeyError(f"the master_key setting (CERTSMITH_MASTER_KEY) holds {len(key)} bytes; "
                                     "it must be 32 bytes, base64-encoded")
            return key
        return read_key_file(self.path)

    def create(self) -> bytes:
        """A new key written to ``master.key`` (0600); never overwrites one."""
        key = new_key()
        write_key_file(self.path, key)
        return key


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def read_key_file(path: Path) -> bytes | None:
    if not path.exists():
        return None
    key = path.read_bytes()
    if len(key) != 32:
        raise MasterKeyError(f"{path} holds {len(key)} bytes; a master key file holds 32")
    return key


def write_key_file(path: Path, key: bytes) -> None:
    """Write a key file (0600, synced); refuses to replace an existing file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise MasterKeyError(f"{path} exists already; certsmith never overwrites a master key file") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
        handle.flush()
        os.fsync(handle.fileno())


def check_value(key: bytes) -> bytes:
    return KeySealer(key).seal(_CHECK_PLAINTEXT, CHECK_RESOURCE)


def opens_check_value(key: bytes, value: bytes) -> bool:
    try:
        return KeySealer(key).open(value, CHECK_RESOURCE) == _CHECK_PLAINTEXT
    except InternalError:
        return False
