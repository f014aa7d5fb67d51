"""Event rules without a database: TestEventPattern's event, names and pages, targets on the wire, the pattern cache."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from certsmith.api.aws.certsmith_rules import target_shape, target_spec
from certsmith.cli.events import target_text
from certsmith.domain.clock import FixedClock
from certsmith.domain.errors import InvalidNextTokenError, ResourceNotFoundError, ValidationError
from certsmith.keys.sealing import KeySealer
from certsmith.notify import check_target
from certsmith.services.events.rule_inputs import (
    InvalidEventPatternError,
    after_token,
    check_bus,
    check_name,
    page_limit,
    page_token,
    parse_event,
    pattern_matches,
    rule_arn,
)
from certsmith.services.events.rules import EventRules, TargetRecord, TargetSpec

EVENT = {"id": "1", "account": "123456789012", "source": "aws.acm", "time": "2026-01-31T12:00:00Z",
         "region": "us-east-1", "resources": ["arn:aws:acm:us-east-1:123456789012:certificate/1"],
         "detail-type": "ACM Certificate Expired", "detail": {"DaysToExpiry": 0}}
NOW = datetime(2026, 1, 31, tzinfo=UTC)


def _problem(call: Any, *args: Any) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        call(*args)
    return caught.value


def test_the_event_needs_eventbridges_fields() -> None:
    assert parse_event(json.dumps(EVENT)) == EVENT
    for name in ("id", "account", "source", "time", "region", "resources", "detail-type"):
        error = _problem(parse_event, json.dumps({k: v for k, v in EVENT.items() if k != name}))
        assert error.field == f"Event.{name}" and f"the field {name!r} is missing" in error.message
    assert _problem(parse_event, "[]").message.endswith("it must be a JSON object")
    assert "not valid JSON" in _problem(parse_event, "{").message
    assert _problem(parse_event, "[" * 100_000).field == "Event"
    assert _problem(parse_event, json.dumps({**EVENT, "source": 1})).field == "Event.source"
    assert _problem(parse_event, json.dumps({**EVENT, "resources": [1]})).field == "Event.resources"
    assert _problem(parse_event, json.dumps({**EVENT, "time": "31/01/2026"})).field == "Event.time"
    assert _problem(parse_event, json.dumps({**EVENT, "detail": "x"})).field == "Event.detail"
    assert parse_event(json.dumps({**EVENT, "time": "2026-01-31T12:00:00.123+02:00"}))


def test_pattern_matches_and_pattern_errors() -> None:
    assert pattern_matches('{"detail-type": [{"suffix": "Expired"}]}', json.dumps(EVENT))
    assert not pattern_matches('{"detail": {"DaysToExpiry": [{"numeric": [">", 0]}]}}', json.dumps(EVENT))
    with pytest.raises(InvalidEventPatternError) as caught:
        pattern_matches('{"source": "aws.acm"}', json.dumps(EVENT))
    assert caught.value.field == "EventPattern" and caught.value.message.startswith("Event pattern is not valid. Reason: ")


def test_names_buses_and_pages() -> None:
    assert check_name("a.b-c_D9") == "a.b-c_D9"
    for bad in ("", "x" * 65, "a b", "a/b", "é"):
        assert _problem(check_name, bad).field == "Name"
    assert _problem(check_name, "a b", "Targets[2].Id").message.startswith("Targets[2].Id: ")
    assert rule_arn("cn-north-1", "123456789012", "r") == "arn:aws-cn:events:cn-north-1:123456789012:rule/r"
    check_bus(None)
    check_bus("default")
    check_bus("arn:aws:events:us-east-1:123456789012:event-bus/default")
    with pytest.raises(ResourceNotFoundError):
        check_bus("custom")
    assert after_token(page_token("rule-7")) == "rule-7" and after_token(None) is None
    for token in ("garbage", page_token("x")[:-3], "eyJvZmZzZXQiOiAxfQ=="):  # the last: another service's offset token
        with pytest.raises(InvalidNextTokenError):
            after_token(token)
    assert page_limit(None) == 100 and page_limit(7) == 7
    assert _problem(page_limit, 0).field == "Limit"


def test_targets_on_the_wire_round_trip() -> None:
    wire = [
        {"Id": "hook", "Webhook": {"Url": "https://h.test/x", "Secret": "s" * 20, "Headers": {"X-A": "b"},
                                   "TimeoutSeconds": 3}, "RetryPolicy": {"MaximumRetryAttempts": 0,
                                                                         "MaximumEventAgeInSeconds": 60}},
        {"Id": "chat", "Slack": {"WebhookUrl": "https://hooks.slack.com/services/x"}},
        {"Id": "mail", "Email": {"To": ["a@example.test"]}},
        {"Id": "run", "Command": {"Command": "true", "TimeoutSeconds": 9}, "RetryPolicy": {"MaximumRetryAttempts": 99}},
    ]
    for index, target in enumerate(wire):
        spec = target_spec(target, index)
        assert spec.where == f"Targets[{index}]"
        config, secret = check_target(spec.kind, spec.config, spec.secret)
        shown = target_shape(TargetRecord(spec.target_id, spec.kind, config, secret is not None, NOW, NOW))
        expected = json.loads(json.dumps(target).replace('"Secret": "' + "s" * 20 + '"', '"SecretSet": true')
                              .replace('"WebhookUrl": "https://hooks.slack.com/services/x"', '"WebhookUrlSet": true'))
        if "Webhook" in expected:
            expected["Webhook"] = {"Url": "https://h.test/x", "SecretSet": True, "Headers": {"X-A": "b"},
                                   "TimeoutSeconds": 3}
        assert shown == expected
    assert config == {"command": "true", "timeout_seconds": 9, "max_attempts": 100}
    error = _problem(target_spec, {"Id": "x", "Email": {"To": ["a@b.test"]}, "Command": {"Command": "true"}}, 3)
    assert error.field == "Targets[3]" and "(it has Email and Command)" in error.message


def test_one_line_of_a_target() -> None:
    signed = {"Id": "1", "Webhook": {"Url": "https://h.test/", "SecretSet": True}}
    assert target_text(signed) == "1: webhook https://h.test/ (signed)"
    assert target_text({"Id": "2", "Slack": {"WebhookUrlSet": True}}) == "2: slack (URL set)"
    assert target_text({"Id": "3", "Email": {"To": ["a@x.test", "b@x.test"]}}) == "3: email a@x.test, b@x.test"
    assert target_text({"Id": "4", "Command": {"Command": "true"}}) == "4: command true"


def _rules(*, allow_commands: bool = False, mail: bool = False) -> EventRules:
    # Target checks and sealing run before any database statement: no database here.
    return EventRules(None, KeySealer(os.urandom(32)), FixedClock(NOW), allow_commands=allow_commands,  # type: ignore[arg-type]
                      mail=mail)


def test_target_checks_before_anything_is_stored() -> None:
    rules = _rules()
    cases = [
        (TargetSpec("1", "command", {"command": "true"}), "Targets[0].Command", "event_commands"),
        (TargetSpec("1", "email", {"to": ["a@example.test"]}), "Targets[0].Email", "smtp_url"),
        (TargetSpec("1", "slack", {}, None, "Targets[4]"), "Targets[4].Slack.WebhookUrl", "required"),
        (TargetSpec("1", "webhook", {"url": "https://a.test/", "max_attempts": 0}),
         "Targets[0].RetryPolicy.MaximumRetryAttempts", "from 1 to 100"),
        (TargetSpec("bad id", "webhook", {"url": "https://a.test/"}), "Targets[0].Id", "rule name"),
    ]
    for spec, field, words in cases:
        error = _problem(rules.put_targets, None, "rule", [spec])
        assert error.field == field and error.message.startswith(field + ":") and words in error.message, error.message


@dataclass(frozen=True)
class _Leased:
    id: str
    sealed: bytes | None


def test_secrets_open_under_their_target_only() -> None:
    rules = _rules()
    sealed = rules._sealer.seal(b"the secret", "target-1")
    assert rules.open_secret(_Leased("target-1", sealed)) == "the secret"
    assert rules.open_secret(_Leased("target-1", None)) is None
    with pytest.raises(Exception):  # noqa: B017 - bound to its target: another target's id does not open it
        rules.open_secret(_Leased("target-2", sealed))


def test_patterns_are_compiled_once_per_change_of_their_rule(caplog: pytest.LogCaptureFixture) -> None:
    rules = _rules()
    text = '{"source": ["aws.acm"]}'
    first = rules._pattern("r1", NOW, text, "one", "123456789012")
    assert first is not None and rules._pattern("r1", NOW, text, "one", "123456789012") is first
    changed = rules._pattern("r1", NOW + timedelta(seconds=1), '{"source": ["certsmith"]}', "one", "123456789012")
    assert changed is not None and changed is not first and changed.matches({"source": "certsmith"})
    assert rules._pattern("r2", NOW, '{"source": "x"}', "broken", "123456789012") is None
    assert "event rule broken of account 123456789012" in caplog.text
