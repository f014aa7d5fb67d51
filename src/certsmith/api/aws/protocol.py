"""AWS JSON 1.1 and Smithy RPC v2 CBOR bodies: decoding requests and encoding responses.

A body that cannot be read as a document raises :class:`SerializationError` (``SerializationException``,
400): it is not valid UTF-8 JSON or well-formed CBOR, is not an object at the top, nests deeper than
:data:`MAX_DEPTH`, repeats a key, holds a number JSON cannot carry (``NaN``, ``Infinity``, ``1e999``), or
uses a CBOR tag other than 1 (epoch-seconds timestamps, the only one RPC v2 CBOR defines). Whether the
members fit the operation's shape is :mod:`.shapes`' business (``ValidationException``).
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import cbor2

from ...domain.errors import UserError

__all__ = ["CBOR_TYPE", "JSON_TYPE", "MAX_DEPTH", "EpochSeconds", "SerializationError", "decode_body", "encode_body",
           "prune"]

JSON_TYPE = "application/x-amz-json-1.1"
CBOR_TYPE = "application/cbor"
# Containers inside containers. The deepest input of ACM and ACM-PCA is about 8 levels (a
# SearchCertificates filter can nest at will, but a filter of 60 levels is not a query anyone writes);
# past this the body is refused before anything recurses over it.
MAX_DEPTH = 64


class SerializationError(UserError):
    """The body is not a well-formed document of the protocol (``SerializationException`` on the wire)."""

    code = "serialization"


@dataclass(frozen=True, slots=True)
class EpochSeconds:
    """A CBOR tag 1 value (seconds since the epoch), checked and converted by the timestamp member's shape."""

    value: Any


def prune(value: Any) -> Any:
    """Drop absent (None) members and empty optional structures, as AWS omits them."""
    if isinstance(value, dict):
        pruned = {k: prune(v) for k, v in value.items() if v is not None}
        return {k: v for k, v in pruned.items() if v != {} or k in ("RevocationConfiguration",)}
    if isinstance(value, list):
        return [prune(v) for v in value]
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()
    raise TypeError(f"cannot encode {type(value).__name__}")


# ---- JSON -------------------------------------------------------------------------------------------

def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise SerializationError(f"the request body is not valid JSON: the key {_quoted(key)} appears "
                                         "twice in one object")
            seen.add(key)
    return document


def _json_constant(name: str) -> Any:
    raise SerializationError(f"the request body is not valid JSON: {name} is not a JSON number")


def _json_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise SerializationError(f"the request body holds the number {_clip(text)}, which is out of range")
    return number


def _containers(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        yield from (v for v in value.values() if isinstance(v, (dict, list)))
    elif isinstance(value, list):
        yield from (v for v in value if isinstance(v, (dict, list)))


def _check_depth(document: Any) -> None:
    """Iteratively, so that the check itself cannot run out of stack."""
    level, depth = [document], 1
    while level:
        if depth > MAX_DEPTH:
            raise SerializationError(_too_deep())
        level = [child for parent in level for child in _containers(parent)]
        depth += 1


def _too_deep() -> str:
    return f"the request body nests objects and arrays more than {MAX_DEPTH} levels deep"


def _decode_json(body: bytes) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SerializationError(f"the request body is not valid UTF-8 (byte {exc.start})") from None
    try:
        document = json.loads(text, object_pairs_hook=_json_object, parse_constant=_json_constant,
                              parse_float=_json_float)
    except RecursionError:
        raise SerializationError(_too_deep()) from None
    except ValueError as exc:  # JSONDecodeError, and integers longer than Python converts
        raise SerializationError(f"the request body is not valid JSON: {_clip(str(exc))}") from None
    # A body with fewer brackets than the limit cannot nest past it: most bodies skip the walk.
    if body.count(b"[") + body.count(b"{") > MAX_DEPTH:
        _check_depth(document)
    return document


# ---- CBOR -------------------------------------------------------------------------------------------

def _epoch_seconds(value: Any, _immutable: bool) -> EpochSeconds:
    return EpochSeconds(value)


class _UnsupportedTag(ValueError):
    pass


class _OnlyTagOne(Mapping[int, Any]):
    """cbor2's semantic decoders, replaced: tag 1 becomes :class:`EpochSeconds`, every other tag is refused
    (bignums, decimals, regular expressions, shared references that make cycles, and so on)."""

    def __getitem__(self, tag: int) -> Any:
        if tag == 1:
            return _epoch_seconds

        def refuse(_value: Any, _immutable: bool) -> Any:
            raise _UnsupportedTag(f"CBOR tag {tag} is not supported (RPC v2 CBOR uses only tag 1, for timestamps)")

        return refuse

    def __iter__(self) -> Iterator[int]:
        return iter(())

    def __len__(self) -> int:
        return 0


_SEMANTIC_DECODERS = _OnlyTagOne()


def _decode_cbor(body: bytes) -> Any:
    stream = io.BytesIO(body)
    try:
        # Map keys are text or byte strings (strict_hashable_types); a byte-string key is no member name,
        # and the shape check says so.
        document = cbor2.CBORDecoder(stream, semantic_decoders=_SEMANTIC_DECODERS, max_depth=MAX_DEPTH,
                                     allow_duplicate_keys=False, strict_hashable_types=True).decode()
    except (cbor2.CBORDecodeError, ValueError, RecursionError) as exc:
        if isinstance(exc.__cause__, _UnsupportedTag):
            reason = str(exc.__cause__)
        elif isinstance(exc.__cause__, UnicodeDecodeError):
            reason = "a text string is not valid UTF-8"
        elif "nesting depth" in str(exc) or isinstance(exc, RecursionError):
            raise SerializationError(_too_deep()) from None
        elif isinstance(exc, cbor2.CBORDecodeEOF):
            reason = "the body ends before the data item it began"
        else:
            reason = _clip(str(exc))
        raise SerializationError(f"the request body is not valid RPC v2 CBOR: {reason}") from None
    if stream.tell() != len(body):
        raise SerializationError(f"the request body is not valid RPC v2 CBOR: {len(body) - stream.tell()} bytes "
                                 "follow the data item")
    return document


# ---- both -------------------------------------------------------------------------------------------

def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _quoted(text: str) -> str:
    """A string from the request, safe to put in a message: escaped (no lone surrogates) and short."""
    return _clip(ascii(text))


def decode_body(body: bytes, cbor: bool) -> dict[str, Any]:
    """The request's document; an empty body is an empty document. Raises SerializationError."""
    if not body:
        return {}
    document = _decode_cbor(body) if cbor else _decode_json(body)
    if not isinstance(document, dict):
        kind = "CBOR map" if cbor else "JSON object"
        shown = "null" if document is None else type(document).__name__
        raise SerializationError(f"the request body must be a {kind}, not {shown}")
    return document


def encode_body(document: dict[str, Any] | None, cbor: bool) -> bytes:
    document = prune(document or {})
    if cbor:
        return cbor2.dumps(document, datetime_as_timestamp=True, timezone=None)
    return json.dumps(document, default=_json_default, separators=(",", ":")).encode()
