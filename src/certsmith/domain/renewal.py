"""When to renew a certificate: the default rule, user policies, ACME renewal information and maintenance windows.

Pure code: callers pass every time in (aware, UTC) and get a plan back; nothing here reads a clock.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .errors import ValidationError
from .maintenance import LOOKAHEAD, MaintenanceWindow, format_duration, human_duration, next_opening, parse_duration

__all__ = [
    "AriWindow",
    "RenewBefore",
    "RenewalPlan",
    "RenewalPolicy",
    "default_margin",
    "plan_renewal",
    "renewal_eligibility",
    "retry_at",
    "spread",
]

LONG_LIFETIME = timedelta(days=180)
LONG_MARGIN = timedelta(days=60)
MAX_RENEW_BEFORE = timedelta(days=3650)
LAST_MOMENT = timedelta(minutes=1)  # a plan is never later than this before expiry
FIRST_RETRY = timedelta(minutes=1)
MAX_RETRY = timedelta(hours=6)
RENEWABLE_TYPES = frozenset({"PRIVATE", "AMAZON_ISSUED"})

_PERCENT = re.compile(r"(\d{1,3}(?:\.\d{1,6})?)\s*%")


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "...")


@dataclass(frozen=True, slots=True)
class RenewBefore:
    """How long before expiry renewal starts: a fixed duration or a percentage of the lifetime (exactly one)."""

    duration: timedelta | None = None
    percent: float | None = None

    def __post_init__(self) -> None:
        if (self.duration is None) == (self.percent is None):
            raise ValueError("exactly one of duration and percent must be set")
        if self.duration is not None and self.duration <= timedelta(0):
            raise ValueError("duration must be positive")
        if self.percent is not None and not 1 <= self.percent <= 99:
            raise ValueError("percent must be between 1 and 99")

    @classmethod
    def parse(cls, text: str, *, field: str = "RenewBefore") -> RenewBefore:
        """From "30d", "720h", "90m", "1d12h", "33%" or "12.5%"."""
        if not isinstance(text, str):
            raise ValidationError(f"{field} must be a string such as 30d or 33%", field=field)
        value = text.strip()
        if "%" not in value:
            return cls(duration=parse_duration(value, field=field, maximum=MAX_RENEW_BEFORE))
        match = _PERCENT.fullmatch(value)
        if match is None:
            if value.startswith("-"):
                raise ValidationError(f"{field} {_shown(text)} is negative; a percentage must be between 1% and 99%",
                                      field=field)
            raise ValidationError(f"{field} {_shown(text)} is not a percentage: write a number from 1 to 99 followed "
                                  "by %, e.g. 33% or 12.5%", field=field)
        percent = float(match.group(1))
        if not 1 <= percent <= 99:
            raise ValidationError(f"{field} {_shown(text)} is out of range; a percentage of the lifetime must be "
                                  "between 1% and 99%", field=field)
        return cls(percent=percent)

    def margin(self, not_before: datetime, not_after: datetime) -> timedelta:
        """How long before ``not_after`` renewal starts."""
        if self.duration is not None:
            return self.duration
        assert self.percent is not None
        lifetime = max(not_after - not_before, timedelta(0))
        return timedelta(seconds=round(lifetime.total_seconds() * self.percent / 100))

    def __str__(self) -> str:
        if self.duration is not None:
            return format_duration(self.duration)
        text = repr(self.percent)
        return (text[:-2] if text.endswith(".0") else text) + "%"


@dataclass(frozen=True, slots=True)
class RenewalPolicy:
    """A user's renewal settings; ``source`` says where they came from ("default", "account", "tag:env=prod")."""

    renew_before: RenewBefore | None = None
    windows: tuple[MaintenanceWindow, ...] = ()
    reuse_key: bool = False
    source: str = "default"


@dataclass(frozen=True, slots=True)
class AriWindow:
    """The renewal window an ACME CA suggested (RFC 9773)."""

    start: datetime
    end: datetime
    retry_after: datetime | None = None
    explanation_url: str | None = None


