"""Many event patterns against one event at a time, with work that grows with the event rather than the rules.

Every alternative of every pattern gets one bit. The event is walked once along the paths the patterns name; a
field whose conditions are plain values (source, detail-type, resources, ...) is answered by one dict lookup per
event value, giving the bits it satisfies; every other distinct condition is evaluated once per event, and only
while some alternative that needs it is still alive. Where the event offers several objects under one path (an
array of objects), the alternatives there are checked one by one against the whole event, as EventPattern does.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from certsmith.domain.event_patterns_leaf import MISSING, Leaf, literal_key, objects_of, scalars_of

if TYPE_CHECKING:
    from certsmith.domain.event_patterns import Check, EventPattern, Path

__all__ = ["RuleMatcher"]

K = TypeVar("K")
_NOTHING: tuple[Sequence[Any], bool] = ((), False)


@dataclass(slots=True)
class _Step:
    """One field name on the way down the event; ``wanted`` when some condition reads the values here."""

    key: str
    path: Path
    wanted: bool = False
    children: list[_Step] = field(default_factory=list)


class RuleMatcher(Generic[K]):
    """Which of many rules an event matches, in the order the rules were given."""

    __slots__ = ("_all", "_checks", "_generic", "_keys", "_literal", "_owners", "_steps", "_under")

    def __init__(self, rules: Iterable[tuple[K, EventPattern]]) -> None:
        self._keys: list[K] = []
        self._owners: list[int] = []  # alternative bit -> index of its rule
        self._checks: list[Check] = []  # alternative bit -> its check on a whole event
        literal: dict[Path, tuple[dict[Hashable, int], list[int]]] = {}
        generic: dict[tuple[Path, str], tuple[Path, Leaf, list[int]]] = {}
        under: dict[Path, int] = {}
        for key, pattern in rules:
            rule = len(self._keys)
            self._keys.append(key)
            for conditions, check in zip(pattern.alternatives, pattern.checks, strict=True):
                bit = 1 << len(self._owners)
                self._owners.append(rule)
                self._checks.append(check)
                indexed: set[Path] = set()
                for path, leaf in conditions:
                    under[path] = under.get(path, 0) | bit
                    if leaf.literal_only and path not in indexed:
                        indexed.add(path)
                        table, mask = literal.setdefault(path, ({}, [0]))
                        for value in leaf.literals:
                            table[value] = table.get(value, 0) | bit
                        mask[0] |= bit
                    else:
                        generic.setdefault((path, leaf.key), (path, leaf, [0]))[2][0] |= bit
        self._all = (1 << len(self._owners)) - 1
        self._literal = tuple((path, table, mask[0]) for path, (table, mask) in literal.items())
        # cheap conditions first: a failed one can spare the later ones
        self._generic = tuple(sorted(((path, leaf, bits[0]) for path, leaf, bits in generic.values()),
                                     key=lambda item: not item[1].if_present and not item[1].if_absent))
        self._under = under
        self._steps = _steps(under)

    def __len__(self) -> int:
        return len(self._keys)

    def match(self, event: Mapping[str, Any]) -> list[K]:
        """The keys of the rules whose patterns match ``event``, in input order, each once."""
        found: dict[Path, tuple[Sequence[Any], bool]] = {}
        crowded: list[Path] = []
        _walk(self._steps, (event,), False, found, crowded)
        failed = 0
        for path, table, mask in self._literal:
            values = found.get(path, _NOTHING)[0]
            hit = 0
            for value in values:
                hit |= table.get(literal_key(value), 0)
            failed |= mask & ~hit
        for path, leaf, bits in self._generic:
            if bits & ~failed and not leaf.on_scalars(found.get(path, _NOTHING)[0]):
                failed |= bits
        matched = self._all & ~failed
        if crowded:
            recheck = 0
            for path in crowded:
                recheck |= self._under[path]
            matched &= ~recheck
            for bit in _bits(recheck):
                if self._checks[bit](event):
                    matched |= 1 << bit
        return self._keys_of(matched)

    def _keys_of(self, matched: int) -> list[K]:
        out: list[K] = []
        last = -1
        for bit in _bits(matched):
            rule = self._owners[bit]
            if rule != last:
                out.append(self._keys[rule])
                last = rule
        return out


def _bits(value: int) -> Iterable[int]:
    while value:
        low = value & -value
        yield low.bit_length() - 1
        value ^= low


def _steps(paths: Iterable[Path]) -> list[_Step]:
    """The paths as a tree of field names, so the event is walked once however many conditions share a prefix."""
    root = _Step("", ())
    for path in paths:
        node = root
        for depth, key in enumerate(path):
            child = next((step for step in node.children if step.key == key), None)
            if child is None:
                child = _Step(key, path[:depth + 1])
                node.children.append(child)
            node = child
        node.wanted = True
    return root.children


def _walk(steps: list[_Step], objects: Sequence[Mapping[str, Any]], crowded_here: bool,
          found: dict[Path, tuple[Sequence[Any], bool]], crowded: list[Path]) -> None:
    """Collect, for each wanted path, the scalars the event has there; note paths reached through several objects."""
    for step in steps:
        if len(objects) == 1:
            value = objects[0].get(step.key, MISSING)
            values: list[Any] = [] if value is MISSING else [value]
        else:
            values = [value for obj in objects if (value := obj.get(step.key, MISSING)) is not MISSING]
        if step.wanted:
            if len(values) == 1:
                scalars = scalars_of(values[0])
            else:
                scalars = [scalar for value in values for scalar in scalars_of(value)]
            found[step.path] = (scalars, crowded_here)
            if crowded_here:
                crowded.append(step.path)
        if step.children:
            inner = [obj for value in values for obj in objects_of(value)]
            if inner:
                _walk(step.children, inner, crowded_here or len(inner) > 1, found, crowded)
