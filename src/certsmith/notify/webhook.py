"""Webhook targets: the event's JSON POSTed to a URL, signed with HMAC-SHA256 when the target has a secret.

Signature rule (what a receiver checks): ``X-Certsmith-Signature: sha256=<hex>`` where ``<hex>`` is the
HMAC-SHA256, under the target's secret, of ``<X-Certsmith-Timestamp>.<body>`` (the timestamp's decimal digits,
a dot, then the raw body bytes). Refuse a timestamp more than 5 minutes from your clock (replays); the
``X-Certsmith-Event-Id`` header (the event's id) lets a receiver drop a repeated delivery. A target without a
secret sends neither signature nor timestamp header.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import ssl
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from .. import __version__
from .common import DeliveryFailed, body_of, check_common, check_number, check_url, field, keys_of, shown, site

__all__ = ["EVENT_ID_HEADER", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "USER_AGENT", "HttpSender", "check_webhook",
           "send_webhook", "sign", "verify"]

SIGNATURE_HEADER = "X-Certsmith-Signature"
TIMESTAMP_HEADER = "X-Certsmith-Timestamp"
EVENT_ID_HEADER = "X-Certsmith-Event-Id"
USER_AGENT = f"certsmith/{__version__}"
MAX_HEADERS = 20
TIMEOUT_RANGE = (1, 120)  # seconds a webhook's timeout_seconds may be
SECRET_LENGTH = (16, 1024)
RETRYABLE_STATUS = frozenset({408, 429})
_RESERVED = frozenset({"host", "content-type", "content-length", "content-encoding", "transfer-encoding", "connection",
                       "user-agent", "expect", "te", "upgrade", "keep-alive", "proxy-connection", "trailer"})
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 under ``secret`` of ``b"<timestamp>." + body``."""
    digest = hmac.new(secret.encode("utf-8"), f"{int(timestamp)}.".encode("ascii") + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def verify(secret: str, timestamp: int | str, body: bytes, header: str, *, now: float, tolerance: float = 300) -> bool:
    """Whether ``header`` (one or more comma-separated ``sha256=<hex>``) signs ``body`` at ``timestamp`` under
    ``secret``, and ``timestamp`` is within ``tolerance`` seconds of ``now``; compared in constant time."""
    text = str(timestamp).strip()
    moment = int(text) if text.isascii() and text.isdigit() and len(text) < 16 else None
    if moment is None or abs(now - moment) > tolerance:
        return False
    expected = sign(secret, moment, body).encode("ascii")
    good = False
    for candidate in header.split(","):
        good |= hmac.compare_digest(expected, candidate.strip().encode("utf-8", "replace"))
    return good


def check_webhook(config: Mapping[str, Any], secret: str | None) -> tuple[dict[str, Any], str | None]:
    """``{"url", "headers"?, "timeout_seconds"?}`` and the optional signing secret, checked and normalised."""
    given = keys_of("webhook", config, ("url", "headers", "timeout_seconds"))
    if "url" not in given:
        raise ValueError("Webhook.Url: is required (an http or https URL)")
    checked: dict[str, Any] = {"url": check_url("Webhook.Url", given["url"])}
    if given.get("headers"):
        checked["headers"] = _headers(given["headers"])
    if given.get("timeout_seconds") is not None:
        checked["timeout_seconds"] = check_number("webhook", "timeout_seconds", given["timeout_seconds"], *TIMEOUT_RANGE,
                                                  whole=False)
    checked |= check_common("webhook", given)
    if secret is None or secret == "":
        return checked, None
    lowest, highest = SECRET_LENGTH
    if not isinstance(secret, str) or not lowest <= len(secret) <= highest:
        raise ValueError(f"Webhook.Secret: must be {lowest} to {highest} characters (for example: openssl rand -hex 32)")
    if not secret.isprintable():
        raise ValueError("Webhook.Secret: must not hold control characters")
    return checked, secret


def _headers(value: Any) -> dict[str, str]:
    name = field("webhook", "headers")
    if not isinstance(value, Mapping):
        raise ValueError(f"{name}: must be an object of header names to values")
    if len(value) > MAX_HEADERS:
        raise ValueError(f"{name}: at most {MAX_HEADERS} headers")
    headers: dict[str, str] = {}
    for key, text in value.items():
        if not isinstance(key, str) or not _TOKEN.match(key):
            raise ValueError(f"{name}: {str(key)[:64]!r} is not a header name")
        if key.lower() in _RESERVED or key.lower().startswith("x-certsmith-"):
            raise ValueError(f"{name}: {key} is set by certsmith itself")
        if key.lower() in (h.lower() for h in headers):
            raise ValueError(f"{name}: {key} is given twice")
        if not isinstance(text, str) or len(text) > 2048 or any((ord(c) < 32 and c != "\t") or ord(c) == 127 for c in text):
            raise ValueError(f"{name}: the value of {key} must be text of at most 2048 characters on one line")
        headers[key] = text
    return headers


class HttpSender:
    """POSTs JSON over one pooled HTTP client (safe to share between threads); never follows redirects."""

    def __init__(self, timeout: float, *, tls_context: ssl.SSLContext | None = None) -> None:
        self.timeout = timeout
        context = tls_context or ssl.create_default_context()
        self._client = httpx.Client(verify=context, trust_env=False, follow_redirects=False,
                                    headers={"User-Agent": USER_AGENT})

    def close(self) -> None:
        self._client.close()

    def post(self, url: str, body: bytes, headers: Mapping[str, str], *, timeout: float | None, what: str,
             hidden: tuple[str | None, ...] = ()) -> None:
        """POST ``body``; ``DeliveryFailed`` unless the answer is 2xx. ``what`` names the receiver in messages."""
        wait = timeout or self.timeout
        hide = (url, *hidden)
        sent = {"Content-Type": "application/json", **headers}
        try:
            with self._client.stream("POST", url, content=body, headers=sent, timeout=wait) as response:
                status, reason = response.status_code, response.reason_phrase
                said = _start(response)
                retry_after = _retry_after(response.headers.get("retry-after"))
        except httpx.TimeoutException:
            raise DeliveryFailed(f"{what}: no answer within {wait:g} s", retryable=True) from None
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as error:
            raise DeliveryFailed(f"{what}: the URL cannot be used ({shown(str(error), 200, *hide)})",
                                 retryable=False) from None
        except httpx.ConnectError as error:
            text = shown(str(error), 200, *hide) or type(error).__name__
            raise DeliveryFailed(f"{what}: cannot connect ({text})", retryable=True) from None
        except httpx.HTTPError as error:
            text = shown(str(error), 200, *hide) or type(error).__name__
            raise DeliveryFailed(f"{what}: the exchange failed ({text})", retryable=True) from None
        if 200 <= status < 300:
            return
        answer = f"{what}: answered {status} {reason}".rstrip()
        said = shown(said, 200, *hide)
        if said:
            answer += f": {said}"
        if 300 <= status < 400:
            raise DeliveryFailed(f"{answer} (redirects are not followed: give the final URL)", retryable=False)
        if status >= 500 or status in RETRYABLE_STATUS:
            raise DeliveryFailed(answer, retryable=True, retry_after=retry_after)
        raise DeliveryFailed(answer, retryable=False)


def send_webhook(http: HttpSender, config: Mapping[str, Any], secret: str | None, envelope: Mapping[str, Any],
                 clock: Callable[[], float] = time.time) -> None:
    """POST the event to a checked webhook config; signed when there is a secret."""
    url = str(config["url"])
    body = body_of(envelope)
    headers = dict(config.get("headers") or {})
    if envelope.get("id"):
        headers[EVENT_ID_HEADER] = str(envelope["id"])
    if secret:
        timestamp = int(clock())
        headers[TIMESTAMP_HEADER] = str(timestamp)
        headers[SIGNATURE_HEADER] = sign(secret, timestamp, body)
    timeout = config.get("timeout_seconds")
    http.post(url, body, headers, timeout=float(timeout) if timeout else None, what=f"webhook {site(url)}",
              hidden=(secret, *(v for v in (config.get("headers") or {}).values() if len(v) >= 8)))


def _start(response: httpx.Response, limit: int = 1024) -> str:
    """The first bytes of the answer's body, as text."""
    taken = b""
    try:
        for chunk in response.iter_bytes():
            taken += chunk
            if len(taken) >= limit:
                break
    except httpx.HTTPError:
        pass
    return taken[:limit].decode("utf-8", "replace")


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (seconds or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(min(int(value), 86400))
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, min(moment.timestamp() - time.time(), 86400.0))
