"""Amazon Resource Names for the resources certsmith manages."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from .errors import InvalidArnError

__all__ = ["TEMPLATE_ARN_PREFIX", "AuthorityArn", "IssuedCertificateArn", "partition_for_region"]

TEMPLATE_ARN_PREFIX = "arn:aws:acm-pca:::template/"
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
_ACCOUNT = re.compile(r"^\d{12}$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_SERIAL_HEX = re.compile(r"^[0-9a-f]{1,40}$")


def partition_for_region(region: str) -> str:
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("eusc-"):
        return "aws-eusc"
    return "aws"


@dataclass(frozen=True, slots=True)
class AuthorityArn:
    """``arn:<partition>:acm-pca:<region>:<account>:certificate-authority/<uuid>``."""

    region: str
    account: str
    authority_id: str

    def __post_init__(self) -> None:
        if not _REGION.match(self.region):
            raise ValueError(f"region {self.region!r} is not a region name")
        if not _ACCOUNT.match(self.account):
            raise ValueError(f"account {self.account!r} is not a 12-digit account id")
        if not _UUID.match(self.authority_id):
            raise ValueError(f"authority_id {self.authority_id!r} is not a UUID")

    @classmethod
    def new(cls, region: str, account: str) -> AuthorityArn:
        return cls(region, account, str(uuid.uuid4()))

    @classmethod
    def parse(cls, text: str, field: str = "CertificateAuthorityArn") -> AuthorityArn:
        parts = text.split(":", 5)
        if len(parts) != 6 or parts[0] != "arn" or parts[2] != "acm-pca":
            raise InvalidArnError(f"{field} {text!r} is not an ACM-PCA ARN "
                                  "(arn:aws:acm-pca:<region>:<account>:certificate-authority/<id>)", field=field)
        _, partition, _, region, account, resource = parts
        kind, _, ident = resource.partition("/")
        if kind != "certificate-authority" or "/" in ident:
            raise InvalidArnError(f"{field} {text!r} does not name a certificate authority", field=field)
        try:
            arn = cls(region, account, ident)
        except ValueError as exc:
            raise InvalidArnError(f"{field} {text!r} is malformed: {exc}", field=field) from None
        if partition != partition_for_region(region):
            raise InvalidArnError(f"{field} {text!r} has partition {partition!r}, "
                                  f"expected {partition_for_region(region)!r}", field=field)
        return arn

    def __str__(self) -> str:
        return (f"arn:{partition_for_region(self.region)}:acm-pca:{self.region}:{self.account}:"
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
