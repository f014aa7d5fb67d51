"""Many event patterns against one event at a time, with work that grows with the event rather than the rules.

Every alternative of every pattern gets one bit. The event is walked once along the paths the patterns name. At
each path, conditions of plain values, prefixes, suffixes and equals-ignore-case (source, detail-type, resources,
names, ...) are answered together by a few dict lookups per event value, anything-but of those by the same lookups
wanting a miss, numeric conditions (DaysToExpiry <= 30) by bisection, and wildcards only where their literal start
or end is there. Each remaining distinct condition is evaluated once per event, and only while an alternative that
needs it is still alive. Where the event offers several objects under one path (an array of objects), the
alternatives there are checked one by one against the whole event, as EventPattern does.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from certsmith.domain.event_patterns_leaf import MISSING, Leaf, objects_of, scalars_of
from certsmith.domain.event_patterns_matchers import Lookup, ScalarTest, Span, literal_key

if TYPE_CHECKING:
    from certsmith.domain.event_patterns import Check, EventPattern, Path

__all__ = ["RuleMatcher"]

K = TypeVar("K")
_NOTHING: tuple[Sequence[Any], bool] = ((), False)
_BYTE_BITS = tuple(tuple(bit for bit in range(8) if byte >> bit & 1) for byte in range(256))


class _LookupIndex:
    """Matchers answered by lookups at one path, as tables; ``negated`` for anything-but, which wants a miss."""

    __slots__ = ("_prefixes", "_suffixes", "exact", "lowered", "mask", "negated", "prefixes", "suffixes")

    def __init__(self, negated: bool) -> None:
        self.negated = negated
        self.exact: dict[Hashable, int] = {}
        self.lowered: dict[str, int] = {}
        self.prefixes: dict[int, dict[str, int]] = {}  # by length
        self.suffixes: dict[int, dict[str, int]] = {}
        self.mask = 0
        self._prefixes: tuple[tuple[int, dict[str, int]], ...] = ()
        self._suffixes: tuple[tuple[int, dict[str, int]], ...] = ()

    def add(self, lookup: Lookup, bit: int) -> None:
        self.mask |= bit
        for value in lookup.literals:
            self.exact[value] = self.exact.get(value, 0) | bit
        for text in lookup.lowered:
            self.lowered[text] = self.lowered.get(text, 0) | bit
        for tables, texts in ((self.prefixes, lookup.prefixes), (self.suffixes, lookup.suffixes)):
            for text in texts:
                table = tables.setdefault(len(text), {})
                table[text] = table.get(text, 0) | bit

    def freeze(self) -> _LookupIndex:
        self._prefixes = tuple(self.prefixes.items())
        self._suffixes = tuple(self.suffixes.items())
        return self

    def hits(self, values: Sequence[Any]) -> int:
        """The bits whose condition some value satisfies."""
        hit = 0
        for value in values:
            found = self._found(value)
            hit |= self.mask & ~found if self.negated else found
        return hit

    def _found(self, value: Any) -> int:
        found = self.exact.get(literal_key(value), 0)
        if isinstance(value, str):
            size = len(value)
            for length, table in self._prefixes:
                if size >= length:
                    found |= table.get(value[:length], 0)
            for length, table in self._suffixes:
                if size >= length:
                    found |= table.get(value[size - length:], 0)
            if self.lowered:
                found |= self.lowered.get(value.lower(), 0)
        return found


class _NumberIndex:
    """Numeric conditions at one path, their bounds sorted so that an event number finds its bits by bisection."""

    __slots__ = ("high", "high_keys", "high_mask", "high_or", "low", "low_keys", "low_mask", "low_or", "mask")

    def __init__(self) -> None:
        self.high: list[tuple[tuple[float | int, int], int]] = []  # ((bound, 1 if inclusive), bit): x <= / < bound
        self.low: list[tuple[tuple[float | int, int], int]] = []  # ((bound, 0 if inclusive), bit): x >= / > bound
        self.mask = self.high_mask = self.low_mask = 0
        self.high_keys: list[tuple[float | int, int]] = []
        self.low_keys: list[tuple[float | int, int]] = []
        self.high_or: list[int] = [0]
        self.low_or: list[int] = [0]

    def add(self, span: Span, bit: int) -> None:
        low, low_closed, high, high_closed = span
        self.mask |= bit
        if low is not None:
            self.low.append(((low, 0 if low_closed else 1), bit))
            self.low_mask |= bit
        if high is not None:
            self.high.append(((high, 1 if high_closed else 0), bit))
            self.high_mask |= bit

    def freeze(self) -> _NumberIndex:
        self.high.sort(key=lambda item: item[0])
        self.low.sort(key=lambda item: item[0])
        self.high_keys = [key for key, _ in self.high]
        self.low_keys = [key for key, _ in self.low]
        self.high_or = [0] * (len(self.high) + 1)  # high_or[i]: the bits of high[i:]
        for i in range(len(self.high) - 1, -1, -1):
            self.high_or[i] = self.high_or[i + 1] | self.high[i][1]
        self.low_or = [0] * (len(self.low) + 1)  # low_or[i]: the bits of low[:i]
        for i, (_, bit) in enumerate(self.low):
            self.low_or[i + 1] = self.low_or[i] | bit
        return self

    def hits(self, values: Sequence[Any]) -> int:
        """The bits whose span holds some value: both of its bounds hold for that one value."""
        hit = 0
        for value in values:
            if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
                continue
            below = self.high_or[bisect_left(self.high_keys, (value, 1))] if self.high_keys else 0
            above = self.low_or[bisect_right(self.low_keys, (value, 0))] if self.low_keys else 0
            hit |= self.mask & ~(self.high_mask & ~below | self.low_mask & ~above)
        return hit


class _GlobIndex:
    """Wildcard conditions at one path; those with a literal start or end are only tried on values that have it."""

    __slots__ = ("_known", "_prefixes", "_suffixes", "bits", "loose", "mask", "prefixes", "suffixes", "tests")

    def __init__(self) -> None:
        self.tests: list[ScalarTest] = []
        self.bits: list[int] = []
        self.prefixes: dict[int, dict[str, list[int]]] = {}  # by length: the conditions starting so
        self.suffixes: dict[int, dict[str, list[int]]] = {}
        self.loose: list[int] = []  # conditions starting and ending with *
        self.mask = 0
        self._known: dict[str, int] = {}  # leaf key -> its place in tests
        self._prefixes: tuple[tuple[int, dict[str, list[int]]], ...] = ()
        self._suffixes: tuple[tuple[int, dict[str, list[int]]], ...] = ()

    def add(self, leaf: Leaf, bit: int) -> None:
        assert leaf.runs is not None
        self.mask |= bit
        known = self._known.get(leaf.key)
        if known is not None:
            self.bits[known] |= bit
            return
        at = self._known[leaf.key] = len(self.tests)
        self.tests.append(leaf.scalar)
        self.bits.append(bit)
        first, last = leaf.runs[0], leaf.runs[-1]
        if first and len(first) >= len(last):
            self.prefixes.setdefault(len(first), {}).setdefault(first, []).append(at)
        elif last:
            self.suffixes.setdefault(len(last), {}).setdefault(last, []).append(at)
        else:
            self.loose.append(at)

    def freeze(self) -> _GlobIndex:
        self._prefixes = tuple(self.prefixes.items())
        self._suffixes = tuple(self.suffixes.items())
        return self

    def hits(self, values: Sequence[Any]) -> int:
        hit = 0
        tests, bits = self.tests, self.bits
        for value in values:
            if not isinstance(value, str):
                continue
            size = len(value)
            tried = [*self.loose]
            for length, table in self._prefixes:
                if size >= length:
                    tried.extend(table.get(value[:length], ()))
            for length, table in self._suffixes:
                if size >= length:
                    tried.extend(table.get(value[size - length:], ()))
            for at in tried:
                if tests[at](value):
                    hit |= bits[at]
        return hit


@dataclass(slots=True)
class _Step:
    """One field name on the way down the event; ``wanted`` when some condition reads the values here."""

    key: str
    path: Path
    wanted: bool = False
    children: list[_Step] = field(default_factory=list)


class RuleMatcher(Generic[K]):
    """Which of many rules an event matches, in the order the rules were given."""

    __slots__ = ("_all", "_alt_keys", "_checks", "_chunks", "_extra", "_folds", "_generic", "_indexes", "_keys",
                 "_steps", "_under")

    def __init__(self, rules: Iterable[tuple[K, EventPattern]]) -> None:
        self._keys: list[K] = []
        self._alt_keys: list[K] = []  # alternative bit -> the key of its rule
        self._checks: list[Check] = []  # alternative bit -> its check on a whole event
        folds: list[tuple[int, int]] = []  # (first bit, other bits) of the rules with several alternatives
        indexes: dict[tuple[Path, str], _LookupIndex | _NumberIndex | _GlobIndex] = {}
        generic: dict[tuple[Path, str], tuple[Path, Leaf, list[int]]] = {}
        under: dict[Path, int] = {}
        for key, pattern in rules:
            self._keys.append(key)
            start = len(self._alt_keys)
            for conditions, check in zip(pattern.alternatives, pattern.checks, strict=True):
                bit = 1 << len(self._alt_keys)
                self._alt_keys.append(key)
                self._checks.append(check)
                indexed: set[tuple[Path, str]] = set()  # one condition per path in each index
                for path, leaf in conditions:
                    under[path] = under.get(path, 0) | bit
                    kind = _index_kind(leaf)
                    if kind is not None and (path, kind) not in indexed:
                        indexed.add((path, kind))
                        _add(indexes, path, kind, leaf, bit)
                    else:
                        generic.setdefault((path, leaf.key), (path, leaf, [0]))[2][0] |= bit
            if len(pattern.alternatives) > 1:
                rule_bits = (1 << len(self._alt_keys)) - (1 << start)
                folds.append((1 << start, rule_bits ^ 1 << start))
        self._all = (1 << len(self._alt_keys)) - 1
        self._folds = tuple(folds)
        self._extra = 0
        for _, extra in folds:
            self._extra |= extra
        self._chunks: dict[int, tuple[K, ...]] = {}
        self._indexes = tuple((path, index.freeze()) for (path, _), index in indexes.items())
        # presence tests first: they are the cheapest, and a failed one can spare the others
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
        for path, index in self._indexes:
            failed |= index.mask & ~index.hits(found.get(path, _NOTHING)[0])
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
        if matched & self._extra:  # keep one bit per rule
            for first, extra in self._folds:
                if matched & extra:
                    matched = matched & ~extra | first
        keys = self._alt_keys
        if matched.bit_count() <= 8:
            out: list[K] = []
            while matched:
                low = matched & -matched
                out.append(keys[low.bit_length() - 1])
                matched ^= low
            return out
        out = []
        chunks = self._chunks
        for at, byte in enumerate(matched.to_bytes((matched.bit_length() + 7) // 8, "little")):
            if byte:
                chunk = chunks.get(at << 8 | byte)
                if chunk is None:
                    chunk = tuple(keys[at * 8 + bit] for bit in _BYTE_BITS[byte])
                    if len(chunks) < 65536:
                        chunks[at << 8 | byte] = chunk
                out.extend(chunk)
        return out


def _index_kind(leaf: Leaf) -> str | None:
    if leaf.indexable:
        return "lookup"
    if leaf.span is not None:
        return "number"
    if leaf.excluded is not None:
        return "excluded"
    if leaf.runs is not None:
        return "glob"
    return None


def _add(indexes: dict[tuple[Path, str], _LookupIndex | _NumberIndex | _GlobIndex], path: Path, kind: str, leaf: Leaf,
         bit: int) -> None:
    index = indexes.get((path, kind))
    if kind == "number":
        number = index if isinstance(index, _NumberIndex) else _NumberIndex()
        assert leaf.span is not None
        number.add(leaf.span, bit)
        indexes[path, kind] = number
    elif kind == "glob":
        globs = index if isinstance(index, _GlobIndex) else _GlobIndex()
        globs.add(leaf, bit)
        indexes[path, kind] = globs
    else:
        lookups = index if isinstance(index, _LookupIndex) else _LookupIndex(negated=kind == "excluded")
        lookup = leaf.plain if kind == "lookup" else leaf.excluded
        assert lookup is not None
        lookups.add(lookup, bit)
        indexes[path, kind] = lookups


def _bits(value: int) -> Iterable[int]:
    """The set bits of ``value``, lowest first."""
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
