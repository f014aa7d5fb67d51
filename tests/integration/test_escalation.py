"""The escalation shipped in contrib/events (operations at 30 days left, management at 14, an emergency at 7),
applied as a user would, over the last weeks of a certificate whose renewal keeps failing: exactly one event at
each threshold, each to its own targets, received by real receivers on loopback (HTTP, SMTP, a command)."""

from __future__ import annotations

import email
import email.policy
import json
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from certsmith.api.aws.certsmith_rules import put_rule, put_targets
from certsmith.domain.authority import AuthorityStatus
from certsmith.domain.clock import FixedClock
from certsmith.domain.events import APPROACHING
from certsmith.notify import verify
from certsmith.services.context import Caller
from certsmith.services.wiring import Container, build
from certsmith.settings import Settings

from ..conftest import backend_url, free_port
from .ca_world import START, drain, make_root
from .renewal_world import DAY, certificate, events, request_private, run_until

ESCALATION = Path(__file__).parents[2] / "contrib" / "events" / "escalation.json"


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
    container.event_dispatcher.sweep()
    container.event_delivery.sweep()


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
    assert len(slack) == 1 and "escalated.example.test" in slack[0]["text"] and "7" in slack[0]["text"]
    assert [rcpts for rcpts, _ in inbox.messages] == [["it-management@example.com"]]
    subject = str(inbox.messages[0][1]["Subject"])
    assert "Approaching Expiration" in subject and "escalated.example.test" in subject and "14" in subject
    paged = [json.loads(line) for line in pager_log.read_text().splitlines() if line.strip()]
    assert [(e["resources"], e["detail"]["DaysToExpiry"]) for e in paged] == [([arn], 7)]
