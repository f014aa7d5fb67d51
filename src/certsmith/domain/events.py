"""ACM-shaped EventBridge events (``source: aws.acm``): the detail of each detail-type and the envelope.

Each detail carries ACM's fields exactly as ACM sends them, then certsmith's: ``DomainNames`` (every name),
``Issuer``, ``InUseBy``, ``ManagedRenewal`` (Available, Approaching Expiration and Renewal Action Required only) and
``RecommendedAction`` (what a person should do, in plain words).

``ManagedRenewal`` says how certsmith's renewal of the certificate stands, for rules to match on (an escalation
that should page only for certificates in trouble matches ``{"anything-but": ["ON_TRACK", "IN_PROGRESS"]}``):

- ``ON_TRACK``: a renewal is planned before expiry and its time has not passed (by more than RENEWAL_GRACE, an hour);
- ``IN_PROGRESS``: a renewal is under way (without errors, or for less than RENEWAL_GRACE past its time);
- ``NEEDS_ACTION``: the renewal waits for the user (a validation record gone, a CA that refuses …);
- ``OVERDUE``: the renewal's time passed more than RENEWAL_GRACE ago and no renewal happened (a failed attempt, no
  worker running, or a renewal under way that keeps meeting errors);
- ``NOT_RENEWED``: certsmith does not renew it (imported, or not eligible for managed renewal).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "ACTIONS", "ACTION_REQUIRED", "APPROACHING", "AVAILABLE", "DETAIL_TYPES", "EXPIRED", "IN_PROGRESS", "MANAGED_RENEWAL",
    "NEEDS_ACTION", "NOT_RENEWED", "ON_TRACK", "OVERDUE", "PENDING_DOMAIN_VALIDATION", "RENEWAL_GRACE", "REVOKED",
    "SOURCE", "CertificateFacts", "Event", "action_required", "approaching", "available", "day", "days_to_expiry",
    "envelope", "expired", "iso_time", "managed_renewal", "recommended_action", "renewal_state", "revoked",
    "validity_in_days",
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

# ManagedRenewal: how certsmith's renewal of the certificate stands (see the module docstring).
ON_TRACK, IN_PROGRESS, NEEDS_ACTION, OVERDUE, NOT_RENEWED = "ON_TRACK", "IN_PROGRESS", "NEEDS_ACTION", "OVERDUE", "NOT_RENEWED"
MANAGED_RENEWAL = (ON_TRACK, IN_PROGRESS, NEEDS_ACTION, OVERDUE, NOT_RENEWED)
RENEWAL_GRACE = timedelta(hours=1)  # how long past its time a renewal may still start or finish before it is OVERDUE

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
    # certsmith's own facts (what a person needs to act); the defaults say "not known".
    issuer: str | None = None  # the issuing CA's ARN, an ACME issuer's "name (directory)", an imported one's issuer DN
    in_use_by: tuple[str, ...] = ()
    renews_at: datetime | None = None  # when certsmith's managed renewal is due (also once under way); None: not planned
    renewing: bool = False  # a renewal is under way
    needs_action: str | None = None  # the renewal waits for the user: a FailureReason or PENDING_DOMAIN_VALIDATION
    not_renewed_because: str | None = None  # why certsmith will not renew it (plain words)
    last_error: str | None = None  # what the last renewal attempt said
    missing_names: tuple[str, ...] = ()  # names whose validation record or redirect is gone
    authority_status: str | None = None  # the issuing CA's status, when known
    revocation_reason: str | None = None

    def __post_init__(self) -> None:
        if self.certificate_type not in CERTIFICATE_TYPES:
            raise ValueError(f"certificate_type {self.certificate_type!r} is not one of {', '.join(CERTIFICATE_TYPES)}")
        if self.validation_method is not None and self.validation_method not in VALIDATION_METHODS:
            raise ValueError(f"validation_method {self.validation_method!r} is not one of {', '.join(VALIDATION_METHODS)}")
        for field in ("not_before", "not_after", "created_at", "renews_at"):
            value = getattr(self, field)
            if value is not None:
                _aware(value, field)


@dataclass(frozen=True, slots=True)
class Event:
    """One event as the outbox keeps it; ``detail`` holds only strings, ints, bools and lists of strings."""

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
    detail |= _certsmith(facts, recommended_action(AVAILABLE, facts, now, action=action), managed_renewal(facts, now))
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
    detail |= _certsmith(facts, recommended_action(EXPIRED, facts, now))
    return _event(EXPIRED, facts, detail, now)


def approaching(facts: CertificateFacts, now: datetime) -> Event:
    """ACM Certificate Approaching Expiration: daily in the last DaysBeforeExpiry days."""
    not_after = _required(facts.not_after, "not_after", APPROACHING)
    detail: dict[str, Any] = {"DaysToExpiry": days_to_expiry(not_after, now)}
    detail |= _described(facts, APPROACHING)
    detail |= _certsmith(facts, recommended_action(APPROACHING, facts, now), managed_renewal(facts, now))
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
    waiting = managed_renewal(replace(facts, needs_action=facts.needs_action or reason), now)
    detail |= _certsmith(facts, recommended_action(ACTION_REQUIRED, facts, now, reason=reason), waiting)
    return _event(ACTION_REQUIRED, facts, detail, now)


def revoked(facts: CertificateFacts, now: datetime) -> Event:
    """ACM Certificate Revoked: after RevokeCertificate."""
    not_after = _required(facts.not_after, "not_after", REVOKED)
    detail: dict[str, Any] = {"CertificateType": facts.certificate_type}
    detail |= _described(facts, REVOKED)
    detail |= {"CertificateExpirationDate": iso_time(not_after), "Exportable": facts.exportable}
    detail |= _certsmith(facts, recommended_action(REVOKED, facts, now))
    return _event(REVOKED, facts, detail, now)


def recommended_action(detail_type: str, facts: CertificateFacts, now: datetime, *, action: str | None = None,
                       reason: str | None = None) -> str:
    """What a person should do about the event, in plain words (``action``: Available's; ``reason``: the renewal's)."""
    if detail_type == EXPIRED:
        if facts.in_use_by:
            return f"Request or import a new certificate; services using it ({', '.join(facts.in_use_by)}) now fail TLS."
        return ("Request or import a new certificate and replace this one wherever it is installed; clients refuse it "
                "since it expired.")
    if detail_type == REVOKED:
        why = f" (revoked: {facts.revocation_reason})" if facts.revocation_reason else ""
        key = " Use a new key: this one must not be trusted again." if facts.revocation_reason == "KEY_COMPROMISE" else ""
        return (f"Request a new certificate and install it wherever this one was installed; clients that check "
                f"revocation refuse it{why}.{key}")
    if detail_type == ACTION_REQUIRED:
        return _unblock(facts, reason or facts.needs_action or "OTHER")
    outlook = _outlook(facts, now)
    if detail_type == AVAILABLE:
        where = f" ({', '.join(facts.in_use_by)})" if facts.in_use_by else ""
        first = {"RENEWAL": f"Install the renewed certificate wherever the previous one is installed{where}.",
                 "REIMPORT": f"Install the re-imported certificate wherever the previous one is installed{where}.",
                 }.get(action or "", "The certificate is ready to install.")
        return f"{first} {outlook}"
    return outlook


def renewal_state(certificate_type: str, now: datetime, *, renews_at: datetime | None = None, renewing: bool = False,
                  needs_action: str | None = None, last_error: str | None = None) -> str:
    """ManagedRenewal from what is known of the renewal (``renews_at``: when it is or was due; ``last_error``: what an
    attempt since the certificate was issued said). See the module docstring for the values."""
    if certificate_type == "IMPORTED":
        return NOT_RENEWED
    if needs_action:
        return NEEDS_ACTION
    late = renews_at is not None and _aware(now, "now") - _aware(renews_at, "renews_at") > RENEWAL_GRACE
    if renewing:
        return OVERDUE if late and last_error else IN_PROGRESS
    if renews_at is not None:
        return OVERDUE if late else ON_TRACK
    return NOT_RENEWED


def managed_renewal(facts: CertificateFacts, now: datetime) -> str:
    """The certificate's ManagedRenewal at ``now``."""
    return renewal_state(facts.certificate_type, now, renews_at=facts.renews_at, renewing=facts.renewing,
                         needs_action=facts.needs_action, last_error=facts.last_error)


