"""Validity periods of issued certificates (ACM-PCA ``Validity``)."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from .errors import InvalidArgsError, ValidationError

__all__ = ["Validity", "ValidityPeriodType", "add_months", "issuance_window"]

DEFAULT_BACKDATE = timedelta(minutes=60)
SHORT_LIVED_LIMIT = timedelta(days=7)


class ValidityPeriodType(StrEnum):
    END_DATE = "END_DATE"
    ABSOLUTE = "ABSOLUTE"
    DAYS = "DAYS"
    MONTHS = "MONTHS"
    YEARS = "YEARS"


@dataclass(frozen=True, slots=True)
class Validity:
    value: int
    type: ValidityPeriodType

    def __post_init__(self) -> None:
        if not isinstance(self.value, int) or isinstance(self.value, bool):
            raise TypeError("value must be an integer")
        if self.value < 1:
            raise ValueError(f"value is {self.value}; it must be at least 1")

    def instant(self, now: datetime, field: str) -> datetime:
        """The point in time this validity names, counted from ``now`` for relative types."""
        try:
            if self.type is ValidityPeriodType.DAYS:
                return now + timedelta(days=self.value)
            if self.type is ValidityPeriodType.MONTHS:
                return add_months(now, self.value)
            if self.type is ValidityPeriodType.YEARS:
                return add_months(now, 12 * self.value)
            if self.type is ValidityPeriodType.ABSOLUTE:
                return datetime.fromtimestamp(self.value, UTC)
            return _end_date(str(self.value), field)
        except (OverflowError, ValueError, OSError) as exc:
            if isinstance(exc, ValidationError):
                raise
            raise InvalidArgsError(f"{field} value {self.value} with type {self.type.value} is out of range",
                                   field=field) from None


def add_months(moment: datetime, months: int) -> datetime:
    month_index = moment.month - 1 + months
    year = moment.year + month_index // 12
    month = month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def _end_date(text: str, field: str) -> datetime:
    if len(text) == 12:
        year = int(text[:2])
        text = ("19" if year >= 50 else "20") + text
    if len(text) != 14:
        raise ValidationError(f"{field} END_DATE value must be YYMMDDHHMMSS or YYYYMMDDHHMMSS", field=field)
    try:
        return datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        raise ValidationError(f"{field} END_DATE value {text} is not a valid date", field=field) from None


def issuance_window(now: datetime, validity: Validity, not_before: Validity | None,
                    ca_not_after: datetime | None, short_lived: bool) -> tuple[datetime, datetime]:
    """(NotBefore, NotAfter) for a certificate issued at ``now``; raises InvalidArgsError when impossible."""
    not_after = validity.instant(now, "Validity").replace(microsecond=0)
    if not_before is None:
        start = (now - DEFAULT_BACKDATE).replace(microsecond=0)
    else:
        if not_before.type is not ValidityPeriodType.ABSOLUTE:
            raise InvalidArgsError("ValidityNotBefore must have Type ABSOLUTE", field="ValidityNotBefore")
        start = not_before.instant(now, "ValidityNotBefore")
    if not_after <= now:
        raise InvalidArgsError(f"Validity ends at {not_after:%Y-%m-%d %H:%M:%S}Z, which is in the past",
                               field="Validity")
    if start >= not_after:
        raise InvalidArgsError("ValidityNotBefore must be earlier than the end of Validity", field="ValidityNotBefore")
    if ca_not_after is not None and not_after > ca_not_after:
        raise InvalidArgsError(f"Validity ends at {not_after:%Y-%m-%d %H:%M:%S}Z, after the CA certificate expires "
                               f"({ca_not_after:%Y-%m-%d %H:%M:%S}Z)", field="Validity")
    if short_lived and not_after - now > SHORT_LIVED_LIMIT:
        raise InvalidArgsError("a SHORT_LIVED_CERTIFICATE CA issues certificates valid for at most 7 days",
                               field="Validity")
    return start, not_after
