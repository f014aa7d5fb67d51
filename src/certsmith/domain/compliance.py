"""The compliance report's checks: what AWS Config's managed rules say about ACM certificates, and a few more.

Each rule looks at facts already known about a certificate (its columns, its stored chain, the last probe of the
endpoints that should serve it) and says, in plain words, what is wrong and what to do. Rules:

- ``expiring``: ISSUED (or EXPIRED) and NotAfter within the report's window (30 days unless told), unless certsmith's
  managed renewal will replace it in time: a certificate whose ManagedRenewal (as the events say it) is ON_TRACK (planned
  before expiry, not overdue) or IN_PROGRESS is no finding, not even a LOW one (a short-lived certificate is always
  within the window, and a report run with --fail-on-findings must not fail for it). Expired, imported, NOT_RENEWED
  (ineligible), OVERDUE and NEEDS_ACTION certificates are findings, and say why; so is one whose renewal is not known.
- ``weak-rsa``: an RSA key under 2048 bits, the certificate's or one of its stored chain's.
- ``sha1-signature``: signed with SHA-1 or MD5, the certificate or a certificate of its stored chain (a self-signed
  root's own signature is not checked: nobody verifies it).
- ``forbidden-wildcard``: a wildcard name on a certificate carrying a tag whose policy forbids wildcards.
- ``unused``: ISSUED, associated with nothing (InUseBy empty) and not the certificate of a monitored endpoint.
- ``imported-no-renewal``: every IMPORTED certificate: certsmith cannot renew it, someone must import its successor.
- ``endpoint-old-version``: a monitored endpoint serves an older version of the certificate (its probe said DRIFT).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from .acm import certificate_facts, signature_algorithm_name
from .errors import ValidationError
from .events import IN_PROGRESS, NEEDS_ACTION, NOT_RENEWED, ON_TRACK, OVERDUE

__all__ = [
    "DEFAULT_EXPIRING_DAYS", "ENDPOINT_OLD_VERSION", "EXPIRING", "FORBIDDEN_WILDCARD", "IMPORTED_NO_RENEWAL",
    "MAX_EXPIRING_DAYS", "MIN_RSA_BITS", "RULES", "SEVERITIES", "SHA1_SIGNATURE", "UNUSED", "WEAK_RSA",
    "CertificateState", "ChainCertificate", "EndpointState", "Finding", "ReportPolicy", "chain_certificate",
    "check_policy", "evaluate", "evaluate_endpoint", "findings_in_order", "rsa_bits", "split_pem", "state_of",
    "summary", "weak_digest",
]

EXPIRING, WEAK_RSA, SHA1_SIGNATURE = "expiring", "weak-rsa", "sha1-signature"
FORBIDDEN_WILDCARD, UNUSED, IMPORTED_NO_RENEWAL = "forbidden-wildcard", "unused", "imported-no-renewal"
ENDPOINT_OLD_VERSION = "endpoint-old-version"
RULES = (EXPIRING, WEAK_RSA, SHA1_SIGNATURE, FORBIDDEN_WILDCARD, UNUSED, IMPORTED_NO_RENEWAL, ENDPOINT_OLD_VERSION)
SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW")
DEFAULT_EXPIRING_DAYS = 30
MAX_EXPIRING_DAYS = 3650
MIN_RSA_BITS = 2048
_WEAK_DIGESTS = {"SHA1": "SHA-1", "MD5": "MD5", "MD2": "MD2", "MD4": "MD4"}
_RSA_NAME = re.compile(r"^RSA_(\d+)$")
_PEM_BLOCK = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)
_LIVE = ("PENDING_VALIDATION", "ISSUED", "INACTIVE")  # statuses a tag policy on names applies to
_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class ReportPolicy:
    """What a report checks: the expiry window, the tags under which wildcards are forbidden, and the rules run."""

    expiring_within_days: int = DEFAULT_EXPIRING_DAYS
    wildcard_forbidden_tags: tuple[tuple[str, str], ...] = ()
    rules: tuple[str, ...] = RULES


@dataclass(frozen=True, slots=True)
class ChainCertificate:
    """What the checks need of one certificate of a stored chain."""

    subject: str
    signature_algorithm: str
    rsa_bits: int | None
    self_signed: bool


@dataclass(frozen=True, slots=True)
class CertificateState:
    """What the checks need of one ACM certificate (its columns; ``chain`` may hold only the chain worth a look)."""

    arn: str
    domain_name: str
    type: str
    status: str
    names: tuple[str, ...] = ()
    key_algorithm: str | None = None
    signature_algorithm: str | None = None
    not_after: datetime | None = None
    in_use_by: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()  # (key, value); a tag without a value has ""
    chain: tuple[ChainCertificate, ...] = ()
    exported: bool = False
    managed_renewal: str | None = None  # ManagedRenewal as the events say it (ON_TRACK …); None: not known
    renews_at: datetime | None = None  # when the managed renewal is (or was) due
    renewal_note: str | None = None  # what holds the renewal, or why certsmith does not renew it
    endpoints: tuple[str, ...] = ()  # the monitored endpoints registered for it (host:port)


@dataclass(frozen=True, slots=True)
class EndpointState:
    """A monitored endpoint's last probe, with the certificate it should serve."""

    host: str
    port: int
    server_name: str
    status: str
    certificate_arn: str | None
    domain_name: str | None = None
    served_serial: str | None = None
    served_not_after: datetime | None = None
    served_version: int | None = None
    current_serial: str | None = None
    current_version: int | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    severity: str
    certificate_arn: str
    domain_name: str
    detail: str
    action: str
    extra: Mapping[str, Any] = field(default_factory=dict)  # e.g. the endpoint of an endpoint finding


