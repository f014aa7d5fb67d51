"""Renewal policies of an account and of tagged certificates: stored settings, and which one applies to a row."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...domain.clock import Clock
from ...domain.errors import ResourceNotFoundError, ValidationError
from ...domain.maintenance import MaintenanceWindow
from ...domain.renewal import RenewalPolicy, RenewBefore
from ...store.database import Database
from ...store.jobs import JobQueue
from ...store.tables import CertificateRow, RenewalPolicyRow
from ..context import Caller
from ..ports import WorkSignal

__all__ = ["ACCOUNT_SCOPE", "REPLAN_JOB", "PolicyRecord", "RenewalPolicies", "parse_scope", "queue_replan"]

ACCOUNT_SCOPE = "account"
MAX_WINDOWS = 10
REPLAN_JOB = "renewal.replan"  # plans the certificates a policy change concerns anew (replan.py runs it)


def queue_replan(session: Session, jobs: JobQueue, account_id: str, region: str, tag: tuple[str, str] | None,
                 clock: Clock) -> None:
    """Queue the re-planning of the account's certificates (those carrying ``tag`` when one is given)."""
    jobs.enqueue(session, REPLAN_JOB, {"account_id": account_id, "region": region,
                                       "tag": list(tag) if tag is not None else None, "after": ""}, clock.now())


def parse_scope(scope: str) -> tuple[str, str] | None:
    """None for the account's policy; (key, value) for ``tag:Key=Value``. Names the field when malformed."""
    if scope == ACCOUNT_SCOPE:
        return None
    if scope.startswith("tag:") and "=" in scope[4:]:
        key, value = scope[4:].split("=", 1)
        if key and len(key) <= 128 and len(value) <= 256:
            return key, value
    raise ValidationError(f"Scope must be 'account' or 'tag:Key=Value', not {scope!r}", field="Scope")


@dataclass(frozen=True, slots=True)
class PolicyRecord:
    scope: str
    renew_before: str | None
    windows: list[dict[str, str]]
    reuse_key: bool | None
    strict_eligibility: bool | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: RenewalPolicyRow) -> PolicyRecord:
        return cls(row.scope, row.renew_before, [dict(w) for w in row.windows], row.reuse_key, row.strict_eligibility,
                   row.created_at, row.updated_at)


def _windows(rows: list[dict[str, Any]]) -> tuple[MaintenanceWindow, ...]:
    return tuple(MaintenanceWindow.parse(w["Cron"], w["Duration"], w.get("Timezone") or "UTC") for w in rows)


def _policy(row: RenewalPolicyRow | None, below: RenewalPolicy) -> RenewalPolicy:
    """``row``'s settings over ``below``'s: what a row leaves unset comes from below."""
    if row is None:
        return below
    return RenewalPolicy(
        renew_before=RenewBefore.parse(row.renew_before) if row.renew_before else below.renew_before,
        windows=_windows(list(row.windows)) if row.windows else below.windows,
        reuse_key=below.reuse_key if row.reuse_key is None else row.reuse_key,
        source=row.scope if (row.renew_before or row.windows or row.reuse_key is not None) else below.source)


