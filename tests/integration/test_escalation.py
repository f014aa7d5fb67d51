"""The escalation shipped in contrib/events (operations at 30 days left, management at 14, an emergency at 7),
applied as a user would, over the last weeks of a certificate whose renewal keeps failing: exactly one event at
each threshold, each to its own targets, received by real receivers on loopback (HTTP, SMTP, a command). A healthy
short-lived certificate (7 days left from the day it is issued) pages nobody; escalation.sh creates every rule a
server allows and says which it could not."""

from __future__ import annotations

import email
import email.policy
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import select

from certsmith.api.aws.certsmith_rules import put_rule, put_targets
from certsmith.domain.authority import AuthorityStatus
from certsmith.domain.clock import FixedClock
from certsmith.domain.events import APPROACHING
from certsmith.notify import verify
from certsmith.services.context import Caller
from certsmith.services.wiring import Container, build
from certsmith.settings import Settings
from certsmith.store.event_tables import EventDeliveryRow, EventTargetRow

from ..conftest import Server, backend_url, free_port, need_binary, start_server
from .ca_world import START, drain, make_root
from .renewal_world import DAY, certificate, events, imported_bundle, request_private, run_until, versions

ESCALATION = Path(__file__).parents[2] / "contrib" / "events" / "escalation.json"
ESCALATION_SH = ESCALATION.with_suffix(".sh")
EIGHT_DAYS = [{"Key": "certsmith:validity", "Value": "8d"}]


class Receiver(ThreadingHTTPServer):
    """Takes POSTs on loopback: (path, headers, body) of each."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                server.received.append((self.path, dict(self.headers.items()), body))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        server = self
        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), message))
        return "250 OK"


@pytest.fixture()
def escalation(tmp_path: Path) -> Iterator[tuple[Container, Caller, FixedClock, Receiver, Inbox, Path]]:
    receiver, inbox = Receiver(), Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    clock = FixedClock(START)
    container = build(Settings(data_dir=tmp_path / "data", database_url=backend_url(), event_commands=True,
                               smtp_url=f"smtp://127.0.0.1:{smtp.port}", mail_from="certsmith@example.test"), clock)
    key_id = (tmp_path / "data" / "credentials").read_text().split("aws_access_key_id = ")[1].split("\n")[0]
    account = container.accounts.credential(key_id)
    assert account is not None
    try:
        yield container, Caller(account.account_id, "us-east-1", account.principal), clock, receiver, inbox, tmp_path
    finally:
        container.event_delivery.close()
        container.writes.close()
        container.database.dispose()
        smtp.stop()
        receiver.shutdown()
        receiver.server_close()


def _apply(container: Container, caller: Caller, receiver: Receiver, pager_log: Path) -> dict[str, Any]:
    """The shipped example through certsmith's PutRule and PutTargets, its addresses pointed at the receivers."""
    example = json.loads(ESCALATION.read_text())
    for rule in example["Rules"]:
        put_rule(container, caller, {"Name": rule["Name"], "Description": rule["Description"],
                                     "EventPattern": json.dumps(rule["EventPattern"])})
        for target in rule["Targets"]:
            if "Webhook" in target:
                target["Webhook"]["Url"] = f"{receiver.url}/operations"
            if "Slack" in target:
                target["Slack"]["WebhookUrl"] = f"{receiver.url}/slack"
            if "Command" in target:
                target["Command"]["Command"] = f"cat >> {pager_log} && echo >> {pager_log}"
        answer = put_targets(container, caller, {"Rule": rule["Name"], "Targets": rule["Targets"]})
        assert answer["FailedEntryCount"] == 0, answer
    return example


def _deliver(container: Container) -> None:
    """Dispatch and send what is due now, and wait until it is sent: the dispatcher also starts a delivery thread
    of its own, which must be done before the clock moves on (else a send it holds sees the event a day older)."""
    container.event_dispatcher.sweep()
    deadline = time.monotonic() + 15
    while True:
        container.event_delivery.sweep()
        now = container.clock.now()
        with container.database.read() as session:
            due = session.scalar(select(EventDeliveryRow.id).where(
                EventDeliveryRow.state == "PENDING", EventDeliveryRow.next_attempt_at <= now).limit(1))
            leased = session.scalar(select(EventTargetRow.id).where(EventTargetRow.lease_owner.is_not(None)).limit(1))
        if due is None and leased is None:
            return
        assert time.monotonic() < deadline, "deliveries due now were not sent"
        time.sleep(0.01)


