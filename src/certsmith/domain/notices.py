"""When expiry notices are due: Approaching Expiration, Renewal Action Required and Expired.

Approaching Expiration: one notice per countdown day, the day that starts ``n`` days before NotAfter
(``n`` from DaysBeforeExpiry down to 1), each with its own DaysToExpiry; a sweep that comes late sends one.
Renewal Action Required (ACM-issued only): one per threshold of :data:`ACTION_REQUIRED_DAYS` while renewal
needs the user; thresholds passed unseen collapse into one. Expired: once, at or after NotAfter, for every type.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from . import events
from .events import CertificateFacts, Event, days_to_expiry

__all__ = [
    "ACTION_REQUIRED_DAYS", "DEFAULT_DAYS_BEFORE_EXPIRY", "MAX_DAYS_BEFORE_EXPIRY", "DueNotices", "NoticeFacts",
    "NoticeState", "due_notices", "first_notice_at", "notice_events",
]

ACTION_REQUIRED_DAYS: dict[str, tuple[int, ...]] = {"PRIVATE": (45, 30, 15, 3, 1), "AMAZON_ISSUED": (30, 15, 3, 1)}
DEFAULT_DAYS_BEFORE_EXPIRY = 45
MAX_DAYS_BEFORE_EXPIRY = 45

_DAY = timedelta(days=1)
_TICK = timedelta(microseconds=1)  # the resolution of datetime: "just after" a moment


@dataclass(frozen=True, slots=True)
class NoticeState:
    """What was already sent for one certificate's current validity (stored as JSON between sweeps)."""

    approaching_day: int | None = None  # DaysToExpiry of the last Approaching Expiration sent
    action_days: tuple[int, ...] = ()  # thresholds of Renewal Action Required already sent
    expired: bool = False  # the Expired event was sent
    approaching_slot: int | None = None  # the countdown day of that notice: n if sent in [NotAfter-n, NotAfter-n+1) days

    def to_json(self) -> dict[str, Any]:
        return {"approaching_day": self.approaching_day, "approaching_slot": self.approaching_slot,
                "action_days": list(self.action_days), "expired": self.expired}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> NoticeState:
        """The state :meth:`to_json` stored; None (nothing stored yet) is the empty state."""
        if not data:
            return cls()
        day = _optional_int(data, "approaching_day")
        slot = _optional_int(data, "approaching_slot")
        action_days = data.get("action_days", [])
        if not isinstance(action_days, list) or not all(_is_int(d) for d in action_days):
            raise ValueError("notice state action_days must be a list of integers")
        expired = data.get("expired", False)
        if not isinstance(expired, bool):
            raise ValueError("notice state expired must be true or false")
        return cls(day, tuple(action_days), expired, slot)


@dataclass(frozen=True, slots=True)
class NoticeFacts:
    """What the schedule needs of one certificate and its account."""

    certificate_type: str
    not_after: datetime
    days_before_expiry: int
    needs_action: str | None

    def __post_init__(self) -> None:
        if self.not_after.tzinfo is None:
            raise ValueError("not_after must be timezone-aware")
        if not _is_int(self.days_before_expiry) or not 1 <= self.days_before_expiry <= MAX_DAYS_BEFORE_EXPIRY:
            raise ValueError(f"DaysBeforeExpiry is {self.days_before_expiry!r}; "
                             f"it must be a whole number from 1 to {MAX_DAYS_BEFORE_EXPIRY}")


@dataclass(frozen=True, slots=True)
class DueNotices:
    """What to send now, the state after sending it, and when to look again."""

    approaching: bool
    action_required: bool
    expired: bool
    state: NoticeState
    next_at: datetime | None

    @property
    def anything(self) -> bool:
        return self.approaching or self.action_required or self.expired


