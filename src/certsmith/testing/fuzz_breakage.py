"""Request bodies broken on the wire: truncated, bytes flipped, bad UTF-8, NaN, repeated keys, CBOR tags
and reserved codes, nesting thousands deep, another top-level type, the other protocol's encoding."""

from __future__ import annotations

import random
from typing import Any

from .fuzz_encoding import Pairs, Raw, Tagged, encode_cbor, encode_json

__all__ = ["break_body"]


def break_body(rng: random.Random, body: bytes, protocol: str) -> tuple[bytes, str]:
    """The body broken in one of a dozen ways, and a note of how."""
    cbor = protocol == "cbor"
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
        return _deep(depth, cbor, rng.random() < 0.5), f"nested {depth} deep"
    if way == 3:
        return _bad_text(rng, body, cbor)
    if way == 4:
        top: Any = rng.choice(([], [{}], "text", 7, None, True, 1.5))
        return (encode_cbor(top) if cbor else encode_json(top)), f"top level is {type(top).__name__}"
    if way == 5:
        return _odd_number(rng, cbor)
    if way == 6:
        key = rng.choice(("CertificateArn", "CertificateAuthorityArn", "MaxResults", "Tags", "a"))
        document = Pairs(((key, "arn:aws:acm:us-east-1:1:certificate/x"), (key, 5)))
        return (encode_cbor(document) if cbor else encode_json(document)), f"the key {key} twice"
    if way == 7:
        return body + rng.choice((b"\x00", b"}", b" garbage", b"\xa0", b"{}")), "bytes after the document"
    if way == 8:
        return rng.randbytes(rng.randint(0, 300)), "random bytes"
    if way == 9 and cbor:
        return _cbor_oddity(rng)
    if way == 9:
        oddity = rng.choice((b"\xef\xbb\xbf{}", "{}".encode("utf-16"), b"{\"a\":1,}", b"{/*c*/}", b" ", b"{'a':1}",
                             b"{\"a\":01}", b"{\"a\":\"\\x41\"}", b"{\"a\":\"\\ud800\"}", b"\x00"))
        return oddity, "JSON oddity"
    if way == 10:
        other = encode_json({}) if cbor else encode_cbor({"CertificateArn": "x"})
        return other, "the other protocol's encoding"
    return b"", "empty body"


def _deep(depth: int, cbor: bool, objects: bool) -> bytes:
    if cbor:
        return (b"\xa1\x61A" * depth if objects else b"\x81" * depth) + b"\x01"
    return (b'{"A":' * depth + b"1" + b"}" * depth) if objects else (b"[" * depth + b"]" * depth)


def _bad_text(rng: random.Random, body: bytes, cbor: bool) -> tuple[bytes, str]:
    bad = rng.choice((b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82", b"\x80"))
    if cbor:
        return encode_cbor({"CertificateArn": Raw(b"", bytes([0x60 | len(bad)]) + bad)}), f"text {bad!r} in CBOR"
    spot = body.find(b'":"')
    if spot < 0:
        return b'{"CertificateArn":"' + bad + b'"}', f"bytes {bad!r} in a JSON string"
    return body[:spot + 3] + bad + body[spot + 3:], f"bytes {bad!r} in a JSON string"


def _odd_number(rng: random.Random, cbor: bool) -> tuple[bytes, str]:
    member = rng.choice(("MaxResults", "MaxItems", "PermanentDeletionTimeInDays", "Validity", "Unknown"))
    if cbor:
        number = rng.choice((Tagged(2, b"\xff" * 40), Tagged(3, b"\x01" * 9), float("nan"), float("-inf"),
                                  Tagged(4, [-2, 27315]), Tagged(5, [1, 3]), 2**64 - 1, -(2**64)))
        return encode_cbor({member: number}), f"{member} is {number!r}"
    text = rng.choice((b"1e999", b"-1e999", b"9" * 5000, b"NaN", b"Infinity", b"-Infinity", b"1.0e-400",
                            b"123456789012345678901234567890", b"-0", b"1E+2"))
    return b'{"' + member.encode() + b'":' + text + b"}", f"{member} is {text[:40]!r}"


def _cbor_oddity(rng: random.Random) -> tuple[bytes, str]:
    tag = rng.choice((0, 1, 2, 3, 4, 5, 21, 24, 25, 28, 29, 30, 32, 35, 36, 37, 256, 258, 260, 261, 1004,
                           55799, 2**32, 2**64 - 1))
    value = rng.choice(("2024-01-01T00:00:00Z", 1e12, b"\x01", [1, 2], "(a|a)*b", {"a": 1}, 0))
    choices = (
        (encode_cbor({"CertificateArn": Tagged(tag, value)}), f"tag {tag} around {value!r}"),
        (b"\xa1" + encode_cbor(rng.choice((1, b"k", [1], 1.5, None))) + b"\x01", "a map key that is no string"),
        (b"\xbf\x61A\x7f\x61b\xff\xff", "indefinite lengths"),
        (b"\xa1\x61A" + rng.choice((b"\xf7", b"\xf0", b"\xf8\xff", b"\xf8\x18", b"\x1c", b"\xff")),
         "undefined, simple values, reserved codes"),
        (b"\xa1\x61A" + rng.choice((b"\x9b", b"\xbb", b"\x7b", b"\x5b")) + b"\x7f" + b"\xff" * 7,
         "a length of 2**63"),
        (b"\xd8\x1c\x81\xd8\x1d\x00", "a shared reference to itself"),
    )
    return rng.choice(choices)
