"""Rules for publicly trusted certificates: the names a request may carry, DNS-01 validation names, CAA.

The Public Suffix List is the copy shipped inside the ``publicsuffixlist`` package; it is read from disk once
and never fetched over the network.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from publicsuffixlist import PublicSuffixList

from .acm import CN_MAX, check_domain_name, request_names
from .errors import ValidationError

__all__ = [
    "AMAZON_DOMAINS",
    "APPROVAL_MAILBOXES",
    "CaaDecision",
    "CaaRecord",
    "PublicNameProblem",
    "approval_addresses",
    "caa_decision",
    "challenge_owner",
    "check_public_names",
    "check_zone_name",
    "email_validation_domain",
    "public_name_problem",
    "validation_base",
    "validation_label",
    "validation_target",
]

AMAZON_DOMAINS = ("amazonaws.com", "cloudfront.net", "elasticbeanstalk.com")
ZONE_MAX = 200  # "<32 hex>.<zone>" must fit in 253
LABEL_HEX = 32
_IPV4_LIKE = re.compile(r"^[0-9]+(\.[0-9]+){3}$")


class PublicNameProblem(StrEnum):
    """Why a syntactically valid name cannot be in a public certificate (ACM FailureReason names)."""

    INVALID_PUBLIC_DOMAIN = "INVALID_PUBLIC_DOMAIN"
    DOMAIN_NOT_ALLOWED = "DOMAIN_NOT_ALLOWED"


@cache
def _psl() -> PublicSuffixList:
    # source=None reads the list bundled with the package; unknown TLDs follow the default "*" rule.
    return PublicSuffixList(accept_unknown=True, only_icann=False)


# -- request names ---------------------------------------------------------------------------------------------------

def check_public_names(domain_name: str, sans: Sequence[str]) -> list[str]:
    """DomainName first, then the SANs in request order, each once, lower-cased; ValidationError naming the field."""
    names = request_names(domain_name, list(sans), _check_public_name)
    if len(names[0]) > CN_MAX:
        raise ValidationError(f"DomainName {domain_name!r} is {len(names[0])} characters long; the first name becomes "
                              f"the certificate's common name, which is limited to {CN_MAX}", field="DomainName")
    return names


def _check_public_name(name: object, field: str) -> str:
    if not isinstance(name, str):
        raise ValidationError(f"{field} must be a string", field=field)
    checked = check_domain_name(name, field)
    if _IPV4_LIKE.match(checked.removeprefix("*.")):
        raise ValidationError(f"{field} {name!r} looks like an IPv4 address; public certificates cannot name IP addresses",
                              field=field)
    return checked


def public_name_problem(name: str) -> PublicNameProblem | None:
    """Why ACM would fail a public request for this (syntactically valid) name, or None when it may be issued."""
    base = validation_base(name)
    if any(base == amazon or base.endswith("." + amazon) for amazon in AMAZON_DOMAINS):
        return PublicNameProblem.DOMAIN_NOT_ALLOWED
    # A "*.<suffix>" rule makes <suffix> itself public too, so "*.ck" (whose "*" would cover public suffixes)
    # is refused by the same test as "co.uk" and "*.co.uk".
    if not base or _psl().is_public(base):
        return PublicNameProblem.INVALID_PUBLIC_DOMAIN
    return None


# -- DNS-01 validation -----------------------------------------------------------------------------------------------

def validation_base(name: str) -> str:
    """The name a validation record is attached to: lower-case, no leading ``*.``, no trailing dot."""
    return name.lower().removesuffix(".").removeprefix("*.")


def challenge_owner(name: str) -> str:
    """The DNS-01 record name for a certificate name (no trailing dot)."""
    return f"_acme-challenge.{validation_base(name)}"


def validation_label(secret: bytes, account_id: str, name: str) -> str:
    """32 lowercase hex: stable per account and base name, the same for ``d`` and ``*.d``."""
    message = f"{account_id}\n{validation_base(name)}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:LABEL_HEX]


def validation_target(label: str, zone: str) -> str:
    """Where the ``_acme-challenge`` CNAME of a name points: ``<label>.<zone>``, lower-case, no trailing dot."""
    return f"{label}.{zone.removesuffix('.')}".lower()


# -- email validation ------------------------------------------------------------------------------------------------

APPROVAL_MAILBOXES = ("admin", "administrator", "hostmaster", "postmaster", "webmaster")


def email_validation_domain(name: str) -> str:
    """ACM's default validation domain for email: the name without a leading ``*.`` or ``www.``."""
    return validation_base(name).removeprefix("www.")


