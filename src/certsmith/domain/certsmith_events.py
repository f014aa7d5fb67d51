"""certsmith's own events (``source: certsmith``): what ACM and ACM-PCA have no event for.

Every detail ends with ``RecommendedAction`` (what a person should do, in plain words); the resources list the
ARNs concerned (the certificate or CA first). Names are lists of strings, dates ISO-8601 UTC strings.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from .events import Event, day, days_to_expiry, iso_time

__all__ = [
    "CA_EXPIRING", "CA_EXPIRY_DAYS", "CRL_PUBLISHED", "DEPLOYMENT_FAILED", "DEPLOYMENT_SUCCEEDED", "DETAIL_TYPES",
    "ENDPOINT_DRIFT", "ENDPOINT_UNREACHABLE", "SOURCE", "VALIDATION_FAILED", "ca_expiring", "ca_expiry_event_id",
    "ca_expiry_threshold", "crl_published", "deployment_failed", "deployment_succeeded", "endpoint_drift",
    "endpoint_unreachable", "validation_failed",
]

SOURCE = "certsmith"
VALIDATION_FAILED = "Certsmith Validation Failed"
DEPLOYMENT_SUCCEEDED = "Certsmith Deployment Succeeded"
DEPLOYMENT_FAILED = "Certsmith Deployment Failed"
ENDPOINT_DRIFT = "Certsmith Endpoint Drift"
ENDPOINT_UNREACHABLE = "Certsmith Endpoint Unreachable"
CA_EXPIRING = "Certsmith CA Expiring"
CRL_PUBLISHED = "Certsmith CRL Published"
DETAIL_TYPES = (VALIDATION_FAILED, DEPLOYMENT_SUCCEEDED, DEPLOYMENT_FAILED, ENDPOINT_DRIFT, ENDPOINT_UNREACHABLE,
                CA_EXPIRING, CRL_PUBLISHED)

CA_EXPIRY_DAYS = (90, 30, 7)  # a CA Expiring event when a CA's certificate has this many days left or fewer
MAX_TEXT = 500  # characters of a message or error kept in an event
_DAY = timedelta(days=1)
_CA_EXPIRY_NAMESPACE = uuid.UUID("6f1d3c1e-3a57-4d0e-9a43-1f6f0c2b7e15")


def validation_failed(certificate_arn: str, names: Sequence[str], reason: str, message: str, now: datetime, *,
                      failed_names: Sequence[str] = (), issuer: str | None = None, issuer_arn: str | None = None,
                      validation_method: str | None = None) -> Event:
    """A public certificate's validation failed for good: FAILED (``reason`` a FailureReason) or VALIDATION_TIMED_OUT."""
    failed = list(dict.fromkeys(failed_names or names))
    detail: dict[str, Any] = {"DomainNames": list(dict.fromkeys(names)), "FailedNames": failed, "Reason": reason,
                              "Error": _text(message)}
    if validation_method:
        detail["DomainValidationMethod"] = validation_method
    if issuer:
        detail["Issuer"] = issuer
    which = ", ".join(failed)
    if reason == "CAA_ERROR":
        action = (f"Allow the issuer in the CAA records of {which} (or remove the record that forbids it), then request "
                  "the certificate again.")
    elif reason == "VALIDATION_TIMED_OUT" and validation_method == "EMAIL":
        action = (f"Request the certificate again and have the approval mails for {which} approved within 72 hours "
                  "(they go to the domains' administrative addresses).")
    elif reason == "VALIDATION_TIMED_OUT":
        what = "HTTP redirects" if validation_method == "HTTP" else "validation records"
        action = (f"Put the {what} of {which} in place (`certsmith doctor validation {certificate_arn}` shows what is "
                  "missing), then request the certificate again.")
    elif reason == "DOMAIN_VALIDATION_DENIED":
        action = (f"The CA could not validate {which}: `certsmith doctor validation {certificate_arn}` shows what each "
                  "resolver answers; fix the records, then request the certificate again.")
    else:
        action = f"Fix the cause ({_text(message) or reason}), then request the certificate again."
    detail["RecommendedAction"] = action
    return _event(VALIDATION_FAILED, (certificate_arn, *_given(issuer_arn)), detail, now)


def deployment_succeeded(certificate_arn: str, target: str, now: datetime, *, names: Sequence[str] = (),
                         serial: str | None = None, not_after: datetime | None = None,
                         target_arn: str | None = None) -> Event:
    """A certificate was installed on ``target`` (a host, a load balancer, a secret store: whatever was deployed to)."""
    detail: dict[str, Any] = {"Target": target, "DomainNames": list(dict.fromkeys(names))}
    if serial:
        detail["Serial"] = serial
    if not_after is not None:
        detail["CertificateExpirationDate"] = iso_time(not_after)
        detail["DaysToExpiry"] = days_to_expiry(not_after, now)
    detail["RecommendedAction"] = f"No action needed: {target} has the certificate."
    return _event(DEPLOYMENT_SUCCEEDED, (certificate_arn, *_given(target_arn)), detail, now)


