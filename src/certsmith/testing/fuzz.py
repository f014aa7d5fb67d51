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

import random
import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.loaders
import botocore.model

from .fuzz_encoding import Blob, Pairs, Raw, Stamp, Tagged, encode_cbor, encode_json
from .fuzz_samples import Samples

__all__ = ["DEFAULT_SERVICES", "PROTOCOLS", "FuzzInput", "InputGenerator", "Operation", "available_services",
           "discover_operations", "render"]

DEFAULT_SERVICES: tuple[str, ...] = ("acm", "acm-pca")
PROTOCOLS: tuple[str, ...] = ("json", "cbor")
_MAX_BODY = 3 * 1024 * 1024  # under the server's 4 MiB, so that bodies are parsed rather than refused by size


def available_services(model_paths: Sequence[Path] = ()) -> tuple[str, ...]:
    """ACM and ACM-PCA, and every service named certsmith… that botocore can load (certsmith's own API)."""
    loader = botocore.loaders.Loader(extra_search_paths=[str(p) for p in model_paths])
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
    loader = botocore.loaders.Loader(extra_search_paths=[str(p) for p in model_paths])
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


class InputGenerator:
    """One seeded stream of inputs. ``remember`` feeds it the ARNs that answers name, so that later inputs
    reach real CAs and certificates, not only "not found"."""

    def __init__(self, rng: random.Random, samples: Samples, *, arns: list[str] | None = None,
                 malformed: float = 0.25, nesting: int = 6) -> None:
        self.rng = rng
        self.samples = samples
        self.malformed = malformed
        self.nesting = nesting
        self.arns: list[str] = [] if arns is None else arns  # may be shared by the generators of several threads
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

    # ---- one input ---------------------------------------------------------------------------------

    def generate(self, operation: Operation, protocol: str) -> FuzzInput:
        # Some documents keep to the shape (they reach the services), some stray now and then, some often.
        self.chaos = self.rng.choice((0.0, 0.0, 0.05, 0.3))
        deep = self.deep = self.rng.random() < 0.02  # now and then, recursive shapes past the server's depth limit
        self.budget = 2000 if deep else self.rng.choice((30, 200, 2000))
        document = self.structure(operation.input_shape, 0, 70 if deep else self.nesting)
        encode = encode_cbor if protocol == "cbor" else encode_json
        body, note = encode(document), f"shape, strays {self.chaos:.0%}" + (", recursive 70 deep" if deep else "")
        if len(body) > _MAX_BODY:
            body, note = encode({}), "shape too large; sent {}"
        if self.rng.random() < self.malformed:
            body, note = self.break_body(body, protocol)
        return FuzzInput(operation, protocol, body, note)

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
            document[self.rng.choice(["Unknown", "__type", "", "\ud800", "x" * 300])] = self.rng.choice(_WRONG)
        return document

    def value(self, shape: botocore.model.Shape, name: str, depth: int, nesting: int) -> Any:
        self.budget -= 1
        if self._strays() and self.rng.random() < 0.3:
            return self.rng.choice(_WRONG)
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
        return self.rng.choice(_WRONG)

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

    # ---- bodies broken on the wire ---------------------------------------------------------------------

    def break_body(self, body: bytes, protocol: str) -> tuple[bytes, str]:
        cbor = protocol == "cbor"
        rng = self.rng
        way = rng.randrange(12)
        if way == 0 and body:
            cut = rng.randrange(len(body))
            return body[:cut], f"truncated at byte {cut} of {len(body)}"
        if way == 1 and body:
            data = bytearray(body)
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            return bytes(data), "bytes flipped"
        if way == 2:
            depth = rng.choice((63, 64, 65, 100, 900, 990, 1000, 5000, 100_000))
            return self._deep(depth, cbor, rng.random() < 0.5), f"nested {depth} deep"
        if way == 3:
            return self._bad_text(body, cbor)
        if way == 4:
            top: Any = rng.choice(([], [{}], "text", 7, None, True, 1.5))
            return (encode_cbor(top) if cbor else encode_json(top)), f"top level is {type(top).__name__}"
        if way == 5:
            return self._odd_number(cbor)
        if way == 6:
            key = rng.choice(("CertificateArn", "CertificateAuthorityArn", "MaxResults", "Tags", "a"))
            document = Pairs(((key, "arn:aws:acm:us-east-1:1:certificate/x"), (key, 5)))
            return (encode_cbor(document) if cbor else encode_json(document)), f"the key {key} twice"
        if way == 7:
            return body + rng.choice((b"\x00", b"}", b" garbage", b"\xa0", b"{}")), "bytes after the document"
        if way == 8:
            return rng.randbytes(rng.randint(0, 300)), "random bytes"
        if way == 9 and cbor:
            return self._cbor_oddity()
        if way == 9:
            oddity = rng.choice((b"\xef\xbb\xbf{}", "{}".encode("utf-16"), b"{\"a\":1,}", b"{/*c*/}", b" ", b"{'a':1}",
                                 b"{\"a\":01}", b"{\"a\":\"\\x41\"}", b"{\"a\":\"\\ud800\"}", b"\x00"))
            return oddity, "JSON oddity"
        if way == 10:
            other = encode_json({}) if cbor else encode_cbor({"CertificateArn": "x"})
            return other, "the other protocol's encoding"
        return b"", "empty body"

    def _deep(self, depth: int, cbor: bool, objects: bool) -> bytes:
        if cbor:
            return (b"\xa1\x61A" * depth if objects else b"\x81" * depth) + b"\x01"
        return (b'{"A":' * depth + b"1" + b"}" * depth) if objects else (b"[" * depth + b"]" * depth)

    def _bad_text(self, body: bytes, cbor: bool) -> tuple[bytes, str]:
        bad = self.rng.choice((b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82", b"\x80"))
        if cbor:
            return encode_cbor({"CertificateArn": Raw(b"", bytes([0x60 | len(bad)]) + bad)}), f"text {bad!r} in CBOR"
        spot = body.find(b'":"')
        if spot < 0:
            return b'{"CertificateArn":"' + bad + b'"}', f"bytes {bad!r} in a JSON string"
        return body[:spot + 3] + bad + body[spot + 3:], f"bytes {bad!r} in a JSON string"

    def _odd_number(self, cbor: bool) -> tuple[bytes, str]:
        member = self.rng.choice(("MaxResults", "MaxItems", "PermanentDeletionTimeInDays", "Validity", "Unknown"))
        if cbor:
            number = self.rng.choice((Tagged(2, b"\xff" * 40), Tagged(3, b"\x01" * 9), float("nan"), float("-inf"),
                                      Tagged(4, [-2, 27315]), Tagged(5, [1, 3]), 2**64 - 1, -(2**64)))
            return encode_cbor({member: number}), f"{member} is {number!r}"
        text = self.rng.choice((b"1e999", b"-1e999", b"9" * 5000, b"NaN", b"Infinity", b"-Infinity", b"1.0e-400",
                                b"123456789012345678901234567890", b"-0", b"1E+2"))
        return b'{"' + member.encode() + b'":' + text + b"}", f"{member} is {text[:40]!r}"

    def _cbor_oddity(self) -> tuple[bytes, str]:
        tag = self.rng.choice((0, 1, 2, 3, 4, 5, 21, 24, 25, 28, 29, 30, 32, 35, 36, 37, 256, 258, 260, 261, 1004,
                               55799, 2**32, 2**64 - 1))
        value = self.rng.choice(("2024-01-01T00:00:00Z", 1e12, b"\x01", [1, 2], "(a|a)*b", {"a": 1}, 0))
        choices = (
            (encode_cbor({"CertificateArn": Tagged(tag, value)}), f"tag {tag} around {value!r}"),
            (b"\xa1" + encode_cbor(self.rng.choice((1, b"k", [1], 1.5, None))) + b"\x01", "a map key that is no string"),
            (b"\xbf\x61A\x7f\x61b\xff\xff", "indefinite lengths"),
            (b"\xa1\x61A" + self.rng.choice((b"\xf7", b"\xf0", b"\xf8\xff", b"\xf8\x18", b"\x1c", b"\xff")),
             "undefined, simple values, reserved codes"),
            (b"\xa1\x61A" + self.rng.choice((b"\x9b", b"\xbb", b"\x7b", b"\x5b")) + b"\x7f" + b"\xff" * 7,
             "a length of 2**63"),
            (b"\xd8\x1c\x81\xd8\x1d\x00", "a shared reference to itself"),
        )
        return self.rng.choice(choices)


def render(body: bytes, protocol: str, limit: int = 600) -> str:
    """A body as a finding shows it: JSON as text, CBOR in hex; cut at ``limit`` bytes."""
    shown = body[:limit]
    text = shown.decode("utf-8", "backslashreplace") if protocol == "json" else shown.hex(" ")
    more = f" … ({len(body)} bytes in all)" if len(body) > limit else ""
    return text + more

