"""Inputs for fuzzing certsmith's AWS API, generated from botocore's service models.

:func:`discover_operations` reads every operation of the named services from their botocore models
(``acm`` and ``acm-pca``, and certsmith's own service as soon as its model can be loaded), so a new
operation is fuzzed without anyone listing it. :class:`InputGenerator` makes one request body at a
time for JSON 1.1 or RPC v2 CBOR: a document that follows the input shape with random members,
lengths at and past their limits, enum values and near misses, integers and timestamps at the
extremes, wrong types and deep nesting; or such a document broken on the wire (truncated, bytes
flipped, bad UTF-8, NaN, repeated keys, CBOR tags, nesting thousands deep, another top-level type).
The sending and judging is :mod:`.fuzz_runner`'s.
"""

from __future__ import annotations

import copy
import random
import string
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.loaders
import botocore.model

from ..models import MODELS_PATH
from .fuzz_breakage import break_body
from .fuzz_encoding import Blob, Stamp, Tagged, encode_cbor, encode_json
from .fuzz_samples import Samples

__all__ = ["DEFAULT_SERVICES", "PROTOCOLS", "Corpus", "FuzzInput", "InputGenerator", "Operation", "available_services",
           "discover_operations", "render"]

DEFAULT_SERVICES: tuple[str, ...] = ("acm", "acm-pca")
PROTOCOLS: tuple[str, ...] = ("json", "cbor")
_MAX_BODY = 3 * 1024 * 1024  # under the server's 4 MiB, so that bodies are parsed rather than refused by size


def available_services(model_paths: Sequence[Path] = ()) -> tuple[str, ...]:
    """ACM and ACM-PCA, and every service named certsmith… that botocore can load (certsmith's own API)."""
    loader = botocore.loaders.Loader(extra_search_paths=[str(MODELS_PATH), *(str(p) for p in model_paths)])
    own = sorted(name for name in loader.list_available_services("service-2") if name.startswith("certsmith"))
    return DEFAULT_SERVICES + tuple(own)


@dataclass(frozen=True, slots=True)
class Operation:
    service: str  # botocore's name: "acm-pca"
    target_prefix: str  # "ACMPrivateCA": X-Amz-Target's prefix, and the service in an RPC v2 CBOR path
    signing_name: str  # SigV4's service: "acm-pca"
    name: str
    input_shape: botocore.model.StructureShape | None

    @property
    def target(self) -> str:
        return f"{self.target_prefix}.{self.name}"


def discover_operations(services: Sequence[str] = DEFAULT_SERVICES,
                        model_paths: Sequence[Path] = ()) -> list[Operation]:
    loader = botocore.loaders.Loader(extra_search_paths=[str(MODELS_PATH), *(str(p) for p in model_paths)])
    operations = []
    for service in services:
        model = botocore.model.ServiceModel(loader.load_service_model(service, "service-2"), service)
        prefix = model.metadata["targetPrefix"]
        signing = model.metadata.get("signingName") or model.endpoint_prefix
        for name in model.operation_names:
            shape = model.operation_model(name).input_shape
            assert shape is None or isinstance(shape, botocore.model.StructureShape)
            operations.append(Operation(service, prefix, signing, name, shape))
    return operations


@dataclass(frozen=True, slots=True)
class FuzzInput:
    operation: Operation
    protocol: str  # "json" or "cbor"
    body: bytes
    note: str  # how it was made: "shape", "truncated at 120", "nested 3000 deep", …
    document: Any = None  # what the body encodes, unless the body was broken on the wire


# Documents that succeeded, by operation target: mutated a member or three at a time, they reach code that
# a document made from nothing seldom does (a CSR the CA signs, with an algorithm of its family, …).
Corpus = dict[str, list[dict[str, Any]]]
_CORPUS_PER_OPERATION = 30


_INTEGER_EDGES = (0, 1, -1, 2**31 - 1, 2**31, -2**31, -2**31 - 1, 2**53 + 1, 2**63 - 1, 2**63, -2**63, -2**63 - 1,
                  2**64 - 1, 2**64, -2**64 - 1, 10**30)