def deployment_failed(certificate_arn: str, target: str, error: str, now: datetime, *, names: Sequence[str] = (),
                      not_after: datetime | None = None, target_arn: str | None = None) -> Event:
    """Installing a certificate on ``target`` failed; ``error`` says why (plain words, no secrets)."""
    detail: dict[str, Any] = {"Target": target, "DomainNames": list(dict.fromkeys(names)), "Error": _text(error)}
    if not_after is not None:
        detail["CertificateExpirationDate"] = iso_time(not_after)
        detail["DaysToExpiry"] = days_to_expiry(not_after, now)
    detail["RecommendedAction"] = (f"Fix what stopped the deployment to {target} ({_text(error)}) and deploy again; "
                                   f"until then {target} keeps the certificate it had.")
    return _event(DEPLOYMENT_FAILED, (certificate_arn, *_given(target_arn)), detail, now)


def endpoint_drift(host: str, port: int, server_name: str, now: datetime, *, certificate_arn: str | None,
                   expected_serial: str | None, served_serial: str | None, served_not_after: datetime | None = None,
                   endpoint_arn: str | None = None) -> Event:
    """An endpoint serves another certificate than the one it should (``certificate_arn``, ``expected_serial``)."""
    where = _where(host, port, server_name)
    detail: dict[str, Any] = {"Host": host, "Port": port, "ServerName": server_name,
                              "ExpectedSerial": expected_serial or "", "ServedSerial": served_serial or ""}
    if served_not_after is not None:
        detail["ServedExpirationDate"] = iso_time(served_not_after)
        detail["DaysToExpiry"] = days_to_expiry(served_not_after, now)
    expires = f", which expires on {day(served_not_after)}" if served_not_after is not None else ""
    wanted = certificate_arn or "the expected certificate"
    detail["RecommendedAction"] = (f"Deploy {wanted} to {where} and reload it: it serves serial "
                                   f"{served_serial or 'unknown'}{expires}.")
    return _event(ENDPOINT_DRIFT, (*_given(certificate_arn), *_given(endpoint_arn)), detail, now)


def endpoint_unreachable(host: str, port: int, server_name: str, error: str, now: datetime, *,
                         certificate_arn: str | None = None, endpoint_arn: str | None = None) -> Event:
    """A TLS probe of an endpoint failed (no connection, no handshake)."""
    where = _where(host, port, server_name)
    detail: dict[str, Any] = {"Host": host, "Port": port, "ServerName": server_name, "Error": _text(error),
                              "RecommendedAction": (f"Check that {where} is up and reachable from certsmith "
                                                    f"({_text(error)}); certsmith probes it again on its schedule.")}
    return _event(ENDPOINT_UNREACHABLE, (*_given(certificate_arn), *_given(endpoint_arn)), detail, now)


def ca_expiring(ca_arn: str, subject: str, not_after: datetime, threshold: int, now: datetime) -> Event:
    """An ACTIVE CA's certificate has ``threshold`` days left or fewer (one event per threshold of CA_EXPIRY_DAYS)."""
    detail: dict[str, Any] = {
        "Subject": subject, "Threshold": threshold, "DaysToExpiry": days_to_expiry(not_after, now),
        "NotAfter": iso_time(not_after),
        "RecommendedAction": (f"Rotate the CA before {day(not_after)}: `certsmith ca rotate {ca_arn}` makes its "
                              "replacement and `certsmith ca reissue` moves what it issued; after that day it signs "
                              "nothing and its certificates stop validating."),
    }
    return _event(CA_EXPIRING, (ca_arn,), detail, now)


def ca_expiry_threshold(not_after: datetime, now: datetime) -> int | None:
    """The smallest threshold of CA_EXPIRY_DAYS reached at ``now`` (thresholds passed unseen collapse into it)."""
    if now >= not_after:
        return None
    reached = [days for days in CA_EXPIRY_DAYS if not_after - days * _DAY <= now]
    return min(reached, default=None)


def ca_expiry_event_id(ca_arn: str, not_after: datetime, threshold: int) -> str:
    """The event id of one CA Expiring notice: the same for the same CA certificate and threshold, so it is sent once."""
    return str(uuid.uuid5(_CA_EXPIRY_NAMESPACE, f"{ca_arn}|{iso_time(not_after)}|{threshold}"))


def crl_published(ca_arn: str, crl_number: int, this_update: datetime, next_update: datetime, revoked: int,
                  now: datetime, *, url: str | None = None) -> Event:
    """A CA signed and stored a new CRL (``revoked``: how many certificates it lists)."""
    detail: dict[str, Any] = {"CrlNumber": crl_number, "ThisUpdate": iso_time(this_update),
                              "NextUpdate": iso_time(next_update), "RevokedCount": revoked}
    if url:
        detail["Url"] = url
    where = f" from {url}" if url else ""
    detail["RecommendedAction"] = (f"No action needed: clients that cache CRLs fetch this one{where} by "
                                   f"{iso_time(next_update)}, and certsmith signs the next before then.")
    return _event(CRL_PUBLISHED, (ca_arn,), detail, now)


def _where(host: str, port: int, server_name: str) -> str:
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return address + (f" (SNI {server_name})" if server_name and server_name != host else "")


def _given(arn: str | None) -> tuple[str, ...]:
    return (arn,) if arn else ()


def _text(value: str) -> str:
    return " ".join(str(value).split())[:MAX_TEXT]


def _event(detail_type: str, resources: tuple[str, ...], detail: dict[str, Any], now: datetime) -> Event:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return Event(detail_type, tuple(dict.fromkeys(resources)), detail, now.astimezone(UTC), SOURCE)
