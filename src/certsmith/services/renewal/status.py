"""What `certsmith renewal status` shows: every certificate's plan (when, why, by which rule) and last result."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import load_only

from ...domain.clock import Clock
from ...domain.errors import InvalidNextTokenError, ResourceNotFoundError
from ...store.database import Database
from ...store.tables import CertificateRow, CertificateVersionRow
from ..context import Caller

__all__ = ["RenewalEntry", "RenewalStatus", "VersionRecord"]

MAX_PAGE = 1000


@dataclass(frozen=True, slots=True)
class RenewalEntry:
    arn: str
    domain_name: str
    type: str
    status: str
    not_after: datetime | None
    version: int
    eligibility: str
    planned_at: str | None      # when renewal is planned to start (ISO), None when it is not renewed
    next_look_at: datetime | None  # when the scheduler next looks at it (the plan, or an earlier ARI check)
    reason: str | None
    source: str | None
    renewal_status: str | None
    renewal_reason: str | None
    last_result: str | None
    last_attempt_at: str | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class VersionRecord:
    version: int
    action: str
    serial: str
    not_before: datetime
    not_after: datetime
    issued_at: datetime
    key_id: str
    issuer: str | None
    current: bool


def _entry(row: CertificateRow) -> RenewalEntry:
    plan: dict[str, Any] = row.renewal_plan or {}
    renewal: dict[str, Any] = row.renewal or {}
    eligibility = plan.get("eligibility") or ("INELIGIBLE" if row.type == "IMPORTED" else "UNPLANNED")
    reason = plan.get("reason")
    if reason is None and row.status != "ISSUED":
        reason = f"the certificate is {row.status}"
    return RenewalEntry(row.arn, row.domain_name, row.type, row.status, row.not_after, row.version, eligibility,
                        plan.get("at"), row.next_renewal_at, reason, plan.get("source"), renewal.get("RenewalStatus"),
                        renewal.get("RenewalStatusReason"), plan.get("last_result"), plan.get("last_attempt_at"),
                        plan.get("last_error"))


class RenewalStatus:
    def __init__(self, database: Database, clock: Clock) -> None:
        self._db, self._clock = database, clock

    def page(self, caller: Caller, max_results: int | None, next_token: str | None) -> tuple[list[RenewalEntry],
                                                                                              str | None]:
        """The caller's certificates in ARN order, one page at a time."""
        limit = min(max_results or MAX_PAGE, MAX_PAGE)
        after = _position(next_token)
        with self._db.read() as session:
            query = (select(CertificateRow).options(load_only(
                CertificateRow.id, CertificateRow.arn, CertificateRow.domain_name, CertificateRow.type,
                CertificateRow.status, CertificateRow.not_after, CertificateRow.version, CertificateRow.renewal_plan,
                CertificateRow.next_renewal_at, CertificateRow.renewal))
                .where(CertificateRow.account_id == caller.account_id, CertificateRow.region == caller.region)
                .order_by(CertificateRow.id).limit(limit + 1))
            if after is not None:
                query = query.where(CertificateRow.id > after)
            rows = list(session.scalars(query))
        token = base64.urlsafe_b64encode(rows[limit - 1].id.encode()).decode() if len(rows) > limit else None
        return [_entry(r) for r in rows[:limit]], token

    def versions(self, caller: Caller, arn: str) -> list[VersionRecord]:
        """Every version of a certificate, oldest first; the current one marked."""
        with self._db.read() as session:
            row = session.scalar(select(CertificateRow).options(load_only(CertificateRow.id, CertificateRow.version))
                                 .where(CertificateRow.arn == arn, CertificateRow.account_id == caller.account_id,
                                        CertificateRow.region == caller.region))
            if row is None:
                raise ResourceNotFoundError(f"certificate {arn} not found", arn=arn)
            versions = session.scalars(select(CertificateVersionRow).where(
                CertificateVersionRow.certificate_id == row.id).order_by(CertificateVersionRow.version)).all()
            return [VersionRecord(v.version, v.action, v.serial, v.not_before, v.not_after, v.issued_at, v.key_id,
                                  v.issuer, v.version == row.version) for v in versions]


def _position(token: str | None) -> str | None:
    if token is None:
        return None
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, binascii.Error):
        raise InvalidNextTokenError("NextToken is not a token this service returned", field="NextToken") from None
