"""Maintenance windows: recurring periods, given by a cron expression in a time zone, when renewal may run.

Also home to the short duration text ("90m", "4h", "1d12h") that renewal settings share.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from .errors import ValidationError

__all__ = [
    "LOOKAHEAD",
    "MAX_WINDOW",
    "MaintenanceWindow",
    "format_duration",
    "human_duration",
    "next_opening",
    "parse_duration",
]

MAX_WINDOW = timedelta(days=31)
LOOKAHEAD = timedelta(days=400)  # a window that does not open within this long counts as never opening

_UNITS = {"d": 1440, "h": 60, "m": 1}  # minutes per unit, in the order the text must use them
_PART = re.compile(r"(\d+)([a-z]*)")
_CRON_FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "...")


def parse_duration(text: str, *, field: str, maximum: timedelta) -> timedelta:
    """A positive whole-minute duration from text such as "90m", "4h", "2d" or "1d12h"."""
    if not isinstance(text, str):
        raise ValidationError(f"{field} must be a string such as 30d, 12h or 90m", field=field)
    value = text.strip().lower()
    if not value:
        raise ValidationError(f"{field} is empty; give a duration such as 30d, 12h or 90m", field=field)
    if value.startswith("-"):
        raise ValidationError(f"{field} {_shown(text)} is negative; it must be a positive duration such as 30d",
                              field=field)
    if not re.fullmatch(r"(?:\d+[a-z]*)+", value):
        raise ValidationError(f"{field} {_shown(text)} is not a duration: write a number and a unit "
                              "(d days, h hours, m minutes), e.g. 30d, 12h, 1d12h", field=field)
    minutes = 0
    last = -1
    order = list(_UNITS)
    for match in _PART.finditer(value):
        number, unit = match.groups()
        if not unit:
            raise ValidationError(f"{field} {_shown(text)} has a number without a unit: add d (days), h (hours) "
                                  f"or m (minutes), e.g. {number}d", field=field)
        if unit not in _UNITS:
            raise ValidationError(f"{field} {_shown(text)} has the unknown unit {unit!r}: use d (days), h (hours) "
                                  "or m (minutes)", field=field)
        if order.index(unit) <= last:
            raise ValidationError(f"{field} {_shown(text)} must give each unit once, in the order d, h, m "
                                  "(e.g. 1d12h30m)", field=field)
        last = order.index(unit)
        minutes += int(number) * _UNITS[unit]
    if minutes == 0:
        raise ValidationError(f"{field} {_shown(text)} is zero; it must be a positive duration", field=field)
    if minutes > maximum // timedelta(minutes=1):
        raise ValidationError(f"{field} {_shown(text)} is too long; the maximum is {format_duration(maximum)}",
                              field=field)
    return timedelta(minutes=minutes)


def format_duration(duration: timedelta) -> str:
    """The canonical text of a whole-minute duration, which parse_duration reads back ("1d12h", "90m" → "1h30m")."""
    minutes = duration // timedelta(minutes=1)
    if minutes <= 0:
        return "0m"
    parts = []
    for unit, size in _UNITS.items():
        count, minutes = divmod(minutes, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def human_duration(duration: timedelta) -> str:
    """A rounded, readable duration for people: its two largest units ("2d 4h", "11h", "5m 12s")."""
    seconds = int(duration.total_seconds())
    if seconds <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return " ".join(parts[:2])


def _zone(name: str, field: str) -> ZoneInfo:
    problem = f"{field} {_shown(name)} is not a known IANA time zone (e.g. UTC, Europe/Berlin, America/New_York)"
    if not isinstance(name, str) or not name.strip():
        raise ValidationError(f"{field} is empty; give an IANA time zone such as UTC or Europe/Berlin", field=field)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValidationError(problem, field=field) from None


def _check_cron(cron: str, field: str) -> str:
    if not isinstance(cron, str) or not cron.strip():
        raise ValidationError(f"{field} is empty; give a cron expression such as '0 2 * * 6' (Saturdays at 02:00)",
                              field=field)
    parts = cron.split()
    if len(parts) != 5:
        raise ValidationError(f"{field} {_shown(cron)} has {len(parts)} fields; a cron expression has 5: "
                              f"{' '.join(_CRON_FIELDS)}", field=field)
    probe = datetime(2000, 1, 1, tzinfo=UTC)
    try:
        CronSim(cron, probe)
    except CronSimError as exc:
        try:  # the same days in any month: the fields are fine, the date never happens
            CronSim(" ".join([*parts[:3], "*", parts[4]]), probe)
        except CronSimError:
            detail = str(exc).lower()
            raise ValidationError(f"{field} {_shown(cron)} is not a valid cron expression: {detail}",
                                  field=field) from None
        raise ValidationError(f"{field} {_shown(cron)} never opens: day {parts[2]} does not occur in month {parts[3]}",
                              field=field) from None
    return " ".join(parts)


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("datetimes must be timezone-aware")
    return at.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    """Opens when ``cron`` fires (read in ``timezone``) and stays open for ``duration``."""

    cron: str
    duration: timedelta
    timezone: str

    def __post_init__(self) -> None:
        if not timedelta(0) < self.duration <= MAX_WINDOW:
            raise ValueError(f"duration must be positive and at most {format_duration(MAX_WINDOW)}")

    @classmethod
    def parse(cls, cron: str, duration: str, timezone: str = "UTC", *,
              field: str = "MaintenanceWindows") -> MaintenanceWindow:
        """A window from user text; errors name ``{field}.Cron``, ``{field}.Duration`` or ``{field}.Timezone``."""
        cron = _check_cron(cron, f"{field}.Cron")
        length = parse_duration(duration, field=f"{field}.Duration", maximum=MAX_WINDOW)
        _zone(timezone, f"{field}.Timezone")
        return cls(cron=cron, duration=length, timezone=timezone)

    def _latest_start(self, at: datetime, zone: ZoneInfo) -> datetime | None:
        # CronSim walks backwards from a time with microseconds without a first tick, so this includes `at` itself.
        start = at.astimezone(zone).replace(microsecond=0) + timedelta(microseconds=1)
        try:
            return _utc(next(CronSim(self.cron, start, reverse=True)))
        except (CronSimError, StopIteration):
            return None

    def _next_start(self, at: datetime, zone: ZoneInfo) -> datetime | None:
        try:
            return _utc(next(CronSim(self.cron, at.astimezone(zone))))
        except (CronSimError, StopIteration):
            return None

    def opening(self, at: datetime) -> tuple[datetime, datetime] | None:
        """(at, end) when a window is open at ``at``, else (start, end) of the next one; None if none within 400 days."""
        at = _utc(at)
        zone = ZoneInfo(self.timezone)
        latest = self._latest_start(at, zone)
        if latest is not None and latest <= at < latest + self.duration:
            return at, latest + self.duration
        start = self._next_start(at, zone)
        if start is None or start > at + LOOKAHEAD:
            return None
        return start, start + self.duration

    def contains(self, at: datetime) -> bool:
        """Whether the window is open at ``at`` (its start included, its end not)."""
        at = _utc(at)
        latest = self._latest_start(at, ZoneInfo(self.timezone))
        return latest is not None and latest <= at < latest + self.duration

    def describe(self) -> str:
        """Plain words, e.g. "0 2 * * 6 (Europe/Berlin) for 4h"."""
        return f"{self.cron} ({self.timezone}) for {format_duration(self.duration)}"


def next_opening(windows: Sequence[MaintenanceWindow], at: datetime) -> tuple[datetime, datetime] | None:
    """The earliest opening over all windows (an open one counts from ``at``); the longest on a tie."""
    found = [opening for window in windows if (opening := window.opening(at)) is not None]
    if not found:
        return None
    return min(found, key=lambda pair: (pair[0], -pair[1].timestamp()))
