"""Signed one-time approval links of email validation: the token is the link's only credential.

A token is ``base64url(JSON claims) + "." + base64url(HMAC-SHA256(secret, purpose + claims part))``,
without padding, so it fits in a URL path as is. Whether a link was already used is not in the
token: the service keeps the link ids still open and removes one when it is used.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = ["APPROVAL_LIFETIME", "ApprovalClaims", "ApprovalRefused", "read_approval", "sign_approval"]

APPROVAL_LIFETIME = timedelta(hours=72)
MAX_TOKEN_LENGTH = 2048
_PURPOSE = b"certsmith email approval v1\n"
_PART = re.compile(r"[A-Za-z0-9_-]+")
_MESSAGES = {
    "malformed": "this approval link is incomplete or damaged; open the link from the mail exactly as it was sent",
    "altered": "this approval link was changed after it was sent; open the link from the mail exactly as it was sent",
    "expired": "this approval link has expired; ask for a new validation mail (ResendValidationEmail)",
}


@dataclass(frozen=True, slots=True)
class ApprovalClaims:
    """What one approval link approves: one name of one certificate, until ``expires_at``."""

    certificate_id: str
    domain_name: str
    validation_domain: str
    link_id: str
    expires_at: datetime

    def __post_init__(self) -> None:
        if self.expires_at.tzinfo is None:
            raise ValueError("expires_at must be timezone-aware")


class ApprovalRefused(Exception):
    """A link that approves nothing; ``reason`` is one of malformed, altered, expired."""

    def __init__(self, reason: str, message: str | None = None) -> None:
        self.reason = reason
        self.message = message or _MESSAGES.get(reason, "this approval link is not valid")
        super().__init__(self.message)


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes:
    if not _PART.fullmatch(text):
        raise ApprovalRefused("malformed")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ApprovalRefused("malformed") from None


def _mac(secret: bytes, body: str) -> bytes:
    return hmac.new(secret, _PURPOSE + body.encode("ascii"), hashlib.sha256).digest()


def sign_approval(secret: bytes, claims: ApprovalClaims) -> str:
    """The URL-safe token of ``claims``, signed with ``secret``."""
    if len(secret) < 16:
        raise ValueError("the approval secret must be at least 16 bytes")
    payload = {"c": claims.certificate_id, "d": claims.domain_name, "v": claims.validation_domain,
               "l": claims.link_id, "e": int(claims.expires_at.timestamp())}
    body = _encode(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    return f"{body}.{_encode(_mac(secret, body))}"


def read_approval(secret: bytes, token: str, now: datetime) -> ApprovalClaims:
    """The claims of a token signed with ``secret`` and not expired at ``now``; else ``ApprovalRefused``."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1:
        raise ApprovalRefused("malformed")
    body, signature = token.split(".")
    given = _decode(signature)
    _decode(body)  # the shape first: a damaged link is "malformed", not "altered"
    if len(given) != hashlib.sha256().digest_size:
        raise ApprovalRefused("malformed")
    if not hmac.compare_digest(given, _mac(secret, body)):
        raise ApprovalRefused("altered")
    try:
        payload = json.loads(_decode(body))
        claims = ApprovalClaims(str(payload["c"]), str(payload["d"]), str(payload["v"]), str(payload["l"]),
                                datetime.fromtimestamp(int(payload["e"]), UTC))
    except (ValueError, KeyError, TypeError, OverflowError, OSError):
        raise ApprovalRefused("malformed") from None
    if now >= claims.expires_at:
        raise ApprovalRefused("expired", f"this approval link expired at {claims.expires_at:%Y-%m-%d %H:%M} UTC; ask "
                                         "for a new validation mail (ResendValidationEmail)")
    return claims