_TIMESTAMP_EDGES: tuple[Any, ...] = (
    0, 1, -1, 1.5, 1e12, -1e12, 1e15, 1e308, -1e308, float("nan"), float("inf"), float("-inf"),
    253_402_300_799, 253_402_300_799.999999, 253_402_300_800, -62_135_596_800, -62_135_596_801,
    2**63 - 1, 2**63, 2**64, -2**63, 1_700_000_000, 4_102_444_800, 32_503_680_000)
_WRONG: tuple[Any, ...] = (None, True, False, 0, -7, 2.5, "", "text", [], [1, "a"], {}, {"Key": "v"}, Blob(b"\x00\xff"),
                           Stamp(5), float("nan"))
_TEXT_KINDS = (string.ascii_letters + string.digits, string.printable, "aé中😀\u200b\u202e", "\x00\x01\x7f\n\t",
               "-.*/:=@_+ ")


def _recursive(member: botocore.model.Shape, parent: botocore.model.StructureShape) -> bool:
    """A member holding its own structure again (a filter's Not), directly or as a list's items (And, Or)."""
    inner = member.member if isinstance(member, botocore.model.ListShape) else member
    return bool(inner.name == parent.name)


def _spots(document: Any, shape: botocore.model.Shape,
           name: str = "") -> Iterator[tuple[Any, Any, botocore.model.Shape, str]]:
    """Every place in a document a value can be made anew: (container, key or index, member shape, member
    name; a list's items go by the list's name); a structure's absent members too."""
    if isinstance(shape, botocore.model.StructureShape) and isinstance(document, dict):
        for member_name, member in shape.members.items():
            yield document, member_name, member, member_name
            if member_name in document:
                yield from _spots(document[member_name], member, member_name)
    elif isinstance(shape, botocore.model.ListShape) and isinstance(document, list):
        for index, item in enumerate(document):
            yield document, index, shape.member, name
            yield from _spots(item, shape.member, name)


