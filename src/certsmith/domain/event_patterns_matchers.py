"""The matchers of EventBridge event patterns (prefix, suffix, wildcard, anything-but, numeric, cidr, ...) as tests."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = [
    "NUMERIC_LIMIT", "OPERATORS", "Lookup", "PatternError", "ScalarTest", "Span", "affix", "anything_but", "cidr",
    "fail", "glob", "literal_key", "numeric", "wildcard_parts",
]

ScalarTest = Callable[[Any], bool]
Span = tuple[float | int | None, bool, float | int | None, bool]  # (low, low inclusive?, high, high inclusive?)

OPERATORS = ("anything-but", "cidr", "equals-ignore-case", "exists", "numeric", "prefix", "suffix", "wildcard")
NUMERIC_LIMIT = 5.0e9  # EventBridge compares numbers between -5.0e9 and +5.0e9
_NUMERIC_OPS = ("=", "<", "<=", ">", ">=")
_NUMERIC_USAGE = 'numeric needs an operator and a number, e.g. [">", 0, "<=", 5]'
_ANYTHING_BUT_USAGE = ("anything-but needs a string, a number, an array of only strings or only numbers, "
                       "or an object with prefix, suffix, equals-ignore-case or wildcard")
_CIDR = re.compile(r"[0-9A-Fa-f:.]+/[0-9]{1,3}\Z")
_NULL = ("null",)
_NEVER = object()  # the literal key of a value no pattern literal equals


class PatternError(ValueError):
    """An event pattern EventBridge would refuse; the message names the field and the problem."""


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


@dataclass(frozen=True, slots=True)
class Lookup:
    """Matchers answered by lookups: plain values, case-sensitive prefixes and suffixes, equals-ignore-case."""

    literals: frozenset[Hashable] = frozenset()  # literal_key of each value
    prefixes: tuple[str, ...] = ()
    suffixes: tuple[str, ...] = ()
    lowered: frozenset[str] = frozenset()  # equals-ignore-case, lower-cased

    @property
    def empty(self) -> bool:
        return not self.literals and not self.prefixes and not self.suffixes and not self.lowered

    def test(self) -> ScalarTest:
        """Whether one scalar is accepted by any of the matchers."""
        literals, prefixes, suffixes, lowered = self.literals, self.prefixes, self.suffixes, self.lowered
        if not prefixes and not suffixes and not lowered:
            return lambda value: literal_key(value) in literals

        def test(value: Any) -> bool:
            if literal_key(value) in literals:
                return True
            if not isinstance(value, str):
                return False
            return bool((prefixes and value.startswith(prefixes)) or (suffixes and value.endswith(suffixes))
                        or (lowered and value.lower() in lowered))
        return test


def affix(name: str, arg: Any, where: str) -> str | ScalarTest:
    """A prefix or suffix operand: the string itself, or a test for the ``{"equals-ignore-case": ...}`` form."""
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
    return arg


def wildcard_parts(text: Any, where: str, name: str = "wildcard") -> list[str]:
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


def glob(parts: list[str]) -> ScalarTest:
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


def anything_but(arg: Any, where: str) -> tuple[ScalarTest, Lookup | None]:
    """True for every scalar the operand does not name; and what it names, when lookups can answer that."""
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
    return (lambda value: literal_key(value) not in excluded), Lookup(literals=excluded)


def _anything_but_matcher(arg: dict[str, Any], where: str) -> tuple[ScalarTest, Lookup | None]:
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
    if name in ("prefix", "suffix"):
        if not all(values):
            raise fail(where, f"anything-but {name} needs a non-empty string")
        lookup = Lookup(prefixes=tuple(values)) if name == "prefix" else Lookup(suffixes=tuple(values))
    elif name == "equals-ignore-case":
        lookup = Lookup(lowered=frozenset(value.lower() for value in values))
    else:
        runs = [wildcard_parts(value, where, "anything-but wildcard") for value in values]
        if any(len(parts) > 1 for parts in runs):
            tests = [glob(parts) if len(parts) > 1 else _exactly(parts[0]) for parts in runs]
            return (lambda value: not any(test(value) for test in tests)), None
        lookup = Lookup(literals=frozenset(parts[0] for parts in runs))
    named = lookup.test()
    return (lambda value: not named(value)), lookup


def _exactly(text: str) -> ScalarTest:
    return lambda value: isinstance(value, str) and value == text




def _number(value: Any, where: str, name: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise fail(where, _NUMERIC_USAGE if name == "numeric" else f"{name} needs numbers")
    if not -NUMERIC_LIMIT <= value <= NUMERIC_LIMIT:  # also refuses NaN
        raise fail(where, f"{name}: {value} is outside the range EventBridge compares, -5.0e9 to 5.0e9")
    return value


def numeric(arg: Any, where: str) -> tuple[ScalarTest, Span]:
    """The test for a numeric operand, and the span of numbers it accepts."""
    if not isinstance(arg, list) or len(arg) not in (2, 4):
        raise fail(where, _NUMERIC_USAGE)
    op = arg[0]
    if not isinstance(op, str) or op not in _NUMERIC_OPS:
        raise fail(where, f"numeric: unknown operator {json.dumps(op)}; use one of {', '.join(_NUMERIC_OPS)}")
    bound = _number(arg[1], where, "numeric")
    span: Span
    if len(arg) == 2:
        if op == "=":
            span = (bound, True, bound, True)
        elif op in (">", ">="):
            span = (bound, op == ">=", None, False)
        else:
            span = (None, False, bound, op == "<=")
        return _range(*span), span
    top_op = arg[2]
    if op not in (">", ">=") or not isinstance(top_op, str) or top_op not in ("<", "<="):
        raise fail(where, 'numeric: a range is a lower bound (">" or ">=") then an upper bound ("<" or "<=")')
    top = _number(arg[3], where, "numeric")
    if not bound < top:
        raise fail(where, f"numeric: the lower bound {bound} must be less than the upper bound {top}")
    span = (bound, op == ">=", top, top_op == "<=")
    return _range(*span), span


def _range(low: float | int | None, low_closed: bool, high: float | int | None, high_closed: bool) -> ScalarTest:
    def test(value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if low is not None and not (value > low or (low_closed and value == low)):
            return False
        return high is None or value < high or (high_closed and value == high)
    return test


def cidr(arg: Any, where: str) -> ScalarTest:
    """In the IPv4 or IPv6 address block ``arg``."""
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
