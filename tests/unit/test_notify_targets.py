"""Checking event targets' settings (errors name the field) and the webhook signature rule."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from certsmith.notify import TARGET_KINDS, check_target, sign, verify
from certsmith.notify.slack import slack_payload

SECRET = "0123456789abcdef0123"


def _problem(kind: str, config: Any, secret: str | None = None) -> str:
    with pytest.raises(ValueError) as caught:
        check_target(kind, config, secret)
    return str(caught.value)


def test_kinds() -> None:
    assert TARGET_KINDS == ("webhook", "slack", "email", "command")
    assert _problem("sms", {}) == "Kind: 'sms' is not a target kind; use one of webhook, slack, email, command"


def test_webhook_is_normalised() -> None:
    config = {"url": " https://hooks.example.test/certsmith?x=1 ", "headers": {"X-Team": "ops"}, "TimeoutSeconds": 2.5,
              "maxattempts": 7, "max_age_seconds": 3600}
    assert check_target("webhook", config, SECRET) == (
        {"url": "https://hooks.example.test/certsmith?x=1", "headers": {"X-Team": "ops"}, "timeout_seconds": 2.5,
         "max_attempts": 7, "max_age_seconds": 3600}, SECRET)
    assert check_target("webhook", {"url": "http://127.0.0.1:8080/h", "headers": {}}, "") == (
        {"url": "http://127.0.0.1:8080/h"}, None)


@pytest.mark.parametrize(("config", "secret", "message"), [
    ({}, None, "Webhook.Url: is required (an http or https URL)"),
    ({"url": "ftp://example.test/"}, None, "Webhook.Url: must be an http or https URL"),
    ({"url": "https:///path"}, None, "Webhook.Url: must be an http or https URL"),
    ({"url": 5}, None, "Webhook.Url: must be an http or https URL"),
    ({"url": "https://example.test:99999/"}, None, "Webhook.Url: must be an http or https URL (its port is not a number "
                                                  "from 1 to 65535)"),
    ({"url": "http://127.0.0.1:0/x"}, None, "Webhook.Url: must be an http or https URL (its port is not a number "
                                            "from 1 to 65535)"),
    ({"url": "https://user:pw@example.test/"}, None, "Webhook.Url: must not carry a user name or password"),
    ({"url": "https://example.test/a b"}, None, "Webhook.Url: must be an http or https URL (it holds spaces or "
                                                "control characters)"),
    ({"url": "https://example.test/", "verb": "PUT"}, None, "Webhook.verb: is not a setting of webhook targets; they "
                                                            "take Url, Headers, TimeoutSeconds, MaxAttempts, MaxAgeSeconds"),
    ({"url": "https://example.test/", "timeout_seconds": 0}, None, "Webhook.TimeoutSeconds: must be from 1 to 120, not 0"),
    ({"url": "https://example.test/", "timeout_seconds": "5"}, None,
     "Webhook.TimeoutSeconds: must be a number from 1 to 120, not '5'"),
    ({"url": "https://example.test/", "max_attempts": 0}, None, "Webhook.MaxAttempts: must be from 1 to 100, not 0"),
    ({"url": "https://example.test/", "max_attempts": 2.5}, None,
     "Webhook.MaxAttempts: must be a whole number from 1 to 100, not 2.5"),
    ({"url": "https://example.test/", "max_attempts": True}, None,
     "Webhook.MaxAttempts: must be a number from 1 to 100, not True"),
    ({"url": "https://example.test/", "max_age_seconds": 59}, None,
     "Webhook.MaxAgeSeconds: must be from 60 to 86400, not 59"),
    ({"url": "https://example.test/", "headers": {"Content-Type": "text/plain"}}, None,
     "Webhook.Headers: Content-Type is set by certsmith itself"),
    ({"url": "https://example.test/", "headers": {"X-Certsmith-Signature": "x"}}, None,
     "Webhook.Headers: X-Certsmith-Signature is set by certsmith itself"),
    ({"url": "https://example.test/", "headers": {"Bad Name": "x"}}, None, "Webhook.Headers: 'Bad Name' is not a header name"),
    ({"url": "https://example.test/", "headers": {"X-A": "a\r\nX-B: b"}}, None,
     "Webhook.Headers: the value of X-A must be text of at most 2048 characters on one line"),
    ({"url": "https://example.test/", "headers": ["X-A"]}, None,
     "Webhook.Headers: must be an object of header names to values"),
    ({"url": "https://example.test/"}, "short", "Webhook.Secret: must be 16 to 1024 characters (for example: "
                                                "openssl rand -hex 32)"),
])
def test_webhook_problems(config: dict[str, Any], secret: str | None, message: str) -> None:
    assert _problem("webhook", config, secret) == message


def test_slack_takes_its_url_as_the_secret() -> None:
    url = "https://hooks.slack.com/services/T0/B0/token"
    assert check_target("slack", {"max_attempts": 3}, url) == ({"max_attempts": 3}, url)
    assert _problem("slack", {}).startswith("Slack.Secret: the Slack incoming-webhook URL")
    assert _problem("slack", {"url": url}) == ("Slack.Url: the incoming-webhook URL is a credential: give it as the "
                                               "target's secret, not in its settings")
    message = _problem("slack", {}, "hooks.slack.com/services/T0/B0/token")
    assert message == "Slack.Secret: must be an http or https URL" and "token" not in message


def test_email_addresses() -> None:
    assert check_target("email", {"to": ["Ops@Example.TEST", " oncall@example.test", "Ops@example.test"]}, None) == (
        {"to": ["Ops@example.test", "oncall@example.test"]}, None)
    assert check_target("email", {"to": "a@localhost", "max_age_seconds": 600}, None) == (
        {"to": ["a@localhost"], "max_age_seconds": 600}, None)
    assert _problem("email", {"to": ["ops@example.test", "x"]}) == 'Email.To: "x" is not an email address'
    named = _problem("email", {"to": ["Ops <ops@example.test>"]})
    assert named == 'Email.To: "Ops <ops@example.test>" is not an email address'
    assert _problem("email", {"to": ["a@b.test\r\nBcc: c@d.test"]}).startswith("Email.To: ")
    assert _problem("email", {"to": []}) == "Email.To: is required: a list of 1 to 50 email addresses"
    assert _problem("email", {}) == "Email.To: is required: a list of 1 to 50 email addresses"
    assert _problem("email", {"to": [f"u{i}@example.test" for i in range(51)]}) == "Email.To: at most 50 addresses, not 51"
    assert _problem("email", {"to": ["a@example.test"]}, "x") == "Email.Secret: email targets take no secret"


def test_command() -> None:
    assert check_target("command", {"command": "logger -t certsmith", "timeout_seconds": 30}, None) == (
        {"command": "logger -t certsmith", "timeout_seconds": 30}, None)
    assert _problem("command", {"command": "  "}) == "Command.Command: must not be empty"
    assert _problem("command", {}) == "Command.Command: must not be empty"
    assert _problem("command", {"command": ["ls"]}) == "Command.Command: must be a string (run with /bin/sh -c), not list"
    assert _problem("command", {"command": "true", "timeout_seconds": 3601}) == (
        "Command.TimeoutSeconds: must be from 1 to 3600, not 3601")
    assert _problem("command", {"command": "true"}, "s") == "Command.Secret: command targets take no secret"
    assert _problem("command", "true") == "Command: the settings must be an object, not str"


def test_sign_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = '{"id":"e1","detail":{"CommonName":"bücher.example"}}'.encode()
    expected = hmac.new(SECRET.encode(), b"1767225600." + body, hashlib.sha256).hexdigest()
    assert sign(SECRET, 1767225600, body) == "sha256=" + expected
    header = sign(SECRET, 1767225600, body)
    assert verify(SECRET, 1767225600, body, header, now=1767225600 + 300)
    assert verify(SECRET, "1767225600", body, f"sha256=00, {header}", now=1767225600)  # several signatures
    assert not verify(SECRET, 1767225600, body, header, now=1767225600 + 301)  # too old: a replay
    assert not verify(SECRET, 1767225600, body + b" ", header, now=1767225600)
    assert not verify(SECRET, 1767225601, body, header, now=1767225600)
    assert not verify(SECRET + "x", 1767225600, body, header, now=1767225600)
    assert not verify(SECRET, "-1", body, header, now=0)
    assert not verify(SECRET, "soon", body, header, now=0)


def test_slack_payload_escapes_mrkdwn() -> None:
    envelope = {"id": "e1", "source": "certsmith", "detail-type": "Certsmith Deployment Failed",
                "detail": {"Target": "web<1>", "Error": "a & b"}}
    payload = slack_payload(envelope)
    text = " ".join(str(block) for block in payload["blocks"])
    assert "web&lt;1&gt;" in text and "a &amp; b" in text and "<1>" not in text
