"""GetComplianceReport and `certsmith report`: findings about every certificate of the caller's account.

The certificates are read as columns (no ORM objects), the key and signature facts stored at issuance or import are
used as they are, and only stored chains are parsed: each distinct chain once (the database answers the distinct
texts), each certificate of a chain once per process. How a certificate's managed renewal stands comes from its
``renewal_plan`` column, read as the events read it (ManagedRenewal), and its renewal summary (``renewal``): a
summary that waits for the user (PENDING_VALIDATION) or tells a failed attempt (PENDING_AUTO_RENEWAL with a reason)
overrides a plan that looks on track. ``next_renewal_at`` is not used: it is when the scheduler looks next (an ACME
CA's window is asked earlier; NULL while a check is queued), not when the renewal is due.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from sqlalchemy import select
from sqlalchemy.orm import Session

from ...domain.clock import Clock
from ...domain.compliance import (
    ENDPOINT_OLD_VERSION,
    MIN_RSA_BITS,
    SHA1_SIGNATURE,
    WEAK_RSA,
    CertificateState,
    ChainCertificate,
    EndpointState,
    Finding,
    ReportPolicy,
    chain_certificate,
    evaluate,
    evaluate_endpoint,
    findings_in_order,
    split_pem,
    summary,
    weak_digest,
)
from ...domain.events import IN_PROGRESS, NEEDS_ACTION, NOT_RENEWED, ON_TRACK, OVERDUE
from ...store.database import Database
from ...store.tables import CertificateRow, CertificateVersionRow, EndpointRow  # store.tables first: it defines Base
from ..context import Caller
from ..renewal.recorder import managed_renewal_of, planned_at

__all__ = ["ComplianceReport", "ComplianceReports", "renewal_columns"]

_STATUSES = ("PENDING_VALIDATION", "ISSUED", "INACTIVE", "EXPIRED")  # what any rule looks at
_CACHE_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class ComplianceReport:
    generated_at: datetime
    policy: ReportPolicy
    summary: list[tuple[str, int]]
    findings: list[Finding]


class ComplianceReports:
    def __init__(self, database: Database, clock: Clock) -> None:
        self._db, self._clock = database, clock
        self._links: dict[str, ChainCertificate | None] = {}  # a chain's PEM block -> its facts (None: unreadable)

    def report(self, caller: Caller, policy: ReportPolicy) -> ComplianceReport:
        """Every finding of the policy's rules about the caller's certificates and monitored endpoints."""
        now = self._clock.now()
        scope = (CertificateRow.account_id == caller.account_id, CertificateRow.region == caller.region)
        findings: list[Finding] = []
        with self._db.read() as session:
            chains = self._weak_chains(session, scope) if {WEAK_RSA, SHA1_SIGNATURE} & set(policy.rules) else {}
            rows = session.execute(select(
                CertificateRow.id, CertificateRow.arn, CertificateRow.domain_name, CertificateRow.type,
                CertificateRow.status, CertificateRow.names, CertificateRow.key_algorithm,
                CertificateRow.signature_algorithm, CertificateRow.not_after, CertificateRow.in_use_by,
                CertificateRow.tags, CertificateRow.serial, CertificateRow.version,
                CertificateRow.exported, CertificateRow.renewal_plan, CertificateRow.renewal)
                .where(*scope, CertificateRow.status.in_(_STATUSES))).all()
            monitored = self._monitored(session, caller)
            known: dict[str, Any] = {}
            for row in rows:
                known[row.arn] = row
                managed, renews_at, note = renewal_columns(row.type, row.renewal_plan, row.renewal, now)
                state = CertificateState(
                    arn=row.arn, domain_name=row.domain_name, type=row.type, status=row.status,
                    names=tuple(str(n) for n in row.names or ()), key_algorithm=row.key_algorithm,
                    signature_algorithm=row.signature_algorithm, not_after=row.not_after,
                    in_use_by=tuple(str(u) for u in row.in_use_by or ()),
                    tags=tuple((str(t.get("Key")), str(t.get("Value") or "")) for t in row.tags or ()),
                    chain=chains.get(row.arn, ()), exported=bool(row.exported), managed_renewal=managed,
                    renews_at=renews_at, renewal_note=note, endpoints=tuple(monitored.get(row.arn, ())))
                findings += evaluate(state, policy, now)
            if ENDPOINT_OLD_VERSION in policy.rules:
                for endpoint in self._drifted(session, caller, known):
                    findings += evaluate_endpoint(endpoint, policy)
        ordered = findings_in_order(findings)
        return ComplianceReport(now, policy, summary(ordered, policy), ordered)

    def _weak_chains(self, session: Session, scope: tuple[Any, ...]) -> dict[str, tuple[ChainCertificate, ...]]:
        """ARN -> its stored chain, for the certificates whose chain has a weak key or signature (rare)."""
        texts = session.scalars(select(CertificateRow.chain_pem).where(
            *scope, CertificateRow.status == "ISSUED", CertificateRow.chain_pem.is_not(None)).distinct()).all()
        weak: dict[str, tuple[ChainCertificate, ...]] = {}
        for text in filter(None, texts):
            links = tuple(link for link in map(self._link, split_pem(text)) if link is not None)
            if any(_weak(link) for link in links):
                weak[text] = links
        by_arn: dict[str, tuple[ChainCertificate, ...]] = {}
        for text, links in weak.items():
            for arn in session.scalars(select(CertificateRow.arn).where(
                    *scope, CertificateRow.status == "ISSUED", CertificateRow.chain_pem == text)):
                by_arn[arn] = links
        return by_arn

    def _link(self, block: str) -> ChainCertificate | None:
        if block in self._links:
            return self._links[block]
        try:
            link: ChainCertificate | None = chain_certificate(x509.load_pem_x509_certificate(block.encode()))
        except ValueError:
            link = None
        if len(self._links) >= _CACHE_LIMIT:
            self._links.clear()
        self._links[block] = link
        return link

    @staticmethod
    def _monitored(session: Session, caller: Caller) -> dict[str, list[str]]:
        """ARN -> the monitored endpoints registered for it (host:port)."""
        found: dict[str, list[str]] = {}
        for arn, host, port in session.execute(select(EndpointRow.certificate_arn, EndpointRow.host, EndpointRow.port).where(
                EndpointRow.account_id == caller.account_id, EndpointRow.region == caller.region,
                EndpointRow.certificate_arn.is_not(None))):
            if arn:
                found.setdefault(arn, []).append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
        return found

    def _drifted(self, session: Session, caller: Caller, known: dict[str, Any]) -> Iterable[EndpointState]:
        """The caller's endpoints whose last probe found an older version of their certificate."""
        rows = session.execute(select(
            EndpointRow.host, EndpointRow.port, EndpointRow.server_name, EndpointRow.status,
            EndpointRow.certificate_arn, EndpointRow.served_serial, EndpointRow.served_not_after).where(
            EndpointRow.account_id == caller.account_id, EndpointRow.region == caller.region,
            EndpointRow.status == "DRIFT")).all()
        ids = {known[r.certificate_arn].id: r.certificate_arn for r in rows if r.certificate_arn in known}
        versions: dict[str, dict[str, int]] = {}  # ARN -> serial -> version
        if ids:
            for certificate_id, serial, version in session.execute(select(
                    CertificateVersionRow.certificate_id, CertificateVersionRow.serial, CertificateVersionRow.version)
                    .where(CertificateVersionRow.certificate_id.in_(ids))):
                versions.setdefault(ids[certificate_id], {})[serial] = version
        for row in rows:
            certificate = known.get(row.certificate_arn) if row.certificate_arn else None
            served = versions.get(row.certificate_arn or "", {}).get(row.served_serial or "")
            yield EndpointState(host=row.host, port=row.port, server_name=row.server_name, status=row.status,
                                certificate_arn=row.certificate_arn,
                                domain_name=certificate.domain_name if certificate else None,
                                served_serial=row.served_serial, served_not_after=row.served_not_after,
                                served_version=served, current_serial=certificate.serial if certificate else None,
                                current_version=certificate.version if certificate else None)