# -- the request --------------------------------------------------------------------------------------------------
def check_policy(expiring_within_days: int | None = None, wildcard_forbidden_tags: Iterable[Mapping[str, Any]] = (),
                 rules: Sequence[str] | None = None) -> ReportPolicy:
    """A report's policy from the request's fields, or ValidationError naming the field and the problem."""
    days = DEFAULT_EXPIRING_DAYS if expiring_within_days is None else expiring_within_days
    if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= MAX_EXPIRING_DAYS:
        raise ValidationError(f"ExpiringWithinDays must be a number of days from 0 to {MAX_EXPIRING_DAYS}, not {days!r}",
                              field="ExpiringWithinDays")
    tags: list[tuple[str, str]] = []
    for index, tag in enumerate(wildcard_forbidden_tags):
        key = str(tag.get("Key") or "").strip()
        if not key:
            raise ValidationError(f"WildcardForbiddenTags[{index}].Key is empty: give the tag's key",
                                  field=f"WildcardForbiddenTags[{index}].Key")
        tags.append((key, str(tag.get("Value") or "")))
    chosen = tuple(RULES) if rules is None else tuple(dict.fromkeys(rules))
    for index, rule in enumerate(chosen):
        if rule not in RULES:
            raise ValidationError(f"Rules[{index}] {rule!r} is not a rule; the rules are {', '.join(RULES)}",
                                  field=f"Rules[{index}]")
    if not chosen:
        raise ValidationError("Rules is empty: leave it out to run every rule, or name at least one", field="Rules")
    return ReportPolicy(days, tuple(tags), chosen)


# -- facts of certificates ----------------------------------------------------------------------------------------
def rsa_bits(key_algorithm: str | None) -> int | None:
    """1024 of ``RSA_1024``; None for any other key."""
    match = _RSA_NAME.match(key_algorithm or "")
    return int(match.group(1)) if match else None


def weak_digest(signature_algorithm: str | None) -> str | None:
    """``SHA-1`` of ``SHA1WITHRSA``, ``MD5`` of ``MD5WITHRSA``; None for a digest still fit for signatures."""
    text = (signature_algorithm or "").upper()
    return next((name for prefix, name in _WEAK_DIGESTS.items() if text.startswith(prefix + "WITH")), None)


