"""Maintenance windows: cron in a time zone, durations, DST, windows that never open."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from certsmith.domain.clock import FixedClock
from certsmith.domain.errors import ValidationError
from certsmith.domain.maintenance import (
    MaintenanceWindow,
    format_duration,
    human_duration,
    next_opening,
    parse_duration,
)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# Saturdays 02:00 in Berlin for 4 hours; Berlin moves to summer time on Sunday 2026-03-29 and back on 2026-10-25.
SATURDAY_NIGHT = MaintenanceWindow.parse("0 2 * * 6", "4h", "Europe/Berlin")


@pytest.mark.parametrize(("text", "expected"), [
    ("90m", timedelta(minutes=90)),
    ("4h", timedelta(hours=4)),
    ("2d", timedelta(days=2)),
    ("1h30m", timedelta(minutes=90)),
    ("1d12h", timedelta(hours=36)),
    (" 4H ", timedelta(hours=4)),
])
def test_durations_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text, field="D", maximum=timedelta(days=31)) == expected


@pytest.mark.parametrize(("duration", "text"), [
    (timedelta(minutes=90), "1h30m"),
    (timedelta(hours=36), "1d12h"),
    (timedelta(days=30), "30d"),
    (timedelta(days=1, minutes=5), "1d5m"),
])
def test_durations_have_one_canonical_text_that_reads_back(duration: timedelta, text: str) -> None:
    assert format_duration(duration) == text
    assert parse_duration(text, field="D", maximum=timedelta(days=31)) == duration


def test_human_durations_keep_the_two_largest_units() -> None:
    assert human_duration(timedelta(days=2, hours=4, minutes=13, seconds=7)) == "2d 4h"
    assert human_duration(timedelta(hours=11)) == "11h"
    assert human_duration(timedelta(seconds=42)) == "42s"
    assert human_duration(timedelta(0)) == "0s"


def test_parse_keeps_the_cron_and_describes_itself() -> None:
    window = MaintenanceWindow.parse("0  2 * *   6", "4h", "Europe/Berlin")
    assert window == MaintenanceWindow(cron="0 2 * * 6", duration=timedelta(hours=4), timezone="Europe/Berlin")
    assert window.describe() == "0 2 * * 6 (Europe/Berlin) for 4h"
    assert MaintenanceWindow.parse("30 1 * * *", "90m").describe() == "30 1 * * * (UTC) for 1h30m"


@pytest.mark.parametrize(("cron", "duration", "zone", "field", "words"), [
    ("0 2 * *", "4h", "UTC", "MaintenanceWindows.Cron", "has 4 fields"),
    ("0 0 2 * * 6", "4h", "UTC", "MaintenanceWindows.Cron", "has 6 fields"),
    ("61 2 * * 6", "4h", "UTC", "MaintenanceWindows.Cron", "bad minute"),
    ("0 2 * * MONDAY", "4h", "UTC", "MaintenanceWindows.Cron", "bad day-of-week"),
    ("", "4h", "UTC", "MaintenanceWindows.Cron", "is empty"),
    ("0 0 30 2 *", "1h", "UTC", "MaintenanceWindows.Cron", "never opens"),
    ("0 2 * * 6", "0m", "UTC", "MaintenanceWindows.Duration", "is zero"),
    ("0 2 * * 6", "32d", "UTC", "MaintenanceWindows.Duration", "maximum is 31d"),
    ("0 2 * * 6", "-4h", "UTC", "MaintenanceWindows.Duration", "negative"),
    ("0 2 * * 6", "4", "UTC", "MaintenanceWindows.Duration", "without a unit"),
    ("0 2 * * 6", "4w", "UTC", "MaintenanceWindows.Duration", "unknown unit 'w'"),
    ("0 2 * * 6", "30m1h", "UTC", "MaintenanceWindows.Duration", "in the order d, h, m"),
    ("0 2 * * 6", "", "UTC", "MaintenanceWindows.Duration", "is empty"),
    ("0 2 * * 6", "4h", "Mars/Olympus", "MaintenanceWindows.Timezone", "not a known IANA time zone"),
    ("0 2 * * 6", "4h", "../../etc/passwd", "MaintenanceWindows.Timezone", "not a known IANA time zone"),
    ("0 2 * * 6", "4h", "", "MaintenanceWindows.Timezone", "is empty"),
])
def test_parse_errors_name_the_field_and_the_problem(cron: str, duration: str, zone: str, field: str,
                                                     words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        MaintenanceWindow.parse(cron, duration, zone)
    assert caught.value.field == field
    assert caught.value.message.startswith(field)
    assert words in caught.value.message


def test_parse_errors_use_the_callers_field_name() -> None:
    with pytest.raises(ValidationError) as caught:
        MaintenanceWindow.parse("0 2 * * 6", "4x", "UTC", field="RenewalPolicy.MaintenanceWindows[1]")
    assert caught.value.field == "RenewalPolicy.MaintenanceWindows[1].Duration"


def test_a_window_must_last_a_while() -> None:
    with pytest.raises(ValueError, match="positive"):
        MaintenanceWindow(cron="0 2 * * 6", duration=timedelta(0), timezone="UTC")


def test_weekly_window_in_berlin_follows_local_time_across_the_spring_dst_change() -> None:
    clock = FixedClock(utc(2026, 3, 27, 12))
    # Saturday 2026-03-28 02:00 CET is 01:00 UTC.
    assert SATURDAY_NIGHT.opening(clock.now()) == (utc(2026, 3, 28, 1), utc(2026, 3, 28, 5))
    clock.advance(timedelta(hours=13, minutes=30))
    assert SATURDAY_NIGHT.contains(clock.now())
    assert SATURDAY_NIGHT.opening(clock.now()) == (clock.now(), utc(2026, 3, 28, 5))
    clock.advance(timedelta(hours=3, minutes=30))  # 05:00 UTC: the end is not part of the window
    assert not SATURDAY_NIGHT.contains(clock.now())
    # A week later Berlin is on summer time: Saturday 2026-04-04 02:00 CEST is 00:00 UTC.
    assert SATURDAY_NIGHT.opening(clock.now()) == (utc(2026, 4, 4, 0), utc(2026, 4, 4, 4))


def test_weekly_window_in_berlin_across_the_autumn_dst_change() -> None:
    assert SATURDAY_NIGHT.opening(utc(2026, 10, 20)) == (utc(2026, 10, 24, 0), utc(2026, 10, 24, 4))
    assert SATURDAY_NIGHT.opening(utc(2026, 10, 25)) == (utc(2026, 10, 31, 1), utc(2026, 10, 31, 5))


def test_a_start_that_does_not_exist_locally_opens_when_the_clocks_have_moved() -> None:
    window = MaintenanceWindow.parse("30 2 * * 0", "1h", "Europe/Berlin")
    # 02:30 does not happen on 2026-03-29 in Berlin; the window opens at 03:00 CEST (01:00 UTC).
    assert window.opening(utc(2026, 3, 28, 12)) == (utc(2026, 3, 29, 1), utc(2026, 3, 29, 2))
    # 02:30 happens twice on 2026-10-25; the window opens at the first (02:30 CEST, 00:30 UTC).
    assert window.opening(utc(2026, 10, 24, 12)) == (utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30))
    assert not window.contains(utc(2026, 10, 25, 1, 45))


def test_duration_is_elapsed_time_even_when_the_clocks_change_inside_the_window() -> None:
    window = MaintenanceWindow.parse("0 1 * * 0", "3h", "Europe/Berlin")
    start, end = window.opening(utc(2026, 3, 28, 12)) or (None, None)
    assert (start, end) == (utc(2026, 3, 29, 0), utc(2026, 3, 29, 3))


def test_opening_at_the_very_start_and_between_seconds() -> None:
    window = MaintenanceWindow.parse("0 2 * * *", "1h")
    assert window.opening(utc(2026, 5, 1, 2)) == (utc(2026, 5, 1, 2), utc(2026, 5, 1, 3))
    inside = utc(2026, 5, 1, 2, 59, 59) + timedelta(microseconds=500)
    assert window.opening(inside) == (inside, utc(2026, 5, 1, 3))
    before = utc(2026, 5, 1, 1, 59, 59) + timedelta(microseconds=999_999)
    assert window.opening(before) == (utc(2026, 5, 1, 2), utc(2026, 5, 1, 3))
    assert window.opening(utc(2026, 5, 1, 3)) == (utc(2026, 5, 2, 2), utc(2026, 5, 2, 3))


def test_overlapping_windows_report_the_latest_end() -> None:
    hourly = MaintenanceWindow.parse("0 * * * *", "2h")
    assert hourly.opening(utc(2026, 5, 1, 10, 30)) == (utc(2026, 5, 1, 10, 30), utc(2026, 5, 1, 12))


def test_results_are_utc_whatever_zone_the_question_was_asked_in() -> None:
    tokyo = timezone(timedelta(hours=9))
    opening = SATURDAY_NIGHT.opening(datetime(2026, 4, 1, 9, tzinfo=tokyo))
    assert opening == (utc(2026, 4, 4, 0), utc(2026, 4, 4, 4))
    assert opening is not None and opening[0].tzinfo is UTC
    with pytest.raises(ValueError, match="timezone-aware"):
        SATURDAY_NIGHT.opening(datetime(2026, 4, 1))


def test_a_cron_that_never_fires_never_opens() -> None:
    never = MaintenanceWindow(cron="0 0 30 2 *", duration=timedelta(hours=1), timezone="UTC")
    assert never.opening(utc(2026, 1, 1)) is None
    assert not never.contains(utc(2026, 2, 28))


def test_a_window_further_away_than_400_days_counts_as_never() -> None:
    leap_day = MaintenanceWindow.parse("0 0 29 2 *", "1h")
    assert leap_day.opening(utc(2026, 3, 1)) is None
    assert leap_day.opening(utc(2027, 3, 1)) == (utc(2028, 2, 29), utc(2028, 2, 29, 1))
    assert leap_day.contains(utc(2028, 2, 29, 0, 30))


def test_next_opening_is_the_earliest_over_all_windows() -> None:
    daily_utc = MaintenanceWindow.parse("0 22 * * *", "1h")
    never = MaintenanceWindow(cron="0 0 30 2 *", duration=timedelta(hours=1), timezone="UTC")
    at = utc(2026, 4, 3, 23, 30)  # Friday night
    assert next_opening([SATURDAY_NIGHT, daily_utc, never], at) == (utc(2026, 4, 4, 0), utc(2026, 4, 4, 4))
    assert next_opening([daily_utc, SATURDAY_NIGHT], utc(2026, 4, 4, 22, 15)) == (utc(2026, 4, 4, 22, 15),
                                                                                   utc(2026, 4, 4, 23))
    assert next_opening([never], at) is None
    assert next_opening([], at) is None


def test_next_opening_prefers_the_longer_window_on_a_tie() -> None:
    short = MaintenanceWindow.parse("0 2 * * *", "1h")
    long = MaintenanceWindow.parse("0 2 * * *", "3h")
    assert next_opening([short, long], utc(2026, 5, 1)) == (utc(2026, 5, 1, 2), utc(2026, 5, 1, 5))
