"""What the rule operations take from the caller, checked: rule names, patterns, TestEventPattern's event, pages."""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import datetime
from typing import Any

from ...domain.arns import partition_of
from ...domain.errors import InvalidEventPatternError, InvalidNextTokenError, ResourceNotFoundError, ValidationError
from ...domain.event_patterns import EventPattern, PatternError, compile_pattern

__all__ = ["DEFAULT_BUS", "MAX_PAGE", "REQUIRED_EVENT_FIELDS", "InvalidEventPatternError", "after_token", "check_bus",
           "check_name", "check_pattern", "page_limit", "page_token", "parse_event", "pattern_matches", "rule_arn"]

DEFAULT_BUS = "default"  # the one event bus of an account: its rules are the account's rules in a region
MAX_PAGE = 100
REQUIRED_EVENT_FIELDS = ("id", "account", "source", "time", "region", "resources", "detail-type")
_NAME = re.compile(r"[.\-_A-Za-z0-9]{1,64}")



def rule_arn(region: str, account_id: str, name: str) -> str:
    return f"arn:{partition_of(region)}:events:{region}:{account_id}:rule/{name}"


def check_name(name: str, field: str = "Name") -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValidationError(f"{field}: {str(name)[:80]!r} is not a rule name (1 to 64 of letters, digits, '.', '-' "
                              "and '_')", field=field)
    return name


def check_bus(bus: str | None) -> None:
    """certsmith has one event bus per account and region: ``default`` (or its ARN)."""
    if bus is None or bus == DEFAULT_BUS or (bus.startswith("arn:") and bus.endswith(":event-bus/default")):
        return
    raise ResourceNotFoundError(f"Event bus {bus} does not exist (certsmith has only the default bus)",
                                field="EventBusName")


def check_pattern(text: str, field: str = "EventPattern") -> EventPattern:
    try:
        return compile_pattern(text)
    except PatternError as error:
        raise InvalidEventPatternError(f"Event pattern is not valid. Reason: {error}", field=field) from None


def parse_event(text: str) -> dict[str, Any]:
    """The JSON text of an event as TestEventPattern takes it: an EventBridge event with its mandatory fields."""
    problem = "Parameter Event is not valid. Reason: "
    try:
        event = json.loads(text)
    except RecursionError:
        raise ValidationError(f"{problem}the JSON nests too deeply", field="Event") from None
    except ValueError as error:
        raise ValidationError(f"{problem}it is not valid JSON ({error})", field="Event") from None
    if not isinstance(event, dict):
        raise ValidationError(f"{problem}it must be a JSON object", field="Event")
    for name in REQUIRED_EVENT_FIELDS:
        if name not in event:
            raise ValidationError(f"{problem}the field {name!r} is missing (an event needs "
                                  f"{', '.join(REQUIRED_EVENT_FIELDS)})", field=f"Event.{name}")
        value = event[name]
        if name == "resources":
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                raise ValidationError(f"{problem}the field 'resources' must be an array of strings", field="Event.resources")
        elif not isinstance(value, str):
            raise ValidationError(f"{problem}the field {name!r} must be a string", field=f"Event.{name}")
    try:
        datetime.fromisoformat(event["time"].replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValidationError(f"{problem}the field 'time' must be a timestamp such as 2026-01-31T12:00:00Z, not "
                              f"{event['time'][:40]!r}", field="Event.time") from None
    if "detail" in event and not isinstance(event["detail"], dict):
        raise ValidationError(f"{problem}the field 'detail' must be a JSON object", field="Event.detail")
    return event


def pattern_matches(pattern: str, event: str) -> bool:
    """TestEventPattern: whether the event (JSON text) matches the pattern (JSON text)."""
    return check_pattern(pattern).matches(parse_event(event))


def page_token(after: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode()


def after_token(token: str | None) -> str | None:
    if token is None:
        return None
    try:
        after = json.loads(base64.urlsafe_b64decode(token.encode()))["after"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        after = None
    if not isinstance(after, str):
        raise InvalidNextTokenError("NextToken is not a token this service returned", field="NextToken")
    return after


def page_limit(limit: int | None) -> int:
    if limit is None:
        return MAX_PAGE
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationError(f"Limit: must be from 1 to {MAX_PAGE}, not {limit}", field="Limit")
    return limit