def split_pem(text: str | None) -> list[str]:
    """The PEM certificate blocks of a chain, in order."""
    return _PEM_BLOCK.findall(text or "")


def chain_certificate(certificate: x509.Certificate) -> ChainCertificate:
    key = certificate.public_key()
    return ChainCertificate(subject=certificate.subject.rfc4514_string() or certificate.issuer.rfc4514_string(),
                            signature_algorithm=_signature_name(certificate),
                            rsa_bits=key.key_size if isinstance(key, rsa.RSAPublicKey) else None,
                            self_signed=certificate.subject == certificate.issuer)


def state_of(certificate: x509.Certificate, *, arn: str, type: str = "IMPORTED", status: str = "ISSUED",
             in_use_by: Sequence[str] = (), tags: Mapping[str, str] | None = None,
             chain: Sequence[x509.Certificate] = ()) -> CertificateState:
    """A certificate's state from the certificate itself (the service reads the same facts from its columns)."""
    facts = certificate_facts(certificate)
    key = certificate.public_key()
    key_algorithm = f"RSA_{key.key_size}" if isinstance(key, rsa.RSAPublicKey) else facts.key_algorithm
    names = tuple(facts.names) or tuple(str(a.value) for a in certificate.subject)
    return CertificateState(arn=arn, domain_name=names[0] if names else "", type=type, status=status, names=names,
                            key_algorithm=str(key_algorithm) if key_algorithm else None,
                            signature_algorithm=_signature_name(certificate), not_after=facts.not_after,
                            in_use_by=tuple(in_use_by), tags=tuple((tags or {}).items()),
                            chain=tuple(chain_certificate(c) for c in chain))


def _signature_name(certificate: x509.Certificate) -> str:
    try:
        return signature_algorithm_name(certificate)
    except Exception:  # noqa: BLE001 - an algorithm cryptography has no hash for (Ed25519 …) is not weak here
        return certificate.signature_algorithm_oid.dotted_string


# -- the rules ----------------------------------------------------------------------------------------------------
def evaluate(state: CertificateState, policy: ReportPolicy, now: datetime) -> list[Finding]:
    """Every finding of the policy's rules about one certificate."""
    found: list[Finding] = []
    rules = policy.rules
    if EXPIRING in rules:
        found += _expiring(state, policy.expiring_within_days, now)
    if WEAK_RSA in rules and state.status == "ISSUED":
        found += _weak_rsa(state)
    if SHA1_SIGNATURE in rules and state.status == "ISSUED":
        found += _weak_signatures(state)
    if FORBIDDEN_WILDCARD in rules and policy.wildcard_forbidden_tags:
        found += _forbidden_wildcards(state, policy.wildcard_forbidden_tags)
    if UNUSED in rules and state.status == "ISSUED" and not state.in_use_by and not state.endpoints:
        exported = "; it was exported, so it may be installed where certsmith cannot see" if state.exported else ""
        found.append(_finding(UNUSED, "LOW", state, f"issued but associated with no service (InUseBy is empty){exported}",
                              "delete it if nothing serves it: an unused certificate is a key that can leak for nothing"))
    if IMPORTED_NO_RENEWAL in rules and state.type == "IMPORTED" and state.status in ("ISSUED", "EXPIRED", "INACTIVE"):
        found.append(_imported(state, now))
    return found


