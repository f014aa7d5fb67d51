"""Input checking driven by the botocore service models: required members, types, lengths, patterns, enums.

botocore checks only required members, types and minimums on the client; everything else reaches the
server unchecked, so certsmith checks the whole shape here and answers ValidationException in the
Coral format AWS uses (``1 validation error detected: Value ... at 'path' failed to satisfy constraint: ...``).
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from datetime import UTC, datetime
from typing import Any

import botocore.loaders
import botocore.model

from ...domain.errors import ValidationError

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


class _Checker:
    def __init__(self, cbor: bool) -> None:
        self.cbor = cbor
        self.problems: list[tuple[str, str]] = []

    def fail(self, path: str, value: Any, constraint: str) -> None:
        shown = "null" if value is None else repr(value) if not isinstance(value, (bytes, dict, list)) else "[...]"
        self.problems.append((path, f"Value {shown} at '{path}' failed to satisfy constraint: {constraint}"))

    def check(self, shape: botocore.model.Shape, value: Any, path: str) -> Any:
        kind = shape.type_name
        meta = shape.metadata
        if kind == "structure":
            assert isinstance(shape, botocore.model.StructureShape)
            if not isinstance(value, dict):
                self.fail(path, value, "Member must be a structure")
                return value
            result: dict[str, Any] = {}
            for name in shape.required_members:
                if value.get(name) is None:
                    self.fail(f"{path}.{_camel(name)}" if path else _camel(name), None, "Member must not be null")
            for name, member_value in value.items():
                member = shape.members.get(name)
                member_path = f"{path}.{_camel(name)}" if path else _camel(name)
                if member is None:
                    self.problems.append((member_path, f"Unknown member '{name}' at '{path or 'input'}'"))
                    continue
                if member_value is None:
                    continue
                result[name] = self.check(member, member_value, member_path)
            return result
        if kind == "list":
            assert isinstance(shape, botocore.model.ListShape)
            if not isinstance(value, list):
                self.fail(path, value, "Member must be a list")
                return value
            self._length(len(value), meta, path, value, "Member must have length")
            return [self.check(shape.member, item, f"{path}.{index + 1}.member") for index, item in enumerate(value)]
        if kind == "map":
            if not isinstance(value, dict):
                self.fail(path, value, "Member must be a map")
            return value
        if kind == "string":
            if not isinstance(value, str):
                self.fail(path, value, "Member must be a string")
                return value
            self._length(len(value), meta, path, value, "Member must have length")
            if shape.enum and value not in shape.enum:
                self.fail(path, value, f"Member must satisfy enum value set: [{', '.join(shape.enum)}]")
            elif "pattern" in meta and shape.name not in _PARSED_BY_DOMAIN:
                compiled = _pattern(meta["pattern"])
                if compiled is not None and not compiled.fullmatch(value):
                    self.fail(path, value, f"Member must satisfy regular expression pattern: {meta['pattern']}")
            return value
        if kind in ("integer", "long"):
            if not isinstance(value, int) or isinstance(value, bool):
                self.fail(path, value, "Member must be an integer")
                return value
            if "min" in meta and value < meta["min"]:
                self.fail(path, value, f"Member must have value greater than or equal to {meta['min']}")
            if "max" in meta and value > meta["max"]:
                self.fail(path, value, f"Member must have value less than or equal to {meta['max']}")
            return value
        if kind == "boolean":
            if not isinstance(value, bool):
                self.fail(path, value, "Member must be a boolean")
            return value
        if kind == "blob":
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
            self._length(len(raw), meta, path, "<blob>", "Member must have length")
            return raw
        if kind == "timestamp":
            if isinstance(value, datetime):
                return value
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return datetime.fromtimestamp(value, UTC)
            self.fail(path, value, "Member must be a timestamp")
            return value
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
        loader = botocore.loaders.Loader()
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
            raise ValidationError(f"{count} validation {noun} detected: " + "; ".join(p for _, p in checker.problems),
                                  field=checker.problems[0][0])
        assert isinstance(result, dict)
        return result


@functools.lru_cache(maxsize=4)
def service_shapes(service: str) -> ServiceShapes:
    return ServiceShapes(service)
