"""Event patterns against a plain reading of EventBridge's rules, on generated patterns and events; RuleMatcher against
each pattern alone; and any JSON either compiles or is refused with a PatternError."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from certsmith.domain.event_patterns import PatternError, RuleMatcher, compile_pattern

KEYS = ("a", "b", "c")
STRINGS = ("", "x", "xy", "yx", "X", "x*y", "10.0.0.7", "10.0.1.7")
NUMBERS = (0, 1, 1.0, 2.5, -3, 7)
SCALARS = st.sampled_from((*STRINGS, *NUMBERS, True, False, None))
NEEDLES = st.sampled_from(("", "x", "y", "X", "xy"))

# --- a plain reading of the documented rules: $or expanded into alternatives, objects matched element by element ---

Node = dict[str, Any]  # {"leaves": [arrays], "kids": {name: Node}}


def node(leaves: list[Any] | None = None, kids: dict[str, Node] | None = None) -> Node:
    return {"leaves": leaves or [], "kids": kids or {}}


def merge(left: Node, right: Node) -> Node:
    kids = dict(left["kids"])
    for name, kid in right["kids"].items():
        kids[name] = merge(kids[name], kid) if name in kids else kid
    return node(left["leaves"] + right["leaves"], kids)


def expand(pattern: dict[str, Any]) -> list[Node]:
    alternatives = [node()]
    for name, sub in pattern.items():
        if name == "$or":
            options = [option for branch in sub for option in expand(branch)]
        elif isinstance(sub, dict):
            options = [node(kids={name: option}) for option in expand(sub)]
        else:
            options = [node(kids={name: node(leaves=[sub])})]
        alternatives = [merge(first, second) for first in alternatives for second in options]
    return alternatives


def flatten(value: Any, want_objects: bool) -> list[Any]:
    if isinstance(value, list):
        return [item for element in value for item in flatten(element, want_objects)]
    if isinstance(value, dict):
        return [value] if want_objects else []
    if want_objects or value is _ABSENT:
        return []
    return [value]


_ABSENT = object()


def matches_node(tree: Node, obj: Mapping[str, Any]) -> bool:
    for name, kid in tree["kids"].items():
        value = obj.get(name, _ABSENT)
        if not all(matches_array(array, flatten(value, False)) for array in kid["leaves"]):
            return False
        if kid["kids"] and not any(matches_node(kid, candidate) for candidate in flatten(value, True) or [{}]):
            return False
    return True


def matches_array(array: list[Any], scalars: list[Any]) -> bool:
    for item in array:
        if isinstance(item, dict) and "exists" in item and item["exists"] == bool(scalars):
            return True
    return any(matches_item(item, scalar) for item in array for scalar in scalars)


def same(left: Any, right: Any) -> bool:
    if isinstance(left, bool) or isinstance(right, bool) or left is None or right is None:
        return left is right
    if isinstance(left, str) or isinstance(right, str):
        return isinstance(left, str) and isinstance(right, str) and left == right
    return bool(left == right)


def glob(pattern: str) -> re.Pattern[str]:
    text = re.sub(r"\\(.)|(\*)|([^\\*]+)",
                  lambda m: re.escape(m.group(1)) if m.group(1) else ".*" if m.group(2) else re.escape(m.group(3)), pattern)
    return re.compile(text, re.DOTALL)


def matches_item(item: Any, value: Any) -> bool:
    if not isinstance(item, dict):
        return same(item, value)
    (name, arg), = item.items()
    text = value if isinstance(value, str) else None
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if name == "exists":
        return False
    if name in ("prefix", "suffix"):
        if text is None:
            return False
        if isinstance(arg, dict):
            text, arg = text.lower(), arg["equals-ignore-case"].lower()
        return text.startswith(arg) if name == "prefix" else text.endswith(arg)
    if name == "equals-ignore-case":
        return text is not None and text.lower() == arg.lower()
    if name == "wildcard":
        return text is not None and glob(arg).fullmatch(text) is not None
    if name == "numeric":
        if number is None:
            return False
        checks = {"=": number == arg[1], "<": number < arg[1], "<=": number <= arg[1], ">": number > arg[1],
                  ">=": number >= arg[1]}
        if not checks[arg[0]]:
            return False
        return len(arg) == 2 or {"<": number < arg[3], "<=": number <= arg[3]}[arg[2]]
    if name == "cidr":
        try:
            return text is not None and ipaddress.ip_address(text) in ipaddress.ip_network(arg)
        except ValueError:
            return False
    assert name == "anything-but"
    if isinstance(arg, dict):
        return not matches_item(arg, value)
    return not any(same(excluded, value) for excluded in (arg if isinstance(arg, list) else [arg]))


# --- generated patterns and events -----------------------------------------------------------------------------------

matchers = st.one_of(
    SCALARS,
    st.builds(lambda s: {"prefix": s}, NEEDLES),
    st.builds(lambda s: {"suffix": s}, NEEDLES),
    st.builds(lambda s: {"prefix": {"equals-ignore-case": s}}, NEEDLES),
    st.builds(lambda s: {"equals-ignore-case": s}, NEEDLES),
    st.builds(lambda s: {"wildcard": s}, st.sampled_from(("*", "x*", "*y", "x*y", "*x*", "x\\*y", "X"))),
    st.builds(lambda s: {"anything-but": s}, st.sampled_from(("x", 1, ["x", "yx"], [0, 2.5]))),
    st.builds(lambda s: {"anything-but": {"prefix": s}}, st.sampled_from(("x", "y"))),
    st.builds(lambda s: {"anything-but": {"wildcard": s}}, st.sampled_from(("x*", "*y*"))),
    st.builds(lambda op, n: {"numeric": [op, n]}, st.sampled_from(("=", "<", "<=", ">", ">=")), st.sampled_from(NUMBERS)),
    st.builds(lambda lo, hi: {"numeric": [lo, 0, hi, 2.5]}, st.sampled_from((">", ">=")), st.sampled_from(("<", "<="))),
    st.builds(lambda b: {"exists": b}, st.booleans()),
    st.just({"cidr": "10.0.0.0/24"}),
)
arrays = st.lists(matchers, min_size=1, max_size=2)
patterns = st.recursive(
    st.dictionaries(st.sampled_from(KEYS), arrays, min_size=1, max_size=2),
    lambda inner: st.one_of(
        st.dictionaries(st.sampled_from(KEYS), st.one_of(arrays, inner), min_size=1, max_size=2),
        st.builds(lambda branches, rest: {**rest, "$or": branches}, st.lists(inner, min_size=2, max_size=3),
                  st.dictionaries(st.sampled_from(KEYS), arrays, max_size=1)),
    ),
    max_leaves=4,
)
json_values = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=3)),
    max_leaves=10,
)
events = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=3)


def near(item: Any) -> list[Any]:
    """Values on either side of what one array item accepts."""
    if not isinstance(item, dict):
        return [item, str(item), 0]
    (name, arg), = item.items()
    if name == "numeric":
        return [number + delta for number in arg[1::2] for delta in (-1, -0.5, 0, 0.5)]
    if isinstance(arg, dict):
        arg = next(iter(arg.values()))
    if isinstance(arg, list):
        arg = arg[0]
    if isinstance(arg, str):
        plain = arg.replace("\\*", "*").replace("*", "x")
        return [plain, plain.upper(), plain + "y", "y" + plain, plain[1:], "10.0.0.7", "10.0.1.7"]
    return [arg, None, "x"]


@st.composite
def shaped(draw: st.DrawFn, pattern: dict[str, Any]) -> dict[str, Any]:
    """An event along the lines of ``pattern``: its fields, values near its matchers, arrays, objects in arrays."""
    event: dict[str, Any] = {}
    for name, sub in pattern.items():
        if name == "$or":
            for branch in sub:
                event.update(draw(shaped(branch)))
            continue
        shape = draw(st.sampled_from(("value",) * 6 + ("array", "missing", "other")))
        if shape == "missing":
            continue
        if shape == "other":
            event[name] = draw(json_values)
        elif isinstance(sub, dict):
            event[name] = draw(shaped(sub)) if shape == "value" else [draw(shaped(sub)), draw(shaped(sub))]
        else:
            values = st.sampled_from([value for item in sub for value in near(item)])
            event[name] = draw(values) if shape == "value" else draw(st.lists(values, max_size=3))
    return event


pattern_and_event = patterns.flatmap(lambda pattern: st.tuples(st.just(pattern), st.one_of(shaped(pattern), events)))


@settings(max_examples=800, deadline=None)
@given(arrays.flatmap(lambda array: st.tuples(st.just({"a": array}), shaped({"a": array}))))
def test_one_field_matches_as_the_documented_rules_say(case: tuple[dict[str, Any], dict[str, Any]]) -> None:
    pattern, event = case
    expected = any(matches_node(tree, event) for tree in expand(pattern))
    assert compile_pattern(pattern).matches(event) is expected
    assert RuleMatcher([(0, compile_pattern(pattern))]).match(event) == ([0] if expected else [])


@settings(max_examples=250, deadline=None)
@given(pattern_and_event)
def test_a_pattern_matches_as_the_documented_rules_say(case: tuple[dict[str, Any], dict[str, Any]]) -> None:
    pattern, event = case
    expected = any(matches_node(tree, event) for tree in expand(pattern))
    assert compile_pattern(pattern).matches(event) is expected


@settings(max_examples=80, deadline=None)
@given(st.lists(patterns, min_size=1, max_size=12).flatmap(
    lambda rules: st.tuples(st.just(rules), st.lists(st.one_of([shaped(rule) for rule in rules]), min_size=1, max_size=6))))
def test_the_rule_matcher_agrees_with_each_pattern(case: tuple[list[dict[str, Any]], list[dict[str, Any]]]) -> None:
    rules, sample = case
    compiled = [compile_pattern(rule) for rule in rules]
    matcher = RuleMatcher(enumerate(compiled))
    for event in sample:
        assert matcher.match(event) == [i for i, pattern in enumerate(compiled) if pattern.matches(event)]


nested = st.lists(st.dictionaries(st.sampled_from(KEYS), arrays, min_size=1, max_size=3), min_size=1, max_size=6)


@settings(max_examples=200, deadline=None)
@given(nested.flatmap(lambda inner: st.tuples(
    st.just([{"a": fields} for fields in inner]),
    st.lists(st.one_of([shaped(fields) for fields in inner]), min_size=2, max_size=3).map(lambda items: {"a": items}))))
def test_objects_in_an_array_are_matched_one_by_one(case: tuple[list[dict[str, Any]], dict[str, Any]]) -> None:
    rules, event = case
    compiled = [compile_pattern(rule) for rule in rules]
    expected = [i for i, rule in enumerate(rules) if any(matches_node(tree, event) for tree in expand(rule))]
    assert [i for i, pattern in enumerate(compiled) if pattern.matches(event)] == expected
    assert RuleMatcher(enumerate(compiled)).match(event) == expected


@settings(max_examples=100, deadline=None)
@given(patterns)
def test_the_canonical_text_compiles_to_itself(pattern: dict[str, Any]) -> None:
    text = compile_pattern(pattern).text
    assert compile_pattern(text).text == text


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=40), json_values, st.dictionaries(st.sampled_from((*KEYS, "$or")), json_values)))
def test_anything_compiles_or_is_refused_with_a_pattern_error(pattern: Any) -> None:
    try:
        compiled = compile_pattern(pattern)
    except PatternError as exc:
        assert str(exc).startswith("EventPattern")
    else:
        compiled.matches({"a": ["x", {"b": 1}], "b": None})
