"""One field of an EventBridge event pattern: its array of values and matchers, compiled to a test on scalars."""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = [
    "MISSING", "NUMERIC_LIMIT", "OPERATORS", "Leaf", "PatternError", "literal_key", "objects_of", "parse_leaf",
    "scalars_of",
]

ScalarTest = Callable[[Any], bool]

OPERATORS = ("anything-but", "cidr", "equals-ignore-case", "exists", "numeric", "prefix", "suffix", "wildcard")
NUMERIC_LIMIT = 5.0e9  # EventBridge compares numbers between -5.0e9 and +5.0e9
_NUMERIC_OPS = ("=", "<", "<=", ">", ">=")
_NUMERIC_USAGE = 'numeric needs an operator and a number, e.g. [">", 0, "<=", 5]'
_ANYTHING_BUT_USAGE = ("anything-but needs a string, a number, an array of only strings or only numbers, "
                       "or an object with prefix, suffix, equals-ignore-case or wildcard")
_CIDR = re.compile(r"[0-9A-Fa-f:.]+/[0-9]{1,3}\Z")


class PatternError(ValueError):
    """An event pattern EventBridge would refuse; the message names the field and the problem."""


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()  # a field the event does not have
_NULL = ("null",)
_NEVER = object()  # the literal key of a value no pattern literal equals


def fail(where: str, problem: str) -> PatternError:
    """The error for ``problem`` at the dotted field path ``where``."""
    return PatternError(f'EventPattern: "{where}": {problem}' if where else f"EventPattern: {problem}")


