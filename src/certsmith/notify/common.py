"""What every target kind shares: the delivery failure, field names in errors, option checks, safe text."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

__all__ = ["COMMON_OPTIONS", "DeliveryFailed", "body_of", "check_common", "check_number", "check_url", "field",
           "keys_of", "no_secret", "shown", "site"]

# The retry policy the delivery engine reads from a target's config: (lowest, highest).
COMMON_OPTIONS: dict[str, tuple[int, int]] = {"max_attempts": (1, 100), "max_age_seconds": (60, 86400)}


class DeliveryFailed(Exception):
    """A target did not take an event; ``retryable`` says whether trying again later may work.

    The message is safe to show and store: it never holds a secret, a Slack URL or a URL's query string.
    ``retry_after`` is the wait in seconds the receiver asked for (HTTP 429/503 Retry-After), when it did.
    """

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message, self.retryable, self.retry_after = message, retryable, retry_after


def field(kind: str, key: str) -> str:
    """``Webhook.TimeoutSeconds`` for ``("webhook", "timeout_seconds")``: how the API names the field."""
    return kind.capitalize() + "." + "".join(part.capitalize() for part in key.split("_"))


def keys_of(kind: str, config: Mapping[str, Any], known: tuple[str, ...]) -> dict[str, Any]:
    """The config under its canonical snake_case keys (``TimeoutSeconds``, ``timeoutseconds`` and ``timeout_seconds``
    are the same key); an unknown key is a ``ValueError`` naming it."""
    if not isinstance(config, Mapping):
        raise ValueError(f"{kind.capitalize()}: the settings must be an object, not {type(config).__name__}")
    allowed = known + tuple(COMMON_OPTIONS)
    canonical = {k.replace("_", ""): k for k in allowed}
    found: dict[str, Any] = {}
    for key, value in config.items():
        name = canonical.get(str(key).replace("_", "").replace("-", "").lower())
        if name is None:
            raise ValueError(f"{kind.capitalize()}.{key}: is not a setting of {kind} targets; "
                             f"they take {', '.join(field(kind, k).split('.')[1] for k in allowed)}")
        if name in found:
            raise ValueError(f"{field(kind, name)}: is given twice")
        found[name] = value
    return found


def check_number(kind: str, key: str, value: Any, lowest: float, highest: float, *, whole: bool) -> int | float:
    """A number within [lowest, highest]; whole numbers stay ``int``."""
    name = field(kind, key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name}: must be a number from {lowest:g} to {highest:g}, not {value!r}")
    if whole and value != int(value):
        raise ValueError(f"{name}: must be a whole number from {lowest:g} to {highest:g}, not {value!r}")
    if not lowest <= value <= highest:
        raise ValueError(f"{name}: must be from {lowest:g} to {highest:g}, not {value:g}")
    return int(value) if value == int(value) else float(value)


def check_common(kind: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """The retry options present in ``config``, checked."""
    return {key: check_number(kind, key, config[key], lowest, highest, whole=True)
            for key, (lowest, highest) in COMMON_OPTIONS.items() if key in config}


def check_url(name: str, value: Any) -> str:
    """An absolute http or https URL with a host; no spaces, no user name or password in it."""
    problem = f"{name}: must be an http or https URL"
    if not isinstance(value, str) or not value.strip():
        raise ValueError(problem)
    url = value.strip()
    if len(url) > 2048:
        raise ValueError(f"{name}: must be at most 2048 characters")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise ValueError(f"{problem} (it holds spaces or control characters)")
    try:
        parts = urlsplit(url)
        if parts.port == 0:  # raises on a port that is no number or above 65535
            raise ValueError("port 0")
    except ValueError:
        raise ValueError(f"{problem} (its port is not a number from 1 to 65535)") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(problem)
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{name}: must not carry a user name or password")
    if parts.fragment:
        raise ValueError(f"{name}: must not have a #fragment")
    return url


def no_secret(kind: str, secret: str | None) -> None:
    if secret:
        raise ValueError(f"{kind.capitalize()}.Secret: {kind} targets take no secret")


def site(url: str) -> str:
    """scheme://host[:port] of a URL: what a message may show of it (a path or query may hold a token)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    host = f"[{host}]" if ":" in host else host
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme.lower()}://{host}{port}"


def shown(text: str, limit: int, *hidden: str | None, tail: bool = False) -> str:
    """Text of a peer made safe to show: one line, the ``hidden`` strings replaced, at most ``limit`` characters
    (the first ones, or with ``tail`` the last ones)."""
    for secret in hidden:
        if secret:
            text = text.replace(secret, "***")
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    if len(text) <= limit:
        return text
    return "…" + text[-(limit - 1):] if tail else text[:limit - 1] + "…"


def body_of(envelope: Mapping[str, Any]) -> bytes:
    """The event as compact UTF-8 JSON: the bytes a webhook signs and a command reads."""
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")