class InputGenerator:
    """One seeded stream of inputs. ``remember`` feeds it the ARNs that answers name, so that later inputs
    reach real CAs and certificates, not only "not found"."""

    def __init__(self, rng: random.Random, samples: Samples, *, arns: list[str] | None = None,
                 corpus: Corpus | None = None, malformed: float = 0.25, nesting: int = 6) -> None:
        self.rng = rng
        self.samples = samples
        self.malformed = malformed
        self.nesting = nesting
        # Both may be shared by the generators of several threads: lists only grow or change in place.
        self.arns: list[str] = [] if arns is None else arns
        self.corpus: Corpus = {} if corpus is None else corpus
        self.chaos = 0.0  # how often the current document strays from its shape, at each choice
        self.budget = 0  # values still to spend on the current document (lists of lists multiply quickly)
        self.deep = False

    def remember(self, document: Any) -> None:
        stack = [document]
        while stack:
            value = stack.pop()
            if isinstance(value, dict):
                stack.extend(value.values())
            elif isinstance(value, list):
                stack.extend(value)
            elif isinstance(value, str) and value.startswith("arn:") and value not in self.arns:
                if len(self.arns) < 500:
                    self.arns.append(value)
                else:  # replaced in place: another thread may be choosing from the list, which never shrinks
                    self.arns[self.rng.randrange(len(self.arns))] = value

    def learn(self, item: FuzzInput) -> None:
        """Keep the document of an input that succeeded, to mutate later."""
        if not isinstance(item.document, dict):
            return
        kept = self.corpus.setdefault(item.operation.target, [])
        if len(kept) < _CORPUS_PER_OPERATION:
            kept.append(item.document)
        else:
            kept[self.rng.randrange(len(kept))] = item.document

    # ---- one input ---------------------------------------------------------------------------------

    def generate(self, operation: Operation, protocol: str) -> FuzzInput:
        # Some documents keep to the shape (they reach the services), some stray now and then, some often.
        self.chaos = self.rng.choice((0.0, 0.0, 0.05, 0.3))
        deep = self.deep = self.rng.random() < 0.02  # now and then, recursive shapes past the server's depth limit
        self.budget = 2000 if deep else self.rng.choice((30, 200, 2000))
        seeds = self.corpus.get(operation.target)
        if seeds and operation.input_shape is not None and not deep and self.rng.random() < 0.5:
            document, note = self.mutate(self.rng.choice(seeds), operation.input_shape)
        else:
            document = self.structure(operation.input_shape, 0, 70 if deep else self.nesting)
            note = "shape" + (", recursive 70 deep" if deep else "")
        note += f", strays {self.chaos:.0%}"
        encode = encode_cbor if protocol == "cbor" else encode_json
        body = encode(document)
        if len(body) > _MAX_BODY:
            document, body, note = {}, encode({}), "shape too large; sent {}"
        if self.rng.random() < self.malformed:
            body, note = break_body(self.rng, body, protocol)
            return FuzzInput(operation, protocol, body, note)
        return FuzzInput(operation, protocol, body, note, document)

    def mutate(self, seed: dict[str, Any], shape: botocore.model.StructureShape) -> tuple[dict[str, Any], str]:
        """A copy of a document that succeeded, with one to three members made anew, dropped or added."""
        document = copy.deepcopy(seed)
        changed = []
        for _ in range(self.rng.choice((1, 1, 2, 3))):
            spots = list(_spots(document, shape))
            if not spots:  # an input without members
                break
            parent, key, member, name = self.rng.choice(spots)
            if isinstance(parent, dict) and key in parent and self.rng.random() < 0.15:
                del parent[key]
                changed.append(f"-{name}")
            else:
                parent[key] = self.value(member, name, 1, self.nesting)
                changed.append(name)
        return document, "mutated " + ",".join(changed)

    def _wrong(self) -> Any:
        """A value of some other type: a copy, since a later mutation may write into it."""
        return copy.deepcopy(self.rng.choice(_WRONG))

    def _strays(self) -> bool:
        return self.rng.random() < self.chaos

    # ---- documents that follow (or nearly follow) the shape -------------------------------------------

    def structure(self, shape: botocore.model.StructureShape | None, depth: int, nesting: int) -> dict[str, Any]:
        if shape is None:
            return {"Unexpected": "member"} if self._strays() else {}
        document: dict[str, Any] = {}
        required = set(shape.required_members)
        for name, member in shape.members.items():
            if name in required:
                wanted = 0.5 if self._strays() else 1.0
            else:
                wanted = 0.4 if depth < nesting and self.budget > 0 else 0.0
            if self.deep and depth < nesting and self.budget > 0 and _recursive(member, shape):
                wanted = 1.0
            if self.rng.random() < wanted:
                document[name] = self.value(member, name, depth + 1, nesting)
        if self._strays() and self.rng.random() < 0.1:
            document[self.rng.choice(["Unknown", "__type", "", "\ud800", "x" * 300])] = self._wrong()
        return document

    def value(self, shape: botocore.model.Shape, name: str, depth: int, nesting: int) -> Any:
        self.budget -= 1
        if self._strays() and self.rng.random() < 0.3:
            return self._wrong()
        kind = shape.type_name
        if kind == "structure":
            assert isinstance(shape, botocore.model.StructureShape)
            return self.structure(shape, depth, nesting)
        if kind in ("list", "map"):
            count = self._count(shape.metadata, depth < nesting and self.budget > 0)
            if isinstance(shape, botocore.model.ListShape):
                return [self.value(shape.member, name, depth + 1, nesting) for _ in range(count)]
            assert isinstance(shape, botocore.model.MapShape)
            return {self._string(shape.key, "key"): self.value(shape.value, name, depth + 1, nesting)
                    for _ in range(count)}
        if kind == "string":
            return self._string(shape, name)
        if kind in ("integer", "long", "short", "byte"):
            return self._integer(shape.metadata)
        if kind in ("float", "double"):
            return self.rng.choice((0.0, -0.0, 1.5, 1e308, float("nan"), float("inf"), 7))
        if kind == "boolean":
            return self.rng.random() < 0.5
        if kind == "blob":
            return self._blob(shape.metadata, name)
        if kind == "timestamp":
            return self._timestamp()
        return self._wrong()

    def _count(self, meta: dict[str, Any], deeper: bool) -> int:
        low, high = int(meta.get("min", 0)), int(meta.get("max", 20))
        if self._strays():
            count = int(self.rng.choice([max(low - 1, 0), low, high, high + 1] if high <= 1000 else [0, low, 50]))
        else:
            count = self.rng.randint(low, max(low, min(high, 3)))
        return min(count, max(self.budget, low)) if deeper else min(count, max(low, 1))

    def _length(self, meta: dict[str, Any]) -> int:
        low, high = meta.get("min", 0), meta.get("max", 4096)
        if self._strays():
            return int(self.rng.choice([low, max(low - 1, 0), high, high + 1, 0, 70_000]))
        return self.rng.randint(low, max(low, min(high, 40)))

    def _text(self, length: int) -> str:
        self.budget -= length // 1000
        alphabet = self.rng.choice(_TEXT_KINDS) if self._strays() else _TEXT_KINDS[0]
        text = "".join(self.rng.choice(alphabet) for _ in range(min(length, 300)))
        text = (text * (length // max(len(text), 1) + 1))[:length] if length > 300 else text
        if text and self._strays() and self.rng.random() < 0.1:
            spot = self.rng.randrange(len(text))
            text = text[:spot] + "\ud800" + text[spot + 1:]
        return text

    def _string(self, shape: botocore.model.Shape, name: str) -> Any:
        if shape.enum:
            pick = self.rng.choice(shape.enum)
            if not self._strays():
                return pick
            return self.rng.choice((pick.lower(), pick + "X", "", " " + pick, self._text(12)))
        if self.rng.random() < 0.7:
            sample = self.samples.string_for(shape.name, name, self.arns, self.rng, self._strays())
            if sample is not None:
                return sample
        if "pattern" in shape.metadata and self._strays():
            return self.samples.near_pattern(shape.metadata["pattern"], self.rng)
        return self._text(self._length(shape.metadata))

    def _integer(self, meta: dict[str, Any]) -> int:
        low, high = int(meta.get("min", -(2**31))), int(meta.get("max", 2**31 - 1))
        if not self._strays():
            return self.rng.randint(low, min(high, max(low, 0) + 100))
        if self.rng.random() < 0.5:
            return self.rng.choice((low, high, low - 1, high + 1))
        return int(self.rng.choice(_INTEGER_EDGES))

    def _blob(self, meta: dict[str, Any], name: str) -> Any:
        if not self._strays():
            return Blob(self.samples.blob_for(name, self.rng))
        roll = self.rng.random()
        if roll < 0.5:
            return Blob(self.samples.blob_for(name, self.rng, damaged=True))
        if roll < 0.6:
            return "not base64 at all!" if self.rng.random() < 0.5 else "QUJD="  # text where bytes belong
        return Blob(self.rng.randbytes(min(self._length(meta), 200_000)))

    def _timestamp(self) -> Any:
        if not self._strays():
            return Stamp(self.rng.choice((int, float))(self.rng.uniform(1.6e9, 2.1e9)))
        if self.rng.random() < 0.1:
            return self.rng.choice(("2024-01-01T00:00:00Z", True, Tagged(0, "2024-01-01T00:00:00Z")))
        return Stamp(self.rng.choice(_TIMESTAMP_EDGES))


def render(body: bytes, protocol: str, limit: int = 600) -> str:
    """A body as a finding shows it: JSON as text, CBOR in hex; cut at ``limit`` bytes."""
    shown = body[:limit]
    text = shown.decode("utf-8", "backslashreplace") if protocol == "json" else shown.hex(" ")
    more = f" … ({len(body)} bytes in all)" if len(body) > limit else ""
    return text + more

