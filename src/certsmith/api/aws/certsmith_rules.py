"""certsmith's event rules on the wire, in EventBridge's names and shapes: PutRule, PutTargets, TestEventPattern...

A target names its kind by the one member it has: ``Webhook``, ``Slack``, ``Email`` or ``Command``. Secrets (a
webhook's signing secret, a Slack URL) are taken but never given back: listings say ``SecretSet`` /
``WebhookUrlSet``.
"""

from __future__ import annotations

from typing import Any

from ...domain.errors import ValidationError
from ...services.context import Caller
from ...services.events.rule_inputs import DEFAULT_BUS, check_bus, pattern_matches
from ...services.events.rules import DISABLED, ENABLED, RuleRecord, TargetFailure, TargetRecord, TargetSpec
from ...services.wiring import Container
from .pca import Handler

__all__ = ["rule_operations", "target_shape", "target_spec"]

KINDS = {"Webhook": "webhook", "Slack": "slack", "Email": "email", "Command": "command"}


def _rule_shape(record: RuleRecord) -> dict[str, Any]:
    shape: dict[str, Any] = {"Name": record.name, "Arn": record.arn, "EventPattern": record.event_pattern,
                             "State": record.state, "EventBusName": DEFAULT_BUS}
    if record.description is not None:
        shape["Description"] = record.description
    return shape


def target_spec(target: dict[str, Any], index: int) -> TargetSpec:
    """A PutTargets entry as the service takes it; exactly one of the kinds, or a ValidationError naming it."""
    where = f"Targets[{index}]"
    given = [name for name in KINDS if target.get(name) is not None]
    if len(given) != 1:
        found = f"it has {' and '.join(given)}" if given else "it has none"
        raise ValidationError(f"{where}: give exactly one of {', '.join(KINDS)} ({found})", field=where)
    name = given[0]
    settings: dict[str, Any] = dict(target[name])
    secret: str | None = None
    if name == "Webhook":
        secret = settings.pop("Secret", None)
    elif name == "Slack":
        secret = settings.pop("WebhookUrl", None)
    policy = target.get("RetryPolicy") or {}
    if policy.get("MaximumRetryAttempts") is not None:
        settings["MaxAttempts"] = policy["MaximumRetryAttempts"] + 1
    if policy.get("MaximumEventAgeInSeconds") is not None:
        settings["MaxAgeSeconds"] = policy["MaximumEventAgeInSeconds"]
    return TargetSpec(target["Id"], KINDS[name], settings, secret, where)


def target_shape(record: TargetRecord) -> dict[str, Any]:
    """A target as ListTargetsByRule shows it: its settings, and whether its secret is set (never the secret)."""
    config = record.config
    shape: dict[str, Any] = {"Id": record.target_id}
    if record.kind == "webhook":
        webhook: dict[str, Any] = {"Url": config.get("url", ""), "SecretSet": record.secret_set}
        if config.get("headers"):
            webhook["Headers"] = dict(config["headers"])
        if config.get("timeout_seconds") is not None:
            webhook["TimeoutSeconds"] = config["timeout_seconds"]
        shape["Webhook"] = webhook
    elif record.kind == "slack":
        shape["Slack"] = {"WebhookUrlSet": record.secret_set}
    elif record.kind == "email":
        shape["Email"] = {"To": list(config.get("to", []))}
    else:
        command: dict[str, Any] = {"Command": config.get("command", "")}
        if config.get("timeout_seconds") is not None:
            command["TimeoutSeconds"] = config["timeout_seconds"]
        shape["Command"] = command
    policy: dict[str, Any] = {}
    if config.get("max_attempts") is not None:
        policy["MaximumRetryAttempts"] = int(config["max_attempts"]) - 1
    if config.get("max_age_seconds") is not None:
        policy["MaximumEventAgeInSeconds"] = int(config["max_age_seconds"])
    if policy:
        shape["RetryPolicy"] = policy
    return shape


def _failures(failures: list[TargetFailure]) -> dict[str, Any]:
    return {"FailedEntryCount": len(failures),
            "FailedEntries": [{"TargetId": f.target_id, "ErrorCode": f.code, "ErrorMessage": f.message}
                              for f in failures]}


def put_rule(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    check_bus(req.get("EventBusName"))
    record = c.event_rules.put_rule(caller, req["Name"], req.get("EventPattern"), state=req.get("State"),
                                    description=req.get("Description"), schedule=req.get("ScheduleExpression"))
    return {"RuleArn": record.arn}


def describe_rule(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    check_bus(req.get("EventBusName"))
    record = c.event_rules.describe_rule(caller, req["Name"])
    return {**_rule_shape(record), "CreatedBy": record.account_id}


def list_rules(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    check_bus(req.get("EventBusName"))
    records, token = c.event_rules.list_rules(caller, req.get("NamePrefix"), req.get("Limit"), req.get("NextToken"))
    return {"Rules": [_rule_shape(r) for r in records], **({"NextToken": token} if token else {})}


def delete_rule(c: Container, caller: Caller, req: dict[str, Any]) -> None:
    check_bus(req.get("EventBusName"))
    c.event_rules.delete_rule(caller, req["Name"], bool(req.get("Force", False)))


def enable_rule(c: Container, caller: Caller, req: dict[str, Any]) -> None:
    check_bus(req.get("EventBusName"))
    c.event_rules.set_state(caller, req["Name"], ENABLED)


def disable_rule(c: Container, caller: Caller, req: dict[str, Any]) -> None:
    check_bus(req.get("EventBusName"))
    c.event_rules.set_state(caller, req["Name"], DISABLED)


def put_targets(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    check_bus(req.get("EventBusName"))
    specs = [target_spec(target, index) for index, target in enumerate(req["Targets"])]
    return _failures(c.event_rules.put_targets(caller, req["Rule"], specs))


def list_targets_by_rule(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    check_bus(req.get("EventBusName"))
    records, token = c.event_rules.list_targets(caller, req["Rule"], req.get("Limit"), req.get("NextToken"))
    return {"Targets": [target_shape(r) for r in records], **({"NextToken": token} if token else {})}


def remove_targets(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    check_bus(req.get("EventBusName"))
    return _failures(c.event_rules.remove_targets(caller, req["Rule"], req["Ids"]))


def event_pattern_test(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    return {"Result": pattern_matches(req["EventPattern"], req["Event"])}


def rule_operations() -> dict[str, Handler]:
    return {
        "PutRule": put_rule,
        "DescribeRule": describe_rule,
        "ListRules": list_rules,
        "DeleteRule": delete_rule,
        "EnableRule": enable_rule,
        "DisableRule": disable_rule,
        "PutTargets": put_targets,
        "ListTargetsByRule": list_targets_by_rule,
        "RemoveTargets": remove_targets,
        "TestEventPattern": event_pattern_test,
    }