def evaluate_endpoint(endpoint: EndpointState, policy: ReportPolicy) -> list[Finding]:
    """An endpoint that serves an older version of its certificate (probe status DRIFT)."""
    if ENDPOINT_OLD_VERSION not in policy.rules or endpoint.status != "DRIFT" or not endpoint.certificate_arn:
        return []
    where = f"{_host_port(endpoint.host, endpoint.port)} (server name {endpoint.server_name})"
    served = _version_text(endpoint.served_version, endpoint.served_serial)
    current = _version_text(endpoint.current_version, endpoint.current_serial)
    expires = f", which expires on {_date(endpoint.served_not_after)}" if endpoint.served_not_after else ""
    detail = f"{where} serves {served}{expires}; the current one is {current}"
    action = f"deploy the current version to {where} and reload the server there"
    extra = {"Host": endpoint.host, "Port": endpoint.port, "ServerName": endpoint.server_name}
    return [Finding(ENDPOINT_OLD_VERSION, "HIGH", endpoint.certificate_arn, endpoint.domain_name or endpoint.server_name,
                    detail, action, extra)]


def findings_in_order(findings: Iterable[Finding]) -> list[Finding]:
    """Most severe first, then by rule, domain and ARN."""
    return sorted(findings, key=lambda f: (SEVERITIES.index(f.severity), RULES.index(f.rule), f.domain_name,
                                           f.certificate_arn, f.detail))


def summary(findings: Iterable[Finding], policy: ReportPolicy) -> list[tuple[str, int]]:
    """(rule, number of findings) for every rule the policy ran, in the rules' order."""
    counts = dict.fromkeys(policy.rules, 0)
    for finding in findings:
        counts[finding.rule] = counts.get(finding.rule, 0) + 1
    return [(rule, counts[rule]) for rule in RULES if rule in counts]


def _expiring(state: CertificateState, days: int, now: datetime) -> list[Finding]:
    if state.status not in ("ISSUED", "EXPIRED") or state.not_after is None:
        return []
    left = state.not_after - now
    if left > days * _DAY:
        return []
    if left <= timedelta(0):
        renew = ("import its renewed certificate under the same ARN (ImportCertificate with CertificateArn)"
                 if state.type == "IMPORTED" else "request or import a new certificate and replace this one wherever it "
                                                    "is installed; `certsmith renewal status` says why it was not renewed")
        return [_finding(EXPIRING, "CRITICAL", state, f"expired on {_date(state.not_after)}", renew)]
    if state.type != "IMPORTED" and _renewed_in_time(state):
        return []
    whole = left // _DAY
    when = "in less than a day" if whole == 0 else f"in {whole} day{'s' if whole != 1 else ''}"
    severity = "HIGH" if left <= 7 * _DAY else "MEDIUM"
    why, renew = _renewal_words(state)
    return [_finding(EXPIRING, severity, state, f"expires on {_date(state.not_after)} ({when}){why}", renew)]


def _renewed_in_time(state: CertificateState) -> bool:
    """certsmith's managed renewal replaces the certificate before it expires: planned in time, or under way."""
    if state.managed_renewal == IN_PROGRESS:
        return True
    return (state.managed_renewal == ON_TRACK and state.not_after is not None
            and (state.renews_at is None or state.renews_at < state.not_after))


def _renewal_words(state: CertificateState) -> tuple[str, str]:
    """What the finding says of the renewal (after the expiry date) and what to do."""
    note = f" ({state.renewal_note})" if state.renewal_note else ""
    if state.type == "IMPORTED":
        return "", "import its renewed certificate under the same ARN (ImportCertificate with CertificateArn)"
    if state.managed_renewal == NEEDS_ACTION:
        return (f"; its managed renewal waits for action{note}",
                "clear what the renewal waits for: `certsmith renewal status` and its Renewal Action Required events say "
                "what to do; certsmith renews it once that is done")
    if state.managed_renewal == OVERDUE:
        due = f" on {_date(state.renews_at)}" if state.renews_at else ""
        return (f"; its managed renewal was due{due} and has not happened{note}",
                "check that a certsmith worker runs and what `certsmith renewal status` says, then renew it now "
                "(`certsmith renewal run`, or RenewCertificate)")
    if state.managed_renewal == NOT_RENEWED:
        return (f"; certsmith does not renew it{note}",
                "request its successor and move its users to it before it expires, or make it eligible for managed "
                "renewal")
    return "", ("renew it now (`certsmith renewal run`, or RenewCertificate) and check `certsmith renewal status` for why "
                "it was not renewed")