def approval_addresses(validation_domain: str) -> list[str]:
    """The addresses approval mails go to: the five administrative mailboxes of the validation domain."""
    return [f"{box}@{validation_domain.lower()}" for box in APPROVAL_MAILBOXES]


def check_zone_name(zone: str, field: str = "validation_zone") -> str:
    """A validation zone: a DNS name of two or more labels, no wildcard, at most 200 characters; ValueError if not."""
    if not isinstance(zone, str) or not zone:
        raise ValueError(f"{field} must be a DNS name such as validation.example.com")
    name = zone.removesuffix(".")
    if "*" in name:
        raise ValueError(f"{field} {zone!r} cannot contain a wildcard")
    if len(name) > ZONE_MAX:
        raise ValueError(f"{field} {zone!r} is {len(name)} characters long; the limit is {ZONE_MAX}, so that "
                         f"a {LABEL_HEX}-character validation label under it still fits in a 253-character DNS name")
    try:
        return check_domain_name(name, field)
    except ValidationError as error:
        raise ValueError(error.message) from None


# -- CAA (RFC 8659) --------------------------------------------------------------------------------------------------

CAA_CRITICAL = 128
_KNOWN_TAGS = frozenset({"issue", "issuewild", "iodef", "contactemail", "contactphone", "issuemail", "issuevmc"})


@dataclass(frozen=True, slots=True)
class CaaRecord:
    flags: int
    tag: str
    value: str


@dataclass(frozen=True, slots=True)
class CaaDecision:
    allowed: bool
    reason: str


def caa_decision(node: str | None, records: Sequence[CaaRecord], identities: Sequence[str],
                 wildcard: bool) -> CaaDecision:
    """Whether an issuer with these CAA identities may issue, given the relevant CAA RRset found at ``node``."""
    if not records:
        return CaaDecision(True, "no CAA records apply; any issuer may issue")
    where = f"CAA at {node.removesuffix('.')}" if node else "CAA"
    for record in records:
        tag = record.tag.lower()
        if record.flags & CAA_CRITICAL and tag not in _KNOWN_TAGS:
            return CaaDecision(False, f"{where} has a critical property {record.tag!r} that is not understood, "
                                      "which forbids issuance")
    issue = [r for r in records if r.tag.lower() == "issue"]
    issuewild = [r for r in records if r.tag.lower() == "issuewild"]
    relevant, kind = (issuewild, "issuewild") if wildcard and issuewild else (issue, "issue")
    what = "wildcard certificates" if wildcard else "certificates"
    if not relevant:
        return CaaDecision(True, f"{where} has no {kind!r} property; any issuer may issue {what}")
    wanted = {identity.strip().lower() for identity in identities} - {""}
    if not wanted:
        return CaaDecision(False, f"{where} restricts who may issue {what}, and the issuer has no CAA identity "
                                  "configured")
    allowed = [_issuer_domain(record.value) for record in relevant]
    named = [domain for domain in dict.fromkeys(allowed) if domain]
    issuer = _quoted(sorted(wanted), "or")
    if not named:
        return CaaDecision(False, f"{where} forbids all issuance of {what}")
    if wanted.intersection(named):
        return CaaDecision(True, f"{where} allows {issuer} to issue {what}")
    return CaaDecision(False, f"{where} allows only {_quoted(named, 'and')} to issue {what}; the issuer is {issuer}")


def _issuer_domain(value: str) -> str:
    """The issuer domain of an issue/issuewild value (the part before any ';' parameters); '' forbids all."""
    return value.split(";", 1)[0].strip().lower()


def _quoted(items: Sequence[str], joiner: str) -> str:
    quoted = [f'"{item}"' for item in items]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + f" {joiner} " + quoted[-1]