class RenewalPolicies:
    def __init__(self, database: Database, clock: Clock, jobs: JobQueue, signal: WorkSignal) -> None:
        self._db, self._clock, self._jobs, self._signal = database, clock, jobs, signal

    # -- what applies ------------------------------------------------------------------------------------------------
    @staticmethod
    def for_row(session: Session, row: CertificateRow) -> tuple[RenewalPolicy, bool]:
        """(The policy that applies, whether the account renews only exported or in-use certificates), in one read.

        The policy is the account's, overridden by the first (in scope order) policy of a tag the certificate
        carries; StrictEligibility is the account's alone."""
        rows = session.scalars(select(RenewalPolicyRow).where(
            RenewalPolicyRow.account_id == row.account_id, RenewalPolicyRow.region == row.region)
            .order_by(RenewalPolicyRow.scope)).all()
        if not rows:
            return RenewalPolicy(), False
        account = next((r for r in rows if r.scope == ACCOUNT_SCOPE), None)
        tags = {f"tag:{t['Key']}={t.get('Value', '')}" for t in row.tags or []}
        tagged = next((r for r in rows if r.scope in tags), None)
        return _policy(tagged, _policy(account, RenewalPolicy())), bool(account and account.strict_eligibility)

    # -- the API -----------------------------------------------------------------------------------------------------
    def put(self, caller: Caller, scope: str, *, renew_before: str | None, windows: list[dict[str, Any]] | None,
            reuse_key: bool | None, strict_eligibility: bool | None) -> PolicyRecord:
        """Create or replace the policy of ``scope``; every setting is checked before anything is stored."""
        tag = parse_scope(scope)
        if renew_before:
            RenewBefore.parse(renew_before, field="RenewBefore")
        windows = list(windows or [])
        if len(windows) > MAX_WINDOWS:
            raise ValidationError(f"at most {MAX_WINDOWS} maintenance windows, not {len(windows)}",
                                  field="MaintenanceWindows")
        stored: list[dict[str, str]] = []
        for index, window in enumerate(windows):
            where = f"MaintenanceWindows[{index}]"
            if not isinstance(window, dict) or not window.get("Cron") or not window.get("Duration"):
                raise ValidationError(f"{where} needs Cron and Duration", field=where)
            parsed = MaintenanceWindow.parse(str(window["Cron"]), str(window["Duration"]),
                                             str(window.get("Timezone") or "UTC"), field=where)
            stored.append({"Cron": parsed.cron, "Duration": str(window["Duration"]), "Timezone": parsed.timezone})
        if tag is not None and strict_eligibility is not None:
            raise ValidationError("StrictEligibility is a setting of the account, not of a tag", field="StrictEligibility")
        now = self._clock.now()
        with self._db.transaction() as session:
            row = self._row(session, caller, scope)
            if row is None:
                row = RenewalPolicyRow(id=str(uuid.uuid4()), account_id=caller.account_id, region=caller.region,
                                       scope=scope, created_at=now)
                session.add(row)
            row.renew_before, row.windows, row.reuse_key = renew_before or None, stored, reuse_key
            row.strict_eligibility, row.updated_at = strict_eligibility, now
            self._replan(session, caller, tag, now)
            session.flush()
            return PolicyRecord.of(row)

    def describe(self, caller: Caller, scope: str) -> PolicyRecord:
        parse_scope(scope)
        with self._db.read() as session:
            row = self._row(session, caller, scope)
            if row is None:
                raise ResourceNotFoundError(f"no renewal policy for {scope}")
            return PolicyRecord.of(row)

    def list(self, caller: Caller) -> list[PolicyRecord]:
        with self._db.read() as session:
            rows = session.scalars(select(RenewalPolicyRow).where(
                RenewalPolicyRow.account_id == caller.account_id, RenewalPolicyRow.region == caller.region)
                .order_by(RenewalPolicyRow.scope)).all()
            return [PolicyRecord.of(r) for r in rows]

    def delete(self, caller: Caller, scope: str) -> None:
        tag = parse_scope(scope)
        now = self._clock.now()
        with self._db.transaction() as session:
            row = self._row(session, caller, scope)
            if row is None:
                raise ResourceNotFoundError(f"no renewal policy for {scope}")
            session.delete(row)
            self._replan(session, caller, tag, now)

    @staticmethod
    def _row(session: Session, caller: Caller, scope: str) -> RenewalPolicyRow | None:
        return session.scalar(select(RenewalPolicyRow).where(
            RenewalPolicyRow.account_id == caller.account_id, RenewalPolicyRow.region == caller.region,
            RenewalPolicyRow.scope == scope))

    def _replan(self, session: Session, caller: Caller, tag: tuple[str, str] | None, now: datetime) -> None:
        """The certificates the change concerns are planned anew by a job, in batches (see replan.py)."""
        queue_replan(session, self._jobs, caller.account_id, caller.region, tag, self._clock)
        self._signal.notify()
