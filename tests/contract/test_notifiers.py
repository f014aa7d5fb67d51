"""Event targets against real receivers on loopback: an HTTP server checking the signature by the documented rule,
a stopped port, a slow receiver, aiosmtpd taking the mail, and real shell commands."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shlex
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from certsmith import __version__
from certsmith.notify import DeliveryFailed, Mailer, Notifiers, SmtpTarget, verify
from certsmith.notify.targets import COMMANDS_OFF, NO_MAILER

from ..conftest import free_port, no_database
from .test_mailer import Collector, Tls, tls  # noqa: F401 - tls is a fixture

pytestmark = no_database

SECRET = "whsec-0123456789abcdef-certsmith"
ARN = "arn:aws:acm:us-east-1:123456789012:certificate/5b1c2d3e-0000-4000-8000-000000000001"
ENVELOPE: dict[str, Any] = {
    "version": "0", "id": "6f1e1c1a-1b2c-4d3e-8f00-0123456789ab", "detail-type": "ACM Certificate Approaching Expiration",
    "source": "aws.acm", "account": "123456789012", "time": "2026-03-01T00:00:00Z", "region": "us-east-1",
    "resources": [ARN],
    "detail": {"DaysToExpiry": 14, "CommonName": "www.example.com", "DomainNames": ["www.example.com", "bücher.example"],
               "CertificateType": "IMPORTED", "CertificateExpirationDate": "2026-03-15T00:00:00Z",
               "Issuer": "Example CA", "InUseBy": ["arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/x"]},
}
COMPACT = json.dumps(ENVELOPE, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    signature_ok: bool | None  # checked by the documented rule; None without a signature header


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 answering each POST with the next planned (status, body, headers)."""

    url: str
    requests: list[Request] = field(default_factory=list)
    plan: list[tuple[int, bytes, dict[str, str]]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def answer(self, *answers: tuple[int, bytes, dict[str, str]]) -> None:
        self.plan[:] = list(answers)
        self.requests.clear()


def _signature_ok(headers: dict[str, str], body: bytes) -> bool | None:
    """The receiver's check, written from the documented rule: HMAC-SHA256 of "<timestamp>.<body>"."""
    header = headers.get("x-certsmith-signature")
    if header is None:
        return None
    expected = "sha256=" + hmac.new(SECRET.encode(), headers["x-certsmith-timestamp"].encode() + b"." + body,
                                    hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header) and abs(time.time() - int(headers["x-certsmith-timestamp"])) < 300


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    state: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            state.requests.append(Request(self.path, headers, body, _signature_ok(headers, body)))
            if self.path.startswith("/slow"):
                state.release.wait(15)
            status, text, extra = state.plan.pop(0) if state.plan else (200, b"ok", {})
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state = Receiver(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    state.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def notifiers() -> Iterator[Notifiers]:
    with Notifiers(None, allow_commands=True, timeout=5.0) as sender:
        yield sender


def _failure(notifiers: Notifiers, kind: str, config: dict[str, Any], secret: str | None = None) -> DeliveryFailed:
    with pytest.raises(DeliveryFailed) as caught:
        notifiers.send(kind, config, secret, ENVELOPE)
    return caught.value


def test_webhook_posts_the_signed_event(receiver: Receiver, notifiers: Notifiers) -> None:
    receiver.answer((204, b"", {}))
    notifiers.send("webhook", {"url": receiver.url + "/hook?team=ops", "headers": {"X-Team": "ops"}}, SECRET, ENVELOPE)
    [got] = receiver.requests
    assert got.path == "/hook?team=ops" and got.body == COMPACT and got.signature_ok is True
    assert got.headers["content-type"] == "application/json" and got.headers["user-agent"] == f"certsmith/{__version__}"
    assert got.headers["x-certsmith-event-id"] == ENVELOPE["id"] and got.headers["x-team"] == "ops"
    assert verify(SECRET, got.headers["x-certsmith-timestamp"], got.body, got.headers["x-certsmith-signature"],
                  now=time.time())
    assert not verify("another-secret-0123456789", got.headers["x-certsmith-timestamp"], got.body,
                      got.headers["x-certsmith-signature"], now=time.time())


def test_webhook_without_a_secret_is_not_signed(receiver: Receiver, notifiers: Notifiers) -> None:
    receiver.answer((200, b"", {}))
    notifiers.send("webhook", {"url": receiver.url + "/plain"}, None, ENVELOPE)
    [got] = receiver.requests
    assert got.signature_ok is None and "x-certsmith-timestamp" not in got.headers
    assert got.headers["x-certsmith-event-id"] == ENVELOPE["id"]


def test_webhook_5xx_is_retried_and_then_delivered(receiver: Receiver, notifiers: Notifiers) -> None:
    receiver.answer((500, b"database is down", {}), (200, b"", {}))
    config = {"url": receiver.url + "/hook?token=query-token-123456", "max_attempts": 5}
    failed = _failure(notifiers, "webhook", config, SECRET)
    assert failed.retryable
    assert failed.message == f"webhook {receiver.url}: answered 500 Internal Server Error: database is down"
    assert "query-token" not in str(failed) and SECRET not in str(failed)
    notifiers.send("webhook", config, SECRET, ENVELOPE)
    assert [r.signature_ok for r in receiver.requests] == [True, True]


def test_webhook_answers_that_are_not_retried(receiver: Receiver, notifiers: Notifiers) -> None:
    receiver.answer((400, b'{"error":"unknown event"}', {}), (302, b"", {"Location": "https://elsewhere.test/"}))
    failed = _failure(notifiers, "webhook", {"url": receiver.url + "/hook"}, SECRET)
    assert not failed.retryable and failed.message.endswith('answered 400 Bad Request: {"error":"unknown event"}')
    failed = _failure(notifiers, "webhook", {"url": receiver.url + "/hook"}, SECRET)
    assert not failed.retryable and "302" in failed.message and "redirects are not followed" in failed.message


def test_webhook_429_carries_retry_after(receiver: Receiver, notifiers: Notifiers) -> None:
    receiver.answer((429, b"slow down", {"Retry-After": "7"}), (408, b"", {}))
    failed = _failure(notifiers, "webhook", {"url": receiver.url + "/hook"}, SECRET)
    assert failed.retryable and failed.retry_after == 7
    assert _failure(notifiers, "webhook", {"url": receiver.url + "/hook"}, SECRET).retryable


def test_webhook_to_a_stopped_port_is_retried(notifiers: Notifiers) -> None:
    failed = _failure(notifiers, "webhook", {"url": f"http://127.0.0.1:{free_port()}/hook"}, SECRET)
    assert failed.retryable and failed.message.startswith("webhook http://127.0.0.1:") and "cannot connect" in failed.message


def test_webhook_slow_receiver_times_out(receiver: Receiver, notifiers: Notifiers) -> None:
    receiver.answer()
    started = time.monotonic()
    failed = _failure(notifiers, "webhook", {"url": receiver.url + "/slow", "timeout_seconds": 1}, SECRET)
    assert failed.retryable and failed.message == f"webhook {receiver.url}: no answer within 1 s"
    assert time.monotonic() - started < 4


def test_slack_message(receiver: Receiver, notifiers: Notifiers) -> None:
    hook = receiver.url + "/services/T0000/B0000/slack-token-abcdef"
    receiver.answer((200, b"ok", {}), (404, b"no_service", {}))
    notifiers.send("slack", {}, hook, ENVELOPE)
    [got] = receiver.requests
    payload = json.loads(got.body)
    assert got.path == "/services/T0000/B0000/slack-token-abcdef" and got.signature_ok is None
    assert payload["text"].startswith("ACM Certificate Approaching Expiration: www.example.com and 1 more (14 days left).")
    header, fields, action, context = payload["blocks"]
    assert header["type"] == "header" and "www.example.com" in header["text"]["text"]
    shown = [f["text"] for f in fields["fields"]]
    assert f"*Certificate*\n{ARN}" in shown and "*Days to expiry*\n14" in shown and "*Issuer*\nExample CA" in shown
    assert "*Expires*\n2026-03-15 00:00 UTC" in shown and "*Names*\nwww.example.com, bücher.example" in shown
    assert any(text.startswith("*In use by*\narn:aws:elasticloadbalancing") for text in shown)
    assert action["text"]["text"].startswith("*What to do:* Re-import a renewed certificate before 2026-03-15")
    assert ENVELOPE["id"] in context["elements"][0]["text"]
    failed = _failure(notifiers, "slack", {}, hook)
    assert not failed.retryable and failed.message == f"Slack webhook at {receiver.url}: answered 404 Not Found: no_service"
    assert "slack-token" not in str(failed)


def test_webhook_over_https_checks_the_certificate(tls: Tls) -> None:  # noqa: F811 - the fixture
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = tls.server.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"https://127.0.0.1:{server.server_address[1]}/hook"
    try:
        with Notifiers(None, tls_context=tls.client) as trusting:
            trusting.send("webhook", {"url": url}, SECRET, ENVELOPE)
        with Notifiers(None) as system_trust:  # the system's CAs do not know this certificate
            with pytest.raises(DeliveryFailed) as caught:
                system_trust.send("webhook", {"url": url}, SECRET, ENVELOPE)
        assert caught.value.retryable and "certificate verify failed" in caught.value.message
    finally:
        server.shutdown()
        server.server_close()


class Later(Collector):
    """Refuses @later.test for now (451) and @refused.test for good (550)."""

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          options: list[str]) -> str:
        if address.endswith("@later.test"):
            return "451 4.3.0 try again later"
        return await super().handle_RCPT(server, session, envelope, address, options)


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[Later, Notifiers]]:
    collector, port = Later(), free_port()
    controller = Controller(collector, hostname="127.0.0.1", port=port)
    controller.start()
    mailer = Mailer(SmtpTarget.parse(f"smtp://127.0.0.1:{port}"), "certsmith@example.test", local_hostname="localhost")
    with Notifiers(mailer) as sender:
        yield collector, sender
    controller.stop()


