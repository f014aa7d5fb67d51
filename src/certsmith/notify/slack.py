"""Slack targets: a readable message POSTed to an incoming-webhook URL (kept sealed: the URL is a credential).

Any receiver that takes Slack's incoming-webhook payload (``{"text", "blocks"}``) works, Mattermost among them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from .common import check_common, check_url, keys_of, site
from .messages import describe
from .webhook import HttpSender

__all__ = ["check_slack", "send_slack", "slack_payload"]

MAX_FIELDS = 10  # Slack's limit per section
MAX_SECTIONS = 2


def check_slack(config: Mapping[str, Any], secret: str | None) -> tuple[dict[str, Any], str | None]:
    """No settings but the retry options; the secret is the incoming-webhook URL and is required."""
    if isinstance(config, Mapping) and any(str(k).lower() in ("url", "webhook_url", "webhookurl") for k in config):
        raise ValueError("Slack.Url: the incoming-webhook URL is a credential: give it as the target's secret, "
                         "not in its settings")
    given = keys_of("slack", config, ())
    if not secret:
        raise ValueError("Slack.Secret: the Slack incoming-webhook URL (https://hooks.slack.com/services/...) is required")
    return check_common("slack", given), check_url("Slack.Secret", secret)


def slack_payload(envelope: Mapping[str, Any]) -> dict[str, Any]:
    """``{"text": fallback, "blocks": [header, fields, action, context]}`` for one event."""
    message = describe(envelope)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(message.subject, 150), "emoji": False}},
    ]
    lines = message.lines[:MAX_FIELDS * MAX_SECTIONS]
    for start in range(0, len(lines), MAX_FIELDS):
        blocks.append({"type": "section", "fields": [
            {"type": "mrkdwn", "text": _cut(f"*{_escape(label)}*\n{_escape(value)}", 2000)}
            for label, value in lines[start:start + MAX_FIELDS]
        ]})
    blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _cut(f"*What to do:* {_escape(message.action)}",
                                                                             3000)}})
    context = " · ".join(str(v) for v in ("certsmith", envelope.get("source"), envelope.get("time"),
                                          f"event {envelope['id']}" if envelope.get("id") else None) if v)
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(_escape(context), 2000)}]})
    return {"text": _cut(f"{message.subject}. {message.action}", 3000), "blocks": blocks}


def send_slack(http: HttpSender, secret: str, envelope: Mapping[str, Any], timeout: float | None = None) -> None:
    """POST the message to the incoming webhook; Slack answers 200 ``ok``."""
    body = json.dumps(slack_payload(envelope), separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    path = urlsplit(secret).path
    http.post(secret, body, {}, timeout=timeout, what=f"Slack webhook at {site(secret)}",
              hidden=(secret, path if len(path) > 8 else None))


def _escape(text: str) -> str:
    """Slack's mrkdwn escaping of &, < and >."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"
