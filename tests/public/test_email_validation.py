"""Email validation end to end: boto3 against `certsmith serve` with a private-CA issuer, approval mails caught by
a real SMTP server (aiosmtpd on 127.0.0.1), and the approval pages over HTTP (GET shows, only POST approves)."""

from __future__ import annotations

import email
import email.policy
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import botocore.exceptions
import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from certsmith.api.approval_pages import render
from certsmith.services.public.email_validation import ApprovalView
from certsmith.testing.bind import free_dns_port
from certsmith.testing.pki import activate_root, create_ca

from ..conftest import Server, backend_url, free_port, start_server
from .conftest import wait_status

LINK = re.compile(r"(https?://\S+/approve/([A-Za-z0-9_.-]+))")
MAILBOXES = ("admin", "administrator", "hostmaster", "postmaster", "webmaster")
ISSUER = [{"Key": "certsmith:issuer", "Value": "corp"}]


@dataclass
class Mail:
    sender: str
    recipient: str
    message: EmailMessage

    @property
    def link(self) -> str:
        body = self.message.get_body(("plain",))
        assert body is not None
        found = LINK.search(body.get_content())
        assert found is not None
        return found.group(1)


class Inbox:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._mails: list[Mail] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self._mails += [Mail(str(envelope.mail_from), to, message) for to in envelope.rcpt_tos]
        return "250 OK"

    def wait(self, count: int, seconds: float = 30) -> list[Mail]:
        """The first ``count`` mails (then forgotten), once they are in; fails if more than ``count`` arrive."""
        deadline = time.monotonic() + seconds
        while True:
            with self._lock:
                if len(self._mails) >= count or time.monotonic() > deadline:
                    taken, self._mails = self._mails, []
                    break
            time.sleep(0.05)
        assert len(taken) == count, [m.recipient for m in taken]
        return taken

    def count(self) -> int:
        with self._lock:
            return len(self._mails)


@dataclass
class MailWorld:
    server: Server
    inbox: Inbox

    @property
    def acm(self) -> Any:
        return self.server.client("acm")

    def request(self, name: str) -> str:
        return str(self.acm.request_certificate(DomainName=name, ValidationMethod="EMAIL", KeyAlgorithm="EC_prime256v1",
                                                Tags=ISSUER)["CertificateArn"])


@pytest.fixture(scope="module")
def mail_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailWorld]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    folder: Path = tmp_path_factory.mktemp("email")
    dns_port = free_dns_port()  # a validation zone too, for a DNS-validated certificate; it resolves with itself
    server = start_server(folder, backend_url(), [
        "--smtp-url", f"smtp://127.0.0.1:{controller.port}", "--mail-from", "certsmith@example.test",
        "--validation-zone", "acme.test", "--dns-listen", f"127.0.0.1:{dns_port}", "--resolvers", f"127.0.0.1:{dns_port}"])
    try:
        pca = server.client("acm-pca")
        ca = create_ca(pca, "ROOT", "Email Test Root")
        activate_root(pca, ca)
        server.client("certsmith").create_issuer(Name="corp", CertificateAuthorityArn=ca)
        yield MailWorld(server, inbox)
        assert server.errors() == [], "\n".join(server.errors())
    finally:
        server.stop()
        controller.stop()


def _code(caught: pytest.ExceptionInfo[botocore.exceptions.ClientError]) -> str:
    return str(caught.value.response["Error"]["Code"])


