"""EventBridge event patterns: compile a pattern once, then test events against it.

The language is Amazon EventBridge's, so a pattern written for EventBridge works unchanged: fields AND, the values
in a field's array OR, nested objects match nested objects, an event array matches when any element does (two
fields under one array must come from the same element), and the matchers prefix, suffix, equals-ignore-case,
wildcard, anything-but, numeric, exists and cidr, with ``$or`` to combine objects. A field the pattern names but
the event lacks fails the match, except for ``{"exists": false}``. Two deliberate differences: a field constrained
both inside and outside a ``$or`` must satisfy both (EventBridge keeps whichever was written last), and a ``$or``
that is not an array of two or more objects is refused (EventBridge falls back to reading it as a field name).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from certsmith.domain.event_patterns_leaf import MISSING, Leaf, objects_of, parse_leaf
from certsmith.domain.event_patterns_matchers import OPERATORS, PatternError, fail
from certsmith.domain.event_patterns_rules import RuleMatcher

__all__ = [
    "MAX_COMBINATIONS", "MAX_DEPTH", "MAX_PATTERN_LENGTH", "Condition", "EventPattern", "Leaf", "PatternError",
    "RuleMatcher", "compile_pattern",
]

MAX_PATTERN_LENGTH = 4096  # characters, as EventBridge's PutRule and TestEventPattern allow
MAX_COMBINATIONS = 1000  # alternatives a pattern's $or arrays may expand to
MAX_DEPTH = 64  # nesting of objects, which no real pattern comes near

Path = tuple[str, ...]
Condition = tuple[Path, Leaf]
Check = Callable[[Mapping[str, Any]], bool]
_EMPTY: Mapping[str, Any] = {}


@dataclass(frozen=True, slots=True)
class EventPattern:
    """A compiled event pattern; equal patterns have equal ``text``."""

    text: str  # canonical JSON: keys sorted, no spaces
    alternatives: tuple[tuple[Condition, ...], ...] = field(compare=False, repr=False)  # $or expanded; each ANDs
    checks: tuple[Check, ...] = field(compare=False, repr=False)  # one per alternative, on a whole event

    def matches(self, event: Mapping[str, Any]) -> bool:
        """Whether ``event`` (an EventBridge envelope, or any JSON object) matches the pattern."""
        for check in self.checks:
            if check(event):
                return True
        return False


def compile_pattern(pattern: str | Mapping[str, Any]) -> EventPattern:
    """Compile ``pattern`` (JSON text or a parsed object); raises PatternError naming the field and the problem."""
    if isinstance(pattern, str):
        if len(pattern) > MAX_PATTERN_LENGTH:
            raise PatternError(f"EventPattern is {len(pattern)} characters long; the limit is {MAX_PATTERN_LENGTH}")
        try:
            parsed = json.loads(pattern, parse_constant=_refuse_constant)
        except RecursionError:
            raise PatternError("EventPattern is not valid JSON: it nests too deeply") from None
        except ValueError as exc:
            raise PatternError(f"EventPattern is not valid JSON: {exc}") from None
    elif isinstance(pattern, Mapping):
        parsed = _plain(pattern, "", 0)
    else:
        raise PatternError(f"EventPattern must be a JSON object, not {type(pattern).__name__}")
    if not isinstance(parsed, dict):
        raise PatternError("EventPattern must be a JSON object")
    text = json.dumps(parsed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if not isinstance(pattern, str) and len(text) > MAX_PATTERN_LENGTH:
        raise PatternError(f"EventPattern is {len(text)} characters long; the limit is {MAX_PATTERN_LENGTH}")
    if not parsed:
        raise PatternError("EventPattern is an empty object; name at least one field to match")
    alternatives = tuple(tuple(conditions) for conditions in _expand(parsed, (), "", 0, False))
    return EventPattern(text, alternatives, tuple(_check(conditions) for conditions in alternatives))


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _plain(value: Any, where: str, depth: int) -> Any:
    """A copy of a pattern given as Python objects, holding only JSON types."""
    if depth > MAX_DEPTH:
        raise PatternError(f"EventPattern nests deeper than {MAX_DEPTH} levels")
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise fail(where, f"field names must be strings, not {type(key).__name__}")
            out[key] = _plain(item, f"{where}.{key}" if where else key, depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [_plain(item, where, depth + 1) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        raise fail(where, f"{value} is not a JSON number")
    if value is None or isinstance(value, str | int | float):
        return value
    raise fail(where, f"{type(value).__name__} is not a JSON value")


def _expand(obj: dict[str, Any], path: Path, where: str, depth: int, in_or: bool) -> list[list[Condition]]:
    """The alternatives of one pattern object: lists of conditions that must all hold, one list per $or choice."""
    if depth > MAX_DEPTH:
        raise PatternError(f"EventPattern nests deeper than {MAX_DEPTH} levels")
    if not obj:
        raise fail(where, "empty objects are not allowed")
    alternatives: list[list[Condition]] = [[]]
    for key, value in obj.items():
        here = f"{where}.{key}" if where else key
        if key == "$or":
            branches = _or_branches(value, here)
            expanded: list[list[Condition]] = []
            for i, branch in enumerate(branches):
                expanded.extend(_expand(branch, path, f"{here}[{i}]", depth + 1, True))
            alternatives = _product(alternatives, expanded)
        elif in_or and key in OPERATORS:
            raise fail(here, f'"{key}" is an operator; inside $or it cannot name a field')
        elif isinstance(value, dict):
            alternatives = _product(alternatives, _expand(value, (*path, key), here, depth + 1, in_or))
        elif isinstance(value, list):
            condition = ((*path, key), parse_leaf(value, here))
            alternatives = [[*conditions, condition] for conditions in alternatives]
        else:
            raise fail(here, f"must be an object or an array of values, not {_json_type(value)}")
    return alternatives


def _or_branches(value: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or len(value) < 2 or not all(isinstance(branch, dict) for branch in value):
        raise fail(where, "$or needs an array of at least two objects")
    return value


def _product(left: list[list[Condition]], right: list[list[Condition]]) -> list[list[Condition]]:
    if len(left) * len(right) > MAX_COMBINATIONS:
        raise PatternError(f"EventPattern's $or arrays combine to more than {MAX_COMBINATIONS} alternatives")
    return [[*first, *second] for first in left for second in right]


def _json_type(value: Any) -> str:
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return "a number"


class _Node:
    __slots__ = ("children", "leaves")

    def __init__(self) -> None:
        self.leaves: list[Leaf] = []
        self.children: dict[str, _Node] = {}


def _check(conditions: list[Condition] | tuple[Condition, ...]) -> Check:
    """One alternative as a test on a whole event, following the event's nesting."""
    root = _Node()
    for path, leaf in conditions:
        node = root
        for step in path:
            node = node.children.setdefault(step, _Node())
        node.leaves.append(leaf)
    return _object_check(root.children)


def _object_check(children: dict[str, _Node]) -> Check:
    fields = tuple((key, _field_check(node)) for key, node in children.items())
    if len(fields) == 1:
        key, only = fields[0]
        return lambda obj: only(obj.get(key, MISSING))

    def check(obj: Mapping[str, Any]) -> bool:
        for key, test in fields:
            if not test(obj.get(key, MISSING)):
                return False
        return True
    return check


def _field_check(node: _Node) -> Callable[[Any], bool]:
    leaves = tuple(node.leaves)
    if not node.children and len(leaves) == 1:
        return leaves[0].on_value
    nested = _object_check(node.children) if node.children else None

    def check(value: Any) -> bool:
        for leaf in leaves:
            if not leaf.on_value(value):
                return False
        if nested is None:
            return True
        if isinstance(value, Mapping):
            return nested(value)
        candidates = objects_of(value)
        if not candidates:
            return nested(_EMPTY)  # a missing object: only absence can match inside it
        return any(nested(candidate) for candidate in candidates)
    return check
