"""What the services need from the edges, as small protocols owned here."""

from __future__ import annotations

from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from ..store.jobs import LeasedJob

__all__ = ["BlobStore", "KeyVault", "SecretSealer", "WorkSignal"]


class KeyVault(Protocol):
    """Keeps private keys; what it returns is sealed, bound to the resource name."""

    def seal_private_key(self, key: CertificateIssuerPrivateKeyTypes, resource: str) -> bytes: ...

    def open_private_key(self, sealed: bytes, resource: str) -> CertificateIssuerPrivateKeyTypes: ...


class WorkSignal(Protocol):
    """Tells local workers that a job was committed, so they need not wait for their next poll."""

    def notify(self) -> None: ...

    def lease_holder(self) -> str | None:
        """Whom to insert jobs leased to, for a hand-over in memory; None when no local worker runs."""

    def hand(self, jobs: list[LeasedJob]) -> None:
        """Give committed jobs, born leased to ``lease_holder()``, to the local workers."""


class BlobStore(Protocol):
    """Where generated objects (audit reports) are written, addressed like S3: bucket + key."""

    def put(self, bucket: str, key: str, data: bytes) -> None: ...

    def get(self, bucket: str, key: str) -> bytes | None: ...


class SecretSealer(Protocol):
    """Encrypts small secrets at rest, bound to the resource they belong to."""

    def seal(self, plaintext: bytes, resource: str) -> bytes: ...

    def open(self, sealed: bytes, resource: str) -> bytes: ...