def test_a_failing_renewal_escalates_at_30_14_and_7_days_to_the_right_targets(escalation: Any) -> None:
    container, caller, clock, receiver, inbox, tmp = escalation
    pager_log = tmp / "pager.log"
    example = _apply(container, caller, receiver, pager_log)
    secret = example["Rules"][0]["Targets"][0]["Webhook"]["Secret"]
    ca = make_root(container, caller, years=3)
    arn = request_private(container, caller, ca, "escalated.example.test")
    drain(container)
    row = certificate(container, arn)
    assert row.not_after is not None and row.next_renewal_at is not None
    worker = container.worker()
    run_until(container, clock, worker, row.next_renewal_at - DAY)
    container.authorities.update(caller, ca, AuthorityStatus.DISABLED, None)  # every renewal from now on fails
    run_until(container, clock, worker, row.not_after - 50 * DAY)
    _deliver(container)
    assert receiver.received == [] and inbox.messages == []
    while clock.now() < row.not_after - DAY:  # a day at a time, delivering as a worker does
        run_until(container, clock, worker, min(clock.now() + DAY, row.not_after - DAY))
        _deliver(container)
    assert certificate(container, arn).serial == row.serial, "the renewal was meant to keep failing"
    countdown = [e.detail["DaysToExpiry"] for e in events(container, APPROACHING, arn)]
    assert 30 in countdown and 14 in countdown and 7 in countdown and countdown == sorted(countdown, reverse=True)
    assert {e.detail["ManagedRenewal"] for e in events(container, APPROACHING, arn)} == {"NEEDS_ACTION"}

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (len(receiver.received) >= 2 and inbox.messages and pager_log.exists()):
        time.sleep(0.05)
    by_path: dict[str, list[dict[str, Any]]] = {}
    for path, headers, body in receiver.received:
        by_path.setdefault(path, []).append(json.loads(body))
        if path == "/operations":
            assert verify(secret, headers["X-Certsmith-Timestamp"], body, headers["X-Certsmith-Signature"], now=time.time())
    operations, slack = by_path.pop("/operations"), by_path.pop("/slack")
    assert by_path == {}
    assert [(e["detail-type"], e["resources"], e["detail"]["DaysToExpiry"]) for e in operations] == [(APPROACHING, [arn], 30)]
    assert operations[0]["detail"]["ManagedRenewal"] == "NEEDS_ACTION"
    assert len(slack) == 1 and "escalated.example.test" in slack[0]["text"] and "7" in slack[0]["text"]
    assert [rcpts for rcpts, _ in inbox.messages] == [["it-management@example.com"]]
    subject = str(inbox.messages[0][1]["Subject"])
    assert "Approaching Expiration" in subject and "escalated.example.test" in subject and "14" in subject
    paged = [json.loads(line) for line in pager_log.read_text().splitlines() if line.strip()]
    assert [(e["resources"], e["detail"]["DaysToExpiry"]) for e in paged] == [([arn], 7)]


def _deliveries(container: Container) -> list[str]:
    with container.database.read() as session:
        return list(session.scalars(select(EventDeliveryRow.state)))


