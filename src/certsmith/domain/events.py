"""ACM-shaped EventBridge events (``source: aws.acm``): the detail of each detail-type and the envelope."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "ACTIONS", "ACTION_REQUIRED", "APPROACHING", "AVAILABLE", "DETAIL_TYPES", "EXPIRED", "PENDING_DOMAIN_VALIDATION",
    "REVOKED", "SOURCE", "CertificateFacts", "Event", "action_required", "approaching", "available",
    "days_to_expiry", "envelope", "expired", "iso_time", "revoked", "validity_in_days",
]

SOURCE = "aws.acm"
AVAILABLE = "ACM Certificate Available"
EXPIRED = "ACM Certificate Expired"
APPROACHING = "ACM Certificate Approaching Expiration"
ACTION_REQUIRED = "ACM Certificate Renewal Action Required"
REVOKED = "ACM Certificate Revoked"
DETAIL_TYPES = (AVAILABLE, EXPIRED, APPROACHING, ACTION_REQUIRED, REVOKED)

ACTIONS = ("ISSUANCE", "RENEWAL", "IMPORT", "REIMPORT")
PENDING_DOMAIN_VALIDATION = "PENDING_DOMAIN_VALIDATION"
CERTIFICATE_TYPES = ("AMAZON_ISSUED", "PRIVATE", "IMPORTED")
VALIDATION_METHODS = ("DNS", "EMAIL", "HTTP")

_DAY = timedelta(days=1)
_REASON = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")


@dataclass(frozen=True, slots=True)
class CertificateFacts:
    """What the event shapes need to know of one certificate."""

    arn: str
    certificate_type: str
    common_name: str
    names: tuple[str, ...]
    not_before: datetime | None
    not_after: datetime | None
    created_at: datetime
    key_pair_origin: str
    validation_method: str | None
    in_use: bool
    exported: bool
    exportable: bool = False

    def __post_init__(self) -> None:
        if self.certificate_type not in CERTIFICATE_TYPES:
            raise ValueError(f"certificate_type {self.certificate_type!r} is not one of {', '.join(CERTIFICATE_TYPES)}")
        if self.validation_method is not None and self.validation_method not in VALIDATION_METHODS:
            raise ValueError(f"validation_method {self.validation_method!r} is not one of {', '.join(VALIDATION_METHODS)}")
        for field in ("not_before", "not_after", "created_at"):
            value = getattr(self, field)
            if value is not None:
                _aware(value, field)


@dataclass(frozen=True, slots=True)
class Event:
    """One event as the outbox keeps it; ``detail`` holds only strings, ints and bools."""

    detail_type: str
    resources: tuple[str, ...]
    detail: dict[str, Any]
    time: datetime
    source: str = SOURCE


def days_to_expiry(not_after: datetime, now: datetime) -> int:
    """Whole days left until ``not_after``, rounded down; 0 once it has passed."""
    left = _aware(not_after, "not_after") - _aware(now, "now")
    return max(0, left // _DAY)


def validity_in_days(not_before: datetime, not_after: datetime) -> int:
    """The validity period in days, to the nearest whole day (a backdated NotBefore does not add a day)."""
    span = _aware(not_after, "not_after") - _aware(not_before, "not_before")
    if span < timedelta(0):
        raise ValueError("not_after is before not_before")
    return int((span + _DAY / 2) // _DAY)


def iso_time(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ``; a stored naive time is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def available(facts: CertificateFacts, action: str, now: datetime) -> Event:
    """ACM Certificate Available: on issuance, renewal, import and re-import."""
    if action not in ACTIONS:
        raise ValueError(f"action {action!r} is not one of {', '.join(ACTIONS)}")
    not_after = _required(facts.not_after, "not_after", AVAILABLE)
    detail: dict[str, Any] = {"Action": action, "CertificateType": facts.certificate_type}
    detail |= _described(facts, AVAILABLE)
    detail |= _validation(facts)
    detail |= {
        "CertificateCreatedDate": iso_time(facts.created_at),
        "CertificateExpirationDate": iso_time(not_after),
        "DaysToExpiry": days_to_expiry(not_after, now),
        "InUse": facts.in_use,
        "Exported": facts.exported,
    }
    return _event(AVAILABLE, facts, detail, now)


def expired(facts: CertificateFacts, now: datetime) -> Event:
    """ACM Certificate Expired: once, when NotAfter has passed."""
    not_after = _required(facts.not_after, "not_after", EXPIRED)
    detail: dict[str, Any] = {"CertificateType": facts.certificate_type}
    detail |= _described(facts, EXPIRED)
    detail |= _validation(facts)
    detail |= {
        "CertificateCreatedDate": iso_time(facts.created_at),
        "CertificateExpirationDate": iso_time(not_after),
        "InUse": facts.in_use,
        "Exported": facts.exported,
    }
    return _event(EXPIRED, facts, detail, now)


def approaching(facts: CertificateFacts, now: datetime) -> Event:
    """ACM Certificate Approaching Expiration: daily in the last DaysBeforeExpiry days."""
    not_after = _required(facts.not_after, "not_after", APPROACHING)
    detail: dict[str, Any] = {"DaysToExpiry": days_to_expiry(not_after, now)}
    detail |= _described(facts, APPROACHING)
    return _event(APPROACHING, facts, detail, now)


def action_required(facts: CertificateFacts, reason: str, now: datetime) -> Event:
    """ACM Certificate Renewal Action Required; ``reason`` is a FailureReason value or PENDING_DOMAIN_VALIDATION."""
    if not isinstance(reason, str) or not _REASON.match(reason):
        raise ValueError(f"reason {reason!r} is not a FailureReason value or {PENDING_DOMAIN_VALIDATION}")
    not_after = _required(facts.not_after, "not_after", ACTION_REQUIRED)
    detail: dict[str, Any] = {"CertificateType": facts.certificate_type}
    detail |= _described(facts, ACTION_REQUIRED)
    detail |= _validation(facts)
    detail |= {
        "RenewalStatusReason": reason,
        "DaysToExpiry": days_to_expiry(not_after, now),
        "CertificateExpirationDate": iso_time(not_after),
        "InUse": facts.in_use,
        "Exported": facts.exported,
    }
    return _event(ACTION_REQUIRED, facts, detail, now)


def revoked(facts: CertificateFacts, now: datetime) -> Event:
    """ACM Certificate Revoked: after RevokeCertificate."""
    not_after = _required(facts.not_after, "not_after", REVOKED)
    detail: dict[str, Any] = {"CertificateType": facts.certificate_type}
    detail |= _described(facts, REVOKED)
    detail |= {"CertificateExpirationDate": iso_time(not_after), "Exportable": facts.exportable}
    return _event(REVOKED, facts, detail, now)


def envelope(event: Event, *, event_id: str, account: str, region: str) -> dict[str, Any]:
    """The EventBridge envelope around one event."""
    return {
        "version": "0",
        "id": event_id,
        "detail-type": event.detail_type,
        "source": event.source,
        "account": account,
        "time": iso_time(event.time),
        "region": region,
        "resources": list(event.resources),
        "detail": dict(event.detail),
    }


def _described(facts: CertificateFacts, detail_type: str) -> dict[str, Any]:
    """The fields every detail-type shares: names, validity and key origin."""
    not_before = _required(facts.not_before, "not_before", detail_type)
    not_after = _required(facts.not_after, "not_after", detail_type)
    fields: dict[str, Any] = {"CommonName": facts.common_name}
    if facts.names:
        fields["FirstSubjectAlternativeName"] = facts.names[0]
    fields["ValidityInDays"] = validity_in_days(not_before, not_after)
    fields["CertificateKeyPairOrigin"] = facts.key_pair_origin
    return fields


def _validation(facts: CertificateFacts) -> dict[str, Any]:
    return {} if facts.validation_method is None else {"DomainValidationMethod": facts.validation_method}


def _event(detail_type: str, facts: CertificateFacts, detail: dict[str, Any], now: datetime) -> Event:
    return Event(detail_type, (facts.arn,), detail, _aware(now, "now").astimezone(UTC))


def _required(value: datetime | None, field: str, detail_type: str) -> datetime:
    if value is None:
        raise ValueError(f"{field} is required for an {detail_type!r} event")
    return value


def _aware(value: datetime, field: str) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"{field} must be timezone-aware")
    return value
