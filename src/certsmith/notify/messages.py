"""What an event says to a person: a subject, labelled facts and the recommended action in plain words."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..domain import events as acm

__all__ = ["PCA_AUDIT_REPORT", "PCA_CRL", "PCA_ISSUANCE", "PCA_REVOCATION", "Message", "describe", "names_of"]

PCA_ISSUANCE = "ACM Private CA Certificate Issuance"
PCA_REVOCATION = "ACM Private CA Certificate Revocation"
PCA_CRL = "ACM Private CA CRL Generation"
PCA_AUDIT_REPORT = "ACM Private CA Audit Report Generation"

MAX_VALUE = 500  # characters of one value shown; the whole event travels with the message anyway
NOTHING = "Nothing to do."

# Detail fields of ACM's events that the event's JSON carries but a person need not read.
_QUIET = frozenset({"CommonName", "FirstSubjectAlternativeName", "DomainNames", "ValidityInDays", "CertificateKeyPairOrigin",
                    "CertificateCreatedDate", "Exported", "Exportable", "RecommendedAction"})
_LABELS = {
    "DaysToExpiry": "Days to expiry", "CertificateExpirationDate": "Expires", "Issuer": "Issuer",
    "InUseBy": "In use by", "CertificateType": "Type", "RenewalStatusReason": "Renewal blocked by",
    "DomainValidationMethod": "Validation method", "Action": "What happened",
}
_REFUSED = frozenset({"PCA_NAME_CONSTRAINTS_VALIDATION", "DOMAIN_NOT_ALLOWED", "INVALID_PUBLIC_DOMAIN",
                      "DOMAIN_VALIDATION_DENIED"})
_DONE = {"ISSUANCE": "issued", "RENEWAL": "renewed", "IMPORT": "imported", "REIMPORT": "re-imported"}
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z0-9]+|[A-Z]")
_ISO = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}):\d{2}(?:\.\d+)?Z$")


@dataclass(frozen=True, slots=True)
class Message:
    """One event told to a person: ``subject`` (one line), ``lines`` (label, value) and ``action`` (what to do)."""

    subject: str
    lines: list[tuple[str, str]] = field(default_factory=list)
    action: str = NOTHING


def describe(envelope: Mapping[str, Any]) -> Message:
    """The message of one EventBridge envelope; any source and detail-type (unknown ones show their detail)."""
    detail_type = str(envelope.get("detail-type") or "Event")
    raw = envelope.get("detail")
    detail: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    names = names_of(envelope)
    lines = _resource_lines(envelope, detail)
    if names:
        lines.append(("Names", ", ".join(names)))
    shown = set(_QUIET)
    for key, label in _LABELS.items():
        value = detail.get(key)
        if key == "Action" and isinstance(value, str):
            value = _DONE.get(value, value)
        if key == "InUseBy" and not value and "InUse" in detail:
            label, value = "In use", detail["InUse"]
        text = _text(value)
        if text:
            lines.append((label, _date(text) if key == "CertificateExpirationDate" else text))
        shown.add(key)
    shown |= {"InUse", "CertificateArn"}
    for key, value in detail.items():
        text = _text(value)
        if key not in shown and text:
            lines.append((_label(key), _date(text) if _ISO.match(text) else text))
    account, region = envelope.get("account"), envelope.get("region")
    if account:
        lines.append(("Account", f"{account} ({region})" if region else str(account)))
    recommended = detail.get("RecommendedAction")
    if isinstance(recommended, str) and recommended.strip():
        action = recommended.strip()
    else:
        action = _action(str(envelope.get("source") or ""), detail_type, detail, names, _first_resource(envelope))
    return Message(_subject(detail_type, detail, names, envelope), lines, action)


def names_of(envelope: Mapping[str, Any]) -> list[str]:
    """The domain names an event is about: ``DomainNames``, else its common name and first alternative name."""
    detail = envelope.get("detail")
    if not isinstance(detail, Mapping):
        return []
    given = detail.get("DomainNames")
    found = [str(n) for n in given if n] if isinstance(given, list) else []
    if not found:
        found = [str(detail[k]) for k in ("CommonName", "FirstSubjectAlternativeName") if detail.get(k)]
    return list(dict.fromkeys(found))


def _subject(detail_type: str, detail: Mapping[str, Any], names: list[str], envelope: Mapping[str, Any]) -> str:
    about = names[0] if names else _short(_first_resource(envelope))
    if len(names) > 1:
        about += f" and {len(names) - 1} more"
    days = detail.get("DaysToExpiry")
    notes: list[str] = []
    if detail_type == acm.AVAILABLE and isinstance(detail.get("Action"), str):
        notes.append(_DONE.get(detail["Action"], detail["Action"].lower()))
    if detail_type == acm.ACTION_REQUIRED and detail.get("RenewalStatusReason"):
        notes.append(str(detail["RenewalStatusReason"]))
    if isinstance(days, int) and not isinstance(days, bool) and detail_type in (acm.APPROACHING, acm.ACTION_REQUIRED):
        notes.append(f"{days} day{'' if days == 1 else 's'} left")
    if str(detail.get("result", "")).lower() == "failure":
        notes.append("failed")
    subject = f"{detail_type}: {about}" if about else detail_type
    return " ".join((subject + (f" ({', '.join(notes)})" if notes else "")).split())[:250]


def _action(source: str, detail_type: str, detail: Mapping[str, Any], names: list[str], arn: str) -> str:
    if source == acm.SOURCE:
        return _acm_action(detail_type, detail, names, arn)
    if source == "aws.acm-pca":
        return _pca_action(detail_type, detail)
    if source == "certsmith":
        return _certsmith_action(detail_type, detail, names, arn)
    return "No action is known for this event; see its detail."


def _imported(detail: Mapping[str, Any]) -> bool:
    kind = detail.get("CertificateType")
    return kind == "IMPORTED" or (kind is None and detail.get("CertificateKeyPairOrigin") == "CUSTOMER_PROVIDED")


def _acm_action(detail_type: str, detail: Mapping[str, Any], names: list[str], arn: str) -> str:
    deadline = _deadline(detail)
    if detail_type == acm.AVAILABLE:
        if detail.get("Action") == "RENEWAL":
            return ("Nothing to do where the certificate is read from certsmith; install the renewed certificate "
                    "wherever the previous one was copied to.")
        return NOTHING
    if detail_type == acm.APPROACHING:
        if _imported(detail):
            return f"Re-import a renewed certificate {deadline}; certsmith cannot renew imported certificates."
        return ("Nothing to do yet: certsmith renews the certificate before it expires. If the renewal does not happen, "
                "see `certsmith renewal status`.")
    if detail_type == acm.ACTION_REQUIRED:
        return _blocked(str(detail.get("RenewalStatusReason") or ""), detail, _list(names), deadline, arn)
    if detail_type == acm.EXPIRED:
        if _imported(detail):
            return ("Re-import a valid certificate under the same ARN and replace it wherever it is still served; "
                    "certsmith cannot renew imported certificates.")
        return ("Request a new certificate (or fix what blocked the renewal) and replace the expired one wherever it is "
                "still served: clients refuse an expired certificate.")
    if detail_type == acm.REVOKED:
        return "Replace the certificate wherever it is used: clients that check revocation refuse it."
    return "No action is known for this event; see its detail."


def _blocked(reason: str, detail: Mapping[str, Any], names: str, deadline: str, arn: str) -> str:
    """What unblocks a renewal, by RenewalStatusReason."""
    if reason == acm.PENDING_DOMAIN_VALIDATION:
        method = detail.get("DomainValidationMethod")
        if method == "HTTP":
            return f"Restore the HTTP validation redirects for {names} so certsmith can renew the certificate {deadline}."
        if method == "EMAIL":
            return f"Approve the validation mails sent for {names} so certsmith can renew the certificate {deadline}."
        return f"Restore the validation CNAME records for {names} so certsmith can renew the certificate {deadline}."
    if reason == "CAA_ERROR":
        return f"Allow the issuing CA in the CAA records of {names}, then certsmith renews the certificate {deadline}."
    if reason in ("PCA_INVALID_STATE", "PCA_RESOURCE_NOT_FOUND", "PCA_INVALID_ARN"):
        return f"Make the issuing private CA ACTIVE again (or re-issue from another CA) {deadline}."
    if reason == "PCA_ACCESS_DENIED":
        return f"Give the account permission to issue from the private CA {deadline}."
    if reason in _REFUSED:
        return f"The CA refuses to issue for {names} ({reason}); request the certificate from a CA that may {deadline}."
    where = f" (`certsmith cert describe {arn}`)" if arn else ""
    why = f" ({reason})" if reason else ""
    return f"Fix what blocks the renewal{why}{where} {deadline}."


def _pca_action(detail_type: str, detail: Mapping[str, Any]) -> str:
    if str(detail.get("result", "")).lower() != "failure":
        return NOTHING
    if detail_type == PCA_CRL:
        return "Check the CA's CRL configuration and its storage; clients may refuse certificates while the CRL is stale."
    if detail_type == PCA_AUDIT_REPORT:
        return "Check where the CA writes its audit reports, then ask for the report again."
    if detail_type == PCA_REVOCATION:
        return "Revoke the certificate again; it is not yet in the CA's CRL."
    return "Check the CA's state (it must be ACTIVE) and the request, then issue again."


def _certsmith_action(detail_type: str, detail: Mapping[str, Any], names: list[str], arn: str) -> str:
    problem = _text(detail.get("Error") or detail.get("Reason") or detail.get("Problem"))
    said = f" ({problem})" if problem else ""
    endpoint = _endpoint(detail)
    if detail_type == "Certsmith Validation Failed":
        return f"Fix what the validation of {_list(names) or 'the certificate'} reported{said}; certsmith tries again."
    if detail_type == "Certsmith Deployment Failed":
        target = _text(detail.get("Target") or detail.get("TargetName"))
        return f"Check the deployment target{' ' + target if target else ''}{said}; the certificate is not in place there."
    if detail_type == "Certsmith Endpoint Drift":
        return (f"{endpoint or 'The endpoint'} serves another certificate than the one it should; deploy the current "
                "certificate there and reload the server.")
    if detail_type == "Certsmith Endpoint Unreachable":
        return f"Check that {endpoint or 'the endpoint'} is up and reachable from certsmith{said}."
    if detail_type == "Certsmith CA Expiring":
        ca = f" {arn}" if arn else ""
        return f"Rotate the CA {_deadline(detail)} (`certsmith ca rotate{ca or ' ARN'}`) and re-issue its certificates."
    if detail_type in ("Certsmith Deployment Succeeded", "Certsmith CRL Published"):
        return NOTHING
    return "No action is known for this event; see its detail."


def _endpoint(detail: Mapping[str, Any]) -> str:
    host = _text(detail.get("Host"))
    if not host:
        return _text(detail.get("Endpoint"))
    port = detail.get("Port")
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{port}" if port else host


def _deadline(detail: Mapping[str, Any]) -> str:
    """``before <date>`` when the detail carries the expiry date, else how many days are left."""
    date = detail.get("CertificateExpirationDate") or detail.get("NotAfter")
    if isinstance(date, str) and date:
        return f"before {_date(date)}"
    days = detail.get("DaysToExpiry")
    if isinstance(days, int) and not isinstance(days, bool):
        return f"within the {days} day{'' if days == 1 else 's'} left"
    return "before it expires"


def _resource_lines(envelope: Mapping[str, Any], detail: Mapping[str, Any]) -> list[tuple[str, str]]:
    given = envelope.get("resources")
    resources = [str(r) for r in given if r] if isinstance(given, list) else []
    arn = detail.get("CertificateArn")
    if isinstance(arn, str) and arn and arn not in resources:
        resources.append(arn)
    return [(_resource_label(r), r) for r in resources[:5]]


def _resource_label(arn: str) -> str:
    if ":certificate-authority/" in arn:
        return "Certificate" if "/certificate/" in arn.split(":certificate-authority/", 1)[1] else "Certificate authority"
    return "Certificate" if ":certificate/" in arn else "Resource"


def _first_resource(envelope: Mapping[str, Any]) -> str:
    given = envelope.get("resources")
    return str(given[0]) if isinstance(given, list) and given and given[0] else ""


def _short(arn: str) -> str:
    return arn.rsplit("/", 1)[-1] if arn else ""


def _list(names: list[str]) -> str:
    if len(names) <= 3:
        return ", ".join(names)
    return f"{', '.join(names[:3])} and {len(names) - 3} more"


def _label(key: str) -> str:
    words = _WORDS.findall(key) or [key]
    first, rest = words[0], [w if w.isupper() and len(w) > 1 else w.lower() for w in words[1:]]
    return " ".join([first[:1].upper() + first[1:], *rest])


def _date(text: str) -> str:
    found = _ISO.match(text)
    return f"{found.group(1)} {found.group(2)} UTC" if found else text


def _text(value: Any) -> str:
    """A detail value as one short line; empty for nothing."""
    if value is None or value == "" or value == []:
        return ""
    if isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, list):
        text = ", ".join(_text(v) for v in value if _text(v))
    elif isinstance(value, Mapping):
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    else:
        text = str(value)
    text = " ".join(text.split())
    return text if len(text) <= MAX_VALUE else text[:MAX_VALUE - 1] + "…"
