"""Event rules and targets on certsmith's API, driven with boto3 (and the AWS CLI) as EventBridge's would be.

The rules here are the account's, so they go to a server of this module's own, which allows command targets,
has an SMTP URL (nothing is mailed: no rule but the delivery test's matches an event) and dispatches every 0.2 s.
What a server that allows neither says is checked on the shared server.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from certsmith.models import MODELS_PATH
from certsmith.notify import verify
from certsmith.testing.waiting import until

from ..conftest import BACKEND, Server, backend_url, free_port, need_binary, start_server

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
QUIET = json.dumps({"source": ["example.test"]})  # matches no event certsmith writes
SECRET = "a-signing-secret-of-the-test"
SLACK = "https://hooks.slack.com/services/T000/B000/not-a-real-token"
EVENT = {"id": "7bf73129-1428-4cd3-a780-95db273d1602", "account": "123456789012", "source": "aws.acm",
         "time": "2026-01-31T12:00:00Z", "region": "us-east-1", "detail-type": "ACM Certificate Approaching Expiration",
         "resources": ["arn:aws:acm:us-east-1:123456789012:certificate/61f50cd4"], "detail": {"DaysToExpiry": 31}}


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("event-rules"), backend_url(), settings={
        "event_commands": True, "smtp_url": f"smtp://127.0.0.1:{free_port()}", "event_delivery_seconds": 0.2})
    yield srv
    srv.stop()
    assert not srv.errors(), srv.errors()


@pytest.fixture(scope="module")
def events(own_server: Server) -> Any:
    return own_server.client("certsmith")


def error(call: Callable[..., Any], **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


def targets_of(events: Any, rule: str) -> dict[str, dict[str, Any]]:
    return {t["Id"]: t for t in events.list_targets_by_rule(Rule=rule)["Targets"]}


# -- rules -------------------------------------------------------------------------------------------------------------
def test_a_rule_is_put_described_listed_and_replaced(events: Any) -> None:
    arn = events.put_rule(Name="expiring", EventPattern=QUIET, Description="certificates near expiry")["RuleArn"]
    account = events.describe_rule(Name="expiring")["CreatedBy"]
    assert arn == f"arn:aws:events:us-east-1:{account}:rule/expiring"
    described = events.describe_rule(Name="expiring")
    assert {k: described[k] for k in ("Name", "Arn", "EventPattern", "State", "Description", "EventBusName")} == {
        "Name": "expiring", "Arn": arn, "EventPattern": QUIET, "State": "ENABLED",
        "Description": "certificates near expiry", "EventBusName": "default"}
    # PutRule replaces: what it leaves out is reset (the description, the state), as EventBridge's does.
    events.disable_rule(Name="expiring")
    assert events.describe_rule(Name="expiring")["State"] == "DISABLED"
    pattern = json.dumps({"source": ["example.test"], "detail-type": ["Other"]})
    assert events.put_rule(Name="expiring", EventPattern=pattern)["RuleArn"] == arn
    again = events.describe_rule(Name="expiring")
    assert again["EventPattern"] == pattern and again["State"] == "ENABLED" and "Description" not in again
    events.put_rule(Name="expiring.2", EventPattern=QUIET, State="DISABLED")
    events.put_rule(Name="other", EventPattern=QUIET)
    first = events.list_rules(NamePrefix="expiring", Limit=1)
    assert [r["Name"] for r in first["Rules"]] == ["expiring"]
    second = events.list_rules(NamePrefix="expiring", Limit=1, NextToken=first["NextToken"])
    assert [(r["Name"], r["State"]) for r in second["Rules"]] == [("expiring.2", "DISABLED")]
    assert "NextToken" not in second
    assert {"expiring", "expiring.2", "other"} <= {r["Name"] for r in events.list_rules()["Rules"]}
    events.enable_rule(Name="expiring.2")
    assert events.describe_rule(Name="expiring.2")["State"] == "ENABLED"
    for name in ("expiring", "expiring.2", "other"):
        events.delete_rule(Name=name)
    events.delete_rule(Name="other")  # again: EventBridge's DeleteRule succeeds for a rule that is gone
    code, message = error(events.describe_rule, Name="other")
    assert code == "ResourceNotFoundException" and "Rule other does not exist" in message


def test_rules_belong_to_their_region(events: Any, own_server: Server) -> None:
    events.put_rule(Name="regional", EventPattern=QUIET)
    west = own_server.client("certsmith", region_name="eu-west-1")
    assert "regional" not in [r["Name"] for r in west.list_rules()["Rules"]]
    assert error(west.describe_rule, Name="regional")[0] == "ResourceNotFoundException"
    assert west.put_rule(Name="regional", EventPattern=QUIET)["RuleArn"].startswith("arn:aws:events:eu-west-1:")
    west.delete_rule(Name="regional")
    assert events.describe_rule(Name="regional")["Name"] == "regional"
    events.delete_rule(Name="regional")


def test_rule_errors_name_the_field(events: Any) -> None:
    code, message = error(events.put_rule, Name="bad", EventPattern='{"source": "aws.acm"}')
    assert code == "InvalidEventPatternException" and message.startswith("Event pattern is not valid. Reason: "), message
    assert "source" in message
    code, message = error(events.put_rule, Name="bad", EventPattern="{not json")
    assert code == "InvalidEventPatternException" and "JSON" in message
    code, message = error(events.put_rule, Name="bad")
    assert code == "ValidationException" and message.startswith("EventPattern: is required"), message
    code, message = error(events.put_rule, Name="bad", EventPattern=QUIET, ScheduleExpression="rate(5 minutes)")
    assert code == "ValidationException" and message.startswith("ScheduleExpression: "), message
    for name in ("has space", "x" * 65, "slash/no"):
        code, message = error(events.put_rule, Name=name, EventPattern=QUIET)
        assert code == "ValidationException" and "'name'" in message, message
    code, message = error(events.put_rule, Name="bad", EventPattern=QUIET,
                          State="ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS")
    assert code == "ValidationException" and "'state'" in message
    code, message = error(events.put_rule, Name="bad", EventPattern=QUIET, EventBusName="custom")
    assert code == "ResourceNotFoundException" and "custom" in message
    assert events.put_rule(Name="on-default", EventPattern=QUIET, EventBusName="default")["RuleArn"]
    events.delete_rule(Name="on-default", EventBusName="default")
    for call in (events.describe_rule, events.enable_rule, events.disable_rule):
        code, message = error(call, Name="nowhere")
        assert code == "ResourceNotFoundException" and "Rule nowhere does not exist" in message
    assert error(events.list_rules, NextToken="garbage")[0] == "InvalidNextTokenException"
    assert "bad" not in [r["Name"] for r in events.list_rules()["Rules"]]


# -- targets -----------------------------------------------------------------------------------------------------------
def test_targets_of_every_kind_with_their_secrets_hidden(events: Any, own_server: Server) -> None:
    events.put_rule(Name="fanout", EventPattern=QUIET)
    result = events.put_targets(Rule="fanout", Targets=[
        {"Id": "hook", "Webhook": {"Url": "https://hooks.example.test/certs?team=pki", "Secret": SECRET,
                                   "Headers": {"X-Team": "pki"}, "TimeoutSeconds": 5},
         "RetryPolicy": {"MaximumRetryAttempts": 4, "MaximumEventAgeInSeconds": 3600}},
        {"Id": "chat", "Slack": {"WebhookUrl": SLACK}},
        {"Id": "mail", "Email": {"To": ["pki@example.test", "Ops@Example.TEST"]}},
        {"Id": "run", "Command": {"Command": "logger -t certsmith", "TimeoutSeconds": 30}},
    ])
    assert result["FailedEntryCount"] == 0 and result["FailedEntries"] == []
    listed = events.list_targets_by_rule(Rule="fanout")
    assert SECRET not in json.dumps(listed, default=str) and "not-a-real-token" not in json.dumps(listed, default=str)
    found = {t["Id"]: t for t in listed["Targets"]}
    assert found["hook"] == {"Id": "hook", "Webhook": {"Url": "https://hooks.example.test/certs?team=pki",
                                                       "SecretSet": True, "Headers": {"X-Team": "pki"},
                                                       "TimeoutSeconds": 5},
                             "RetryPolicy": {"MaximumRetryAttempts": 4, "MaximumEventAgeInSeconds": 3600}}
    assert found["chat"] == {"Id": "chat", "Slack": {"WebhookUrlSet": True}}
    assert found["mail"] == {"Id": "mail", "Email": {"To": ["pki@example.test", "Ops@example.test"]}}
    assert found["run"] == {"Id": "run", "Command": {"Command": "logger -t certsmith", "TimeoutSeconds": 30}}
    if BACKEND == "sqlite":  # at rest the secrets are sealed: neither is in the database file in clear
        with sqlite3.connect(own_server.data_dir / "certsmith.db") as db:
            stored = db.execute("SELECT kind, config, secret FROM event_targets").fetchall()
        assert all(SECRET not in repr(row) and "not-a-real-token" not in repr(row) for row in stored)
        assert sum(1 for _kind, _config, secret in stored if secret) == 2

    # The same Id replaces its target (a webhook without a secret now); one more fits, a sixth does not.
    events.put_targets(Rule="fanout", Targets=[{"Id": "hook", "Webhook": {"Url": "https://other.example.test/"}},
                                               {"Id": "fifth", "Email": {"To": ["x@example.test"]}}])
    assert targets_of(events, "fanout")["hook"] == {"Id": "hook", "Webhook": {"Url": "https://other.example.test/",
                                                                              "SecretSet": False}}
    code, message = error(events.put_targets, Rule="fanout", Targets=[{"Id": "sixth", "Email": {"To": ["y@example.test"]}}])
    assert code == "LimitExceededException" and "at most 5" in message
    assert error(events.list_targets_by_rule, Rule="fanout", NextToken="garbage")[0] == "InvalidNextTokenException"
    page = events.list_targets_by_rule(Rule="fanout", Limit=2)
    rest = events.list_targets_by_rule(Rule="fanout", NextToken=page["NextToken"])["Targets"]
    assert [t["Id"] for t in page["Targets"] + rest] == sorted(targets_of(events, "fanout"))

    # DeleteRule keeps a rule with targets unless forced; RemoveTargets takes Ids it does not have.
    code, message = error(events.delete_rule, Name="fanout")
    assert code == "ValidationException" and message.startswith("Rule can't be deleted since it has targets.")
    removed = events.remove_targets(Rule="fanout", Ids=["run", "chat", "never-there"])
    assert removed["FailedEntryCount"] == 0
    assert sorted(targets_of(events, "fanout")) == ["fifth", "hook", "mail"]
    events.delete_rule(Name="fanout", Force=True)
    assert error(events.list_targets_by_rule, Rule="fanout")[0] == "ResourceNotFoundException"
    events.put_rule(Name="fanout", EventPattern=QUIET)
    assert targets_of(events, "fanout") == {}  # a new rule of the same name starts without targets
    events.delete_rule(Name="fanout")


def test_target_errors_name_the_field_and_store_nothing(events: Any) -> None:
    events.put_rule(Name="picky", EventPattern=QUIET)
    events.put_targets(Rule="picky", Targets=[{"Id": "keep", "Email": {"To": ["keep@example.test"]}}])
    cases: list[tuple[list[dict[str, Any]], str]] = [
        ([{"Id": "a"}], "Targets[0]: give exactly one of Webhook, Slack, Email, Command (it has none)"),
        ([{"Id": "a", "Webhook": {"Url": "https://a.test/"}, "Slack": {"WebhookUrl": SLACK}}],
         "Targets[0]: give exactly one of Webhook, Slack, Email, Command (it has Webhook and Slack)"),
        ([{"Id": "a", "Email": {"To": ["a@example.test"]}}, {"Id": "b", "Webhook": {"Url": "ftp://b.test/"}}],
         "Targets[1].Webhook.Url: "),
        ([{"Id": "a", "Webhook": {"Url": "https://a.test/", "Secret": "short"}}], "Targets[0].Webhook.Secret: "),
        ([{"Id": "a", "Webhook": {"Url": "https://a.test/", "Secret": "z" * 5000}}], "Targets[0].Webhook.Secret: "),
        ([{"Id": "a", "Webhook": {"Url": "https://a.test/", "Headers": {"Content-Type": "x"}}}],
         "Targets[0].Webhook.Headers: "),
        ([{"Id": "a", "Slack": {"WebhookUrl": "not a url"}}], "Targets[0].Slack.WebhookUrl: "),
        ([{"Id": "a", "Slack": {}}], "Targets[0].Slack.WebhookUrl: "),
        ([{"Id": "a", "Email": {"To": ["not-an-address"]}}], "Targets[0].Email.To: "),
        ([{"Id": "a", "Command": {"Command": "true", "TimeoutSeconds": 0}}], "Targets[0].Command.TimeoutSeconds: "),
        ([{"Id": "a", "Email": {"To": ["a@example.test"]}}, {"Id": "a", "Email": {"To": ["b@example.test"]}}],
         "Targets[1].Id: 'a' is given twice"),
    ]
    for targets, start in cases:
        code, message = error(events.put_targets, Rule="picky", Targets=targets)
        assert code == "ValidationException" and message.startswith(start), (targets, message)
        assert "short" not in message and "zzz" not in message  # a secret is never quoted back
    for targets, where in (([{"Id": "a", "Email": {"To": ["a@example.test"]}, "RetryPolicy": {"MaximumRetryAttempts": 100}}],
                            "targets.1.member.retryPolicy.maximumRetryAttempts"),
                           ([{"Id": "a b", "Email": {"To": ["a@example.test"]}}], "targets.1.member.id"),
                           ([{"Id": str(n), "Email": {"To": ["a@example.test"]}} for n in range(11)], "'targets'")):
        code, message = error(events.put_targets, Rule="picky", Targets=targets)
        assert code == "ValidationException" and where in message, message
    assert list(targets_of(events, "picky")) == ["keep"]  # no failed call stored anything
    code, message = error(events.put_targets, Rule="nowhere", Targets=[{"Id": "a", "Email": {"To": ["a@example.test"]}}])
    assert code == "ResourceNotFoundException" and "Rule nowhere does not exist" in message
    assert error(events.remove_targets, Rule="nowhere", Ids=["a"])[0] == "ResourceNotFoundException"
    events.delete_rule(Name="picky", Force=True)


def test_command_and_email_targets_need_the_server_to_allow_them(server: Server) -> None:
    """The shared server has neither event_commands nor smtp_url."""
    shared = server.client("certsmith")
    shared.put_rule(Name="needs-settings", EventPattern=QUIET)
    try:
        code, message = error(shared.put_targets, Rule="needs-settings",
                              Targets=[{"Id": "1", "Command": {"Command": "true"}}])
        assert code == "ValidationException" and message.startswith("Targets[0].Command: ") and "event_commands" in message
        code, message = error(shared.put_targets, Rule="needs-settings",
                              Targets=[{"Id": "1", "Email": {"To": ["a@example.test"]}}])
        assert code == "ValidationException" and message.startswith("Targets[0].Email: ") and "smtp_url" in message
        assert shared.list_targets_by_rule(Rule="needs-settings")["Targets"] == []
    finally:
        shared.delete_rule(Name="needs-settings", Force=True)


# -- TestEventPattern --------------------------------------------------------------------------------------------------
def test_test_event_pattern(events: Any) -> None:
    def result(pattern: dict[str, Any], event: dict[str, Any] = EVENT) -> bool:
        answer: bool = events.test_event_pattern(EventPattern=json.dumps(pattern), Event=json.dumps(event))["Result"]
        return answer

    assert result({"source": ["aws.acm"], "detail": {"DaysToExpiry": [{"numeric": ["<=", 45]}]}})
    assert not result({"source": ["aws.acm"], "detail": {"DaysToExpiry": [{"numeric": ["<=", 30]}]}})
    assert result({"resources": [{"prefix": "arn:aws:acm:us-east-1:"}]})
    for missing in ("id", "account", "source", "time", "region", "resources", "detail-type"):
        event = {k: v for k, v in EVENT.items() if k != missing}
        code, message = error(events.test_event_pattern, EventPattern=QUIET, Event=json.dumps(event))
        assert code == "ValidationException" and f"the field {missing!r} is missing" in message, message
    code, message = error(events.test_event_pattern, EventPattern=QUIET, Event="{nope")
    assert code == "ValidationException" and message.startswith("Parameter Event is not valid") and "JSON" in message
    code, message = error(events.test_event_pattern, EventPattern=QUIET, Event=json.dumps({**EVENT, "time": "yesterday"}))
    assert code == "ValidationException" and "'time'" in message
    code, message = error(events.test_event_pattern, EventPattern=QUIET, Event=json.dumps({**EVENT, "resources": "x"}))
    assert code == "ValidationException" and "'resources'" in message
    code, message = error(events.test_event_pattern, EventPattern='{"source": [{"prefix": 1}]}', Event=json.dumps(EVENT))
    assert code == "InvalidEventPatternException" and "prefix" in message


# -- delivery through the rules ----------------------------------------------------------------------------------------
class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    received: list[tuple[dict[str, str], bytes]] = []
    handler = type("Receiver", (_Receiver,), {"received": received})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/hook", received
    httpd.shutdown()
    httpd.server_close()



def test_matching_events_reach_the_targets_of_enabled_rules(own_server: Server, events: Any,
                                                            receiver: tuple[str, list[tuple[dict[str, str], bytes]]]) -> None:
    url, received = receiver
    available = {"source": ["aws.acm"], "detail-type": ["ACM Certificate Available"]}
    events.put_rule(Name="available", EventPattern=json.dumps(available))
    events.put_targets(Rule="available", Targets=[{"Id": "hook", "Webhook": {"Url": url, "Secret": SECRET}}])
    events.put_rule(Name="available-off", EventPattern=json.dumps(available), State="DISABLED")
    events.put_targets(Rule="available-off", Targets=[{"Id": "hook", "Webhook": {"Url": url + "/off"}}])
    acm = own_server.client("acm")

    def imported() -> str:
        arn: str = acm.import_certificate(Certificate=(VECTORS / "rsa" / "leaf.pem").read_bytes(),
                                          PrivateKey=(VECTORS / "rsa" / "leaf.key").read_bytes(),
                                          CertificateChain=(VECTORS / "rsa" / "chain.pem").read_bytes())["CertificateArn"]
        return arn

    def entry(arn: str) -> dict[str, Any] | None:
        found = [e for e in events.list_events(Resource=arn)["Events"] if e["Dispatched"]]
        return found[0] if found else None

    first = imported()
    headers, body = until("the webhook gets the event", lambda: received and received[0])
    envelope = json.loads(body)
    assert envelope["detail-type"] == "ACM Certificate Available" and envelope["resources"] == [first]
    assert verify(SECRET, headers["x-certsmith-timestamp"], body, headers["x-certsmith-signature"], now=time.time())
    deliveries = until("the event is dispatched", lambda: entry(first))["Deliveries"]
    assert [(d["Rule"], d["TargetId"]) for d in deliveries] == [("available", "hook")]  # not the disabled rule's

    # A changed pattern is what the next event meets (patterns are compiled once per change of their rule).
    events.put_rule(Name="available", EventPattern=json.dumps({**available, "detail-type": ["Something Else"]}))
    second = imported()
    assert until("the second event is dispatched", lambda: entry(second))["Deliveries"] == []
    assert len(received) == 1
    for name in ("available", "available-off"):
        events.delete_rule(Name=name, Force=True)


# -- the AWS CLI -------------------------------------------------------------------------------------------------------
def test_the_aws_cli_speaks_the_rule_operations(own_server: Server) -> None:
    aws = need_binary("aws")
    env = {**own_server.env(), "AWS_DATA_PATH": str(MODELS_PATH)}

    def run(*args: str) -> Any:
        result = subprocess.run([aws, "certsmith", *args, "--endpoint-url", own_server.endpoint, "--output", "json"],
                                capture_output=True, text=True, env=env, timeout=60)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout) if result.stdout.strip() else None

    assert run("put-rule", "--name", "from-aws-cli", "--event-pattern", QUIET)["RuleArn"].endswith(":rule/from-aws-cli")
    put = run("put-targets", "--rule", "from-aws-cli", "--targets",
              json.dumps([{"Id": "1", "Webhook": {"Url": "https://cli.example.test/", "Secret": SECRET}}]))
    assert put["FailedEntryCount"] == 0
    events = own_server.client("certsmith")
    assert targets_of(events, "from-aws-cli")["1"]["Webhook"] == {"Url": "https://cli.example.test/", "SecretSet": True}
    events.delete_rule(Name="from-aws-cli", Force=True)
