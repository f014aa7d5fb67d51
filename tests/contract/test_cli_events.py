"""``certsmith events rule ...`` and ``events test-pattern`` against a real server: few calls, each a process.

The rules go to the shared server under names of their own (it allows neither commands nor email: webhook and
Slack targets here); ``test-pattern`` needs no server and runs in this process.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from typer.testing import CliRunner

from certsmith.cli.main import app

from ..conftest import Server, no_database
from .test_cli import cli

PATTERN = {"source": ["example.test"], "detail-type": ["CLI Test"]}
SECRET = "cli-webhook-signing-secret"
SLACK = "https://hooks.slack.com/services/T0/B0/cli-slack-token"
EVENT = {"id": "1", "account": "123456789012", "source": "example.test", "time": "2026-01-31T12:00:00Z",
         "region": "us-east-1", "resources": [], "detail-type": "CLI Test", "detail": {}}


def gone(events: Any, name: str) -> bool:
    try:
        events.describe_rule(Name=name)
    except ClientError as exc:
        return bool(exc.response["Error"]["Code"] == "ResourceNotFoundException")
    return False


def test_rule_commands(server: Server, tmp_path: Path) -> None:
    (tmp_path / "pattern.json").write_text(json.dumps(PATTERN))
    (tmp_path / "secret").write_text(SECRET + "\n")
    added = json.loads(cli(server, "events", "rule", "add", "cli-rule", "--pattern", f"@{tmp_path / 'pattern.json'}",
                           "--webhook", "https://cli.example.test/hook", "--secret", f"@{tmp_path / 'secret'}",
                           "--description", "from the CLI", "--json").stdout)
    assert added["Name"] == "cli-rule" and added["State"] == "ENABLED" and added["Description"] == "from the CLI"
    assert json.loads(added["EventPattern"]) == PATTERN
    assert added["Targets"] == [{"Id": "1", "Webhook": {"Url": "https://cli.example.test/hook", "SecretSet": True}}]
    shown = cli(server, "events", "rule", "add", "cli-rule", "--pattern", json.dumps(PATTERN), "--slack", SLACK,
                "--target-id", "chat", "--disabled").stdout
    assert "DISABLED" in shown and "chat: slack (URL set)" in shown
    assert "1: webhook https://cli.example.test/hook (signed)" in shown

    listed = cli(server, "events", "rule", "list", "--json").stdout
    assert SECRET not in listed and "cli-slack-token" not in listed
    rule = next(r for r in json.loads(listed) if r["Name"] == "cli-rule")
    assert [t["Id"] for t in rule["Targets"]] == ["1", "chat"] and rule["State"] == "DISABLED"
    cli(server, "events", "rule", "enable", "cli-rule")
    events = server.client("certsmith")
    assert events.describe_rule(Name="cli-rule")["State"] == "ENABLED"

    # A target the server refuses leaves no rule behind.
    refused = cli(server, "events", "rule", "add", "cli-half", "--pattern", json.dumps(PATTERN), "--webhook",
                  "ftp://cli.example.test/", ok=False)
    assert refused.returncode == 1 and "Targets[0].Webhook.Url" in refused.stderr, refused.stderr
    assert gone(events, "cli-half")

    cli(server, "events", "rule", "remove", "cli-rule")
    assert gone(events, "cli-rule")
    again = cli(server, "events", "rule", "remove", "cli-rule", ok=False)
    assert again.returncode == 1 and "Rule cli-rule does not exist" in again.stderr


@no_database
def test_test_pattern_runs_here(tmp_path: Path) -> None:
    runner = CliRunner()
    (tmp_path / "event.json").write_text(json.dumps(EVENT))
    matched = runner.invoke(app, ["events", "test-pattern", "--pattern", json.dumps(PATTERN),
                                  "--event", f"@{tmp_path / 'event.json'}"])
    assert matched.exit_code == 0 and matched.stdout.strip() == "matches"
    other = runner.invoke(app, ["events", "test-pattern", "--pattern", json.dumps({"source": ["elsewhere"]}),
                                "--event", json.dumps(EVENT)])
    assert other.exit_code == 1 and other.stdout.strip() == "does not match"
    missing = runner.invoke(app, ["events", "test-pattern", "--pattern", json.dumps(PATTERN),
                                  "--event", json.dumps({k: v for k, v in EVENT.items() if k != "region"})])
    assert missing.exit_code == 2 and "'region' is missing" in missing.stderr
    invalid = runner.invoke(app, ["events", "test-pattern", "--pattern", "[1]", "--event", json.dumps(EVENT)])
    assert invalid.exit_code == 2 and "Event pattern is not valid" in invalid.stderr
    unread = runner.invoke(app, ["events", "test-pattern", "--pattern", f"@{tmp_path / 'none.json'}", "--event", "{}"])
    assert unread.exit_code == 2 and "cannot read the file" in unread.stderr
    both = runner.invoke(app, ["events", "rule", "add", "x", "--pattern", "{}", "--webhook", "https://a.test/",
                               "--slack", "https://b.test/"])
    assert both.exit_code == 2 and "give one target" in both.stderr