@dataclass(frozen=True, slots=True)
class RenewalPlan:
    """When renewal should start, why (in plain words), and what decided it ("default", "ari" or a policy source)."""

    at: datetime
    reason: str
    source: str


def default_margin(not_before: datetime, not_after: datetime) -> timedelta:
    """60 days when the lifetime is over 180 days, else a third of the lifetime."""
    lifetime = max(not_after - not_before, timedelta(0))
    if lifetime > LONG_LIFETIME:
        return LONG_MARGIN
    return timedelta(seconds=lifetime.total_seconds() // 3)


def _fraction(key: str, salt: bytes) -> int:
    """A 64-bit number from the key, the same every time; different salts give independent numbers."""
    digest = hashlib.sha256(salt + key.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big")


def spread(key: str, margin: timedelta) -> timedelta:
    """Deterministic jitter in [0, margin/10), whole seconds, so that certificates issued together renew apart."""
    tenth = int(margin.total_seconds()) // 10
    if tenth <= 0:
        return timedelta(0)
    return timedelta(seconds=(_fraction(key, b"spread:") * tenth) >> 64)


def _ari_point(key: str, ari: AriWindow) -> datetime:
    """A point in [start, end) chosen from the key (RFC 9773 §4.2 picks one at random; this one is stable)."""
    start, end = _aware(ari.start), _aware(ari.end)
    width = int((end - start).total_seconds())
    if width <= 0:
        return start
    return start + timedelta(seconds=(_fraction(key, b"ari:") * width) >> 64)


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("datetimes must be timezone-aware")
    return at.astimezone(UTC)


def _when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _lifetime_words(lifetime: timedelta) -> str:
    if lifetime >= timedelta(days=2):
        return f"{round(lifetime / timedelta(days=1))} days"
    return human_duration(lifetime)


def _base_reason(policy: RenewalPolicy, lifetime: timedelta, margin: timedelta, jitter: timedelta) -> str:
    if policy.renew_before is None:
        if lifetime > LONG_LIFETIME:
            rule = "60 days before expiry (lifetime over 180 days)"
        else:
            rule = f"a third of the lifetime before expiry (lifetime {_lifetime_words(lifetime)})"
    elif policy.renew_before.percent is not None:
        rule = (f"renew-before {policy.renew_before} of the lifetime, {human_duration(margin)} before expiry "
                f"(lifetime {_lifetime_words(lifetime)}) ({policy.source})")
    else:
        rule = f"renew-before {policy.renew_before} ({policy.source})"
    return f"{rule}, spread by {human_duration(jitter)}" if jitter else rule


def _bounded(at: datetime, not_before: datetime, not_after: datetime) -> datetime:
    return max(min(at, not_after - LAST_MOMENT), not_before)


def plan_renewal(not_before: datetime, not_after: datetime, policy: RenewalPolicy, key: str,
                 ari: AriWindow | None = None) -> RenewalPlan:
    """When to renew a certificate valid from ``not_before`` to ``not_after``; ``key`` (its ARN) spreads a fleet."""
    not_before, not_after = _aware(not_before), _aware(not_after)
    lifetime = max(not_after - not_before, timedelta(0))
    unfit = policy.renew_before is not None and policy.renew_before.margin(not_before, not_after) >= lifetime
    if unfit:
        # A renew-before as long as the lifetime would renew every new certificate at once, for ever: the default
        # rule applies to this certificate instead, and the reason says why.
        assert policy.renew_before is not None
        skipped = f"renew-before {policy.renew_before} ({policy.source}) is not shorter than the lifetime " \
                  f"({_lifetime_words(lifetime)}), so the default applies"
        policy = RenewalPolicy(None, policy.windows, policy.reuse_key, policy.source)
    if policy.renew_before is not None:
        margin = policy.renew_before.margin(not_before, not_after)
    else:
        margin = default_margin(not_before, not_after)
    jitter = spread(key, margin)
    at = not_after - margin - jitter
    reason = _base_reason(policy, lifetime, margin, jitter)
    source = policy.source if policy.renew_before is not None or policy.windows else "default"
    if unfit:
        reason += f"; {skipped}"

    if ari is not None:
        ari_reason = f"inside the CA's renewal window {_when(ari.start)} to {_when(ari.end)} (ARI)"
        suggested = _ari_point(key, ari)
        if ari.start.astimezone(UTC) >= not_after:
            reason += f"; the CA's renewal window {_when(ari.start)} to {_when(ari.end)} starts after expiry, ignored"
        elif policy.renew_before is None or suggested < at:
            if policy.renew_before is not None:
                ari_reason += f", earlier than {reason}"
            at, reason, source = suggested, ari_reason, "ari"

    at = _bounded(at, not_before, not_after)
    if policy.windows:
        at, reason = _into_window(at, reason, policy.windows, not_after - margin / 2)
    return RenewalPlan(at=_bounded(at, not_before, not_after), reason=reason, source=source)


def _margin(not_before: datetime, not_after: datetime, policy: RenewalPolicy) -> timedelta:
    """The margin plan_renewal uses: renew-before when it is shorter than the lifetime, else the default."""
    if policy.renew_before is not None:
        margin = policy.renew_before.margin(not_before, not_after)
        if margin < not_after - not_before:
            return margin
    return default_margin(not_before, not_after)


def late_start(now: datetime, not_before: datetime, not_after: datetime, policy: RenewalPolicy) -> datetime | None:
    """For a renewal found due when its maintenance window has closed (a worker was down): when to start instead.

    None: start now (inside a window, no windows, or expiry is near). Else the next window's opening, or the
    "expiry is near" deadline when no window opens before it.
    """
    if not policy.windows or any(window.contains(now) for window in policy.windows):
        return None
    not_before, not_after = _aware(not_before), _aware(not_after)
    deadline = not_after - _margin(not_before, not_after, policy) / 2
    if now >= deadline:
        return None
    opening = next_opening(policy.windows, now)
    return deadline if opening is None or opening[0] > deadline else opening[0]


def _into_window(at: datetime, reason: str, windows: Sequence[MaintenanceWindow],
                 deadline: datetime) -> tuple[datetime, str]:
    """Move ``at`` to the next maintenance window, but never past ``deadline``."""
    opening = next_opening(windows, at)
    if opening is not None and opening[0] == at:
        return at, reason
    if opening is not None and opening[0] <= deadline:
        return opening[0], f"{reason}, moved to the maintenance window opening {_when(opening[0])} UTC"
    if opening is None:
        why = f"no maintenance window opens in the next {LOOKAHEAD.days} days"
    else:
        why = f"the maintenance window opening {_when(opening[0])} UTC opens too late"
    return max(at, deadline), f"expiry is near: {why}, renewing at {_when(max(at, deadline))} UTC; {reason}"


def retry_at(now: datetime, attempts: int, not_after: datetime) -> datetime | None:
    """When to try again after ``attempts`` transient failures (1 min, 2, 4 ... at most 6 h); None once expired."""
    if now >= not_after:
        return None
    delay = min(FIRST_RETRY * (1 << min(max(attempts, 1) - 1, 20)), MAX_RETRY)
    return min(now + delay, not_after)


def _double_hyphen(name: str) -> bool:
    name = name[2:] if name.startswith("*.") else name
    return any(label[2:4] == "--" and not label.lower().startswith("xn--") for label in name.split("."))


def renewal_eligibility(*, certificate_type: str, status: str, names: Sequence[str], exported: bool, in_use: bool,
                        strict: bool) -> str:
    """"ELIGIBLE" or "INELIGIBLE" for managed renewal (ACM's rule when ``strict``, else every issued certificate)."""
    if certificate_type not in RENEWABLE_TYPES or status != "ISSUED":
        return "INELIGIBLE"
    if any(_double_hyphen(name) for name in names):
        return "INELIGIBLE"
    if strict and not (exported or in_use):
        return "INELIGIBLE"
    return "ELIGIBLE"
