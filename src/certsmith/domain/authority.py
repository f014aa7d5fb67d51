"""Certificate authorities: statuses, settings and the lifecycle state machine (pure functions)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from .errors import InvalidArgsError, InvalidStateError

__all__ = [
    "AuthorityStatus",
    "AuthorityType",
    "RevocationSettings",
    "UsageMode",
    "check_can_issue",
    "check_can_revoke",
    "deletion",
    "reported_status",
    "restoration",
    "status_update",
]


class AuthorityStatus(StrEnum):
    CREATING = "CREATING"
    PENDING_CERTIFICATE = "PENDING_CERTIFICATE"
    ACTIVE = "ACTIVE"
    DELETED = "DELETED"
    DISABLED = "DISABLED"
    EXPIRED = "EXPIRED"
    FAILED = "FAILED"


class AuthorityType(StrEnum):
    ROOT = "ROOT"
    SUBORDINATE = "SUBORDINATE"


class UsageMode(StrEnum):
    GENERAL_PURPOSE = "GENERAL_PURPOSE"
    SHORT_LIVED_CERTIFICATE = "SHORT_LIVED_CERTIFICATE"


@dataclass(frozen=True, slots=True)
class RevocationSettings:
    """CRL and OCSP settings of a CA (RevocationConfiguration)."""

    crl_enabled: bool = False
    crl_expiration_days: int | None = None
    crl_custom_cname: str | None = None
    crl_s3_bucket: str | None = None
    crl_s3_object_acl: str | None = None
    crl_omit_extension: bool | None = None
    crl_type: str | None = None
    crl_custom_path: str | None = None
    ocsp_enabled: bool = False
    ocsp_custom_cname: str | None = None
    ocsp_configured: bool = False
    crl_configured: bool = False

    def __post_init__(self) -> None:
        if self.crl_expiration_days is not None and not 1 <= self.crl_expiration_days <= 5000:
            raise ValueError(f"crl_expiration_days is {self.crl_expiration_days}; it must be 1 to 5000")

    def crl_url(self, public_url: str, authority_id: str) -> str | None:
        if not self.crl_enabled or self.crl_omit_extension:
            return None
        base = f"http://{self.crl_custom_cname}" if self.crl_custom_cname else public_url.rstrip("/")
        path = (self.crl_custom_path or "crl").strip("/")
        return f"{base}/{path}/{authority_id}.crl" if path else f"{base}/{authority_id}.crl"

    def ocsp_url(self, public_url: str, authority_id: str) -> str | None:
        if not self.ocsp_enabled:
            return None
        base = f"http://{self.ocsp_custom_cname}" if self.ocsp_custom_cname else public_url.rstrip("/")
        return f"{base}/ocsp/{authority_id}"

    @property
    def crl_validity(self) -> timedelta:
        return timedelta(days=self.crl_expiration_days or 7)


def reported_status(stored: AuthorityStatus, not_after: datetime | None, now: datetime) -> AuthorityStatus:
    """What Describe shows: EXPIRED once the CA certificate has expired, unless DELETED."""
    if stored in (AuthorityStatus.ACTIVE, AuthorityStatus.DISABLED) and not_after is not None and not_after <= now:
        return AuthorityStatus.EXPIRED
    return stored


def check_can_issue(status: AuthorityStatus, *, self_issuing_root: bool) -> None:
    if status is AuthorityStatus.ACTIVE:
        return
    if status is AuthorityStatus.PENDING_CERTIFICATE and self_issuing_root:
        return
    hint = ""
    if status is AuthorityStatus.PENDING_CERTIFICATE:
        hint = "; import its certificate first (a root CA may only self-issue with RootCACertificate/V1)"
    raise InvalidStateError(f"the CA is {status.value} and cannot issue certificates{hint}",
                            field="CertificateAuthorityArn")


def check_can_revoke(status: AuthorityStatus) -> None:
    if status not in (AuthorityStatus.ACTIVE, AuthorityStatus.DISABLED):
        raise InvalidStateError(f"the CA is {status.value}; certificates can be revoked only while it is ACTIVE "
                                "or DISABLED", field="CertificateAuthorityArn")


def status_update(current: AuthorityStatus, requested: AuthorityStatus | None) -> AuthorityStatus:
    """The stored status after UpdateCertificateAuthority."""
    if current not in (AuthorityStatus.ACTIVE, AuthorityStatus.DISABLED):
        raise InvalidStateError(f"the CA is {current.value}; only an ACTIVE or DISABLED CA can be updated",
                                field="CertificateAuthorityArn")
    if requested is None:
        return current
    if requested not in (AuthorityStatus.ACTIVE, AuthorityStatus.DISABLED):
        raise InvalidArgsError(f"Status can be set to ACTIVE or DISABLED, not {requested.value}", field="Status")
    return requested


def deletion(current: AuthorityStatus, days: int | None, now: datetime) -> tuple[AuthorityStatus | None, datetime | None]:
    """(the status to restore to or None, restorable-until or None) for DeleteCertificateAuthority."""
    if current is AuthorityStatus.ACTIVE:
        raise InvalidStateError("the CA is ACTIVE; disable it (UpdateCertificateAuthority Status=DISABLED) "
                                "before deleting it", field="CertificateAuthorityArn")
    if current is AuthorityStatus.DELETED:
        raise InvalidStateError("the CA is already DELETED", field="CertificateAuthorityArn")
    window = 30 if days is None else days
    if not 7 <= window <= 30:
        raise InvalidArgsError(f"PermanentDeletionTimeInDays is {window}; it must be 7 to 30",
                               field="PermanentDeletionTimeInDays")
    if current in (AuthorityStatus.CREATING, AuthorityStatus.FAILED):
        return None, now
    restore_to = AuthorityStatus.DISABLED if current is AuthorityStatus.EXPIRED else current
    return restore_to, now + timedelta(days=window)


def restoration(current: AuthorityStatus, restore_to: AuthorityStatus | None, restorable_until: datetime | None,
                now: datetime) -> AuthorityStatus:
    if current is not AuthorityStatus.DELETED:
        raise InvalidStateError(f"the CA is {current.value}; only a DELETED CA can be restored",
                                field="CertificateAuthorityArn")
    if restore_to is None or restorable_until is None or restorable_until <= now:
        raise InvalidStateError("the CA's restoration window has passed or it was deleted before it had a key",
                                field="CertificateAuthorityArn")
    return restore_to
