"""Input checking driven by the botocore service models: required members, types, lengths, patterns, enums.

botocore checks only required members, types and minimums on the client; everything else reaches the
server unchecked, so certsmith checks the whole shape here and answers ValidationException in the
Coral format AWS uses (``1 validation error detected: Value ... at 'path' failed to satisfy constraint: ...``).
"""

from __future__ import annotations

import base64
import binascii
import functools
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.loaders
import botocore.model

from ...domain.errors import ValidationError
from ...models import MODELS_PATH
from .protocol import EpochSeconds

__all__ = ["ServiceShapes", "service_shapes"]


def _python_pattern(pattern: str) -> re.Pattern[str] | None:
    translated = pattern.replace(r"\p{L}\p{Z}\p{N}", r"\w\s")
    try:
        return re.compile(translated)
    except re.error:
        return None


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


# Shapes whose pattern the domain checks itself, with the error code AWS uses for them (InvalidArnException).
_PARSED_BY_DOMAIN = frozenset({"Arn"})
# Smithy's integer types are fixed-width; botocore's models say "integer" (32 bits) or "long" (64 bits).
_INTEGER_BITS = {"byte": 8, "short": 16, "integer": 32, "long": 64}
# What datetime can hold, in seconds since the epoch: 0001-01-01T00:00:00Z up to 9999-12-31T23:59:59.999999Z.
_EARLIEST, _LATEST = -62_135_596_800, 253_402_300_800
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# A body can break every rule of every member; the message names the first ones, as AWS's does.
_MAX_REPORTED = 10


def _shown(value: Any) -> str:
    """A value from the request as a message shows it: short, and escaped (repr never shows a lone surrogate)."""
    if value is None:
        return "null"
    if isinstance(value, (bytes, bytearray)):
        return "<blob>"
    if isinstance(value, (dict, list)):
        return "[...]"
    if isinstance(value, EpochSeconds):
        value = value.value
    try:
        text = repr(value)
    except ValueError:  # an integer too long to print
        return "<a number too long to show>"
    return text if len(text) <= 64 else text[:64] + "…"


def _member_path(path: str, name: str) -> str:
    if not (name.isascii() and name.isprintable()):
        name = ascii(name)[1:-1]
    return f"{path}.{_camel(name)}" if path else _camel(name)


