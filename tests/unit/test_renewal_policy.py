"""The renewal plan: default rule, spread, renew-before overrides, ARI, maintenance windows, retries, eligibility."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from certsmith.domain.clock import FixedClock
from certsmith.domain.errors import ValidationError
from certsmith.domain.maintenance import MaintenanceWindow
from certsmith.domain.renewal import (
    AriWindow,
    RenewalPolicy,
    RenewBefore,
    default_margin,
    late_start,
    plan_renewal,
    renewal_eligibility,
    retry_at,
    spread,
)

ISSUED = datetime(2026, 1, 1, 12, tzinfo=UTC)
KEY = "arn:aws:acm:eu-central-1:123456789012:certificate/0b9e4c1e-1111-4b0c-9a4e-5a2f7d3c0001"
DEFAULT = RenewalPolicy()


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def days(n: float) -> timedelta:
    return timedelta(days=n)


def policy(text: str, source: str = "tag:env=prod", windows: tuple[MaintenanceWindow, ...] = ()) -> RenewalPolicy:
    return RenewalPolicy(renew_before=RenewBefore.parse(text), windows=windows, source=source)


# --- the default rule ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("lifetime", "margin"), [
    (days(395), days(60)),                          # 13 months
    (days(181), days(60)),
    (days(180), days(60)),                          # a third of 180 days is 60 days as well
    (days(90), days(30)),                           # ACME
    (days(90) - timedelta(seconds=1), timedelta(days=29, hours=23, minutes=59, seconds=59)),  # NotAfter inclusive
    (days(7), timedelta(days=2, hours=8)),          # short-lived
    (timedelta(0), timedelta(0)),
])
def test_default_margin(lifetime: timedelta, margin: timedelta) -> None:
    assert default_margin(ISSUED, ISSUED + lifetime) == margin


@pytest.mark.parametrize(("lifetime", "margin", "words"), [
    (days(395), days(60), "60 days before expiry (lifetime over 180 days), spread by "),
    (days(90), days(30), "a third of the lifetime before expiry (lifetime 90 days), spread by "),
    (days(7), timedelta(days=2, hours=8), "a third of the lifetime before expiry (lifetime 7 days), spread by "),
])
def test_default_plan(lifetime: timedelta, margin: timedelta, words: str) -> None:
    not_after = ISSUED + lifetime
    plan = plan_renewal(ISSUED, not_after, DEFAULT, KEY)
    assert plan.at == not_after - margin - spread(KEY, margin)
    assert not_after - margin - margin / 10 < plan.at <= not_after - margin
    assert plan.reason.startswith(words)
    assert plan.source == "default"
    assert plan.at.tzinfo is UTC


def test_times_must_carry_a_zone() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        plan_renewal(datetime(2026, 1, 1), datetime(2026, 4, 1), DEFAULT, KEY)


def test_the_plan_is_the_same_every_time() -> None:
    first = plan_renewal(ISSUED, ISSUED + days(90), DEFAULT, KEY)
    assert plan_renewal(ISSUED, ISSUED + days(90), DEFAULT, KEY) == first


# --- spread -------------------------------------------------------------------------------------------------

def test_spread_is_deterministic_in_range_and_depends_on_the_key() -> None:
    margin = days(30)
    assert spread(KEY, margin) == spread(KEY, margin)
    assert timedelta(0) <= spread(KEY, margin) < margin / 10
    assert spread(KEY, margin) != spread(KEY + "2", margin)
    assert spread(KEY, timedelta(0)) == timedelta(0)
    assert spread(KEY, timedelta(seconds=5)) == timedelta(0)
    assert spread(KEY, -days(1)) == timedelta(0)


def test_a_fleet_issued_in_the_same_second_renews_over_the_whole_spread() -> None:
    not_after = ISSUED + days(90)
    keys = [f"arn:aws:acm:eu-central-1:123456789012:certificate/{n:08d}" for n in range(1000)]
    plans = [plan_renewal(ISSUED, not_after, DEFAULT, key).at for key in keys]
    latest = not_after - days(30)
    earliest = latest - days(3)
    assert all(earliest < at <= latest for at in plans)
    assert len(set(plans)) > 990
    buckets = {int((latest - at) / (days(3) / 10)) for at in plans}
    assert buckets == set(range(10))  # every tenth of the range is used
    assert max(plans) - min(plans) > days(3) * 0.95


# --- renew-before -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "duration", "percent", "canonical"), [
    ("30d", days(30), None, "30d"),
    ("720h", days(30), None, "30d"),
    ("90m", timedelta(minutes=90), None, "1h30m"),
    ("1d12h", timedelta(hours=36), None, "1d12h"),
    ("33%", None, 33.0, "33%"),
    ("12.5%", None, 12.5, "12.5%"),
    ("1%", None, 1.0, "1%"),
    ("99%", None, 99.0, "99%"),
])
def test_renew_before_parses_and_prints_canonically(text: str, duration: timedelta | None, percent: float | None,
                                                    canonical: str) -> None:
    parsed = RenewBefore.parse(text)
    assert (parsed.duration, parsed.percent) == (duration, percent)
    assert str(parsed) == canonical
    assert RenewBefore.parse(str(parsed)) == parsed


@pytest.mark.parametrize(("text", "words"), [
    ("30x", "unknown unit 'x'"),
    ("0%", "between 1% and 99%"),
    ("100%", "between 1% and 99%"),
    ("0.5%", "between 1% and 99%"),
    ("-30d", "negative"),
    ("-5%", "negative"),
    ("", "is empty"),
    ("   ", "is empty"),
    ("30", "without a unit"),
    ("0d", "is zero"),
    ("thirty days", "not a duration"),
    ("12h1d", "in the order d, h, m"),
    ("1e1%", "not a percentage"),
    ("%", "not a percentage"),
    ("99999d", "too long"),
])
def test_renew_before_errors_name_the_field_and_the_problem(text: str, words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        RenewBefore.parse(text)
    assert caught.value.field == "RenewBefore"
    assert caught.value.message.startswith("RenewBefore")
    assert words in caught.value.message


def test_renew_before_errors_use_the_callers_field_name() -> None:
    with pytest.raises(ValidationError) as caught:
        RenewBefore.parse("30", field="RenewalPolicy.RenewBefore")
    assert caught.value.field == "RenewalPolicy.RenewBefore"


def test_renew_before_sets_exactly_one_thing() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        RenewBefore()
    with pytest.raises(ValueError, match="exactly one"):
        RenewBefore(duration=days(1), percent=10)


def test_margins() -> None:
    assert RenewBefore.parse("30d").margin(ISSUED, ISSUED + days(395)) == days(30)
    assert RenewBefore.parse("50%").margin(ISSUED, ISSUED + days(90)) == days(45)
    assert RenewBefore.parse("12.5%").margin(ISSUED, ISSUED + days(8)) == days(1)


def test_a_duration_override_replaces_the_default_rule() -> None:
    not_after = ISSUED + days(395)
    plan = plan_renewal(ISSUED, not_after, policy("30d"), KEY)
    assert plan.at == not_after - days(30) - spread(KEY, days(30))
    assert plan.reason.startswith("renew-before 30d (tag:env=prod)")
    assert plan.source == "tag:env=prod"


def test_a_percent_override_replaces_the_default_rule() -> None:
    not_after = ISSUED + days(90)
    plan = plan_renewal(ISSUED, not_after, policy("50%", source="account"), KEY)
    assert plan.at == not_after - days(45) - spread(KEY, days(45))
    assert plan.reason.startswith("renew-before 50% of the lifetime, 45d before expiry (lifetime 90 days) (account)")
    assert plan.source == "account"


def test_a_margin_longer_than_the_lifetime_falls_back_to_the_default_and_says_so() -> None:
    # Renewing at once would renew every new certificate at once again, for ever.
    plan = plan_renewal(ISSUED, ISSUED + days(7), policy("30d"), KEY)
    assert plan == plan_renewal(ISSUED, ISSUED + days(7), DEFAULT, KEY).__class__(
        plan_renewal(ISSUED, ISSUED + days(7), DEFAULT, KEY).at, plan.reason, "default")
    assert plan.at > ISSUED + days(4)
    assert "renew-before 30d" in plan.reason and "not shorter than the lifetime (7 days)" in plan.reason


def test_the_plan_stays_inside_the_validity() -> None:
    tiny = plan_renewal(ISSUED, ISSUED + timedelta(seconds=30), DEFAULT, KEY)
    assert tiny.at == ISSUED
    not_after = ISSUED + days(90)
    late = AriWindow(start=not_after - timedelta(seconds=30), end=not_after - timedelta(seconds=10))
    assert plan_renewal(ISSUED, not_after, DEFAULT, KEY, late).at == not_after - timedelta(minutes=1)


# --- ACME renewal information (RFC 9773) --------------------------------------------------------------------

def test_ari_replaces_the_default_rule_with_a_point_inside_the_window() -> None:
    not_after = ISSUED + days(90)
    for start in (utc(2026, 2, 1), utc(2026, 3, 10)):  # before and after the default rule's point (about 2026-03-02)
        ari = AriWindow(start=start, end=start + days(2), retry_after=start - days(1))
        plan = plan_renewal(ISSUED, not_after, DEFAULT, KEY, ari)
        assert start <= plan.at < start + days(2)
        assert plan.source == "ari"
        assert plan.reason == (f"inside the CA's renewal window {start:%Y-%m-%d} 00:00 to "
                               f"{start + days(2):%Y-%m-%d} 00:00 (ARI)")


def test_ari_points_are_stable_per_key_and_spread_over_the_window() -> None:
    ari = AriWindow(start=utc(2026, 3, 1), end=utc(2026, 3, 3))
    not_after = ISSUED + days(90)
    points = [plan_renewal(ISSUED, not_after, DEFAULT, f"cert-{n}", ari).at for n in range(200)]
    assert points == [plan_renewal(ISSUED, not_after, DEFAULT, f"cert-{n}", ari).at for n in range(200)]
    assert all(ari.start <= at < ari.end for at in points)
    assert max(points) - min(points) > days(1.8)


def test_an_ari_window_in_the_past_means_renew_now() -> None:
    ari = AriWindow(start=ISSUED - days(3), end=ISSUED - days(2))
    plan = plan_renewal(ISSUED, ISSUED + days(90), DEFAULT, KEY, ari)
    assert plan.at == ISSUED  # never before the certificate's own NotBefore; the scheduler renews at once
    assert plan.source == "ari"


def test_an_empty_ari_window_means_its_start() -> None:
    ari = AriWindow(start=utc(2026, 3, 1), end=utc(2026, 3, 1))
    assert plan_renewal(ISSUED, ISSUED + days(90), DEFAULT, KEY, ari).at == utc(2026, 3, 1)


def test_an_ari_window_after_expiry_is_ignored() -> None:
    not_after = ISSUED + days(90)
    ari = AriWindow(start=not_after + days(1), end=not_after + days(2))
    plan = plan_renewal(ISSUED, not_after, DEFAULT, KEY, ari)
    assert (plan.at, plan.source) == (plan_renewal(ISSUED, not_after, DEFAULT, KEY).at, "default")
    assert "starts after expiry, ignored" in plan.reason


def test_an_explicit_renew_before_earlier_than_ari_wins() -> None:
    not_after = ISSUED + days(90)
    ari = AriWindow(start=utc(2026, 3, 1), end=utc(2026, 3, 3))
    plan = plan_renewal(ISSUED, not_after, policy("45d"), KEY, ari)
    assert plan.at == not_after - days(45) - spread(KEY, days(45))
    assert plan.source == "tag:env=prod"
    assert plan.reason.startswith("renew-before 45d (tag:env=prod)")


def test_ari_earlier_than_an_explicit_renew_before_wins() -> None:
    not_after = ISSUED + days(90)
    ari = AriWindow(start=utc(2026, 3, 1), end=utc(2026, 3, 3))
    plan = plan_renewal(ISSUED, not_after, policy("7d"), KEY, ari)
    assert ari.start <= plan.at < ari.end
    assert plan.source == "ari"
    assert "(ARI), earlier than renew-before 7d (tag:env=prod)" in plan.reason


# --- maintenance windows ------------------------------------------------------------------------------------

SATURDAY_NIGHT = MaintenanceWindow.parse("0 2 * * 6", "4h", "Europe/Berlin")


def test_a_plan_moves_to_the_next_maintenance_window() -> None:
    not_after = ISSUED + days(90)
    bare = plan_renewal(ISSUED, not_after, DEFAULT, KEY)
    assert utc(2026, 2, 27) < bare.at < utc(2026, 2, 28)  # a Friday; Berlin is still on winter time
    plan = plan_renewal(ISSUED, not_after, RenewalPolicy(windows=(SATURDAY_NIGHT,), source="account"), KEY)
    assert plan.at == utc(2026, 2, 28, 1)
    assert plan.reason == bare.reason + ", moved to the maintenance window opening 2026-02-28 01:00 UTC"
    assert plan.reason.startswith("a third of the lifetime before expiry")
    assert plan.source == "account"


def test_a_plan_moves_into_a_window_after_the_spring_dst_change() -> None:
    not_after = utc(2026, 4, 30)
    plan = plan_renewal(not_after - days(90), not_after, RenewalPolicy(windows=(SATURDAY_NIGHT,)), KEY)
    assert plan.at == utc(2026, 4, 4, 0)  # 02:00 CEST


def test_a_plan_already_inside_a_window_stays() -> None:
    always = MaintenanceWindow.parse("0 0 * * *", "1d")
    bare = plan_renewal(ISSUED, ISSUED + days(90), DEFAULT, KEY)
    plan = plan_renewal(ISSUED, ISSUED + days(90), RenewalPolicy(windows=(always,)), KEY)
    assert (plan.at, plan.reason) == (bare.at, bare.reason)


def test_when_the_next_window_opens_too_late_the_plan_is_the_deadline() -> None:
    new_year = MaintenanceWindow.parse("0 2 1 1 *", "4h", "Europe/Berlin")
    not_after = ISSUED + days(90)
    plan = plan_renewal(ISSUED, not_after, policy("30d", windows=(new_year,)), KEY)
    assert plan.at == not_after - days(15)  # half the margin before expiry
    assert plan.reason.startswith("expiry is near: the maintenance window opening 2027-01-01 01:00 UTC opens too late")
    assert "renew-before 30d (tag:env=prod)" in plan.reason


def test_a_window_that_never_opens_leaves_the_deadline() -> None:
    never = MaintenanceWindow(cron="0 0 30 2 *", duration=timedelta(hours=1), timezone="UTC")
    not_after = ISSUED + days(90)
    plan = plan_renewal(ISSUED, not_after, RenewalPolicy(windows=(never,)), KEY)
    assert plan.at == not_after - days(15)
    assert plan.reason.startswith("expiry is near: no maintenance window opens in the next 400 days")


def test_ari_then_window() -> None:
    ari = AriWindow(start=utc(2026, 3, 2), end=utc(2026, 3, 3))  # Monday
    plan = plan_renewal(ISSUED, ISSUED + days(90), RenewalPolicy(windows=(SATURDAY_NIGHT,)), KEY, ari)
    assert plan.at == utc(2026, 3, 7, 1)
    assert plan.source == "ari"
    assert plan.reason.startswith("inside the CA's renewal window")


# --- retries ------------------------------------------------------------------------------------------------

def test_retries_back_off_exponentially_up_to_six_hours() -> None:
    clock = FixedClock(ISSUED + days(60))
    not_after = ISSUED + days(90)
    waits = []
    for attempts in range(1, 13):
        at = retry_at(clock.now(), attempts, not_after)
        assert at is not None
        waits.append(at - clock.now())
        clock.advance(at - clock.now())
    minutes = [int(wait / timedelta(minutes=1)) for wait in waits]
    assert minutes == [1, 2, 4, 8, 16, 32, 64, 128, 256, 360, 360, 360]
    assert retry_at(clock.now(), 10**6, not_after) == clock.now() + timedelta(hours=6)
    assert retry_at(clock.now(), 0, not_after) == clock.now() + timedelta(minutes=1)


def test_retries_never_go_past_expiry_and_stop_there() -> None:
    not_after = ISSUED + days(90)
    clock = FixedClock(not_after - timedelta(hours=1))
    assert retry_at(clock.now(), 20, not_after) == not_after
    clock.advance(timedelta(hours=1))
    assert retry_at(clock.now(), 1, not_after) is None
    clock.advance(timedelta(seconds=1))
    assert retry_at(clock.now(), 1, not_after) is None


# --- eligibility --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("certificate_type", "status", "names", "exported", "in_use", "strict", "expected"), [
    ("PRIVATE", "ISSUED", ["www.example.com"], False, False, False, "ELIGIBLE"),
    ("AMAZON_ISSUED", "ISSUED", ["example.com", "*.example.com"], False, False, False, "ELIGIBLE"),
    ("IMPORTED", "ISSUED", ["www.example.com"], True, True, False, "INELIGIBLE"),
    ("IMPORTED", "ISSUED", ["www.example.com"], True, True, True, "INELIGIBLE"),
    ("PRIVATE", "EXPIRED", ["www.example.com"], True, True, False, "INELIGIBLE"),
    ("PRIVATE", "PENDING_VALIDATION", ["www.example.com"], False, False, False, "INELIGIBLE"),
    ("AMAZON_ISSUED", "REVOKED", ["www.example.com"], True, True, False, "INELIGIBLE"),
    ("PRIVATE", "ISSUED", ["ab--cd.example.com"], True, True, False, "INELIGIBLE"),
    ("PRIVATE", "ISSUED", ["www.ab--cd.example.com"], True, True, False, "INELIGIBLE"),
    ("PRIVATE", "ISSUED", ["*.ab--cd.example.com"], True, True, False, "INELIGIBLE"),
    ("PRIVATE", "ISSUED", ["xn--bcher-kva.example"], False, False, False, "ELIGIBLE"),
    ("PRIVATE", "ISSUED", ["*.XN--bcher-kva.example"], False, False, False, "ELIGIBLE"),
    ("PRIVATE", "ISSUED", ["a--b.example.com"], False, False, False, "ELIGIBLE"),  # "--" at 2nd-3rd, not 3rd-4th
    ("PRIVATE", "ISSUED", ["www.example.com"], False, False, True, "INELIGIBLE"),
    ("PRIVATE", "ISSUED", ["www.example.com"], True, False, True, "ELIGIBLE"),
    ("AMAZON_ISSUED", "ISSUED", ["www.example.com"], False, True, True, "ELIGIBLE"),
    ("SOMETHING_ELSE", "ISSUED", ["www.example.com"], True, True, False, "INELIGIBLE"),
])
def test_eligibility(certificate_type: str, status: str, names: list[str], exported: bool, in_use: bool, strict: bool,
                     expected: str) -> None:
    assert renewal_eligibility(certificate_type=certificate_type, status=status, names=names, exported=exported,
                               in_use=in_use, strict=strict) == expected


def test_a_renewal_found_after_its_window_closed_waits_for_the_next_one_unless_expiry_is_near() -> None:
    saturdays = (MaintenanceWindow.parse("0 0 * * 6", "24h", "UTC"),)  # 2026-01-03 is a Saturday
    windowed = RenewalPolicy(windows=saturdays, source="account")
    not_after = ISSUED + days(90)  # margin 30 d: the deadline is 15 d before expiry, 2026-03-17 12:00
    assert late_start(ISSUED + days(60), ISSUED, not_after, DEFAULT) is None  # no windows: now
    saturday = datetime(2026, 3, 7, 10, tzinfo=UTC)
    assert late_start(saturday, ISSUED, not_after, windowed) is None  # inside a window: now
    assert late_start(datetime(2026, 3, 8, 1, tzinfo=UTC), ISSUED, not_after, windowed) == \
        datetime(2026, 3, 14, tzinfo=UTC)  # the next Saturday opens before the deadline
    assert late_start(datetime(2026, 3, 15, 1, tzinfo=UTC), ISSUED, not_after, windowed) == \
        not_after - days(15)  # the next opens after the deadline: the deadline
    assert late_start(not_after - days(10), ISSUED, not_after, windowed) is None  # past the deadline: now