def test_approval_by_mail_issues_the_certificate(mail_world: MailWorld) -> None:
    acm = mail_world.acm
    arn = mail_world.request("mail.example.test")
    mails = mail_world.inbox.wait(5)
    assert sorted(m.recipient for m in mails) == sorted(f"{box}@mail.example.test" for box in MAILBOXES)
    assert {m.sender for m in mails} == {"certsmith@example.test"}
    assert {str(m.message["Subject"]) for m in mails} == {"Certificate approval for mail.example.test"}
    body = mails[0].message.get_body(("plain",))
    assert body is not None and arn in body.get_content() and "ignore this mail" in body.get_content()
    link = mails[0].link
    assert link.startswith(mail_world.server.endpoint + "/approve/") and {m.link for m in mails} == {link}

    [option] = acm.describe_certificate(CertificateArn=arn)["Certificate"]["DomainValidationOptions"]
    assert option["ValidationMethod"] == "EMAIL" and option["ValidationStatus"] == "PENDING_VALIDATION"
    assert option["ValidationDomain"] == "mail.example.test"
    assert option["ValidationEmails"] == [f"{box}@mail.example.test" for box in MAILBOXES]

    with httpx.Client(timeout=10) as http:
        for method in ("GET", "HEAD", "GET"):  # what a link scanner does approves nothing
            page = http.request(method, link)
            assert page.status_code == 200
            assert page.headers["cache-control"] == "no-store" and "noindex" in page.headers["x-robots-tag"]
            assert page.headers["content-security-policy"].startswith("default-src 'none'")
            assert page.headers["referrer-policy"] == "no-referrer" and "set-cookie" not in page.headers
        page = http.get(link)
        assert '<form method="post"><button type="submit">Approve</button></form>' in page.text
        assert "mail.example.test" in page.text and arn in page.text and "<script" not in page.text
        assert acm.describe_certificate(CertificateArn=arn)["Certificate"]["Status"] == "PENDING_VALIDATION"

        approved = http.post(link)
        assert approved.status_code == 200 and "Approved" in approved.text
        assert approved.headers["cache-control"] == "no-store"
        detail = wait_status(acm, arn, seconds=60)
        assert detail["Status"] == "ISSUED"
        assert detail["DomainValidationOptions"][0]["ValidationStatus"] == "SUCCESS"
        assert "Links" not in str(detail)  # certsmith's own bookkeeping stays inside
        assert acm.get_certificate(CertificateArn=arn)["Certificate"].startswith("-----BEGIN CERTIFICATE-----")

        for method in ("POST", "GET"):  # the same link again
            again = http.request(method, link)
            assert again.status_code == 410 and "already approved" in again.text
        token = link.rsplit("/", 1)[1]
        body_part, signature = token.split(".")
        altered = http.post(link.rsplit("/", 1)[0] + f"/{body_part[:-3]}AAA.{signature}")
        assert altered.status_code == 400 and "changed after it was sent" in altered.text
        assert http.get(link[:-10]).status_code == 400  # a link cut short
    assert mail_world.inbox.count() == 0


def test_resend_sends_five_more_mails_once_a_minute(mail_world: MailWorld) -> None:
    acm = mail_world.acm
    arn = mail_world.request("resend.example.test")
    [first, *_] = mail_world.inbox.wait(5)
    acm.resend_validation_email(CertificateArn=arn, Domain="resend.example.test", ValidationDomain="example.test")
    resent = mail_world.inbox.wait(5)
    assert sorted(m.recipient for m in resent) == sorted(f"{box}@example.test" for box in MAILBOXES)
    assert resent[0].link != first.link
    [option] = acm.describe_certificate(CertificateArn=arn)["Certificate"]["DomainValidationOptions"]
    assert option["ValidationDomain"] == "example.test"
    assert option["ValidationEmails"] == [f"{box}@example.test" for box in MAILBOXES]
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        acm.resend_validation_email(CertificateArn=arn, Domain="resend.example.test", ValidationDomain="example.test")
    assert _code(caught) == "InvalidStateException" and "one resend per name per minute" in str(caught.value)
    for domain, validation_domain in (("other.example.test", "example.test"), ("resend.example.test", "other.test")):
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            acm.resend_validation_email(CertificateArn=arn, Domain=domain, ValidationDomain=validation_domain)
        assert _code(caught) == "InvalidDomainValidationOptionsException"
    assert mail_world.inbox.count() == 0  # refusals send nothing
    acm.delete_certificate(CertificateArn=arn)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        acm.resend_validation_email(CertificateArn=arn, Domain="resend.example.test", ValidationDomain="example.test")
    assert _code(caught) == "ResourceNotFoundException"
    with httpx.Client(timeout=10) as http:
        assert http.post(first.link).status_code == 410  # the certificate is gone


def test_resend_of_a_dns_validated_certificate_is_refused(mail_world: MailWorld) -> None:
    acm = mail_world.acm
    arn = acm.request_certificate(DomainName="dns.example.test", Tags=ISSUER)["CertificateArn"]
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        acm.resend_validation_email(CertificateArn=arn, Domain="dns.example.test", ValidationDomain="example.test")
    assert _code(caught) == "InvalidStateException" and "not validated by email" in str(caught.value)
    acm.delete_certificate(CertificateArn=arn)


def test_pages_escape_everything() -> None:
    evil = "<script>alert(1)</script>"
    for view in (ApprovalView("pending", evil, None, evil, evil, evil, evil, (evil,), datetime(2030, 1, 1, tzinfo=UTC)),
                 ApprovalView("approved", evil, None, evil, evil, evil, evil, (evil,), None, (evil,)),
                 ApprovalView("refused", evil, evil)):
        page = render(view)
        text = bytes(page.body).decode()
        assert "<script>" not in text and "&lt;script&gt;" in text
    assert render(ApprovalView("refused", "x", "expired")).status_code == 410
    assert render(ApprovalView("refused", "x", "altered")).status_code == 400