def test_email_through_the_mailer(smtp: tuple[Later, Notifiers]) -> None:
    collector, sender = smtp
    sender.send("email", {"to": ["ops@example.test", "oncall@example.test"]}, None, ENVELOPE)
    got = collector.received[-1]
    assert got.recipients == ["ops@example.test", "oncall@example.test"]
    message = got.message
    assert message["Subject"] == ("[certsmith] ACM Certificate Approaching Expiration: www.example.com and 1 more "
                                  "(14 days left)")
    body = message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "Certificate:" in text and ARN in text and "Issuer:" in text and "Example CA" in text
    assert "What to do: Re-import a renewed certificate before 2026-03-15 00:00 UTC" in text
    [attached] = list(message.iter_attachments())
    assert attached.get_filename() == f"event-{ENVELOPE['id']}.json" and attached.get_content_type() == "application/json"
    assert json.loads(attached.get_payload(decode=True)) == ENVELOPE


def test_email_refusals_and_a_stopped_server(smtp: tuple[Later, Notifiers]) -> None:
    _, sender = smtp
    failed = _failure(sender, "email", {"to": ["nobody@refused.test"]})
    assert not failed.retryable and "550" in failed.message and "nobody@refused.test" in failed.message
    failed = _failure(sender, "email", {"to": ["ops@later.test"]})
    assert failed.retryable and "451" in failed.message
    down = Mailer(SmtpTarget.parse(f"smtp://127.0.0.1:{free_port()}"), "certsmith@example.test", timeout=5)
    failed = _failure(Notifiers(down), "email", {"to": ["ops@example.test"]})
    assert failed.retryable and "refused" in failed.message
    failed = _failure(Notifiers(None), "email", {"to": ["ops@example.test"]})
    assert not failed.retryable and failed.message == NO_MAILER == "email targets need the server's smtp_url setting"


