"""Monitored TLS endpoints: checking what a user registers, judging what a probe found, and the events it raises.

A probe is judged in this order, the first that applies wins: UNREACHABLE (no handshake), EXPIRED (a certificate of
the served chain is past its NotAfter), UNTRUSTED (the chain does not lead to the trust anchors, or the leaf is not
valid yet), MISMATCH (the leaf is not for the server name, RFC 6125), DRIFT (the leaf is not the current version of
the certificate the endpoint should serve), else OK.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from .acm import colon_hex
from .arns import partition_of
from .certsmith_events import ENDPOINT_DRIFT, ENDPOINT_UNREACHABLE, endpoint_drift, endpoint_unreachable
from .errors import ValidationError
from .events import Event, days_to_expiry, iso_time

__all__ = [
    "DEFAULT_INTERVAL", "DEFAULT_PORT", "DRIFT", "DRIFT_EVENT", "EXPIRED", "MAX_INTERVAL", "MIN_INTERVAL", "MISMATCH",
    "OK", "PENDING", "STATUSES", "UNREACHABLE", "UNREACHABLE_EVENT", "UNTRUSTED", "ChainEntry",
    "EndpointFacts", "Expected", "Observation", "Verdict", "check_host", "check_interval", "check_port",
    "check_server_name", "check_trust_bundle", "drift_event", "endpoint_arn", "evaluate", "events_for",
    "hostname_matches", "is_ip", "parse_chain", "recommended_action", "reminder_due", "unreachable_event",
]

DRIFT_EVENT = ENDPOINT_DRIFT
UNREACHABLE_EVENT = ENDPOINT_UNREACHABLE

PENDING, OK, DRIFT, MISMATCH = "PENDING", "OK", "DRIFT", "MISMATCH"
UNTRUSTED, EXPIRED, UNREACHABLE = "UNTRUSTED", "EXPIRED", "UNREACHABLE"
STATUSES = (PENDING, OK, DRIFT, MISMATCH, UNTRUSTED, EXPIRED, UNREACHABLE)

DEFAULT_PORT = 443
DEFAULT_INTERVAL = 3600
MIN_INTERVAL = 10
MAX_INTERVAL = 7 * 86400
_DAY = timedelta(days=1)
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_REMINDED = (DRIFT, UNREACHABLE)  # statuses told again once a day while they last


# -- what a user registers -------------------------------------------------------------------------------------------
def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def check_host(value: str, field: str = "Host") -> str:
    """A host name (ASCII, punycode for international names) or an IP address, normalised (lowercase, no dot)."""
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if is_ip(text):
        return str(ipaddress.ip_address(text))
    name = text.lower().rstrip(".")
    if not name:
        raise ValidationError(f"{field} is empty: give a host name or an IP address", field=field)
    if not name.isascii():
        raise ValidationError(f"{field} {value!r} is not ASCII: give an international name in punycode (xn--...)",
                              field=field)
    if len(name) > 253 or not all(_LABEL.match(label) for label in name.split(".")):
        raise ValidationError(f"{field} {value!r} is neither a host name (labels of letters, digits and hyphens, "
                              "at most 63 characters each) nor an IP address", field=field)
    return name


def check_server_name(value: str, field: str = "ServerName") -> str:
    return check_host(value, field)


def check_port(value: int, field: str = "Port") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ValidationError(f"{field} {value!r} is not a port: give 1 to 65535", field=field)
    return value


def check_interval(value: int, field: str = "IntervalSeconds") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_INTERVAL <= value <= MAX_INTERVAL:
        raise ValidationError(f"{field} {value!r} is out of range: give {MIN_INTERVAL} to {MAX_INTERVAL} seconds "
                              "(7 days)", field=field)
    return value


def check_trust_bundle(pem: str, field: str = "TrustBundle") -> str:
    """The PEM certificates of a trust bundle, re-encoded one after the other; anything else is refused."""
    if "PRIVATE KEY" in pem:
        raise ValidationError(f"{field} holds a private key: give only the CA certificates to trust", field=field)
    try:
        certificates = x509.load_pem_x509_certificates(pem.encode())
    except ValueError:
        raise ValidationError(f"{field} is not a PEM bundle of certificates (-----BEGIN CERTIFICATE----- blocks)",
                              field=field) from None
    return "".join(c.public_bytes(Encoding.PEM).decode() for c in certificates)


def endpoint_arn(region: str, account: str, endpoint_id: str) -> str:
    return f"arn:{partition_of(region)}:certsmith:{region}:{account}:endpoint/{endpoint_id}"


# -- what a probe saw ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ChainEntry:
    """One certificate of a served chain, as the endpoint row keeps it."""

    subject: str
    issuer: str
    serial: str
    not_before: datetime
    not_after: datetime

    def to_json(self) -> dict[str, str]:
        return {"subject": self.subject, "issuer": self.issuer, "serial": self.serial,
                "not_before": iso_time(self.not_before), "not_after": iso_time(self.not_after)}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> ChainEntry:
        def when(text: str) -> datetime:
            return datetime.fromisoformat(text.replace("Z", "+00:00"))

        not_after = when(value["not_after"])
        return cls(value["subject"], value["issuer"], value["serial"],
                   when(value["not_before"]) if value.get("not_before") else not_after, not_after)


def parse_chain(ders: Sequence[bytes]) -> list[x509.Certificate]:
    """The served certificates, leaf first; one that does not parse ends the list."""
    found = []
    for der in ders:
        try:
            found.append(x509.load_der_x509_certificate(der))
        except ValueError:
            break
    return found


def _entry(certificate: x509.Certificate) -> ChainEntry:
    return ChainEntry(certificate.subject.rfc4514_string(), certificate.issuer.rfc4514_string(),
                      colon_hex(certificate.serial_number), certificate.not_valid_before_utc,
                      certificate.not_valid_after_utc)


def _names(certificate: x509.Certificate) -> tuple[list[str], list[ipaddress.IPv4Address | ipaddress.IPv6Address]]:
    try:
        sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    dns = [str(n).lower().rstrip(".") for n in sans.get_values_for_type(x509.DNSName)]
    ips = [ip for ip in sans.get_values_for_type(x509.IPAddress)
           if isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address)]
    return dns, ips


def _dns_match(pattern: str, name: str) -> bool:
    if pattern == name:
        return True
    if not pattern.startswith("*."):
        return False  # a wildcard only as the whole left-most label (no partial wildcards, as in Python's ssl)
    rest = pattern[2:]
    if "*" in rest or "." not in rest:
        return False  # never *.com
    first, dot, tail = name.partition(".")
    return bool(first) and bool(dot) and tail == rest


def hostname_matches(certificate: x509.Certificate, server_name: str) -> bool:
    """Whether the certificate is for ``server_name`` (RFC 6125 as Python's ssl and OpenSSL check it).

    An IP address matches IP subjectAltNames only; a host name matches a DNS subjectAltName exactly or through a
    wildcard that is the whole left-most label and covers exactly one label; the subject's common name counts only
    when the certificate has no DNS subjectAltName.
    """
    dns, ips = _names(certificate)
    if is_ip(server_name):
        address = ipaddress.ip_address(server_name)
        return any(ip == address for ip in ips)
    name = server_name.lower().rstrip(".")
    if not dns:
        dns = [str(a.value).lower().rstrip(".") for a in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return any(_dns_match(pattern, name) for pattern in dns)


def _shown_names(certificate: x509.Certificate) -> str:
    dns, ips = _names(certificate)
    shown = dns + [str(ip) for ip in ips]
    if not shown:
        shown = [str(a.value) for a in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return ", ".join(shown[:5]) + (f" and {len(shown) - 5} more" if len(shown) > 5 else "") if shown else "no name"


@dataclass(frozen=True, slots=True)
class Observation:
    """What a TLS probe saw: the chain as served (DER, leaf first), whether it verified against the trust anchors
    (``trust_error`` says why not), and ``error`` when there was no handshake at all."""

    handshake_ms: float | None
    chain: tuple[bytes, ...] = ()
    trusted: bool | None = None
    trust_error: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Expected:
    """The certificate an endpoint should serve: its ARN, current version and serial, and every version's serial."""

    arn: str
    current_serial: str | None
    current_version: int
    versions: tuple[tuple[int, str], ...] = ()  # (version, serial), oldest first

    def version_of(self, serial: str) -> int | None:
        return next((v for v, s in self.versions if s == serial), None)


@dataclass(frozen=True, slots=True)
class Verdict:
    status: str
    chain: tuple[ChainEntry, ...]
    served_serial: str | None
    served_not_after: datetime | None
    hostname_match: bool | None
    trusted: bool | None
    message: str | None  # why the status is not OK (kept as the row's error)
    served_version: int | None = None
    days_to_expiry: int | None = None


def evaluate(observation: Observation, server_name: str, expected: Expected | None, now: datetime) -> Verdict:
    """The status of one probe and the facts kept with it."""
    certificates = parse_chain(observation.chain)
    if observation.error is not None or not certificates:
        error = observation.error or "the server sent no certificate"
        return Verdict(UNREACHABLE, (), None, None, None, None, error)
    chain = tuple(_entry(c) for c in certificates)
    leaf, leaf_entry = certificates[0], chain[0]
    match = hostname_matches(leaf, server_name)
    served_version = expected.version_of(leaf_entry.serial) if expected is not None else None
    days = days_to_expiry(leaf_entry.not_after, now)
    trusted = observation.trusted
    base = Verdict(OK, chain, leaf_entry.serial, leaf_entry.not_after, match, trusted, None, served_version, days)
    expired = next((e for e in chain if e.not_after <= now), None)
    if expired is not None:
        which = "the certificate" if expired is leaf_entry else f"the chain's certificate {expired.subject}"
        return replace(base, status=EXPIRED, message=f"{which} expired on {iso_time(expired.not_after)}")
    if leaf_entry.not_before > now:
        return replace(base, status=UNTRUSTED,
                       message=f"the certificate is not valid before {iso_time(leaf_entry.not_before)}")
    if trusted is False:
        return replace(base, status=UNTRUSTED,
                       message=f"the chain is not trusted: {observation.trust_error or 'not verified'}")
    if not match:
        return replace(base, status=MISMATCH, message=f"the certificate is for {_shown_names(leaf)}, not for {server_name}")
    if expected is not None and leaf_entry.serial != expected.current_serial:
        return replace(base, status=DRIFT, message=_drift_message(expected, leaf_entry.serial, served_version))
    return base


def _drift_message(expected: Expected, served: str, served_version: int | None) -> str:
    what = f"version {served_version} (serial {served})" if served_version is not None \
        else f"a certificate that is no version of it (serial {served})"
    return f"serves {what} instead of version {expected.current_version} of {expected.arn}"


# -- events ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class EndpointFacts:
    endpoint_id: str
    arn: str
    host: str
    port: int
    server_name: str
    certificate_arn: str | None


def _where(facts: EndpointFacts) -> str:
    host = f"[{facts.host}]" if ":" in facts.host else facts.host
    return f"{host}:{facts.port}"


def recommended_action(facts: EndpointFacts, verdict: Verdict, expected: Expected | None) -> str:
    """What to do about a status, in plain words."""
    where = _where(facts)
    if verdict.status == DRIFT and expected is not None:
        still = f"it still serves version {verdict.served_version}" if verdict.served_version is not None \
            else f"it serves a certificate that is no version of it (serial {verdict.served_serial})"
        return (f"Deploy version {expected.current_version} of {expected.arn} to {where} and reload the server; "
                f"{still}.")
    if verdict.status == UNREACHABLE:
        return f"Check that {where} is up and accepts TLS connections from certsmith: {verdict.message}."
    if verdict.status == EXPIRED:
        return f"Deploy a valid certificate to {where} and reload the server: {verdict.message}."
    if verdict.status == UNTRUSTED:
        return f"Serve the full chain of a trusted CA on {where}: {verdict.message}."
    if verdict.status == MISMATCH:
        return f"Serve a certificate for {facts.server_name} on {where}: {verdict.message}."
    return "Nothing to do."


def _with(event: Event, facts: EndpointFacts, extra: dict[str, Any], action: str | None = None) -> Event:
    """The event with the endpoint's own fields added; RecommendedAction stays last."""
    detail = {k: v for k, v in event.detail.items() if k != "RecommendedAction"}
    detail |= {"EndpointId": facts.endpoint_id, "Host": facts.host, "Port": facts.port}
    if facts.certificate_arn:
        detail["CertificateArn"] = facts.certificate_arn
    detail |= extra
    detail["RecommendedAction"] = action or event.detail.get("RecommendedAction", "")
    return Event(event.detail_type, event.resources, detail, event.time, event.source)


def drift_event(facts: EndpointFacts, verdict: Verdict, expected: Expected, now: datetime) -> Event:
    """Certsmith Endpoint Drift: the endpoint serves something other than the current version of its certificate."""
    event = endpoint_drift(facts.host, facts.port, facts.server_name, now, certificate_arn=expected.arn,
                           expected_serial=expected.current_serial, served_serial=verdict.served_serial,
                           served_not_after=verdict.served_not_after, endpoint_arn=facts.arn)
    extra: dict[str, Any] = {"CertificateArn": expected.arn, "CurrentSerial": expected.current_serial or "",
                             "CurrentVersion": expected.current_version}
    if verdict.served_version is not None:
        extra["ServedVersion"] = verdict.served_version
    return _with(event, facts, extra, recommended_action(facts, verdict, expected))


def unreachable_event(facts: EndpointFacts, verdict: Verdict, now: datetime) -> Event:
    """Certsmith Endpoint Unreachable: no TLS handshake with the endpoint."""
    event = endpoint_unreachable(facts.host, facts.port, facts.server_name, verdict.message or "unreachable", now,
                                 certificate_arn=facts.certificate_arn, endpoint_arn=facts.arn)
    return _with(event, facts, {})


def reminder_due(previous_probed_at: datetime | None, now: datetime, anchor: datetime) -> bool:
    """Whether a status that lasts is told again: once a day, counted in whole days from ``anchor`` (the endpoint's
    creation), so that the reminders of many endpoints do not all fall at midnight."""
    if previous_probed_at is None:
        return True
    return (now - anchor) // _DAY > (previous_probed_at - anchor) // _DAY


def events_for(facts: EndpointFacts, previous_status: str, previous_probed_at: datetime | None, verdict: Verdict,
               expected: Expected | None, now: datetime, anchor: datetime) -> list[Event]:
    """The events a probe raises: on becoming DRIFT or UNREACHABLE, and once a day while it stays so."""
    status = verdict.status
    if status not in _REMINDED:
        return []
    if status == previous_status and not reminder_due(previous_probed_at, now, anchor):
        return []
    if status == DRIFT:
        return [drift_event(facts, verdict, expected, now)] if expected is not None else []
    return [unreachable_event(facts, verdict, now)]
