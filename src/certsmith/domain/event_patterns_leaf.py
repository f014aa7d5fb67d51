"""One field of an EventBridge event pattern: its array of values and matchers, compiled to a test on scalars."""

from __future__ import annotations

import json
import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from certsmith.domain.event_patterns_matchers import (
    OPERATORS,
    Lookup,
    ScalarTest,
    Span,
    affix,
    anything_but,
    cidr,
    fail,
    glob,
    literal_key,
    numeric,
    wildcard_parts,
)

__all__ = ["MISSING", "Leaf", "objects_of", "parse_leaf", "scalars_of"]


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()  # a field the event does not have


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float)


def scalars_of(value: Any) -> list[Any]:
    """The leaf values a field offers: itself, or every scalar of an array (nested arrays too); objects offer none."""
    if _is_scalar(value):
        return [value]
    if not isinstance(value, list | tuple):
        return []
    out: list[Any] = []
    todo = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, list | tuple):
            todo.extend(reversed(item))
        elif _is_scalar(item):
            out.append(item)
    return out


def objects_of(value: Any) -> list[Mapping[str, Any]]:
    """The objects a field offers to a nested pattern: itself, or every object of an array (nested arrays too)."""
    if isinstance(value, Mapping):
        return [value]
    if not isinstance(value, list | tuple):
        return []
    out: list[Mapping[str, Any]] = []
    todo = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, list | tuple):
            todo.extend(reversed(item))
        elif isinstance(item, Mapping):
            out.append(item)
    return out


@dataclass(frozen=True, slots=True)
class Leaf:
    """The compiled array of one field: it matches when any of its values or matchers does."""

    key: str  # canonical JSON of the array, the leaf's identity
    plain: Lookup  # the values and matchers answered by lookups
    tests: tuple[ScalarTest, ...]  # every other matcher but exists
    if_present: bool  # {"exists": true} is among the values
    if_absent: bool  # {"exists": false} is among the values
    span: Span | None  # the whole array is one numeric matcher: the numbers it accepts
    runs: tuple[str, ...] | None  # the whole array is one wildcard matcher: its literal runs between the *s
    excluded: Lookup | None  # the whole array is one anything-but answered by lookups: what it excludes
    scalar: ScalarTest = field(repr=False)  # whether any value or matcher accepts one scalar

    @property
    def indexable(self) -> bool:
        """Only matchers answered by lookups."""
        return not self.tests and not self.if_present and not self.if_absent

    def on_scalars(self, scalars: Sequence[Any]) -> bool:
        """Whether the field matches, given the scalars the event has there (none when it is missing)."""
        if not scalars:
            return self.if_absent
        if self.if_present:
            return True
        scalar = self.scalar
        for value in scalars:
            if scalar(value):
                return True
        return False

    def on_value(self, value: Any) -> bool:
        """Whether the field matches the event's raw value at that path (MISSING when absent)."""
        if isinstance(value, str):
            return self.if_present or self.scalar(value)
        return self.on_scalars(scalars_of(value))


class _Parts:
    """What one array holds, gathered while it is read."""

    def __init__(self) -> None:
        self.literals: set[Hashable] = set()
        self.prefixes: list[str] = []
        self.suffixes: list[str] = []
        self.lowered: set[str] = set()
        self.tests: list[ScalarTest] = []
        self.exists: set[bool] = set()
        self.span: Span | None = None
        self.runs: tuple[str, ...] | None = None
        self.excluded: Lookup | None = None


def parse_leaf(values: list[Any], where: str) -> Leaf:
    """Compile the array of field ``where``; raises PatternError naming what EventBridge would refuse."""
    if not values:
        raise fail(where, "empty arrays are not allowed")
    parts = _Parts()
    for value in values:
        if isinstance(value, dict):
            _operator(value, where, parts)
        elif isinstance(value, list):
            raise fail(where, "values must be strings, numbers, true, false, null or matcher objects, not arrays")
        elif isinstance(value, float) and not math.isfinite(value):
            raise fail(where, f"{value} is not a JSON number")
        else:
            parts.literals.add(literal_key(value))
    key = json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    plain = Lookup(frozenset(parts.literals), tuple(parts.prefixes), tuple(parts.suffixes), frozenset(parts.lowered))
    tests = tuple(parts.tests)
    sole = len(values) == 1
    return Leaf(key, plain, tests, True in parts.exists, False in parts.exists, parts.span if sole else None,
                parts.runs if sole else None, parts.excluded if sole else None, _scalar_test(plain, tests))


def _scalar_test(plain: Lookup, tests: tuple[ScalarTest, ...]) -> ScalarTest:
    accepts = plain.test()
    if not tests:
        return accepts
    if plain.empty and len(tests) == 1:
        return tests[0]

    def any_of(value: Any) -> bool:
        return accepts(value) or any(test(value) for test in tests)
    return any_of


def _operator(matcher: dict[str, Any], where: str, parts: _Parts) -> None:
    if len(matcher) != 1:
        found = ", ".join(sorted(matcher)) or "none"
        raise fail(where, f"a matcher object takes exactly one operator, found {len(matcher)} ({found})")
    name, arg = next(iter(matcher.items()))
    if name == "exists":
        if not isinstance(arg, bool):
            raise fail(where, "exists needs true or false")
        parts.exists.add(arg)
    elif name in ("prefix", "suffix"):
        operand = affix(name, arg, where)
        if not isinstance(operand, str):
            parts.tests.append(operand)
        else:
            (parts.prefixes if name == "prefix" else parts.suffixes).append(operand)
    elif name == "equals-ignore-case":
        if not isinstance(arg, str):
            raise fail(where, "equals-ignore-case needs a string")
        parts.lowered.add(arg.lower())
    elif name == "wildcard":
        runs = wildcard_parts(arg, where)
        if len(runs) == 1:
            parts.literals.add(runs[0])  # no wildcard character: a plain value
        else:
            parts.tests.append(glob(runs))
            parts.runs = tuple(runs)
    elif name == "anything-but":
        test, parts.excluded = anything_but(arg, where)
        parts.tests.append(test)
    elif name == "numeric":
        test, parts.span = numeric(arg, where)
        parts.tests.append(test)
    elif name == "cidr":
        parts.tests.append(cidr(arg, where))
    else:
        raise fail(where, f'unknown operator "{name}"; use one of {", ".join(OPERATORS)}')
