"""Amazon Resource Names for the resources certsmith manages."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from .errors import InvalidArnError
from .regions import partition_for_region

__all__ = ["TEMPLATE_ARN_PREFIX", "AuthorityArn", "CertificateArn", "IssuedCertificateArn", "partition_of"]

TEMPLATE_ARN_PREFIX = "arn:aws:acm-pca:::template/"
_ACCOUNT = re.compile(r"^\d{12}$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_SERIAL_HEX = re.compile(r"^[0-9a-f]{1,40}$")


def partition_of(region: str) -> str:
    """The partition of a region certsmith serves (checked when the ARN value was built)."""
    partition = partition_for_region(region)
    if partition is None:
        raise ValueError(f"region {region!r} is not a region name")
    return partition


def _parse(text: str, field: str, service: str, kind: str, what: str) -> tuple[str, str, str]:
    """(region, account, id) of ``arn:<partition>:<service>:<region>:<account>:<kind>/<id>``."""
    parts = text.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != service:
        raise InvalidArnError(f"{field} {text!r} is not {what}", field=field)
    _, partition, _, region, account, resource = parts
    resource_kind, _, ident = resource.partition("/")
    if resource_kind != kind or "/" in ident:
        raise InvalidArnError(f"{field} {text!r} does not name a {kind.replace('-', ' ')}", field=field)
    expected = partition_for_region(region)
    if expected is None:
        raise InvalidArnError(f"{field} {text!r} is malformed: region {region!r} is not a region name", field=field)
    if partition != expected:
        raise InvalidArnError(f"{field} {text!r} has partition {partition!r}, expected {expected!r}", field=field)
    return region, account, ident


@dataclass(frozen=True, slots=True)
class AuthorityArn:
    """``arn:<partition>:acm-pca:<region>:<account>:certificate-authority/<uuid>``."""

    region: str
    account: str
    authority_id: str

    def __post_init__(self) -> None:
        partition_of(self.region)
        if not _ACCOUNT.match(self.account):
            raise ValueError(f"account {self.account!r} is not a 12-digit account id")
        if not _UUID.match(self.authority_id):
            raise ValueError(f"authority_id {self.authority_id!r} is not a UUID")

    @classmethod
    def new(cls, region: str, account: str) -> AuthorityArn:
        return cls(region, account, str(uuid.uuid4()))

    @classmethod
    def parse(cls, text: str, field: str = "CertificateAuthorityArn") -> AuthorityArn:
        region, account, ident = _parse(text, field, "acm-pca", "certificate-authority",
                                        "an ACM-PCA ARN (arn:aws:acm-pca:<region>:<account>:certificate-authority/<id>)")
        try:
            return cls(region, account, ident)
        except ValueError as exc:
            raise InvalidArnError(f"{field} {text!r} is malformed: {exc}", field=field) from None

    def __str__(self) -> str:
        return (f"arn:{partition_of(self.region)}:acm-pca:{self.region}:{self.account}:"
                f"certificate-authority/{self.authority_id}")


@dataclass(frozen=True, slots=True)
class IssuedCertificateArn:
    """``<authority ARN>/certificate/<serial in lowercase hex>``."""

    authority: AuthorityArn
    serial_hex: str

    def __post_init__(self) -> None:
        if not _SERIAL_HEX.match(self.serial_hex):
            raise ValueError(f"serial_hex {self.serial_hex!r} is not lowercase hex")

    @classmethod
    def parse(cls, text: str, field: str = "CertificateArn") -> IssuedCertificateArn:
        head, sep, serial = text.rpartition("/certificate/")
        if not sep:
            raise InvalidArnError(f"{field} {text!r} is not the ARN of a certificate issued by a CA "
                                  "(<CA ARN>/certificate/<serial>)", field=field)
        authority = AuthorityArn.parse(head, field)
        try:
            return cls(authority, serial)
        except ValueError as exc:
            raise InvalidArnError(f"{field} {text!r} is malformed: {exc}", field=field) from None

    def __str__(self) -> str:
        return f"{self.authority}/certificate/{self.serial_hex}"


@dataclass(frozen=True, slots=True)
class CertificateArn:
    """An ACM certificate: ``arn:<partition>:acm:<region>:<account>:certificate/<uuid>``."""

    region: str
    account: str
    certificate_id: str

    def __post_init__(self) -> None:
        partition_of(self.region)
        if not _ACCOUNT.match(self.account):
            raise ValueError(f"account {self.account!r} is not a 12-digit account id")
        if not _UUID.match(self.certificate_id):
            raise ValueError(f"certificate_id {self.certificate_id!r} is not a UUID")

    @classmethod
    def new(cls, region: str, account: str) -> CertificateArn:
        return cls(region, account, str(uuid.uuid4()))

    @classmethod
    def parse(cls, text: str, field: str = "CertificateArn") -> CertificateArn:
        region, account, ident = _parse(text, field, "acm", "certificate",
                                        "an ACM certificate ARN (arn:aws:acm:<region>:<account>:certificate/<id>)")
        try:
            return cls(region, account, ident)
        except ValueError as exc:
            raise InvalidArnError(f"{field} {text!r} is malformed: {exc}", field=field) from None

    def __str__(self) -> str:
        return (f"arn:{partition_of(self.region)}:acm:{self.region}:{self.account}:"
                f"certificate/{self.certificate_id}")
