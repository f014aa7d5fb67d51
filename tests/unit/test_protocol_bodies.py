"""Request bodies that are not documents: SerializationError with a plain message, never another exception."""

from __future__ import annotations

from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from certsmith.api.aws.errors import wire_error
from certsmith.api.aws.protocol import MAX_DEPTH, EpochSeconds, SerializationError, decode_body


def nested_json(depth: int) -> bytes:
    """``depth`` containers: objects and arrays in turn."""
    opening = "".join('{"A":' if level % 2 == 0 else "[" for level in range(depth))
    closing = "".join("}" if level % 2 == 0 else "]" for level in reversed(range(depth)))
    return (opening + "1" + closing).encode()


def nested_cbor(depth: int) -> bytes:
    return b"".join(b"\xa1\x61A" if level % 2 == 0 else b"\x81" for level in range(depth)) + b"\x01"


@pytest.mark.parametrize("cbor", [False, True], ids=["json", "cbor"])
def test_the_depth_limit_is_exact(cbor: bool) -> None:
    nested = nested_cbor if cbor else nested_json
    document: Any = decode_body(nested(MAX_DEPTH), cbor)
    for level in range(MAX_DEPTH - 1):
        document = document["A"] if level % 2 == 0 else document[0]
    with pytest.raises(SerializationError, match=f"more than {MAX_DEPTH} levels"):
        decode_body(nested(MAX_DEPTH + 1), cbor)


@pytest.mark.parametrize("cbor", [False, True], ids=["json", "cbor"])
@pytest.mark.parametrize("depth", [900, 1000, 5000, 200_000])
def test_nesting_past_the_stack_is_refused(cbor: bool, depth: int) -> None:
    with pytest.raises(SerializationError, match="levels deep"):
        decode_body(nested_cbor(depth) if cbor else nested_json(depth), cbor)


def test_wide_documents_under_the_depth_limit_pass() -> None:
    body = b'{"A":[' + b",".join([b"[[1],{}]"] * 5000) + b"]}"
    assert len(decode_body(body, False)["A"]) == 5000


@pytest.mark.parametrize("body,reason", [
    (b'{"a":"\xff"}', "not valid UTF-8 (byte 6)"),
    (b'{"a":"\xed\xa0\x80"}', "not valid UTF-8"),
    ('{"a":1}'.encode("utf-16"), "not valid UTF-8"),
    (b"\xef\xbb\xbf{}", "not valid JSON"),
    (b'{"a":', "not valid JSON"),
    (b"[]", "must be a JSON object, not list"),
    (b"null", "must be a JSON object, not null"),
    (b"3", "must be a JSON object, not int"),
    (b'{"a":NaN}', "NaN is not a JSON number"),
    (b'{"a":-Infinity}', "-Infinity is not a JSON number"),
    (b'{"a":1e999}', "1e999, which is out of range"),
    (b'{"a":' + b"9" * 5000 + b"}", "not valid JSON"),
    (b'{"a":1,"b":{"c":1,"c":2}}', "the key 'c' appears twice"),
    (b'{"\\ud800":1,"\\ud800":2}', r"the key '\ud800' appears twice"),
    (b'{"a":1} {}', "not valid JSON"),
])
def test_malformed_json(body: bytes, reason: str) -> None:
    with pytest.raises(SerializationError) as caught:
        decode_body(body, cbor=False)
    assert reason in caught.value.message
    assert wire_error(caught.value)[:2] == ("SerializationException", 400)


@pytest.mark.parametrize("body,reason", [
    (b"\xa1\x61a\x62\xff\xfe", "not valid UTF-8"),
    (cbor2.dumps({"a": "bcdef"})[:-2], "ends before the data item"),
    (b"\x80", "must be a CBOR map, not list"),
    (b"\xf6", "must be a CBOR map, not null"),
    (b"\xf7", "must be a CBOR map"),
    (cbor2.dumps({}) + b"\x00", "1 bytes follow the data item"),
    (b"\xa2\x61a\x01\x61a\x02", "Duplicate map key"),
    (b"\xa1\x01\x02", "map key must be a text string"),
    (b"\xa1\x81\x01\x02", "map key must be a text string"),
    (cbor2.dumps({"a": 2**80}), "CBOR tag 2 is not supported"),
    (cbor2.dumps({"a": cbor2.CBORTag(0, "2024-01-01T00:00:00Z")}), "CBOR tag 0 is not supported"),
    (cbor2.dumps({"a": cbor2.CBORTag(35, "(a")}), "CBOR tag 35 is not supported"),
    (cbor2.dumps({"a": cbor2.CBORTag(55799, 1)}), "CBOR tag 55799 is not supported"),
    (b"\xa1\x61a\xd8\x1c\x81\xd8\x1d\x00", "is not supported"),  # shared reference: a cycle
    (b"\xa1\x61a\x9b\x7f" + b"\xff" * 7, "ends before the data item"),  # an array of 2**63 items
    (b"\xff", "not valid RPC v2 CBOR"),
    (b"\x1c", "not valid RPC v2 CBOR"),
])
def test_malformed_cbor(body: bytes, reason: str) -> None:
    with pytest.raises(SerializationError) as caught:
        decode_body(body, cbor=True)
    assert reason in caught.value.message


def test_cbor_tag_1_is_kept_for_the_timestamp_member() -> None:
    document = decode_body(cbor2.dumps({"T": cbor2.CBORTag(1, 1e12)}), cbor=True)
    assert document == {"T": EpochSeconds(1e12)}  # the shape check decides whether it is in range


def test_empty_body_is_an_empty_document() -> None:
    assert decode_body(b"", cbor=False) == {} and decode_body(b"", cbor=True) == {}


@settings(max_examples=400, deadline=None)
@given(body=st.binary(max_size=300), cbor=st.booleans())
def test_random_bytes_are_a_document_or_a_serialization_error(body: bytes, cbor: bool) -> None:
    try:
        document = decode_body(body, cbor)
    except SerializationError as error:
        assert error.message
    else:
        assert isinstance(document, dict)