def test_a_healthy_short_lived_certificate_pages_nobody(escalation: Any) -> None:
    """Valid 8 days, its Approaching Expiration events say 7 days from the day it is issued, every time it is renewed:
    they match none of the escalation's rules. An imported certificate beside it, which certsmith does not renew,
    does reach the 7-day emergency, so the receivers were listening."""
    container, caller, clock, receiver, inbox, tmp = escalation
    pager_log = tmp / "pager.log"
    _apply(container, caller, receiver, pager_log)
    ca = make_root(container, caller, years=3)
    arn = request_private(container, caller, ca, "short.escalated.example.test", tags=EIGHT_DAYS)
    drain(container)
    first = certificate(container, arn)
    assert first.not_after is not None and first.not_before is not None
    assert first.not_after - first.not_before <= 8 * DAY + timedelta(hours=2)
    clock.advance(timedelta(minutes=1))  # the notice sweep runs a little after the issue: 7 whole days are left
    now = clock.now()
    imported = container.imports.import_certificate(
        caller, imported_bundle("imported.escalated.example.test", now - DAY, now + 7 * DAY + timedelta(hours=12)),
        None, None)
    worker = container.worker()
    end = first.not_after + 9 * DAY  # the first certificate's life, then at least one renewed certificate's
    while clock.now() < end:  # a day at a time, delivering as a worker does
        run_until(container, clock, worker, min(clock.now() + DAY, end))
        _deliver(container)

    assert len(versions(container, arn)) >= 3, "the certificate was meant to be renewed, twice"
    told = events(container, APPROACHING, arn)
    assert told[0].detail["DaysToExpiry"] == 7 and told[0].detail["ValidityInDays"] == 8  # as the user saw it
    sevens = [e for e in told if e.detail["DaysToExpiry"] == 7]
    assert len(sevens) >= 2, [e.detail["DaysToExpiry"] for e in told]  # at issuance, and again after each renewal
    assert {e.detail["ManagedRenewal"] for e in told} <= {"ON_TRACK", "IN_PROGRESS"}
    assert all(e.detail["RecommendedAction"].startswith("No action needed") for e in told)

    # Only the imported certificate escalated: at 7 days, to the incident channel and the pager; nothing else.
    assert [e.detail["ManagedRenewal"] for e in events(container, APPROACHING, imported)][:1] == ["NOT_RENEWED"]
    by_path: dict[str, list[dict[str, Any]]] = {}
    for path, _, body in receiver.received:
        by_path.setdefault(path, []).append(json.loads(body))
    assert list(by_path) == ["/slack"] and len(by_path["/slack"]) == 1
    assert "imported.escalated.example.test" in by_path["/slack"][0]["text"]
    paged = [json.loads(line) for line in pager_log.read_text().splitlines() if line.strip()]
    assert [(e["resources"], e["detail"]["DaysToExpiry"], e["detail"]["ManagedRenewal"]) for e in paged] == [
        ([imported], 7, "NOT_RENEWED")]
    assert inbox.messages == []
    assert sorted(_deliveries(container)) == ["DELIVERED", "DELIVERED"]  # nothing pending or dead for the healthy one


@pytest.fixture(scope="module")
def bare_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server without smtp_url and without event_commands, as many are."""
    server = start_server(tmp_path_factory.mktemp("escalation-sh"), backend_url())
    yield server
    server.stop()
    assert "Traceback" not in server.log_path.read_text()


def test_escalation_sh_creates_every_rule_the_server_allows(bare_server: Server) -> None:
    shell = shutil.which("dash") or "/bin/sh"  # POSIX sh: dash where it exists
    env = bare_server.env() | {"CERTSMITH": need_binary("certsmith"), "OPS_WEBHOOK_SECRET": "a-long-random-ops-secret",
                               "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T000/B000/XXXX"}
    result = subprocess.run([shell, str(ESCALATION_SH)], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert "created: 30 days, operations webhook" in result.stdout
    assert "created: 7 days, incident channel on Slack" in result.stdout
    summary = result.stderr.split("Not created:\n")[1].splitlines()
    assert len(summary) == 2, result.stderr
    assert "14 days, management email" in summary[0] and "smtp_url" in summary[0]
    assert "7 days, pager command" in summary[1] and "event_commands" in summary[1]

    rules = {r["Name"]: r for r in bare_server.client("certsmith").list_rules()["Rules"]}
    assert sorted(rules) == ["escalation-emergency-7d", "escalation-operations-30d"]
    shipped = {r["Name"]: r["EventPattern"] for r in json.loads(ESCALATION.read_text())["Rules"]}
    for name, rule in rules.items():  # the script and the JSON apply the same patterns
        assert json.loads(rule["EventPattern"]) == shipped[name]
    targets = bare_server.client("certsmith").list_targets_by_rule(Rule="escalation-emergency-7d")["Targets"]
    assert [t["Id"] for t in targets] == ["incident-channel"]
