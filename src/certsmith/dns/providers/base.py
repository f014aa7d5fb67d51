"""What every DNS provider offers: record sets, the provider protocol, its errors, and its plugin description."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from certsmith.domain.plugins import OptionsPlugin

__all__ = ["ACME_LABEL", "REASONS", "DnsProvider", "ProviderError", "ProviderPlugin", "RecordSet", "all_or_nothing",
           "in_zone", "is_acme_owner", "normal_name", "txt_chunks"]

ACME_LABEL = "_acme-challenge"
REASONS = frozenset({"credentials", "zone", "unreachable", "refused", "timeout"})


def normal_name(name: str) -> str:
    """A DNS name as record sets carry it: lower-case, no trailing dot."""
    return name.strip().lower().rstrip(".")


def in_zone(name: str, zone: str) -> bool:
    """Whether ``name`` is ``zone`` or below it (both normal names)."""
    return name == zone or name.endswith("." + zone) or zone == ""


def is_acme_owner(name: str) -> bool:
    """Whether the leftmost label of ``name`` is ``_acme-challenge``."""
    return normal_name(name).split(".", 1)[0] == ACME_LABEL


def txt_chunks(value: str) -> list[bytes]:
    """One TXT value as the character-strings of one record (255 bytes at most each)."""
    data = value.encode()
    return [data[start:start + 255] for start in range(0, len(data), 255)] or [b""]


@dataclass(frozen=True, slots=True)
class RecordSet:
    """The records of one name and type: CNAME targets without a trailing dot, TXT values unquoted."""

    name: str
    type: str
    values: tuple[str, ...]
    ttl: int = 60

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", normal_name(self.name))
        object.__setattr__(self, "type", self.type.strip().upper())
        values = (self.values,) if isinstance(self.values, str) else tuple(self.values)
        if self.type == "CNAME":
            values = tuple(normal_name(value) for value in values)
            if len(values) > 1:
                raise ValueError(f"{self.name}: a CNAME record set has one value, not {len(values)}")
        object.__setattr__(self, "values", values)
        if not self.name:
            raise ValueError("a record set needs a name")
        if not 0 <= self.ttl <= 2_147_483_647:
            raise ValueError(f"{self.name}: TTL {self.ttl} is out of range")

    def same(self, other: RecordSet | None) -> bool:
        """Whether ``other`` holds the same values (in any order) and TTL."""
        return other is not None and sorted(other.values) == sorted(self.values) and other.ttl == self.ttl


class ProviderError(Exception):
    """A DNS provider could not do what was asked; the message names the provider and the record name."""

    def __init__(self, provider: str, name: str | None, problem: str, *, reason: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown ProviderError reason {reason!r}")
        where = f"{name}: " if name else ""
        super().__init__(f"DNS provider {provider!r}: {where}{problem}")
        self.provider = provider
        self.name = name
        self.problem = problem
        self.reason = reason

    @property
    def message(self) -> str:
        return str(self)


def all_or_nothing(steps: Sequence[Callable[[], Callable[[], None] | None]]) -> None:
    """Run each step (which returns how to undo it, or None); when one fails, undo the earlier ones, newest first."""
    undos: list[Callable[[], None]] = []
    try:
        for step in steps:
            undo = step()
            if undo is not None:
                undos.append(undo)
    except ProviderError as exc:
        failed: list[str] = []
        for undo in reversed(undos):
            try:
                undo()
            except ProviderError as again:
                failed.append(str(again))
        if failed:
            problem = f"{exc.problem}; undoing the earlier changes also failed: {'; '.join(failed)}"
            raise ProviderError(exc.provider, exc.name, problem, reason=exc.reason) from exc
        raise


@runtime_checkable
class DnsProvider(Protocol):
    """A place certsmith writes validation records to."""

    name: str

    def present(self, records: Sequence[RecordSet]) -> None:
        """Create or replace each record set; all or nothing."""

    def remove(self, records: Sequence[RecordSet]) -> None:
        """Delete each record set (for TXT, only the given values); one already gone is fine."""

    def lookup(self, name: str, type: str) -> RecordSet | None:
        """What the zone holds now for ``name`` and ``type``, from the authoritative source."""

    def records(self, zone: str | None = None) -> list[RecordSet]:
        """The record sets at ``_acme-challenge`` owners in ``zone`` (or every zone the provider has)."""

    def check(self) -> None:
        """Prove the settings work; ProviderError otherwise."""


@dataclass(frozen=True, slots=True)
class ProviderPlugin(OptionsPlugin):
    """A kind of DNS provider: its typed options and how to build one."""

    kind: str
    description: str
    options_type: type
    secret_fields: tuple[str, ...]
    factory: Callable[[str, Any], DnsProvider]