def due_notices(facts: NoticeFacts, state: NoticeState, now: datetime) -> DueNotices:
    """The notices due at ``now``: at most one of each kind, however long since the last look."""
    _check_now(now)
    not_after = facts.not_after
    approaching_from = _approaching_from(facts, state)
    send_approaching = approaching_from is not None and approaching_from <= now < not_after
    action_from = _action_from(facts, state, now)
    send_action = action_from is not None and action_from <= now
    send_expired = not state.expired and now >= not_after
    after = state
    if send_approaching:
        after = NoticeState(days_to_expiry(not_after, now), after.action_days, after.expired, _slot(not_after, now))
    latest = _latest_passed(facts, now)
    if send_action and latest is not None:
        sent = set(after.action_days) | {latest}
        after = NoticeState(after.approaching_day, tuple(sorted(sent, reverse=True)), after.expired, after.approaching_slot)
    if send_expired:
        after = NoticeState(after.approaching_day, after.action_days, True, after.approaching_slot)
    return DueNotices(send_approaching, send_action, send_expired, after, first_notice_at(facts, after, now))


def first_notice_at(facts: NoticeFacts, state: NoticeState, now: datetime) -> datetime | None:
    """The first moment, not before ``now``, at which :func:`due_notices` has something to send; None if never.

    It depends on ``needs_action``: when that changes, the caller sets next_at again from this.
    """
    _check_now(now)
    candidates: list[datetime] = []
    approaching_from = _approaching_from(facts, state)
    if approaching_from is not None and now < facts.not_after:
        candidates.append(max(approaching_from, now))
    action_from = _action_from(facts, state, now)
    if action_from is not None:
        candidates.append(action_from)
    if not state.expired:
        candidates.append(max(facts.not_after, now))
    return min(candidates, default=None)


def notice_events(due: DueNotices, certificate: CertificateFacts, facts: NoticeFacts, now: datetime) -> list[Event]:
    """The events of ``due``, in the order they are written."""
    found: list[Event] = []
    if due.approaching:
        found.append(events.approaching(certificate, now))
    if due.action_required and facts.needs_action is not None:
        found.append(events.action_required(certificate, facts.needs_action, now))
    if due.expired:
        found.append(events.expired(certificate, now))
    return found


def _approaching_from(facts: NoticeFacts, state: NoticeState) -> datetime | None:
    """From when the next Approaching Expiration is due (it stays due until NotAfter); None if no more."""
    not_after = facts.not_after
    start = not_after - facts.days_before_expiry * _DAY
    day = state.approaching_day
    if day is not None:
        slot = state.approaching_slot if state.approaching_slot is not None else day + 1
        # a later countdown day, and a smaller DaysToExpiry than the one already sent
        start = max(start, not_after - (slot - 1) * _DAY, not_after - day * _DAY + _TICK)
    return start if start < not_after else None


def _action_from(facts: NoticeFacts, state: NoticeState, now: datetime) -> datetime | None:
    """``now`` if a Renewal Action Required is due, else when the next threshold is reached; None if none."""
    thresholds = ACTION_REQUIRED_DAYS.get(facts.certificate_type, ())
    if facts.needs_action is None or not thresholds or now >= facts.not_after:
        return None
    latest = _latest_passed(facts, now)
    if latest is not None and latest not in state.action_days:
        return now
    ahead = [facts.not_after - days * _DAY for days in thresholds if days not in state.action_days]
    return min((moment for moment in ahead if moment > now), default=None)


def _latest_passed(facts: NoticeFacts, now: datetime) -> int | None:
    """The threshold most recently reached at ``now`` (the fewest days), or None before the first."""
    passed = [days for days in ACTION_REQUIRED_DAYS.get(facts.certificate_type, ())
              if now >= facts.not_after - days * _DAY]
    return min(passed, default=None)


def _slot(not_after: datetime, now: datetime) -> int:
    """The countdown day of ``now``: n when now is in [not_after - n days, not_after - (n-1) days)."""
    return -((now - not_after) // _DAY)


def _check_now(now: datetime) -> None:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _optional_int(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is not None and not _is_int(value):
        raise ValueError(f"notice state {key} must be an integer or null")
    return value
