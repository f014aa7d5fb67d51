"""``certsmith doctor validation``: what the resolvers and the web servers show for each name, and what the issuer
last said."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ...dns.resolve import Lookup, Resolvers
from ...domain.public_names import challenge_owner, validation_base
from ..acm.certificates import CertificateService
from ..context import Caller
from .challenges import ValidationRecords
from .http_validation import HttpRedirectCheck, RedirectFinding
from .validation import record_matches

__all__ = ["PROBE_LABEL", "PROBE_TEXT", "NameReport", "ValidationDiagnosis", "ValidationReport"]

PROBE_LABEL = "_certsmith-probe"  # a TXT record certsmith's DNS server always serves, to test the delegation
PROBE_TEXT = "certsmith validation zone"


@dataclass(frozen=True, slots=True)
class NameReport:
    domain_name: str
    status: str
    record_name: str
    expected: str
    answers: list[Lookup]
    verdict: str
    kind: str = "CNAME"  # CNAME, HTTP_REDIRECT, TXT (answered directly through a DNS provider) or EMAIL


@dataclass(frozen=True, slots=True)
class ValidationReport:
    arn: str
    status: str
    issuer: str | None
    zone: str | None
    names: list[NameReport]
    delegation: list[Lookup] = field(default_factory=list)
    reachable: bool = False
    delegation_verdict: str = ""
    problem: dict[str, Any] | None = None
    message: str | None = None
    checked_at: datetime | None = None


def _verdict(record_name: str, expected: str, answers: list[Lookup]) -> str:
    if answers and all(record_matches(a.values, expected) for a in answers):
        return "in place"
    wrong = [a for a in answers if a.values and not record_matches(a.values, expected)]
    if wrong:
        return (f"{record_name} points to {wrong[0].values[0]} (at {wrong[0].server}), not to {expected}: change the "
                f"record to `{record_name}. CNAME {expected}.`")
    errors = sorted({a.error for a in answers if a.error})
    return (f"missing ({', '.join(errors) or 'no answer'}): add `{record_name}. CNAME {expected}.` at the DNS host "
            f"of {record_name.split('.', 1)[1]}")


def _http_verdict(redirect: dict[str, str], finding: RedirectFinding) -> str:
    if finding.ok:
        return "in place"
    return (f"{finding.detail}: the web server of the name must redirect every path under {redirect['RedirectFrom']} "
            f"to the same path under {redirect['RedirectTo']} (one rule, e.g. nginx `location ~ "
            f"^/\\.well-known/acme-challenge/(.*)$ {{ return 302 {redirect['RedirectTo']}$1; }}`)")


class ValidationDiagnosis:
    def __init__(self, certificates: CertificateService, resolvers: Resolvers, records: ValidationRecords,
                 http: HttpRedirectCheck) -> None:
        self._certificates, self._resolvers, self._records, self._http = certificates, resolvers, records, http

    def _name(self, validation: dict[str, Any], direct: str | None, looked: dict[str, list[Lookup]]) -> NameReport:
        name, status = validation["DomainName"], validation["ValidationStatus"]
        if validation.get("ValidationMethod") == "EMAIL":
            emails = list(validation.get("ValidationEmails") or [])
            verdict = ("approved" if status == "SUCCESS" else f"waiting for one of the mails to {', '.join(emails)} to be "
                       "approved (ResendValidationEmail sends them again)")
            return NameReport(name, status, str(validation.get("ValidationDomain", name)), ", ".join(emails), [],
                              verdict, "EMAIL")
        redirect = validation.get("HttpRedirect")
        if redirect is not None:
            verdict = "in place" if status == "SUCCESS" else _http_verdict(redirect, self._http.check(name, redirect))
            return NameReport(name, status, redirect["RedirectFrom"], redirect["RedirectTo"], [], verdict,
                              "HTTP_REDIRECT")
        if direct is not None:
            owner = challenge_owner(name)
            return NameReport(name, status, owner, "(the ACME CA's value, while an order is open)", [],
                              f"answered directly: DNS provider {direct!r} writes the TXT record at {owner} for each "
                              "order and removes it afterwards", "TXT")
        record = validation.get("ResourceRecord") or {}
        record_name, expected = str(record.get("Name", "")).rstrip("."), str(record.get("Value", "")).rstrip(".")
        if record_name not in looked:
            looked[record_name] = self._resolvers.cname(record_name, until=expected)
        return NameReport(name, status, record_name, expected, looked[record_name],
                          _verdict(record_name, expected, looked[record_name]))

    def diagnose(self, caller: Caller, arn: str) -> ValidationReport:
        row = self._certificates.load(caller, arn)
        acme = dict(row.acme or {})
        checked = acme.get("checked_at")
        direct = acme.get("direct")
        looked: dict[str, list[Lookup]] = {}
        names = [self._name(v, direct, looked) for v in row.validations or []]
        report = ValidationReport(row.arn, row.status, row.issuer_name, self._records.zone, names,
                                  problem=acme.get("problem"), message=acme.get("message"),
                                  checked_at=datetime.fromisoformat(checked) if checked else None)
        if self._records.zone is None or not looked:
            return report
        probe = f"{PROBE_LABEL}.{self._records.zone}"
        answers = self._resolvers.txt(probe)
        reachable = bool(answers) and all(PROBE_TEXT in a.values for a in answers)
        verdict = (f"the resolvers reach certsmith's DNS server for {self._records.zone}" if reachable else
                   f"the resolvers do not reach certsmith's DNS server for {self._records.zone}: delegate the zone to it "
                   f"with NS records at the DNS host of {validation_base(self._records.zone.split('.', 1)[1])}")
        return ValidationReport(report.arn, report.status, report.issuer, report.zone, names, answers, reachable,
                                verdict, report.problem, report.message, report.checked_at)