def _weak_rsa(state: CertificateState) -> list[Finding]:
    found = []
    bits = rsa_bits(state.key_algorithm)
    replace = ("request a new certificate with an RSA 2048 (or EC P-256) key and move its users to it"
               if state.type != "IMPORTED" else "import a certificate with an RSA 2048 (or EC P-256) key in its place")
    if bits is not None and bits < MIN_RSA_BITS:
        found.append(_finding(WEAK_RSA, "HIGH", state, f"its key is {bits}-bit RSA; at least {MIN_RSA_BITS} bits are "
                                                       "needed", replace))
    for link in state.chain:
        if link.rsa_bits is not None and link.rsa_bits < MIN_RSA_BITS:
            found.append(_finding(WEAK_RSA, "HIGH", state, f"its chain's certificate {link.subject} has a "
                                                           f"{link.rsa_bits}-bit RSA key",
                                  "have it issued under a CA whose key is RSA 2048 or stronger (or EC)"))
    return found


def _weak_signatures(state: CertificateState) -> list[Finding]:
    found = []
    digest = weak_digest(state.signature_algorithm)
    if digest is not None:
        severity = "HIGH" if digest == "SHA-1" else "CRITICAL"
        found.append(_finding(SHA1_SIGNATURE, severity, state, f"it is signed with {digest} ({state.signature_algorithm}), "
                                                              "which clients no longer trust",
                              "replace it by a certificate signed with SHA-256 or stronger"))
    for link in state.chain:
        digest = weak_digest(link.signature_algorithm)
        if digest is not None and not link.self_signed:
            found.append(_finding(SHA1_SIGNATURE, "HIGH" if digest == "SHA-1" else "CRITICAL", state,
                                  f"its chain's certificate {link.subject} is signed with {digest} "
                                  f"({link.signature_algorithm})",
                                  "use a chain whose intermediate certificates are signed with SHA-256 or stronger"))
    return found


def _forbidden_wildcards(state: CertificateState, forbidden: tuple[tuple[str, str], ...]) -> list[Finding]:
    if state.status not in _LIVE:
        return []
    wildcards = [n for n in dict.fromkeys((state.domain_name, *state.names)) if n.startswith("*.")]
    carried = [f"{k}={v}" for k, v in forbidden if (k, v) in state.tags]
    if not wildcards or not carried:
        return []
    return [_finding(FORBIDDEN_WILDCARD, "MEDIUM", state,
                     f"it names {', '.join(wildcards)} but carries the tag {carried[0]}, under which wildcard names "
                     "are not allowed",
                     "request a certificate naming each host instead of the wildcard, move the users to it and delete "
                     "this one (or remove the tag if the certificate is not under that policy)")]


def _imported(state: CertificateState, now: datetime) -> Finding:
    if state.not_after is None:
        detail = "imported: certsmith cannot renew it"
    elif state.not_after <= now:
        detail = f"imported: certsmith cannot renew it; it expired on {_date(state.not_after)}"
    else:
        days = (state.not_after - now) // _DAY
        detail = f"imported: certsmith cannot renew it; it expires on {_date(state.not_after)} (in {days} days)"
    return _finding(IMPORTED_NO_RENEWAL, "LOW", state, detail,
                    "plan who imports its successor before it expires (ImportCertificate with its CertificateArn), or "
                    "replace it by a certificate certsmith requests and renews itself")


def _finding(rule: str, severity: str, state: CertificateState, detail: str, action: str) -> Finding:
    return Finding(rule, severity, state.arn, state.domain_name, detail, action)


def _date(value: datetime) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC"


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _version_text(version: int | None, serial: str | None) -> str:
    if version is not None:
        return f"version {version}" + (f" (serial {serial})" if serial else "")
    return f"serial {serial}" if serial else "an unknown certificate"
