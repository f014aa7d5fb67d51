"""AWS JSON 1.1 and Smithy RPC v2 CBOR bodies: decoding requests and encoding responses."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import cbor2

from ...domain.errors import ValidationError

__all__ = ["CBOR_TYPE", "JSON_TYPE", "decode_body", "encode_body", "prune"]

JSON_TYPE = "application/x-amz-json-1.1"
CBOR_TYPE = "application/cbor"


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


def decode_body(body: bytes, cbor: bool) -> Any:
    if not body:
        return {}
    try:
        return cbor2.loads(body) if cbor else json.loads(body)
    except (ValueError, cbor2.CBORDecodeError, UnicodeDecodeError) as exc:
        kind = "CBOR" if cbor else "JSON"
        raise ValidationError(f"the request body is not valid {kind}: {exc}") from None


def encode_body(document: dict[str, Any] | None, cbor: bool) -> bytes:
    document = prune(document or {})
    if cbor:
        return cbor2.dumps(document, datetime_as_timestamp=True, timezone=None)
    return json.dumps(document, default=_json_default, separators=(",", ":")).encode()
