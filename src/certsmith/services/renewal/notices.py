"""The notice sweep: expiry events (Approaching Expiration, Renewal Action Required, Expired) when they are due.

Like the scheduler it reads only due rows (the index on ``next_notice_at``); each row's next time is the moment
its next notice becomes due, so nothing is missed and nothing is read early. :meth:`NoticeSweep.ca_expiry` tells
when a CA's own certificate nears its end (Certsmith CA Expiring).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from sqlalchemy import and_, case, select
from sqlalchemy.orm import load_only

from ...domain.acm import CertificateStatus
from ...domain.authority import AuthorityStatus, reported_status
from ...domain.certsmith_events import CA_EXPIRY_DAYS, ca_expiring, ca_expiry_event_id, ca_expiry_threshold
from ...domain.clock import Clock
from ...domain.events import action_required, approaching, expired
from ...domain.notices import NoticeFacts, NoticeState, due_notices
from ...store.database import Database
from ...store.tables import AuthorityRow, CertificateRow, EventOutboxRow, IssuerRow
from ..events.outbox import EventOutbox
from .recorder import certificate_facts, days_before_expiry, issuer_of

__all__ = ["NoticeSweep"]

_COLUMNS = (CertificateRow.id, CertificateRow.arn, CertificateRow.account_id, CertificateRow.region, CertificateRow.type,
            CertificateRow.status, CertificateRow.domain_name, CertificateRow.names, CertificateRow.not_before,
            CertificateRow.not_after, CertificateRow.created_at, CertificateRow.key_pair_origin,
            CertificateRow.validations, CertificateRow.in_use_by, CertificateRow.exported, CertificateRow.options,
            CertificateRow.renewal, CertificateRow.renewal_plan, CertificateRow.notices, CertificateRow.next_notice_at,
            CertificateRow.next_renewal_at, CertificateRow.authority_arn, CertificateRow.issuer_name,
            CertificateRow.issuer, CertificateRow.revocation_reason)
# What the events say besides the row, read in the same query: an ACME issuer's directory, the issuing CA's state,
# an imported certificate's PEM (for its issuer DN; NULL for the others, so nothing large is read for them).
_EXTRA = (IssuerRow.directory_url, AuthorityRow.status, AuthorityRow.not_after,
          case((CertificateRow.type == "IMPORTED", CertificateRow.certificate_pem), else_=None))
_ISSUER_JOIN = and_(IssuerRow.account_id == CertificateRow.account_id, IssuerRow.region == CertificateRow.region,
                    IssuerRow.name == CertificateRow.issuer_name)


class NoticeSweep:
    def __init__(self, database: Database, clock: Clock, outbox: EventOutbox) -> None:
        self._db, self._clock, self._outbox = database, clock, outbox

    def sweep(self, now: datetime | None = None, limit: int = 5000) -> int:
        """Send what is due now (into the outbox); returns how many events were written."""
        now = now or self._clock.now()
        written: list[dict[str, Any]] = []
        with self._db.transaction() as session:
            query = (select(CertificateRow, *_EXTRA).options(load_only(*_COLUMNS))
                     .outerjoin(IssuerRow, _ISSUER_JOIN)
                     .outerjoin(AuthorityRow, AuthorityRow.arn == CertificateRow.authority_arn)
                     .where(CertificateRow.next_notice_at <= now).order_by(CertificateRow.next_notice_at).limit(limit))
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True, of=CertificateRow)
            windows: dict[tuple[str, str], int] = {}
            for row, *extra in session.execute(query):
                scope = (row.account_id, row.region)
                if scope not in windows:
                    windows[scope] = days_before_expiry(session, *scope)
                written += self._one(row, windows[scope], now, extra)
            self._outbox.add_many(session, written)
        return len(written)

    def ca_expiry(self, now: datetime | None = None) -> int:
        """Certsmith CA Expiring for each ACTIVE CA whose certificate has 90, 30 or 7 days left (thresholds passed
        unseen collapse into one), once per CA certificate and threshold: the event id is made from them, so a check
        run again, or by several workers, writes nothing twice. Returns how many events were written."""
        now = now or self._clock.now()
        horizon = now + timedelta(days=max(CA_EXPIRY_DAYS))
        with self._db.transaction() as session:
            query = select(AuthorityRow.arn, AuthorityRow.account_id, AuthorityRow.region, AuthorityRow.not_after,
                           AuthorityRow.certificate_pem).where(
                AuthorityRow.status == AuthorityStatus.ACTIVE.value, AuthorityRow.not_after > now,
                AuthorityRow.not_after <= horizon)
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            due: dict[str, tuple[str, str, str, datetime, str | None, int]] = {}
            for arn, account_id, region, not_after, pem in session.execute(query):
                threshold = None if not_after is None else ca_expiry_threshold(not_after, now)
                if not_after is not None and threshold is not None:
                    due[ca_expiry_event_id(arn, not_after, threshold)] = (arn, account_id, region, not_after, pem, threshold)
            if not due:
                return 0
            told = set(session.scalars(select(EventOutboxRow.event_id).where(EventOutboxRow.event_id.in_(list(due)))))
            rows = []
            for event_id, (arn, account_id, region, not_after, pem, threshold) in due.items():
                if event_id in told:
                    continue
                subject = x509.load_pem_x509_certificate(pem.encode()).subject.rfc4514_string() if pem else ""
                values = self._outbox.values(ca_expiring(arn, subject, not_after, threshold, now), account_id, region, now)
                rows.append(values | {"event_id": event_id})
            self._outbox.add_many(session, rows)
        return len(rows)

    def _one(self, row: CertificateRow, window: int, now: datetime, extra: list[Any]) -> list[dict[str, Any]]:
        if row.not_after is None or row.status not in (CertificateStatus.ISSUED, CertificateStatus.EXPIRED):
            row.next_notice_at = None
            return []
        plan = row.renewal_plan or {}
        facts = NoticeFacts(row.type, row.not_after, window, plan.get("needs_action"))
        due = due_notices(facts, NoticeState.from_json(row.notices), now)
        row.notices, row.next_notice_at = due.state.to_json(), due.next_at
        if not due.anything:
            return []
        directory, ca_status, ca_not_after, pem = extra
        status = None if ca_status is None else reported_status(AuthorityStatus(ca_status), ca_not_after, now).value
        shapes = certificate_facts(row, issuer=issuer_of(row, directory=directory, issuer_dn=_issuer_dn(pem)),
                                   authority_status=status)
        events = []
        if due.approaching:
            events.append(approaching(shapes, now))
        if due.action_required:
            events.append(action_required(shapes, str(plan.get("needs_action")), now))
        if due.expired:
            events.append(expired(shapes, now))
            row.status = CertificateStatus.EXPIRED.value
            row.next_renewal_at = None
            if (row.renewal or {}).get("RenewalStatus") in ("PENDING_AUTO_RENEWAL", "PENDING_VALIDATION"):
                reason = (row.renewal or {}).get("RenewalStatusReason") or "OTHER"
                row.renewal = {"RenewalStatus": "FAILED", "RenewalStatusReason": reason,
                               "DomainValidationOptions": list((row.renewal or {}).get("DomainValidationOptions", [])),
                               "UpdatedAt": now.isoformat()}
        return [self._outbox.values(event, row.account_id, row.region, now) for event in events]


def _issuer_dn(pem: str | None) -> str | None:
    """The issuer DN of an imported certificate's PEM (None when not given or unreadable)."""
    if not pem:
        return None
    try:
        return x509.load_pem_x509_certificate(pem.encode()).issuer.rfc4514_string()
    except ValueError:
        return None
