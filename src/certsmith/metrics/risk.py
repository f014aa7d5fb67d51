"""Which certificates certsmith will not renew in time by itself: ``certsmith_certificate_renewal_at_risk``.

A sparse family: one sample (value 1) per ISSUED certificate at risk, none for the others, so that an alert can keep
only those (``(days_to_expiry < 14) * on(arn) group_left(reason) renewal_at_risk``) and let a healthy short-lived
certificate, which certsmith renews a third of its lifetime before it expires, be. The reason is computed by the
database, in the per-certificate query (one ``CASE``, cheap columns first: most rows are decided by their status,
type and ``next_renewal_at`` before any JSON is read), and the lines are written straight in the text format.

Reasons, the first that applies:

- ``imported``: an imported certificate is never renewed by certsmith (it must be imported again);
- ``renewal_failed``: the renewal summary says FAILED;
- ``needs_action``: the renewal waits on the user: PENDING_VALIDATION (a validation record gone, the CA refused a
  name), or a RenewalStatusReason recorded (the private CA refused, attempts keep failing);
- ``overdue``: the renewal check planned (``next_renewal_at``) is more than an hour late (no worker sweeps), or, for
  a renewal claimed or under way (``next_renewal_at`` cleared), the plan's time (``renewal_plan.at``) is;
- ``not_eligible``: the plan says INELIGIBLE (StrictEligibility without export or use, a name certsmith may not
  renew).

A certificate without a plan (one stored before managed renewal, which is planned when certsmith next starts) is not
counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import String, and_, case, literal, or_
from sqlalchemy.sql.elements import ColumnElement

from ..store.tables import CertificateRow
from .exposition import family_header, label_value

__all__ = ["AT_RISK", "LATE", "REASONS", "at_risk_lines", "renewal_risk"]

AT_RISK = "certsmith_certificate_renewal_at_risk"
LATE = timedelta(hours=1)  # how late a planned renewal may be before it is overdue (ManagedRenewal's grace too)
REASONS = ("imported", "renewal_failed", "needs_action", "overdue", "not_eligible")
_HELP = ("1 for each ISSUED certificate that certsmith will not renew in time by itself, with the reason (imported, "
         "renewal_failed, needs_action, overdue, not_eligible); no sample for the others. Among the certificates of "
         "the per-certificate series only (metrics_certificate_series).")
_SQLITE_STAMP = "%Y-%m-%d %H:%M:%S.%f"  # how a naive UTC datetime column is stored on SQLite (and read by PostgreSQL)


def renewal_risk(now: datetime) -> ColumnElement[Any]:
    """The reason a certificate is at risk at ``now`` (one of ``REASONS``), or NULL. Only constants are bound."""
    c = CertificateRow
    cutoff = (now - LATE).astimezone(UTC)
    column_cutoff = literal(cutoff.replace(tzinfo=None).strftime(_SQLITE_STAMP), String)
    plan_cutoff = literal(cutoff.isoformat(), String)  # renewal_plan.at is an aware ISO time, compared as text
    renewal_status = c.renewal["RenewalStatus"].as_string()
    eligibility = c.renewal_plan["eligibility"].as_string()
    return case(
        (c.status != "ISSUED", None),
        (c.type == "IMPORTED", "imported"),
        (and_(c.renewal.is_not(None), renewal_status != "SUCCESS"), case(
            (renewal_status == "FAILED", "renewal_failed"),
            (or_(renewal_status == "PENDING_VALIDATION", c.renewal["RenewalStatusReason"].as_string().is_not(None)),
             "needs_action"),
            else_=_planning(column_cutoff, plan_cutoff, eligibility))),
        else_=_planning(column_cutoff, plan_cutoff, eligibility))


def _planning(column_cutoff: Any, plan_cutoff: Any, eligibility: Any) -> ColumnElement[Any]:
    """overdue / not_eligible from the plan; the JSON is read only when no check is planned (``next_renewal_at``)."""
    c = CertificateRow
    return case(
        (c.next_renewal_at.is_not(None), case((c.next_renewal_at < column_cutoff, "overdue"), else_=None)),
        (eligibility != "ELIGIBLE", "not_eligible"),  # NULL (no plan) is not different: it falls through
        (c.renewal_plan["at"].as_string() < plan_cutoff, "overdue"),
        else_=None)


def at_risk_lines(rows: Iterable[tuple[Any, ...]]) -> str:
    """The family's text for rows of the per-certificate query (arn, domain, type, ..., reason last)."""
    found = [f'{AT_RISK}{{arn="{label_value(row[0])}",domain="{label_value(row[1])}",type="{row[2]}",'
             f'reason="{row[-1]}"}} 1\n' for row in rows if row[-1] is not None]
    return family_header(AT_RISK, _HELP, "gauge") + "".join(found)