def day(moment: datetime) -> str:
    """``YYYY-MM-DD`` (UTC), as the recommended actions name a day."""
    return iso_time(moment)[:10]


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
        "detail": {key: list(value) if isinstance(value, list) else value for key, value in event.detail.items()},
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


def _certsmith(facts: CertificateFacts, action: str, renewal: str | None = None) -> dict[str, Any]:
    """certsmith's fields, after ACM's: every name, the issuer, who uses it, how its renewal stands, what to do."""
    fields: dict[str, Any] = {"DomainNames": list(dict.fromkeys(facts.names or (facts.common_name,)))}
    if facts.issuer:
        fields["Issuer"] = facts.issuer
    fields["InUseBy"] = list(facts.in_use_by)
    if renewal is not None:
        fields["ManagedRenewal"] = renewal
    fields["RecommendedAction"] = action
    return fields


def _outlook(facts: CertificateFacts, now: datetime) -> str:
    """What happens next with the certificate's renewal, and whether that needs the user."""
    until = day(facts.not_after) if facts.not_after is not None else "it expires"
    if facts.certificate_type == "IMPORTED":
        return f"Import a renewed certificate before {until}; certsmith cannot renew an imported certificate."
    if facts.needs_action:
        return _unblock(facts, facts.needs_action)
    if managed_renewal(facts, now) == OVERDUE and facts.renews_at is not None:
        said = f" ({facts.last_error})" if facts.last_error else ""
        if facts.renewing:
            return (f"Find out why certsmith's renewal of it, due on {day(facts.renews_at)}, keeps failing{said}: "
                    f"`certsmith renewal status` shows it; certsmith keeps trying until {until}.")
        return (f"The renewal certsmith planned for {day(facts.renews_at)} has not happened{said}: check that a certsmith "
                f"worker runs and what `certsmith renewal status` says; replace it before {until} if it cannot be renewed.")
    if facts.renewing:
        return "No action needed: certsmith is renewing it now."
    if facts.renews_at is not None:
        if facts.renews_at <= now:
            return "No action needed: certsmith's renewal of it is due now."
        return f"No action needed: certsmith renews it on {day(facts.renews_at)}."
    because = facts.not_renewed_because or "no renewal is planned"
    return f"Replace it before {until}: certsmith will not renew it ({because})."