def test_command_reads_the_event(tmp_path: Path, notifiers: Notifiers, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CERTSMITH_MASTER_KEY", "must-not-reach-commands")
    event, env = tmp_path / "event.json", tmp_path / "env.txt"
    command = f"cat > {shlex.quote(str(event))} && env > {shlex.quote(str(env))}"
    notifiers.send("command", {"command": command}, None, ENVELOPE)
    assert event.read_bytes() == COMPACT
    seen = dict(line.split("=", 1) for line in env.read_text().splitlines() if "=" in line)
    assert seen["CERTSMITH_EVENT_ID"] == ENVELOPE["id"] and seen["CERTSMITH_EVENT_SOURCE"] == "aws.acm"
    assert seen["CERTSMITH_EVENT_TYPE"] == "ACM Certificate Approaching Expiration" and seen["CERTSMITH_RESOURCES"] == ARN
    assert "CERTSMITH_MASTER_KEY" not in seen and "must-not-reach-commands" not in env.read_text()


def test_command_failure_shows_the_end_of_stderr(notifiers: Notifiers) -> None:
    command = "printf 'x%.0s' $(seq 1 400) >&2; echo ' the last words' >&2; exit 3"
    failed = _failure(notifiers, "command", {"command": command})
    assert failed.retryable and failed.message.startswith("command: exited with 3: …x")
    assert failed.message.endswith("xxx the last words") and len(failed.message) == len("command: exited with 3: ") + 300


def test_command_past_its_timeout_is_stopped_with_its_children(tmp_path: Path, notifiers: Notifiers) -> None:
    pid_file = tmp_path / "pid"
    command = f"sleep 30 & echo $! > {shlex.quote(str(pid_file))}; echo waiting >&2; wait"
    started = time.monotonic()
    failed = _failure(notifiers, "command", {"command": command, "timeout_seconds": 1})
    assert failed.retryable and failed.message == "command: did not finish within 1 s and was stopped: waiting"
    assert time.monotonic() - started < 5
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split(")")[-1].split()[0] == "Z")


def test_commands_off_by_default(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    sender = Notifiers(None)
    assert not sender.commands_allowed and not sender.mail_configured
    with pytest.raises(DeliveryFailed) as caught:
        sender.send("command", {"command": f"touch {shlex.quote(str(marker))}"}, None, ENVELOPE)
    assert not caught.value.retryable and caught.value.message == COMMANDS_OFF and not marker.exists()
    with pytest.raises(ValueError, match=r"turned off on this server.*CERTSMITH_EVENT_COMMANDS=true"):
        sender.check("command", {"command": "true"}, None)
    with pytest.raises(ValueError, match="smtp_url"):
        sender.check("email", {"to": ["ops@example.test"]}, None)
    assert sender.check("webhook", {"url": "https://example.test/hook"}, None) == ({"url": "https://example.test/hook"}, None)


def test_a_stored_config_that_no_longer_checks_is_not_retried(notifiers: Notifiers) -> None:
    failed = _failure(notifiers, "webhook", {"url": "ftp://example.test/"}, None)
    assert not failed.retryable and failed.message == ("the target's settings are not valid: "
                                                       "Webhook.Url: must be an http or https URL")
