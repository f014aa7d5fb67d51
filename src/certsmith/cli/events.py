"""``certsmith events ...``: rules that send events to webhooks, Slack, email or commands, and pattern tests.

``events rule add|list|show|remove|enable|disable`` speak EventBridge's rule operations (PutRule, PutTargets...);
``events test-pattern`` checks a pattern against an event here, without a server. The events log (``events list``,
``tail``, ``dead-letters``, ``replay``) comes from ``events_log``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from ..domain.errors import ValidationError
from .client import ApiError, Client
from .common import (
    DEFAULT_CREDENTIALS,
    DEFAULT_ENDPOINT,
    DEFAULT_REGION,
    AsJson,
    CaBundle,
    Credentials,
    Endpoint,
    Region,
    api_failures,
    connect,
    fail,
    print_fields,
    print_json,
    stdout_console,
)
from .events_log import register
from .help import CertsmithTyper

__all__ = ["events_app", "target_text"]

events_app = CertsmithTyper(help="Events: rules that send certsmith's events (EventBridge's shapes) to webhooks, "
                                 "Slack, email or commands, and the log of what was sent.")
rule_app = CertsmithTyper(help="Event rules: an EventBridge event pattern, and the targets its events go to.")
events_app.add_typer(rule_app, name="rule")
console = stdout_console()
Name = Annotated[str, typer.Argument(metavar="NAME", help="the rule's name")]
TextOrFile = "JSON|@FILE"


def _client(endpoint: str, credentials: Path, region: str, ca_bundle: Path | None) -> Client:
    return connect("certsmith", endpoint, credentials, region, ca_bundle)


def _text(value: str, option: str) -> str:
    """The value itself, or with ``@FILE`` the file's text."""
    if not value.startswith("@"):
        return value
    try:
        return Path(value[1:]).read_text().strip()
    except OSError as exc:
        raise fail(f"{option} {value}: cannot read the file ({exc.strerror or exc})", code=2) from None


def target_text(target: dict[str, Any]) -> str:
    """One line about a target, secrets left out: ``1: webhook https://... (signed)``."""
    if "Webhook" in target:
        hook = target["Webhook"]
        what = f"webhook {hook.get('Url', '')}" + (" (signed)" if hook.get("SecretSet") else "")
    elif "Slack" in target:
        what = "slack" + (" (URL set)" if target["Slack"].get("WebhookUrlSet") else "")
    elif "Email" in target:
        what = "email " + ", ".join(target["Email"].get("To", []))
    elif "Command" in target:
        what = f"command {target['Command'].get('Command', '')}"
    else:
        what = "?"
    return f"{target.get('Id', '?')}: {what}"


def _target(target_id: str, webhook: str | None, secret: str | None, slack: str | None, email: list[str],
            command: str | None) -> dict[str, Any]:
    """The one target of ``rule add``; a usage error if there is none, more than one, or an empty value."""
    given = [(name, value) for name, value in (("--webhook", webhook), ("--slack", slack), *(("--email", address)
                                                                                              for address in email),
                                               ("--command", command)) if value is not None]
    for name, value in given:
        if not value.strip():
            raise fail(f"{name} is empty", code=2)
    kinds = list(dict.fromkeys(name for name, _ in given))
    if len(kinds) > 1:
        raise fail(f"give one target: {' or '.join(kinds)}, not both (add more with --target-id)", code=2)
    if not kinds:
        raise fail("give the rule's target: --webhook URL, --slack URL, --email ADDRESS or --command CMD "
                   "(a rule without one sends its events nowhere)", code=2)
    if secret is not None and webhook is None:
        raise fail("--secret goes with --webhook", code=2)
    if webhook is not None:
        hook: dict[str, Any] = {"Url": webhook}
        if secret is not None:
            hook["Secret"] = _text(secret, "--secret")
            if not hook["Secret"]:
                raise fail(f"--secret {'file ' + secret[1:] + ' ' if secret.startswith('@') else ''}is empty; leave "
                           "--secret out for an unsigned webhook", code=2)
        return {"Id": target_id, "Webhook": hook}
    if slack is not None:
        return {"Id": target_id, "Slack": {"WebhookUrl": _text(slack, "--slack")}}
    if email:
        return {"Id": target_id, "Email": {"To": list(email)}}
    assert command is not None
    return {"Id": target_id, "Command": {"Command": command}}


def _with_targets(client: Client, rule: dict[str, Any]) -> dict[str, Any]:
    targets = client.call_all("list_targets_by_rule", "Targets", Rule=rule["Name"])
    return {**rule, "Targets": targets}


def _print_rule(rule: dict[str, Any]) -> None:
    rows: list[tuple[str, Any]] = [("Name", rule.get("Name")), ("State", rule.get("State")), ("ARN", rule.get("Arn")),
                                   ("Description", rule.get("Description")), ("Pattern", rule.get("EventPattern"))]
    rows += [("Target", target_text(t)) for t in rule.get("Targets", [])]
    print_fields(console, rows, 13)