def _unblock(facts: CertificateFacts, reason: str) -> str:
    """How to clear what keeps a renewal waiting (``reason``: a FailureReason or PENDING_DOMAIN_VALIDATION)."""
    until = day(facts.not_after) if facts.not_after is not None else "it expires"
    names = ", ".join(facts.missing_names or facts.names or (facts.common_name,))
    the_ca = f"the issuing CA {facts.issuer}" if facts.issuer else "the issuing CA"
    at_start = the_ca[:1].upper() + the_ca[1:]
    ca = facts.issuer or "<CA ARN>"  # in a command to run
    said = f" ({facts.last_error})" if facts.last_error else ""
    if reason == PENDING_DOMAIN_VALIDATION:
        if facts.validation_method == "EMAIL":
            return (f"Approve the validation mails sent for {names}; certsmith renews the certificate once they are "
                    f"approved, before {until}.")
        if facts.validation_method == "HTTP":
            return (f"Restore the HTTP redirects of {names} to certsmith (DescribeCertificate shows them); certsmith "
                    f"checks them every hour and renews the certificate once they answer, before {until}.")
        return (f"Restore the validation CNAME records for {names}; `certsmith cert create-records {facts.arn} "
                "--provider NAME` writes them.")
    if reason == "PCA_INVALID_STATE":
        status = facts.authority_status
        if status == "DISABLED":
            return (f"Enable {the_ca} (it is DISABLED): `certsmith ca enable {ca}`; certsmith then renews "
                    f"the certificate before {until}.")
        if status == "DELETED":
            return (f"Restore {the_ca} (it is DELETED) with `certsmith ca restore {ca}`, or request a new "
                    f"certificate from another CA before {until}.")
        if status == "EXPIRED":
            return f"{at_start} has expired: request a new certificate from another CA before {until}."
        state = f"it is {status}" if status else "it is not ACTIVE"
        return f"Make {the_ca} ACTIVE ({state}); certsmith then renews the certificate before {until}."
    if reason in ("PCA_RESOURCE_NOT_FOUND", "PCA_INVALID_ARN"):
        return f"{at_start} no longer exists: request a new certificate from another CA before {until}."
    if reason == "PCA_INVALID_DURATION":
        return (f"{at_start} expires too soon to sign the renewal: rotate it (`certsmith ca rotate {ca}`) or "
                f"request a new certificate from another CA before {until}.")
    if reason.startswith("PCA_"):
        return (f"{at_start} refused the renewal ({reason}){said}: fix the CA or its settings; certsmith keeps "
                f"trying until {until}.")
    if reason == "CAA_ERROR":
        return (f"Allow the issuer in the CAA records of {names} (a CAA record forbids it); certsmith renews the "
                f"certificate once they do, before {until}.")
    if reason == "DOMAIN_VALIDATION_DENIED":
        return (f"The CA could not validate {names}{said}: `certsmith doctor validation {facts.arn}` shows what each "
                f"resolver answers; fix the records before {until}.")
    return f"The renewal is blocked ({reason}){said}: fix the cause, or request or import a new certificate before {until}."


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
