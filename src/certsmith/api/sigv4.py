"""AWS Signature Version 4 verification of incoming requests."""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, quote, unquote

from ..domain.errors import InvalidSignatureError, UnrecognizedClientError
from ..domain.regions import partition_for_region

__all__ = ["SignedIdentity", "verify_sigv4"]

MAX_SKEW = timedelta(minutes=15)
_AUTH = re.compile(r"^AWS4-HMAC-SHA256\s+Credential=([^,\s]+)\s*,\s*SignedHeaders=([^,\s]+)\s*,\s*Signature=([0-9a-f]{64})$")
_DATE = re.compile(r"[0-9]{8}T[0-9]{6}Z")


@dataclass(frozen=True, slots=True)
class SignedIdentity:
    access_key_id: str
    region: str
    service: str


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


@functools.lru_cache(maxsize=1024)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """The key of one day, region and service (kept: a client signs all its requests of a day with it)."""
    key = _hmac(("AWS4" + secret).encode(), date)
    key = _hmac(key, region)
    key = _hmac(key, service)
    return _hmac(key, "aws4_request")


def _amz_date(text: str) -> datetime:
    if not _DATE.fullmatch(text):
        raise InvalidSignatureError(f"X-Amz-Date {text!r} is not in the form YYYYMMDDTHHMMSSZ")
    try:
        return datetime(int(text[0:4]), int(text[4:6]), int(text[6:8]), int(text[9:11]), int(text[11:13]),
                        int(text[13:15]), tzinfo=UTC)
    except ValueError:
        raise InvalidSignatureError(f"X-Amz-Date {text!r} is not a valid date and time") from None


@functools.lru_cache(maxsize=256)
def _canonical_path(raw_path: str) -> str:
    return quote(unquote(raw_path), safe="/~")


def _canonical_query(query: str) -> str:
    if not query:
        return ""
    pairs = parse_qsl(query, keep_blank_values=True)
    encoded = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in encoded)


def verify_sigv4(*, method: str, raw_path: str, query: str, headers: Mapping[str, str], body: bytes, now: datetime,
                 expected_services: tuple[str, ...], secret_for: Callable[[str], str | None]) -> SignedIdentity:
    """Check the request's SigV4 signature; raise UnrecognizedClient/InvalidSignature errors, never return False."""
    authorization = headers.get("authorization")
    if not authorization:
        raise UnrecognizedClientError("the request is not signed: it has no Authorization header "
                                      "(sign it with AWS SigV4 using a certsmith access key)")
    match = _AUTH.match(authorization.strip())
    if not match:
        raise InvalidSignatureError("the Authorization header is not an AWS4-HMAC-SHA256 signature")
    credential, signed_headers_text, signature = match.groups()
    scope = credential.split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise InvalidSignatureError("the credential scope must be <key>/<date>/<region>/<service>/aws4_request")
    access_key_id, date, region, service, _ = scope
    if partition_for_region(region) is None:  # AWS's own words for a scope no endpoint serves
        raise InvalidSignatureError(f"Credential should be scoped to a valid region, not {region!r}: no AWS "
                                    "partition knows that region")
    secret = secret_for(access_key_id)
    if secret is None:
        raise UnrecognizedClientError(f"the access key {access_key_id} is not known to certsmith")
    if service not in expected_services:
        raise InvalidSignatureError(f"the credential scope names service {service!r}; this operation is signed for "
                                    f"{' or '.join(expected_services)}")
    amz_date = headers.get("x-amz-date")
    if not amz_date:
        raise InvalidSignatureError("the request has no X-Amz-Date header")
    signed_at = _amz_date(amz_date)
    if abs(now - signed_at) > MAX_SKEW:
        raise InvalidSignatureError(f"Signature expired: {amz_date} is more than 15 minutes from the server time "
                                    f"{now:%Y%m%dT%H%M%SZ}")
    if amz_date[:8] != date:
        raise InvalidSignatureError("the credential scope date does not match X-Amz-Date")
    signed_headers = signed_headers_text.split(";")
    if "host" not in signed_headers:
        raise InvalidSignatureError("SignedHeaders must include host")
    lines = []
    for name in signed_headers:
        value = headers.get(name)
        if value is None:
            raise InvalidSignatureError(f"signed header {name!r} is missing from the request")
        lines.append(f"{name}:{' '.join(value.split())}\n")  # trimmed, inner runs of spaces as one
    body_hash = hashlib.sha256(body).hexdigest()
    payload_hash = headers.get("x-amz-content-sha256") or body_hash
    if payload_hash == "UNSIGNED-PAYLOAD":
        raise InvalidSignatureError("unsigned payloads are not accepted")
    canonical = "\n".join([method, _canonical_path(raw_path), _canonical_query(query), "".join(lines),
                           signed_headers_text, payload_hash])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, f"{date}/{region}/{service}/aws4_request",
                         hashlib.sha256(canonical.encode()).hexdigest()])
    expected = hmac.new(signing_key(secret, date, region, service), to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise InvalidSignatureError("The request signature we calculated does not match the signature you provided. "
                                    "Check your AWS Secret Access Key and signing method.")
    if body_hash != payload_hash:
        raise InvalidSignatureError("X-Amz-Content-Sha256 does not match the request body")
    return SignedIdentity(access_key_id, region, service)
