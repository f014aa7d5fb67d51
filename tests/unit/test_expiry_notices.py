"""The expiry-notice schedule: Approaching Expiration daily, Renewal Action Required by threshold, Expired once."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest

from certsmith.domain import events
from certsmith.domain.events import CertificateFacts, days_to_expiry
from certsmith.domain.notices import (
    ACTION_REQUIRED_DAYS,
    DueNotices,
    NoticeFacts,
    NoticeState,
    due_notices,
    first_notice_at,
    notice_events,
)

DAY = timedelta(days=1)
TICK = timedelta(microseconds=1)
NOT_BEFORE = datetime(2026, 5, 4, 10, 30, 0, tzinfo=UTC)
NOT_AFTER = NOT_BEFORE + 90 * DAY


def facts(certificate_type: str = "AMAZON_ISSUED", dbe: int = 45, needs_action: str | None = None,
          not_after: datetime = NOT_AFTER) -> NoticeFacts:
    return NoticeFacts(certificate_type, not_after, dbe, needs_action)


@dataclass
class Sent:
    at: datetime
    kind: str
    days: int  # DaysToExpiry at the moment it was sent


def sweep(notice_facts: NoticeFacts, times: Iterator[datetime] | list[datetime],
          state: NoticeState | None = None) -> tuple[list[Sent], NoticeState]:
    """Looks at the certificate at each time; returns what was sent and the final state."""
    state = state or NoticeState()
    sent: list[Sent] = []
    for now in times:
        due = due_notices(notice_facts, state, now)
        check_next_at(due, now)
        for kind, flag in (("approaching", due.approaching), ("action", due.action_required), ("expired", due.expired)):
            if flag:
                sent.append(Sent(now, kind, days_to_expiry(notice_facts.not_after, now)))
        state = due.state
    return sent, state


def check_next_at(due: DueNotices, now: datetime) -> None:
    assert due.next_at is None or due.next_at > now


def follow(notice_facts: NoticeFacts, start: datetime, state: NoticeState | None = None) -> list[Sent]:
    """A sweep that looks only when next_at has come, exactly at next_at."""
    state = state or NoticeState()
    at: datetime | None = start
    sent: list[Sent] = []
    while at is not None:
        got, state = sweep(notice_facts, [at], state)
        assert got, f"nothing was due at next_at {at}"
        sent += got
        at = first_notice_at(notice_facts, state, at)
    return sent


def kinds(sent: list[Sent], kind: str) -> list[Sent]:
    return [s for s in sent if s.kind == kind]


def days_walk(start: datetime, end: datetime, step: timedelta = DAY) -> Iterator[datetime]:
    at = start
    while at <= end:
        yield at
        at += step


@pytest.mark.parametrize("certificate_type", ["AMAZON_ISSUED", "PRIVATE", "IMPORTED"])
@pytest.mark.parametrize("offset", [timedelta(0), timedelta(hours=7, minutes=13), DAY - TICK])
def test_a_90_day_certificate_walked_day_by_day(certificate_type: str, offset: timedelta) -> None:
    sent, state = sweep(facts(certificate_type), days_walk(NOT_BEFORE + offset, NOT_AFTER + 5 * DAY))
    approaching = kinds(sent, "approaching")
    assert len(approaching) == 45
    assert approaching[0].at >= NOT_AFTER - 45 * DAY
    assert all(s.at < NOT_AFTER for s in approaching)
    assert [s.days for s in approaching] == list(range(45, 0, -1) if offset == timedelta(0) else range(44, -1, -1))
    assert [s.kind for s in sent] == ["approaching"] * 45 + ["expired"]
    assert sent[-1].at >= NOT_AFTER
    assert state.expired
    assert first_notice_at(facts(certificate_type), state, NOT_AFTER + 6 * DAY) is None


def test_an_hourly_sweep_sends_one_a_day() -> None:
    sent, _ = sweep(facts(), days_walk(NOT_BEFORE + timedelta(minutes=17), NOT_AFTER + DAY, timedelta(hours=1)))
    approaching = kinds(sent, "approaching")
    assert [s.days for s in approaching] == list(range(44, -1, -1))
    gaps = {b.at - a.at for a, b in itertools.pairwise(approaching)}
    assert gaps == {DAY}
    assert len(kinds(sent, "expired")) == 1


def test_following_next_at_from_issuance() -> None:
    notice_facts = facts()
    start = first_notice_at(notice_facts, NoticeState(), NOT_BEFORE)
    assert start == NOT_AFTER - 45 * DAY
    sent = follow(notice_facts, start)
    assert [s.days for s in kinds(sent, "approaching")] == list(range(45, 0, -1))
    assert [s.at for s in kinds(sent, "approaching")] == [NOT_AFTER - n * DAY for n in range(45, 0, -1)]
    assert [(s.kind, s.at) for s in sent[-1:]] == [("expired", NOT_AFTER)]


def test_following_next_at_after_a_late_first_look() -> None:
    # looked at first an hour into the first countdown day: DaysToExpiry 44 then; never 44 twice
    sent = follow(facts(), NOT_AFTER - 45 * DAY + timedelta(hours=1))
    approaching = kinds(sent, "approaching")
    assert [s.days for s in approaching] == list(range(44, -1, -1))
    assert approaching[1].at == NOT_AFTER - 44 * DAY + TICK  # the first moment with 43 whole days left


def test_a_sweep_down_for_three_days_sends_one() -> None:
    notice_facts = facts()
    sent, state = sweep(notice_facts, [NOT_AFTER - 20 * DAY])
    assert [s.days for s in sent] == [20]
    sent, state = sweep(notice_facts, [NOT_AFTER - 16 * DAY + timedelta(hours=2)], state)  # 17, 18, 19 were missed
    assert [(s.kind, s.days) for s in sent] == [("approaching", 15)]
    sent, state = sweep(notice_facts, [NOT_AFTER - 16 * DAY + timedelta(hours=20), NOT_AFTER - 15 * DAY], state)
    assert sent == []  # the same countdown day, then the same DaysToExpiry
    sent, state = sweep(notice_facts, [NOT_AFTER - 15 * DAY + timedelta(hours=1)], state)
    assert [s.days for s in sent] == [14]


def test_a_sweep_down_through_expiry_sends_only_expired() -> None:
    notice_facts = facts("IMPORTED")
    sent, state = sweep(notice_facts, [NOT_AFTER - 3 * DAY])
    sent, state = sweep(notice_facts, [NOT_AFTER + 2 * DAY, NOT_AFTER + 3 * DAY], state)
    assert [(s.kind, s.at) for s in sent] == [("expired", NOT_AFTER + 2 * DAY)]
    assert state == NoticeState(3, (), True, 3)


def test_nothing_before_days_before_expiry() -> None:
    notice_facts = facts(dbe=10)
    assert first_notice_at(notice_facts, NoticeState(), NOT_BEFORE) == NOT_AFTER - 10 * DAY
    due = due_notices(notice_facts, NoticeState(), NOT_AFTER - 10 * DAY - TICK)
    assert not due.anything and due.next_at == NOT_AFTER - 10 * DAY
    due = due_notices(notice_facts, NoticeState(), NOT_AFTER - 10 * DAY)
    assert due.approaching and due.state.approaching_day == 10
    sent, _ = sweep(notice_facts, days_walk(NOT_BEFORE, NOT_AFTER))
    assert len(kinds(sent, "approaching")) == 10


def test_days_before_expiry_changed_between_sweeps() -> None:
    _, state = sweep(facts(dbe=45), [NOT_AFTER - 40 * DAY])
    due = due_notices(facts(dbe=5), state, NOT_AFTER - 39 * DAY)
    assert not due.anything and due.next_at == NOT_AFTER - 5 * DAY


@pytest.mark.parametrize(("certificate_type", "thresholds"), [("PRIVATE", [45, 30, 15, 3, 1]),
                                                             ("AMAZON_ISSUED", [30, 15, 3, 1]), ("IMPORTED", [])])
def test_action_required_thresholds(certificate_type: str, thresholds: list[int]) -> None:
    assert ACTION_REQUIRED_DAYS.get(certificate_type, ()) == tuple(thresholds)
    notice_facts = facts(certificate_type, dbe=45, needs_action="PENDING_DOMAIN_VALIDATION")
    sent, state = sweep(notice_facts, days_walk(NOT_BEFORE + timedelta(minutes=5), NOT_AFTER + DAY, timedelta(hours=6)))
    action = kinds(sent, "action")
    assert [s.days for s in action] == [t - 1 for t in thresholds]  # each sent within six hours of its threshold
    assert [s.at - (NOT_AFTER - (s.days + 1) * DAY) < timedelta(hours=6) for s in action] == [True] * len(thresholds)
    assert state.action_days == tuple(thresholds)
    assert len(kinds(sent, "approaching")) == 45 and len(kinds(sent, "expired")) == 1


def test_following_next_at_sends_action_required_on_each_threshold() -> None:
    notice_facts = facts("PRIVATE", dbe=5, needs_action="PCA_INVALID_STATE")
    assert first_notice_at(notice_facts, NoticeState(), NOT_BEFORE) == NOT_AFTER - 45 * DAY
    sent = follow(notice_facts, NOT_AFTER - 45 * DAY)
    assert [(s.kind, s.days) for s in sent if s.kind != "approaching"] == [
        ("action", 45), ("action", 30), ("action", 15), ("action", 3), ("action", 1), ("expired", 0)]
    assert [s.days for s in kinds(sent, "approaching")] == [5, 4, 3, 2, 1]
    both = [s.at for s in sent if s.days == 3]
    assert both == [NOT_AFTER - 3 * DAY] * 2  # one look sends the approaching notice and the action one


def test_passed_thresholds_collapse_into_one() -> None:
    notice_facts = facts("PRIVATE", needs_action="DOMAIN_VALIDATION_DENIED")
    now = NOT_AFTER - 10 * DAY  # 45, 30 and 15 days have passed unseen
    due = due_notices(notice_facts, NoticeState(), now)
    assert due.action_required
    assert due.state.action_days == (15,)
    assert due.next_at == NOT_AFTER - 9 * DAY  # the next approaching notice
    assert first_notice_at(replace(notice_facts, days_before_expiry=1), due.state, now) == NOT_AFTER - 3 * DAY
    again = due_notices(notice_facts, due.state, now + timedelta(hours=5))
    assert not again.action_required


def test_action_required_only_while_action_is_needed() -> None:
    needed = facts(needs_action="CAA_ERROR")
    fine = facts(needs_action=None)
    _, state = sweep(needed, [NOT_AFTER - 29 * DAY])
    assert state.action_days == (30,)
    sent, state = sweep(fine, days_walk(NOT_AFTER - 28 * DAY, NOT_AFTER - 4 * DAY), state)
    assert kinds(sent, "action") == []  # renewal went through, or the user fixed it
    assert first_notice_at(fine, state, NOT_AFTER - 4 * DAY + TICK) == NOT_AFTER - 3 * DAY  # the next approaching one
    sent, state = sweep(needed, [NOT_AFTER - 2 * DAY], state)  # needed again: the 3-day threshold, once
    assert [s.kind for s in sent] == ["approaching", "action"]
    assert state.action_days == (30, 3)


def test_no_action_required_once_expired() -> None:
    notice_facts = facts("PRIVATE", needs_action="PENDING_DOMAIN_VALIDATION")
    due = due_notices(notice_facts, NoticeState(), NOT_AFTER)
    assert (due.approaching, due.action_required, due.expired) == (False, False, True)
    assert due.next_at is None


def test_expired_once_for_every_type() -> None:
    for certificate_type in ("AMAZON_ISSUED", "PRIVATE", "IMPORTED"):
        notice_facts = facts(certificate_type)
        assert not due_notices(notice_facts, NoticeState(), NOT_AFTER - TICK).expired
        first = due_notices(notice_facts, NoticeState(), NOT_AFTER)
        assert first.expired and first.next_at is None
        assert not due_notices(notice_facts, first.state, NOT_AFTER + 30 * DAY).anything


@pytest.mark.parametrize("seed", range(40))
def test_next_at_is_exact_and_never_in_the_past(seed: int) -> None:
    """A sweep that looks only at rows whose next_at has come sends what a sweep looking every time sends."""
    rng = random.Random(seed)
    certificate_type = rng.choice(["AMAZON_ISSUED", "PRIVATE", "IMPORTED"])
    not_after = NOT_BEFORE + rng.choice([7, 30, 90, 395]) * DAY + timedelta(seconds=rng.randrange(86400))
    dbe = rng.randint(1, 45)
    reasons = [None, "PENDING_DOMAIN_VALIDATION", "OTHER"]
    times = sorted(NOT_BEFORE + timedelta(seconds=rng.uniform(0, (not_after - NOT_BEFORE).total_seconds() + 86400 * 3))
                   for _ in range(rng.randint(5, 400)))
    needs = [rng.choice(reasons) if rng.random() < 0.1 else None for _ in times]
    for i in range(1, len(needs)):  # needing action lasts a while
        if needs[i] is None and rng.random() < 0.9:
            needs[i] = needs[i - 1]
    always, gated = NoticeState(), NoticeState()
    next_at: datetime | None = NOT_BEFORE
    previous: str | None = None
    for now, need in zip(times, needs, strict=True):
        notice_facts = facts(certificate_type, dbe, need, not_after)
        due = due_notices(notice_facts, always, now)
        assert due.next_at is None or due.next_at > now
        if due.next_at is not None:  # exact: something is due at next_at and nothing just before it
            assert due_notices(notice_facts, due.state, due.next_at).anything
            assert not due_notices(notice_facts, due.state, due.next_at - TICK).anything
        always = due.state
        if need != previous:  # the service sets next_at again when the need for action changes
            next_at, previous = first_notice_at(notice_facts, gated, now), need
        if next_at is not None and next_at <= now:
            gated_due = due_notices(notice_facts, gated, now)
            gated, next_at = gated_due.state, gated_due.next_at
        else:
            assert not due_notices(notice_facts, gated, now).anything
        assert gated == always


def test_state_json_round_trip() -> None:
    state = NoticeState(approaching_day=12, action_days=(30, 15), expired=False, approaching_slot=13)
    assert state.to_json() == {"approaching_day": 12, "approaching_slot": 13, "action_days": [30, 15], "expired": False}
    assert NoticeState.from_json(state.to_json()) == state
    assert NoticeState.from_json(None) == NoticeState()
    assert NoticeState.from_json({}) == NoticeState()
    assert NoticeState.from_json({"approaching_day": 3}) == NoticeState(approaching_day=3)


@pytest.mark.parametrize(("data", "message"), [
    ({"approaching_day": "3"}, "approaching_day must be an integer or null"),
    ({"action_days": [30, True]}, "action_days must be a list of integers"),
    ({"expired": "yes"}, "expired must be true or false"),
])
def test_malformed_state_is_refused(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        NoticeState.from_json(data)


@pytest.mark.parametrize("dbe", [0, 46, -1, True])
def test_days_before_expiry_must_be_1_to_45(dbe: int) -> None:
    with pytest.raises(ValueError, match=r"DaysBeforeExpiry is .*; it must be a whole number from 1 to 45"):
        facts(dbe=dbe)


def test_times_must_be_aware() -> None:
    with pytest.raises(ValueError, match="not_after must be timezone-aware"):
        NoticeFacts("PRIVATE", datetime(2027, 1, 1), 45, None)
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        due_notices(facts(), NoticeState(), datetime(2027, 1, 1))


def test_notice_events() -> None:
    certificate = CertificateFacts(
        arn="arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-4333-8444-555555555555",
        certificate_type="PRIVATE", common_name="db.example.internal", names=("db.example.internal",),
        not_before=NOT_BEFORE, not_after=NOT_AFTER, created_at=NOT_BEFORE, key_pair_origin="AWS_MANAGED",
        validation_method=None, in_use=True, exported=True)
    notice_facts = facts("PRIVATE", needs_action="PCA_REQUEST_FAILED")
    now = NOT_AFTER - 30 * DAY
    due = due_notices(notice_facts, NoticeState(), now)
    made = notice_events(due, certificate, notice_facts, now)
    assert [e.detail_type for e in made] == [events.APPROACHING, events.ACTION_REQUIRED]
    assert made[0].detail["DaysToExpiry"] == 30 and made[1].detail["RenewalStatusReason"] == "PCA_REQUEST_FAILED"
    done = due_notices(notice_facts, due.state, NOT_AFTER)
    assert [e.detail_type for e in notice_events(done, certificate, notice_facts, NOT_AFTER)] == [events.EXPIRED]
    assert notice_events(due_notices(notice_facts, done.state, NOT_AFTER + DAY), certificate, notice_facts,
                         NOT_AFTER + DAY) == []


def test_after_renewal_the_state_starts_over() -> None:
    sent, _ = sweep(facts(needs_action="OTHER"), [NOT_AFTER - 5 * DAY])
    assert [s.kind for s in sent] == ["approaching", "action"]
    renewed = facts(not_after=NOT_AFTER + 90 * DAY)
    assert first_notice_at(renewed, NoticeState(), NOT_AFTER - 5 * DAY) == NOT_AFTER + 45 * DAY
