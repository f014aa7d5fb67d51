"""Email targets: a plain-text mail through the server's SMTP Mailer, the event's JSON attached."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from .common import DeliveryFailed, check_common, keys_of, no_secret
from .messages import describe
from .smtp import Mailer, MailError

__all__ = ["MAX_RECIPIENTS", "NO_MAILER", "check_email", "email_text", "send_email"]

MAX_RECIPIENTS = 50
NO_MAILER = "email targets need the server's smtp_url setting"
SUBJECT_PREFIX = "[certsmith] "
# A bare address: no display name, no quoting, no spaces; a dotted domain (or localhost) after the @.
_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
                      r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


def check_email(config: Mapping[str, Any], secret: str | None) -> tuple[dict[str, Any], str | None]:
    """``{"to": [addresses]}`` (one address as a string is taken too); no secret."""
    given = keys_of("email", config, ("to",))
    no_secret("email", secret)
    to = given.get("to")
    if isinstance(to, str):
        to = [to]
    if not isinstance(to, list) or not to:
        raise ValueError("Email.To: is required: a list of 1 to 50 email addresses")
    addresses: list[str] = []
    for value in to:
        address = value.strip() if isinstance(value, str) else value
        if not isinstance(address, str) or len(address) > 254 or not _ADDRESS.match(address):
            raise ValueError(f"Email.To: {json.dumps(str(value)[:100])} is not an email address")
        local, domain = address.rsplit("@", 1)
        address = f"{local}@{domain.lower()}"
        if address not in addresses:
            addresses.append(address)
    if len(addresses) > MAX_RECIPIENTS:
        raise ValueError(f"Email.To: at most {MAX_RECIPIENTS} addresses, not {len(addresses)}")
    return {"to": addresses} | check_common("email", given), None


def email_text(envelope: Mapping[str, Any]) -> tuple[str, str]:
    """(subject, plain-text body) of the mail for one event."""
    message = describe(envelope)
    width = max((len(label) for label, _ in message.lines), default=0)
    body = [message.subject, ""]
    body += [f"{label + ':':<{width + 1}} {value}" for label, value in message.lines]
    body += ["", f"What to do: {message.action}", "",
             f"The event (id {envelope.get('id', '-')}) is attached as JSON.", "", "-- ", "certsmith"]
    return SUBJECT_PREFIX + message.subject, "\n".join(body) + "\n"


def send_email(mailer: Mailer | None, config: Mapping[str, Any], envelope: Mapping[str, Any]) -> None:
    """Mail the event to the target's addresses; 5xx refusals are not retryable, the rest are."""
    if mailer is None:
        raise DeliveryFailed(NO_MAILER, retryable=False)
    subject, text = email_text(envelope)
    document = json.dumps(envelope, indent=2, ensure_ascii=False, default=str).encode("utf-8")
    name = f"event-{re.sub(r'[^A-Za-z0-9-]', '', str(envelope.get('id') or ''))[:64] or 'certsmith'}.json"
    try:
        mailer.send(list(config["to"]), subject, text, attachments=[(name, "application/json", document)])
    except MailError as error:
        raise DeliveryFailed(error.message, retryable=not error.permanent) from None