def renewal_columns(certificate_type: str, plan: dict[str, Any] | None, summary: dict[str, Any] | None,
             now: datetime) -> tuple[str, datetime | None, str | None]:
    """(ManagedRenewal, when the renewal is or was due, what holds it or why there is none) from the ``renewal_plan``
    and ``renewal`` columns."""
    plan, summary = plan or {}, summary or {}
    state = managed_renewal_of(certificate_type, plan, now)
    status, reason = summary.get("RenewalStatus"), summary.get("RenewalStatusReason")
    if state in (ON_TRACK, IN_PROGRESS) and plan.get("last_error"):  # an attempt on this certificate went wrong
        if status == "PENDING_VALIDATION":
            state = NEEDS_ACTION
        elif status == "PENDING_AUTO_RENEWAL" and reason and not plan.get("renewing"):
            state = OVERDUE  # it failed; certsmith tries again later
    note: str | None = None
    if state == NOT_RENEWED:
        note = plan.get("reason") if plan.get("eligibility") == "INELIGIBLE" else None
        note = note or ("imported" if certificate_type == "IMPORTED" else "no renewal is planned")
    elif state in (NEEDS_ACTION, OVERDUE):
        said = " ".join(str(plan.get("last_error") or "").split())[:200]
        note = ": ".join(str(part) for part in (plan.get("needs_action") or reason, said) if part)
    return state, planned_at(plan), note or None


def _weak(link: ChainCertificate) -> bool:
    weak_key = link.rsa_bits is not None and link.rsa_bits < MIN_RSA_BITS
    return weak_key or (weak_digest(link.signature_algorithm) is not None and not link.self_signed)