def literal_key(value: Any) -> Any:
    """What a JSON scalar is compared by: strings as themselves, numbers by value (5 == 5.0), never true == 1."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return ("bool", value)
    if value is None:
        return _NULL
    if isinstance(value, int | float):
        return ("num", value)
    return _NEVER


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
    literals: frozenset[Hashable]  # literal_key of each plain value
    tests: tuple[ScalarTest, ...]  # the matchers other than exists
    if_present: bool  # {"exists": true} is among the values
    if_absent: bool  # {"exists": false} is among the values
    scalar: ScalarTest  # any literal or matcher accepts this one scalar

    @property
    def literal_only(self) -> bool:
        """Only plain values: an event value matches exactly when its literal_key is in ``literals``."""
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


def parse_leaf(values: list[Any], where: str) -> Leaf:
    """Compile the array of field ``where``; raises PatternError naming what EventBridge would refuse."""
    if not values:
        raise fail(where, "empty arrays are not allowed")
    literals: set[Hashable] = set()
    tests: list[ScalarTest] = []
    exists: set[bool] = set()
    for value in values:
        if isinstance(value, dict):
            _operator(value, where, literals, tests, exists)
        elif isinstance(value, list):
            raise fail(where, "values must be strings, numbers, true, false, null or matcher objects, not arrays")
        elif isinstance(value, float) and not math.isfinite(value):
            raise fail(where, f"{value} is not a JSON number")
        else:
            literals.add(literal_key(value))
    key = json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    frozen = frozenset(literals)
    return Leaf(key, frozen, tuple(tests), True in exists, False in exists, _scalar_test(frozen, tuple(tests)))


def _scalar_test(literals: frozenset[Hashable], tests: tuple[ScalarTest, ...]) -> ScalarTest:
    if not tests:
        return lambda value: literal_key(value) in literals
    if not literals and len(tests) == 1:
        return tests[0]

    def any_of(value: Any) -> bool:
        if literal_key(value) in literals:
            return True
        return any(test(value) for test in tests)
    return any_of


def _operator(matcher: dict[str, Any], where: str, literals: set[Hashable], tests: list[ScalarTest],
              exists: set[bool]) -> None:
    if len(matcher) != 1:
        found = ", ".join(sorted(matcher)) or "none"
        raise fail(where, f"a matcher object takes exactly one operator, found {len(matcher)} ({found})")
    name, arg = next(iter(matcher.items()))
    if name == "exists":
        if not isinstance(arg, bool):
            raise fail(where, "exists needs true or false")
        exists.add(arg)
    elif name in ("prefix", "suffix"):
        tests.append(_affix(name, arg, where))
    elif name == "equals-ignore-case":
        if not isinstance(arg, str):
            raise fail(where, "equals-ignore-case needs a string")
        tests.append(_equals_ignore_case(arg))
    elif name == "wildcard":
        parts = _wildcard_parts(arg, where, "wildcard")
        if len(parts) == 1:
            literals.add(parts[0])  # no wildcard character: a plain value
        else:
            tests.append(_glob(parts))
    elif name == "anything-but":
        tests.append(_anything_but(arg, where))
    elif name == "numeric":
        tests.append(_numeric(arg, where))
    elif name == "cidr":
        tests.append(_cidr(arg, where))
    else:
        raise fail(where, f'unknown operator "{name}"; use one of {", ".join(OPERATORS)}')


def _affix(name: str, arg: Any, where: str) -> ScalarTest:
    usage = f'{name} needs a string or {{"equals-ignore-case": string}}'
    if isinstance(arg, dict):
        if list(arg) != ["equals-ignore-case"] or not isinstance(arg["equals-ignore-case"], str):
            raise fail(where, usage)
        low = arg["equals-ignore-case"].lower()
        if name == "prefix":
            return lambda value: isinstance(value, str) and value.lower().startswith(low)
        return lambda value: isinstance(value, str) and value.lower().endswith(low)
    if not isinstance(arg, str):
        raise fail(where, usage)
    if name == "prefix":
        return lambda value: isinstance(value, str) and value.startswith(arg)
    return lambda value: isinstance(value, str) and value.endswith(arg)


def _equals_ignore_case(text: str) -> ScalarTest:
    low = text.lower()
    return lambda value: isinstance(value, str) and value.lower() == low


def _wildcard_parts(text: Any, where: str, name: str) -> list[str]:
    """The literal runs between the wildcards of ``text``; ``\\*`` is an asterisk, ``\\\\`` a backslash."""
    if not isinstance(text, str):
        raise fail(where, f"{name} needs a string")
    parts: list[str] = []
    run: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\":
            if i + 1 >= len(text) or text[i + 1] not in "*\\":
                raise fail(where, f"{name} {text!r}: a backslash may only escape * or \\ (at {i})")
            run.append(text[i + 1])
            i += 2
            continue
        if char == "*":
            if i + 1 < len(text) and text[i + 1] == "*":
                raise fail(where, f"{name} {text!r}: consecutive wildcard characters are not allowed (at {i})")
            parts.append("".join(run))
            run = []
        else:
            run.append(char)
        i += 1
    parts.append("".join(run))
    return parts


def _glob(parts: list[str]) -> ScalarTest:
    """A string test for literal runs joined by ``*`` (any run of characters); linear, no backtracking."""
    first, last = parts[0], parts[-1]
    middle = tuple(part for part in parts[1:-1] if part)
    shortest = len(first) + len(last) + sum(len(part) for part in middle)

    def test(value: Any) -> bool:
        if not isinstance(value, str) or len(value) < shortest:
            return False
        if not value.startswith(first) or not value.endswith(last):
            return False
        at, end = len(first), len(value) - len(last)
        for part in middle:
            found = value.find(part, at, end)
            if found < 0:
                return False
            at = found + len(part)
        return True
    return test


def _anything_but(arg: Any, where: str) -> ScalarTest:
    if isinstance(arg, dict):
        return _anything_but_matcher(arg, where)
    values = arg if isinstance(arg, list) else [arg]
    if not values:
        raise fail(where, "anything-but: empty arrays are not allowed")
    strings = all(isinstance(value, str) for value in values)
    numbers = all(isinstance(value, int | float) and not isinstance(value, bool) for value in values)
    if not strings and not numbers:
        if any(isinstance(value, str) for value in values) and isinstance(arg, list):
            raise fail(where, "anything-but: an array must hold only strings or only numbers")
        raise fail(where, _ANYTHING_BUT_USAGE)
    if numbers:
        for value in values:
            _number(value, where, "anything-but")
    excluded = frozenset(literal_key(value) for value in values)
    return lambda value: literal_key(value) not in excluded


def _anything_but_matcher(arg: dict[str, Any], where: str) -> ScalarTest:
    if len(arg) != 1:
        raise fail(where, _ANYTHING_BUT_USAGE)
    name, inner = next(iter(arg.items()))
    if name not in ("prefix", "suffix", "equals-ignore-case", "wildcard"):
        raise fail(where, f'anything-but cannot hold "{name}"; use prefix, suffix, equals-ignore-case or wildcard')
    values = inner if isinstance(inner, list) else [inner]
    if not values:
        raise fail(where, f"anything-but {name}: empty arrays are not allowed")
    if not all(isinstance(value, str) for value in values):
        raise fail(where, f"anything-but {name} needs a string or an array of strings")
    tests: list[ScalarTest] = []
    for value in values:
        if name in ("prefix", "suffix"):
            if not value:
                raise fail(where, f"anything-but {name} needs a non-empty string")
            tests.append(_affix(name, value, where))
        elif name == "equals-ignore-case":
            tests.append(_equals_ignore_case(value))
        else:
            parts = _wildcard_parts(value, where, "anything-but wildcard")
            tests.append(_glob(parts) if len(parts) > 1 else _exactly(parts[0]))
    return lambda value: not any(test(value) for test in tests)


def _exactly(text: str) -> ScalarTest:
    return lambda value: isinstance(value, str) and value == text


def _number(value: Any, where: str, name: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise fail(where, _NUMERIC_USAGE if name == "numeric" else f"{name} needs numbers")
    if not -NUMERIC_LIMIT <= value <= NUMERIC_LIMIT:  # also refuses NaN
        raise fail(where, f"{name}: {value} is outside the range EventBridge compares, -5.0e9 to 5.0e9")
    return value


def _numeric(arg: Any, where: str) -> ScalarTest:
    if not isinstance(arg, list) or len(arg) not in (2, 4):
        raise fail(where, _NUMERIC_USAGE)
    op = arg[0]
    if not isinstance(op, str) or op not in _NUMERIC_OPS:
        raise fail(where, f"numeric: unknown operator {json.dumps(op)}; use one of {', '.join(_NUMERIC_OPS)}")
    bound = _number(arg[1], where, "numeric")
    if len(arg) == 2:
        if op == "=":
            return _range(bound, True, bound, True)
        if op in (">", ">="):
            return _range(bound, op == ">=", None, False)
        return _range(None, False, bound, op == "<=")
    top_op = arg[2]
    if op not in (">", ">=") or not isinstance(top_op, str) or top_op not in ("<", "<="):
        raise fail(where, 'numeric: a range is a lower bound (">" or ">=") then an upper bound ("<" or "<=")')
    top = _number(arg[3], where, "numeric")
    if not bound < top:
        raise fail(where, f"numeric: the lower bound {bound} must be less than the upper bound {top}")
    return _range(bound, op == ">=", top, top_op == "<=")


def _range(low: float | int | None, low_closed: bool, high: float | int | None, high_closed: bool) -> ScalarTest:
    def test(value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if low is not None and not (value > low or (low_closed and value == low)):
            return False
        return high is None or value < high or (high_closed and value == high)
    return test


def _cidr(arg: Any, where: str) -> ScalarTest:
    if not isinstance(arg, str):
        raise fail(where, 'cidr needs a string such as "10.0.0.0/24"')
    try:
        if not _CIDR.match(arg):
            raise ValueError(arg)
        network = ipaddress.ip_network(arg, strict=False)
    except ValueError:
        raise fail(where, f'cidr {arg!r} is not an address block such as "10.0.0.0/24" or "2001:db8::/32"') from None

    def test(value: Any) -> bool:
        if not isinstance(value, str):
            return False
        address = _address(value)
        return address is not None and address.version == network.version and address in network
    return test


@lru_cache(maxsize=4096)
def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if "%" in text or "/" in text:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None
