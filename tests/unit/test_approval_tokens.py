"""Approval link tokens: signed, URL-safe, refused when damaged, changed or expired."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from certsmith.domain.approval import (
    APPROVAL_LIFETIME,
    ApprovalClaims,
    ApprovalRefused,
    read_approval,
    sign_approval,
)

SECRET = bytes(range(32))
NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
CLAIMS = ApprovalClaims("5f0c2a4e-1111-4222-8333-444455556666", "www.example.test", "example.test", "link-1",
                        NOW + APPROVAL_LIFETIME)


def refusal(token: str, now: datetime = NOW, secret: bytes = SECRET) -> ApprovalRefused:
    with pytest.raises(ApprovalRefused) as caught:
        read_approval(secret, token, now)
    return caught.value


def test_a_signed_token_reads_back_its_claims_and_fits_in_a_url_path() -> None:
    token = sign_approval(SECRET, CLAIMS)
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", token)
    assert read_approval(SECRET, token, NOW) == CLAIMS
    assert read_approval(SECRET, token, CLAIMS.expires_at - timedelta(seconds=1)) == CLAIMS
    assert APPROVAL_LIFETIME == timedelta(hours=72)


def test_an_altered_token_is_refused_as_altered() -> None:
    token = sign_approval(SECRET, CLAIMS)
    body, signature = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["d"] = "evil.example.test"
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    assert refusal(f"{forged}.{signature}").reason == "altered"
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    assert refusal(f"{body}.{flipped}").reason == "altered"
    assert refusal(token, secret=bytes(32)).reason == "altered"  # another installation's secret
    other = sign_approval(SECRET, ApprovalClaims(CLAIMS.certificate_id, CLAIMS.domain_name, CLAIMS.validation_domain,
                                                 "link-2", CLAIMS.expires_at))
    assert refusal(f"{body}.{other.split('.')[1]}").reason == "altered"  # a signature of other claims


def test_an_expired_token_is_refused_as_expired_with_the_time() -> None:
    token = sign_approval(SECRET, CLAIMS)
    refused = refusal(token, CLAIMS.expires_at)
    assert refused.reason == "expired"
    assert "2030-01-04 12:00 UTC" in refused.message and "ResendValidationEmail" in refused.message
    past = ApprovalClaims(CLAIMS.certificate_id, CLAIMS.domain_name, CLAIMS.validation_domain, "l",
                          NOW - timedelta(seconds=1))
    assert refusal(sign_approval(SECRET, past)).reason == "expired"


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", ".", "abc.", ".abc", "ab+c.def", "abc.de=f", "a b.cd",
                                   "x" * 5000 + ".y", "é.abc"])
def test_a_malformed_token_is_refused_as_malformed(token: str) -> None:
    refused = refusal(token)
    assert refused.reason == "malformed" and "exactly as it was sent" in refused.message


def test_a_truncated_token_is_malformed_and_well_signed_nonsense_is_malformed_too() -> None:
    token = sign_approval(SECRET, CLAIMS)
    assert refusal(token[:-5]).reason == "malformed"  # the signature is too short
    body = base64.urlsafe_b64encode(b'{"c":1}').rstrip(b"=").decode()
    mac = hmac.new(SECRET, b"certsmith email approval v1\n" + body.encode(), hashlib.sha256).digest()
    assert refusal(f"{body}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}").reason == "malformed"


def test_claims_need_an_aware_expiry_and_signing_a_short_secret() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ApprovalClaims("c", "d", "v", "l", datetime(2030, 1, 1))
    with pytest.raises(ValueError, match="16 bytes"):
        sign_approval(b"short", CLAIMS)
