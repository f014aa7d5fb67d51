"""The Mailer against a real SMTP server (aiosmtpd, in process, on 127.0.0.1): plain, STARTTLS, implicit TLS,
AUTH LOGIN and PLAIN, and failures that say which server and what it answered, never the password."""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from certsmith.notify.smtp import Mailer, MailError, SmtpTarget

from ..conftest import free_port

PASSWORD = "S3cret-Pa55word"
SENDER = "certsmith@example.test"


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage


class Collector:
    """An aiosmtpd handler that keeps what it receives and refuses recipients at refused.test."""

    def __init__(self) -> None:
        self.received: list[Received] = []

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          options: list[str]) -> str:
        if address.endswith("@refused.test"):
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), message))
        return "250 Message accepted"


def authenticator(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
    good = isinstance(data, LoginPassword) and data.login == b"alice" and data.password == PASSWORD.encode()
    return AuthResult(success=good, handled=False)


@dataclass
class Tls:
    server: ssl.SSLContext
    client: ssl.SSLContext


@pytest.fixture(scope="module")
def tls() -> Tls:
    """A self-signed certificate for 127.0.0.1; the client context trusts it alone."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mail test")])
    now = datetime.now(UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
                   .not_valid_after(now + timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]), False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
                   .sign(key, hashes.SHA256()))
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "cert.pem").write_bytes(cert_pem)
        (Path(folder) / "key.pem").write_bytes(key_pem)
        server.load_cert_chain(Path(folder) / "cert.pem", Path(folder) / "key.pem")
    client = ssl.create_default_context(cadata=cert_pem.decode())
    return Tls(server, client)


@pytest.fixture()
def smtp_server() -> Iterator[Any]:
    """Start an aiosmtpd Controller with the given options; returns (collector, port)."""
    started: list[Controller] = []

    def start(**options: Any) -> tuple[Collector, int]:
        collector, port = Collector(), free_port()
        controller = Controller(collector, hostname="127.0.0.1", port=port, **options)
        controller.start()
        started.append(controller)
        return collector, port

    yield start
    for controller in started:
        controller.stop()


def test_plain_smtp_delivers_text_and_html(smtp_server: Any) -> None:
    collector, port = smtp_server()
    mailer = Mailer(SmtpTarget.parse(f"smtp://127.0.0.1:{port}"), f"Certsmith <{SENDER}>", local_hostname="localhost")
    mailer.send(["admin@example.test"], "Certificate approval for example.test", "Approve here: ü\n",
                "<p>Approve <b>here</b></p>")
    [got] = collector.received
    assert got.sender == SENDER and got.recipients == ["admin@example.test"]
    message = got.message
    assert message["Subject"] == "Certificate approval for example.test"
    assert message["From"] == f"Certsmith <{SENDER}>" and message["To"] == "admin@example.test"
    assert message["Auto-Submitted"] == "auto-generated" and message["Message-ID"].endswith("@example.test>")
    assert message["Date"]
    text, markup = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and markup is not None
    assert text.get_content().rstrip() == "Approve here: ü"
    assert "<b>here</b>" in markup.get_content()


def test_starttls_with_a_trusted_certificate(smtp_server: Any, tls: Tls) -> None:
    collector, port = smtp_server(tls_context=tls.server, require_starttls=True)
    target = SmtpTarget.parse(f"smtp://127.0.0.1:{port}?starttls=true")
    Mailer(target, SENDER, tls_context=tls.client, local_hostname="localhost").send(["a@example.test"], "s", "t")
    assert len(collector.received) == 1
    with pytest.raises(MailError) as caught:  # without STARTTLS the server refuses to take the mail
        Mailer(SmtpTarget.parse(f"smtp://127.0.0.1:{port}"), SENDER, local_hostname="localhost").send(
            ["a@example.test"], "s", "t")
    assert f"127.0.0.1:{port}" in caught.value.message and "530" in caught.value.message
    with pytest.raises(MailError) as caught:  # the system's CAs do not know this certificate
        Mailer(target, SENDER, local_hostname="localhost").send(["a@example.test"], "s", "t")
    assert "not trusted" in caught.value.message
    assert len(collector.received) == 1


def test_starttls_asked_of_a_server_without_it(smtp_server: Any) -> None:
    _, port = smtp_server()
    with pytest.raises(MailError) as caught:
        Mailer(SmtpTarget.parse(f"smtp://127.0.0.1:{port}?starttls=true"), SENDER, local_hostname="localhost").send(
            ["a@example.test"], "s", "t")
    assert caught.value.message == (f"SMTP server 127.0.0.1:{port}: STARTTLS was asked for (starttls=true) but the "
                                    "server does not offer it")


def test_implicit_tls_smtps(smtp_server: Any, tls: Tls) -> None:
    collector, port = smtp_server(ssl_context=tls.server)
    Mailer(SmtpTarget.parse(f"smtps://127.0.0.1:{port}"), SENDER, tls_context=tls.client,
           local_hostname="localhost").send(["a@example.test", "b@example.test"], "s", "t")
    assert collector.received[0].recipients == ["a@example.test", "b@example.test"]


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # loopback only
@pytest.mark.parametrize("mechanism", ["LOGIN", "PLAIN"])
def test_auth_login_and_plain(smtp_server: Any, mechanism: str) -> None:
    other = {"LOGIN": "PLAIN", "PLAIN": "LOGIN"}[mechanism]
    collector, port = smtp_server(authenticator=authenticator, auth_require_tls=False, auth_required=True,
                                  auth_exclude_mechanism=[other])
    good = SmtpTarget.parse(f"smtp://alice:{PASSWORD}@127.0.0.1:{port}")
    Mailer(good, SENDER, local_hostname="localhost").send(["a@example.test"], "s", "t")
    assert len(collector.received) == 1
    with pytest.raises(MailError) as caught:
        Mailer(SmtpTarget.parse(f"smtp://alice:wrong-{PASSWORD}@127.0.0.1:{port}"), SENDER,
               local_hostname="localhost").send(["a@example.test"], "s", "t")
    message = caught.value.message
    assert message.startswith(f"SMTP server 127.0.0.1:{port}: the login of user 'alice' was refused: 535")
    assert PASSWORD not in message and PASSWORD not in str(caught.value) and caught.value.__cause__ is None
    with pytest.raises(MailError) as caught:  # no login at all: the server wants one
        Mailer(SmtpTarget.parse(f"smtp://127.0.0.1:{port}"), SENDER, local_hostname="localhost").send(
            ["a@example.test"], "s", "t")
    assert "530" in caught.value.message and len(collector.received) == 1


def test_auth_offered_only_after_tls_says_so(smtp_server: Any) -> None:
    _, port = smtp_server(authenticator=authenticator)  # auth_require_tls by default: no AUTH on a plain line
    with pytest.raises(MailError) as caught:
        Mailer(SmtpTarget.parse(f"smtp://alice:{PASSWORD}@127.0.0.1:{port}"), SENDER,
               local_hostname="localhost").send(["a@example.test"], "s", "t")
    assert "does not offer login" in caught.value.message and "starttls=true" in caught.value.message
    assert PASSWORD not in caught.value.message


def test_a_refused_recipient_is_named(smtp_server: Any) -> None:
    collector, port = smtp_server()
    mailer = Mailer(SmtpTarget.parse(f"smtp://127.0.0.1:{port}"), SENDER, local_hostname="localhost")
    with pytest.raises(MailError) as caught:
        mailer.send(["nobody@refused.test"], "s", "t")
    assert "nobody@refused.test" in caught.value.message and "550 5.1.1 no such mailbox here" in caught.value.message
    with pytest.raises(MailError) as caught:  # one of two refused: the mail went to the other, and that is said
        mailer.send(["ok@example.test", "nobody@refused.test"], "s", "t")
    assert "nobody@refused.test (550" in caught.value.message
    assert [r.recipients for r in collector.received] == [["ok@example.test"]]


def test_a_server_that_is_down_or_silent(smtp_server: Any) -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(MailError) as caught:
        Mailer(SmtpTarget.parse(f"smtp://alice:{PASSWORD}@127.0.0.1:{port}"), SENDER,
               local_hostname="localhost").send(["a@example.test"], "s", "t")
    assert caught.value.message.startswith(f"SMTP server 127.0.0.1:{port}: the connection was refused")
    assert PASSWORD not in caught.value.message
    with socket.socket() as silent:  # accepts connections (backlog) but never greets
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        started = time.monotonic()
        with pytest.raises(MailError) as caught:
            Mailer(SmtpTarget.parse(f"smtp://127.0.0.1:{silent.getsockname()[1]}"), SENDER, timeout=0.5,
                   local_hostname="localhost").send(["a@example.test"], "s", "t")
        assert "no answer within 0.5 s" in caught.value.message
        assert time.monotonic() - started < 5


def test_send_needs_a_list_of_recipients() -> None:
    mailer = Mailer(SmtpTarget.parse("smtp://127.0.0.1:1"), SENDER)
    for to in ([], "a@example.test"):
        with pytest.raises(ValueError, match="non-empty list"):
            mailer.send(to, "s", "t")
