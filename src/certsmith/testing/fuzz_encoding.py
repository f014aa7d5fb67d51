"""The fuzzer's own JSON and CBOR writers: they write what a proper encoder refuses to.

Values are plain Python (None, bool, int, float, str, list, dict) plus the wrappers below, so that one
generated document can be sent over either protocol: a blob is base64 text in JSON and a byte string
in CBOR, a timestamp a number in JSON and tag 1 in CBOR. NaN, lone surrogates, repeated keys and
integers past 64 bits are written as asked, never refused.
"""

from __future__ import annotations

import base64
import json
import math
import struct
from dataclasses import dataclass
from typing import Any

__all__ = ["Blob", "Pairs", "Raw", "Stamp", "Tagged", "encode_cbor", "encode_json"]


@dataclass(frozen=True, slots=True)
class Blob:
    data: bytes


@dataclass(frozen=True, slots=True)
class Stamp:
    """A timestamp member's value: seconds since the epoch (any number, or not a number at all)."""

    seconds: Any


@dataclass(frozen=True, slots=True)
class Tagged:
    """A CBOR tag around a value; JSON has no tags and writes the value alone."""

    tag: int
    value: Any


@dataclass(frozen=True, slots=True)
class Raw:
    """Bytes written as they are, one fragment for each protocol (a 5,000-digit number, bad UTF-8, …)."""

    json: bytes
    cbor: bytes


@dataclass(frozen=True, slots=True)
class Pairs:
    """An object whose keys may repeat."""

    items: tuple[tuple[Any, Any], ...]


def _json_number(value: int | float) -> bytes:
    if isinstance(value, float):
        if math.isnan(value):
            return b"NaN"
        if math.isinf(value):
            return b"Infinity" if value > 0 else b"-Infinity"
        return repr(value).encode()
    return str(value).encode()


def encode_json(value: Any) -> bytes:
    if value is None:
        return b"null"
    if value is True:
        return b"true"
    if value is False:
        return b"false"
    if isinstance(value, (int, float)):
        return _json_number(value)
    if isinstance(value, str):
        return json.dumps(value).encode()  # ensure_ascii: a lone surrogate becomes a \ud800 escape
    if isinstance(value, Blob):
        return b'"' + base64.b64encode(value.data) + b'"'
    if isinstance(value, Stamp):
        return encode_json(value.seconds)
    if isinstance(value, Tagged):
        return encode_json(value.value)
    if isinstance(value, Raw):
        return value.json
    if isinstance(value, bytes):  # a byte string where JSON has none: as text, undecoded
        return b'"' + value + b'"'
    if isinstance(value, list):
        return b"[" + b",".join(encode_json(item) for item in value) + b"]"
    pairs = value.items if isinstance(value, Pairs) else tuple(value.items())
    return b"{" + b",".join(_json_key(key) + b":" + encode_json(item) for key, item in pairs) + b"}"


def _json_key(key: Any) -> bytes:
    return encode_json(key if isinstance(key, (str, Raw)) else str(key))


def _head(major: int, length: int) -> bytes:
    if length < 24:
        return bytes([major << 5 | length])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if length < 1 << (8 * size):
            return bytes([major << 5 | info]) + length.to_bytes(size, "big")
    raise ValueError("CBOR lengths and integers stop at 64 bits")


def encode_cbor(value: Any) -> bytes:
    if value is None:
        return b"\xf6"
    if value is True:
        return b"\xf5"
    if value is False:
        return b"\xf4"
    if isinstance(value, int):
        if value >= 1 << 64:
            return b"\xc2" + encode_cbor(value.to_bytes((value.bit_length() + 7) // 8, "big"))
        if value < -(1 << 64):
            magnitude = -1 - value
            return b"\xc3" + encode_cbor(magnitude.to_bytes((magnitude.bit_length() + 7) // 8, "big"))
        return _head(0, value) if value >= 0 else _head(1, -1 - value)
    if isinstance(value, float):
        return b"\xfb" + struct.pack(">d", value)
    if isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")  # a lone surrogate stays, as invalid UTF-8
        return _head(3, len(data)) + data
    if isinstance(value, (bytes, bytearray)):
        return _head(2, len(value)) + bytes(value)
    if isinstance(value, Blob):
        return encode_cbor(value.data)
    if isinstance(value, Stamp):
        return b"\xc1" + encode_cbor(value.seconds)
    if isinstance(value, Tagged):
        return _head(6, value.tag) + encode_cbor(value.value)
    if isinstance(value, Raw):
        return value.cbor
    if isinstance(value, list):
        return _head(4, len(value)) + b"".join(encode_cbor(item) for item in value)
    pairs = value.items if isinstance(value, Pairs) else tuple(value.items())
    return _head(5, len(pairs)) + b"".join(encode_cbor(key) + encode_cbor(item) for key, item in pairs)
