"""Event targets: check a target's settings, and send one event to it (webhook, Slack, email or command).

Every kind takes the retry options ``max_attempts`` (1 to 100) and ``max_age_seconds`` (60 to 86400); they are
checked here and read by the delivery engine. ``Notifiers.send`` raises ``DeliveryFailed`` with ``retryable``.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from .command import COMMANDS_OFF, check_command, run_command
from .common import COMMON_OPTIONS, DeliveryFailed
from .email import NO_MAILER, check_email, send_email
from .slack import check_slack, send_slack
from .smtp import Mailer
from .webhook import HttpSender, check_webhook, send_webhook

__all__ = ["COMMANDS_OFF", "COMMON_OPTIONS", "NO_MAILER", "TARGET_KINDS", "DeliveryFailed", "Notifiers", "check_target"]

TARGET_KINDS = ("webhook", "slack", "email", "command")

_CHECKS: dict[str, Callable[[Mapping[str, Any], str | None], tuple[dict[str, Any], str | None]]] = {
    "webhook": check_webhook, "slack": check_slack, "email": check_email, "command": check_command,
}


def check_target(kind: str, config: Mapping[str, Any], secret: str | None) -> tuple[dict[str, Any], str | None]:
    """(normalised config, secret to seal or None); ``ValueError`` naming the field (``Webhook.Url: ...``)."""
    check = _CHECKS.get(kind) if isinstance(kind, str) else None
    if check is None:
        raise ValueError(f"Kind: {str(kind)[:32]!r} is not a target kind; use one of {', '.join(TARGET_KINDS)}")
    if secret is not None and not isinstance(secret, str):
        raise ValueError(f"{kind.capitalize()}.Secret: must be a string")
    return check(config if config is not None else {}, secret)


class Notifiers:
    """Sends events to targets; one per worker, safe to share between threads. ``close()`` when done."""

    def __init__(self, mail: Mailer | None, *, allow_commands: bool = False, timeout: float = 10.0,
                 tls_context: ssl.SSLContext | None = None, clock: Callable[[], float] = time.time) -> None:
        self.mail, self.timeout, self._clock = mail, timeout, clock
        self._allow_commands = allow_commands
        self._tls_context = tls_context
        self._http: HttpSender | None = None
        self._lock = threading.Lock()

    @property
    def commands_allowed(self) -> bool:
        """Whether command targets run here (setting ``event_commands``)."""
        return self._allow_commands

    @property
    def mail_configured(self) -> bool:
        """Whether email targets can be sent (setting ``smtp_url``)."""
        return self.mail is not None

    def check(self, kind: str, config: Mapping[str, Any], secret: str | None) -> tuple[dict[str, Any], str | None]:
        """``check_target``, and also refuses what this server cannot send: commands when they are off, email
        without ``smtp_url``."""
        checked = check_target(kind, config, secret)
        if kind == "command" and not self._allow_commands:
            raise ValueError(f"Kind: {COMMANDS_OFF}")
        if kind == "email" and self.mail is None:
            raise ValueError(f"Kind: {NO_MAILER}")
        return checked

    def send(self, kind: str, config: Mapping[str, Any], secret: str | None, envelope: dict[str, Any]) -> None:
        """Deliver one event (its EventBridge envelope); ``DeliveryFailed`` when the target did not take it."""
        try:
            checked, secret = check_target(kind, config, secret)
        except ValueError as error:
            raise DeliveryFailed(f"the target's settings are not valid: {error}", retryable=False) from None
        if kind == "webhook":
            send_webhook(self._sender(), checked, secret, envelope, self._clock)
        elif kind == "slack":
            assert secret is not None  # check_slack requires it
            send_slack(self._sender(), secret, envelope)
        elif kind == "email":
            send_email(self.mail, checked, envelope)
        elif not self._allow_commands:
            raise DeliveryFailed(COMMANDS_OFF, retryable=False)
        else:
            run_command(checked, envelope, self.timeout)

    def close(self) -> None:
        with self._lock:
            if self._http is not None:
                self._http.close()
                self._http = None

    def __enter__(self) -> Notifiers:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _sender(self) -> HttpSender:
        with self._lock:
            if self._http is None:
                self._http = HttpSender(self.timeout, tls_context=self._tls_context)
            return self._http
