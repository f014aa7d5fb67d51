"""What happens in the transaction that gives a certificate a new body: its version, its plan, its notices, its event.

Every path that stores a certificate under an ARN (a private request, a public order, an import, a renewal, a
re-issue from a rotated CA) calls :meth:`RenewalRecorder.record` in the same transaction.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from sqlalchemy.orm import Session

from ...domain.events import CertificateFacts, available, renewal_state
from ...domain.notices import DEFAULT_DAYS_BEFORE_EXPIRY, NoticeFacts, NoticeState, first_notice_at
from ...domain.renewal import AriWindow, RenewalPlan, plan_renewal, renewal_eligibility
from ...store.tables import AccountConfigurationRow, CertificateRow, CertificateVersionRow, IssuerRow
from ..events.outbox import EventOutbox
from .policies import RenewalPolicies

__all__ = ["ARI_RECHECK", "NewVersionHook", "RenewalRecorder", "certificate_facts", "days_before_expiry", "is_acme",
           "issuer_of", "key_id", "managed_renewal_of", "planned_at"]

ARI_RECHECK = timedelta(hours=12)  # how often an ACME CA's renewal window is asked again when it names no time
_EVENT_ACTIONS = {"ISSUANCE": "ISSUANCE", "RENEWAL": "RENEWAL", "IMPORT": "IMPORT", "REIMPORT": "REIMPORT",
                  "REISSUE": "RENEWAL"}


def key_id(certificate: x509.Certificate) -> str:
    """SHA-256 of the certificate's SubjectPublicKeyInfo, hex: which key a version carries."""
    spki = certificate.public_key().public_bytes(serialization.Encoding.DER,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


def is_acme(row: CertificateRow) -> bool:
    """Whether the certificate came from an ACME CA (whose renewal window, ARI, is asked)."""
    return row.type == "AMAZON_ISSUED" and bool((row.acme or {}).get("order_url"))


def certificate_facts(row: CertificateRow, *, issuer: str | None = None,
                      authority_status: str | None = None) -> CertificateFacts:
    """What the events say of ``row`` (``issuer`` from :func:`issuer_of`; ``authority_status``: its CA's, if known).

    Reads only columns the notice sweep loads (no lazy load, no query).
    """
    method = next((v.get("ValidationMethod") for v in row.validations or [] if v.get("ValidationMethod")), None)
    plan = row.renewal_plan or {}
    renewal = row.renewal or {}
    missing = tuple(v["DomainName"] for v in renewal.get("DomainValidationOptions") or []
                    if v.get("DomainName") and v.get("ValidationStatus") != "SUCCESS")
    error = plan.get("last_error")
    return CertificateFacts(
        arn=row.arn, certificate_type=row.type, common_name=row.domain_name, names=tuple(row.names),
        not_before=row.not_before, not_after=row.not_after, created_at=row.created_at,
        key_pair_origin=row.key_pair_origin, validation_method=method, in_use=bool(row.in_use_by),
        exported=row.exported, exportable=(row.options or {}).get("Export") == "ENABLED" or row.type == "PRIVATE",
        issuer=issuer if issuer is not None else issuer_of(row), in_use_by=tuple(str(u) for u in row.in_use_by or ()),
        renews_at=planned_at(plan), renewing=bool(plan.get("renewing")), needs_action=plan.get("needs_action") or None,
        not_renewed_because=plan.get("reason") if plan.get("eligibility") == "INELIGIBLE" else None,
        last_error=" ".join(str(error).split())[:300] if error else None, missing_names=missing,
        authority_status=authority_status, revocation_reason=row.revocation_reason)


def managed_renewal_of(certificate_type: str, plan: dict[str, Any] | None, now: datetime) -> str:
    """ManagedRenewal (ON_TRACK, IN_PROGRESS, NEEDS_ACTION, OVERDUE, NOT_RENEWED) from a ``renewal_plan`` column, as the
    events say it."""
    plan = plan or {}
    return renewal_state(certificate_type, now, renews_at=planned_at(plan), renewing=bool(plan.get("renewing")),
                         needs_action=plan.get("needs_action") or None, last_error=plan.get("last_error") or None)


def issuer_of(row: CertificateRow, *, directory: str | None = None, issuer_dn: str | None = None) -> str | None:
    """Who issued the certificate: its CA's ARN (private, or a public one from a private-CA issuer), an ACME issuer's
    name with its directory URL, an imported certificate's issuer DN (``issuer_dn``, else the issuer's name)."""
    if row.type == "IMPORTED":
        return issuer_dn or row.issuer
    if row.authority_arn:
        return row.authority_arn
    if row.issuer_name:
        return f"{row.issuer_name} ({directory})" if directory else row.issuer_name
    return row.issuer


def planned_at(plan: dict[str, Any]) -> datetime | None:
    """When the plan (a ``renewal_plan`` column) renews the certificate, or did start a renewal under way; None when
    it is not renewed."""
    at = plan.get("at")
    if plan.get("eligibility") != "ELIGIBLE" or not isinstance(at, str):
        return None
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def days_before_expiry(session: Session, account_id: str, region: str) -> int:
    config = session.get(AccountConfigurationRow, (account_id, region))
    return DEFAULT_DAYS_BEFORE_EXPIRY if config is None else config.days_before_expiry


class NewVersionHook(Protocol):
    """What else happens in the transaction of a new version (deployment to the certificate's bindings)."""

    def on_new_version(self, session: Session, row: CertificateRow, action: str, now: datetime) -> None: ...


class RenewalRecorder:
    def __init__(self, outbox: EventOutbox, deployments: NewVersionHook | None = None) -> None:
        self._outbox = outbox
        self._deployments = deployments

    def record(self, session: Session, row: CertificateRow, action: str, now: datetime, *, event: bool = True) -> None:
        """``row`` holds a new certificate (stored by the caller): keep it as a version, plan, reset notices, tell."""
        assert row.certificate_pem is not None and row.not_before is not None and row.not_after is not None
        certificate = x509.load_pem_x509_certificate(row.certificate_pem.encode())
        row.version = (row.version or 0) + 1
        session.add(CertificateVersionRow(
            certificate_id=row.id, version=row.version, action=action, serial=row.serial or "",
            not_before=row.not_before, not_after=row.not_after, issued_at=now, key_id=key_id(certificate),
            issuer=row.issuer, certificate_pem=row.certificate_pem, chain_pem=row.chain_pem, sealed_key=row.sealed_key))
        kept = {k: v for k, v in (row.renewal_plan or {}).items() if k in ("last_result", "last_attempt_at")}
        row.renewal_plan = kept
        self.plan(session, row, now)
        self.reset_notices(session, row, now)
        if self._deployments is not None:
            self._deployments.on_new_version(session, row, action, now)
        if event:
            directory = None
            if row.type == "AMAZON_ISSUED" and not row.authority_arn and row.issuer_name:
                directory = session.scalar(select(IssuerRow.directory_url).where(
                    IssuerRow.account_id == row.account_id, IssuerRow.region == row.region,
                    IssuerRow.name == row.issuer_name))
            issuer_dn = certificate.issuer.rfc4514_string() if row.type == "IMPORTED" else None
            issuer = issuer_of(row, directory=directory, issuer_dn=issuer_dn)
            self._outbox.add(session, row.account_id, row.region,
                             available(certificate_facts(row, issuer=issuer), _EVENT_ACTIONS[action], now), now)

    @staticmethod
    def plan(session: Session, row: CertificateRow, now: datetime, ari: AriWindow | None = None,
             asked: bool = False) -> RenewalPlan | None:
        """Store when the certificate's next renewal starts and why (None, and no time, when it is not renewed).

        For a certificate of an ACME CA the row is looked at again when the CA's window should be asked anew:
        at once when it was not asked yet (``asked``), else at its Retry-After or in twelve hours, whichever
        comes first, but never after the plan.
        """
        policy, strict = RenewalPolicies.for_row(session, row)
        eligibility = renewal_eligibility(
            certificate_type=row.type, status=row.status, names=list(row.names), exported=row.exported,
            in_use=bool(row.in_use_by), strict=strict)
        state: dict[str, Any] = {k: v for k, v in (row.renewal_plan or {}).items()
                                 if k in ("last_result", "last_attempt_at", "last_error", "needs_action", "renewing")}
        state["strict"] = strict
        if eligibility != "ELIGIBLE" or row.not_before is None or row.not_after is None:
            state.update(eligibility="INELIGIBLE", reason=_why_ineligible(row))
            row.renewal_plan, row.next_renewal_at = state, None
            return None
        plan = plan_renewal(row.not_before, row.not_after, policy, f"{row.arn}#{row.version}", ari)
        look_again = plan.at
        if is_acme(row):
            recheck = ari.retry_after if ari is not None and ari.retry_after is not None else now + ARI_RECHECK
            if not asked:
                recheck = now  # not asked yet for this certificate: the renewal check asks at once
            look_again = min(plan.at, max(recheck, now))
            state["ari"] = None if ari is None else {"start": ari.start.isoformat(), "end": ari.end.isoformat(),
                                                     "explanation_url": ari.explanation_url}
        state.update(eligibility="ELIGIBLE", at=plan.at.isoformat(), reason=plan.reason, source=plan.source,
                     reuse_key=policy.reuse_key)
        row.renewal_plan, row.next_renewal_at = state, look_again
        return plan

    @staticmethod
    def reset_notices(session: Session, row: CertificateRow, now: datetime) -> None:
        """A new validity starts a new series of expiry notices."""
        assert row.not_after is not None
        state = NoticeState()
        facts = NoticeFacts(row.type, row.not_after, days_before_expiry(session, row.account_id, row.region), None)
        row.notices, row.next_notice_at = state.to_json(), first_notice_at(facts, state, now)


def _why_ineligible(row: CertificateRow) -> str:
    if row.type == "IMPORTED":
        return "imported certificates are never renewed by certsmith: re-import a new one under the same ARN"
    if row.status != "ISSUED":
        return f"the certificate is {row.status}"
    if any(label[2:4] == "--" and not label.startswith("xn--") for name in row.names
           for label in name.removeprefix("*.").split(".")):
        return "a name has '--' as its 3rd and 4th characters and is not Punycode"
    return ("it has not been exported and is not in use, and the account renews only certificates that are "
            "(StrictEligibility)")