@rule_app.command("add")
def add(
    name: Name,
    pattern: Annotated[str, typer.Option("--pattern", metavar=TextOrFile,
                                         help="the event pattern (EventBridge's), or @FILE holding it")],
    webhook: Annotated[str | None, typer.Option("--webhook", metavar="URL", help="POST matching events here")] = None,
    secret: Annotated[str | None, typer.Option("--secret", metavar="SECRET|@FILE",
                                               help="with --webhook: sign requests with this secret (16+ characters)")]
    = None,
    slack: Annotated[str | None, typer.Option("--slack", metavar="URL|@FILE", help="a Slack incoming-webhook URL")] = None,
    email: Annotated[list[str] | None, typer.Option("--email", metavar="ADDRESS",
                                                    help="mail matching events here (repeat; needs smtp_url)")] = None,
    command: Annotated[str | None, typer.Option("--command", metavar="CMD",
                                                help="run this (sh -c; the event on stdin; needs event_commands)")]
    = None,
    target_id: Annotated[str, typer.Option("--target-id", metavar="ID",
                                           help="the target's Id: the same Id replaces it, another adds one")] = "1",
    description: Annotated[str | None, typer.Option("--description", metavar="TEXT")] = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="create it turned off")] = False,
    endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
    region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None, as_json: AsJson = False,
) -> None:
    """Create or replace a rule (PutRule) and put one target on it (PutTargets)."""
    target = _target(target_id, webhook, secret, slack, list(email or []), command)
    rule: dict[str, Any] = {"Name": name, "EventPattern": _text(pattern, "--pattern"),
                            "State": "DISABLED" if disabled else "ENABLED"}
    if description is not None:
        rule["Description"] = description
    with api_failures():
        client = _client(endpoint, credentials, region, ca_bundle)
        existed = any(r["Name"] == name for r in client.call("list_rules", NamePrefix=name).get("Rules", []))
        if existed:  # the target is checked before the rule changes
            _put_targets(client, name, target)
        client.call("put_rule", **rule)
        if not existed:
            try:
                _put_targets(client, name, target)
            except ApiError:
                client.call("delete_rule", Name=name, Force=True)  # no half-made rule is left behind
                raise
        shown = _with_targets(client, client.call("describe_rule", Name=name))
    if as_json:
        print_json(shown)
    else:
        _print_rule(shown)


def _put_targets(client: Client, rule: str, target: dict[str, Any]) -> None:
    result = client.call("put_targets", Rule=rule, Targets=[target])
    for failure in result.get("FailedEntries", []):
        raise ApiError(f"{failure.get('ErrorCode')}: target {failure.get('TargetId')}: {failure.get('ErrorMessage')}")


@rule_app.command("list")
def list_rules(endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
               region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None, as_json: AsJson = False) -> None:
    """The rules with their targets (secrets are never shown)."""
    with api_failures():
        client = _client(endpoint, credentials, region, ca_bundle)
        rules = [_with_targets(client, r) for r in client.call_all("list_rules", "Rules")]
    if as_json:
        print_json(rules)
        return
    table = Table("Name", "State")
    table.add_column("Pattern", overflow="fold")
    table.add_column("Targets", overflow="fold")
    for rule in rules:
        table.add_row(escape(rule["Name"]), rule.get("State", ""), escape(rule.get("EventPattern", "")),
                      escape("\n".join(target_text(t) for t in rule["Targets"]) or "-"))
    console.print(table)
    if not rules:
        typer.echo("no rule yet (certsmith events rule add NAME --pattern ... --webhook URL)", err=True)


@rule_app.command("show")
def show(name: Name, endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
         region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None, as_json: AsJson = False) -> None:
    """A rule and its targets."""
    with api_failures():
        client = _client(endpoint, credentials, region, ca_bundle)
        rule = _with_targets(client, client.call("describe_rule", Name=name))
    if as_json:
        print_json(rule)
    else:
        _print_rule(rule)


@rule_app.command("remove")
def remove(name: Name, endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
           region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None) -> None:
    """Delete a rule and its targets (events not yet delivered to them are dropped)."""
    with api_failures():
        client = _client(endpoint, credentials, region, ca_bundle)
        client.call("describe_rule", Name=name)  # DeleteRule of no rule succeeds, as EventBridge's: say so here
        client.call("delete_rule", Name=name, Force=True)
    typer.echo(f"removed rule {name}", err=True)


def _set_state(name: str, operation: str, endpoint: str, credentials: Path, region: str, ca_bundle: Path | None) -> None:
    with api_failures():
        _client(endpoint, credentials, region, ca_bundle).call(operation, Name=name)


@rule_app.command("enable")
def enable(name: Name, endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
           region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None) -> None:
    """Turn a rule on."""
    _set_state(name, "enable_rule", endpoint, credentials, region, ca_bundle)
    typer.echo(f"rule {name} is enabled", err=True)


@rule_app.command("disable")
def disable(name: Name, endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
            region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None) -> None:
    """Turn a rule off: it matches nothing until enabled again."""
    _set_state(name, "disable_rule", endpoint, credentials, region, ca_bundle)
    typer.echo(f"rule {name} is disabled", err=True)


@events_app.command("test-pattern")
def pattern_test(
    pattern: Annotated[str, typer.Option("--pattern", metavar=TextOrFile, help="the event pattern, or @FILE")],
    event: Annotated[str, typer.Option("--event", metavar=TextOrFile,
                                       help="the event (with id, account, source, time, region, resources, "
                                            "detail-type), or @FILE")],
) -> None:
    """Whether an event matches a pattern (checked here, as TestEventPattern does): exit 0 if it does, 1 if not."""
    from ..services.events.rule_inputs import pattern_matches  # the pattern compiler, only when it is needed

    try:
        matched = pattern_matches(_text(pattern, "--pattern"), _text(event, "--event"))
    except ValidationError as exc:
        raise fail(exc.message, code=2) from None
    typer.echo("matches" if matched else "does not match")
    raise typer.Exit(0 if matched else 1)


register(events_app)