def _valid_unicode(text: str) -> bool:
    """False for a string holding a lone surrogate (JSON's ``\\ud800`` escape makes one)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _epoch_seconds(value: Any) -> float | None:
    """The number of a timestamp member (JSON number, CBOR tag 1 or number); None when it is not one."""
    if isinstance(value, EpochSeconds):
        value = value.value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    return None


class _Checker:
    def __init__(self, cbor: bool) -> None:
        self.cbor = cbor
        self.problems: list[tuple[str, str]] = []

    def fail(self, path: str, value: Any, constraint: str) -> None:
        self.problems.append((path, f"Value {_shown(value)} at '{path}' failed to satisfy constraint: {constraint}"))

    def check(self, shape: botocore.model.Shape, value: Any, path: str) -> Any:
        kind = shape.type_name
        if kind == "structure":
            assert isinstance(shape, botocore.model.StructureShape)
            return self._structure(shape, value, path)
        if kind == "list":
            assert isinstance(shape, botocore.model.ListShape)
            if not isinstance(value, list):
                self.fail(path, value, "Member must be a list")
                return value
            self._length(len(value), shape.metadata, path, value, "Member must have length")
            return [self.check(shape.member, item, f"{path}.{index + 1}.member") for index, item in enumerate(value)]
        if kind == "map":
            assert isinstance(shape, botocore.model.MapShape)
            return self._map(shape, value, path)
        if kind == "string":
            return self._string(shape, value, path)
        if kind in _INTEGER_BITS:
            return self._integer(shape, value, path)
        if kind in ("float", "double"):
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                self.fail(path, value, "Member must be a number")
            return value
        if kind == "boolean":
            if not isinstance(value, bool):
                self.fail(path, value, "Member must be a boolean")
            return value
        if kind == "blob":
            return self._blob(shape, value, path)
        if kind == "timestamp":
            return self._timestamp(value, path)
        return value

    def _structure(self, shape: botocore.model.StructureShape, value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            self.fail(path, value, "Member must be a structure")
            return value
        result: dict[str, Any] = {}
        for name in shape.required_members:
            if value.get(name) is None:
                self.fail(_member_path(path, name), None, "Member must not be null")
        for name, member_value in value.items():
            member = shape.members.get(name) if isinstance(name, str) else None
            member_path = _member_path(path, name) if isinstance(name, str) else f"{path}.<key>"
            if member is None:
                self.problems.append((member_path, f"Unknown member {_shown(name)} at '{path or 'input'}'"))
                continue
            if member_value is None:
                continue
            result[name] = self.check(member, member_value, member_path)
        return result

    def _map(self, shape: botocore.model.MapShape, value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            self.fail(path, value, "Member must be a map")
            return value
        self._length(len(value), shape.metadata, path, value, "Member must have length")
        result: dict[Any, Any] = {}
        for key, item in value.items():
            entry = _member_path(path, key) if isinstance(key, str) else f"{path}.<key>"
            result[self.check(shape.key, key, entry)] = self.check(shape.value, item, entry)
        return result

    def _string(self, shape: botocore.model.Shape, value: Any, path: str) -> Any:
        meta = shape.metadata
        if not isinstance(value, str):
            self.fail(path, value, "Member must be a string")
            return value
        if not _valid_unicode(value):
            self.fail(path, value, "Member must be a string of Unicode characters (it holds a lone surrogate)")
            return value
        if "\x00" in value:  # no text column of PostgreSQL can hold it, and no AWS pattern admits it
            self.fail(path, value, "Member must not contain the NUL character (U+0000)")
            return value
        before = len(self.problems)
        self._length(len(value), meta, path, value, "Member must have length")
        if shape.enum and value not in shape.enum:
            self.fail(path, value, f"Member must satisfy enum value set: [{', '.join(shape.enum)}]")
        elif "pattern" in meta and shape.name not in _PARSED_BY_DOMAIN and len(self.problems) == before:
            compiled = _pattern(meta["pattern"])  # only on a string of allowed length: patterns can backtrack
            if compiled is not None and not compiled.fullmatch(value):
                self.fail(path, value, f"Member must satisfy regular expression pattern: {meta['pattern']}")
        return value

    def _integer(self, shape: botocore.model.Shape, value: Any, path: str) -> Any:
        meta = shape.metadata
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(path, value, "Member must be an integer")
            return value
        limit = 2 ** (_INTEGER_BITS[shape.type_name] - 1)
        low, high = max(meta.get("min", -limit), -limit), min(meta.get("max", limit - 1), limit - 1)
        if value < low:
            self.fail(path, value, f"Member must have value greater than or equal to {low}")
        elif value > high:
            self.fail(path, value, f"Member must have value less than or equal to {high}")
        return value

    def _blob(self, shape: botocore.model.Shape, value: Any, path: str) -> Any:
        raw: bytes
        if isinstance(value, bytes) and self.cbor:
            raw = value
        elif isinstance(value, str) and not self.cbor:
            try:
                raw = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                self.fail(path, "<blob>", "Member must be base64-encoded")
                return value
        else:
            self.fail(path, "<blob>", "Member must be a blob")
            return value
        self._length(len(raw), shape.metadata, path, "<blob>", "Member must have length")
        return raw

    def _timestamp(self, value: Any, path: str) -> Any:
        seconds = _epoch_seconds(value)
        if seconds is None:
            self.fail(path, value, "Member must be a timestamp (seconds since 1970-01-01T00:00:00Z)")
            return value
        try:
            if math.isfinite(seconds) and _EARLIEST <= seconds < _LATEST:
                return _EPOCH + timedelta(seconds=seconds)
        except OverflowError:  # within a microsecond of the end, rounded past it
            pass
        self.fail(path, value, "Member must be a timestamp from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z "
                               f"(seconds since the epoch from {_EARLIEST} to {_LATEST - 1})")
        return value

    def _length(self, length: int, meta: dict[str, Any], path: str, value: Any, text: str) -> None:
        if "min" in meta and length < meta["min"]:
            self.fail(path, value, f"{text} greater than or equal to {meta['min']}")
        if "max" in meta and length > meta["max"]:
            self.fail(path, value, f"{text} less than or equal to {meta['max']}")


@functools.lru_cache(maxsize=512)
def _pattern(pattern: str) -> re.Pattern[str] | None:
    return _python_pattern(pattern)


class ServiceShapes:
    def __init__(self, service: str) -> None:
        loader = botocore.loaders.Loader(extra_search_paths=[str(MODELS_PATH)])
        self.model = botocore.model.ServiceModel(loader.load_service_model(service, "service-2"), service)
        self.operations = frozenset(self.model.operation_names)

    def parse_input(self, operation: str, document: Any, *, cbor: bool = False) -> dict[str, Any]:
        """The checked input with blobs decoded; raises ValidationError listing every problem found."""
        shape = self.model.operation_model(operation).input_shape
        if shape is None:
            return {}
        checker = _Checker(cbor)
        result = checker.check(shape, document if document is not None else {}, "")
        if checker.problems:
            count = len(checker.problems)
            noun = "error" if count == 1 else "errors"
            shown = "; ".join(problem for _, problem in checker.problems[:_MAX_REPORTED])
            more = f"; and {count - _MAX_REPORTED} more" if count > _MAX_REPORTED else ""
            raise ValidationError(f"{count} validation {noun} detected: {shown}{more}", field=checker.problems[0][0])
        assert isinstance(result, dict)
        return result


@functools.lru_cache(maxsize=4)
def service_shapes(service: str) -> ServiceShapes:
    return ServiceShapes(service)
