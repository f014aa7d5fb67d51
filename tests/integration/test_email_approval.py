"""Email validation through the services on an injected clock, with a real SMTP server (aiosmtpd on 127.0.0.1):
the mails and their links, one-time approval, expiry after 72 hours, resends and their rate limit, SMTP failures."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from certsmith.domain.clock import FixedClock
from certsmith.domain.errors import InvalidDomainValidationOptionsError, InvalidStateError, ResourceNotFoundError
from certsmith.notify.smtp import MailError
from certsmith.services.acm.certificates import RequestedCertificate
from certsmith.services.context import Caller
from certsmith.services.public.email_validation import EmailValidation
from certsmith.services.public.issuers import IssuerSpec
from certsmith.services.wiring import Container, build
from certsmith.settings import Settings
from certsmith.store.tables import CertificateRow

from ..conftest import backend_url, free_port
from .ca_world import START, drain, make_root

LINK = re.compile(r"(https?://\S+/approve/([A-Za-z0-9_.-]+))")
MAILBOXES = ("admin", "administrator", "hostmaster", "postmaster", "webmaster")


class Inbox:
    """Every message the SMTP server took, as (recipients, message)."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), message))
        return "250 OK"

    def take(self) -> list[tuple[str, str, str]]:
        """(recipient, subject, token) of the messages so far, which are then forgotten."""
        found = []
        for recipients, message in self.messages:
            body = message.get_body(("plain",))
            assert body is not None
            match = LINK.search(body.get_content())
            assert match is not None, body.get_content()
            found += [(recipient, str(message["Subject"]), match.group(2)) for recipient in recipients]
        self.messages.clear()
        return found


@dataclass
class World:
    container: Container
    caller: Caller
    clock: FixedClock
    inbox: Inbox
    controller: Controller

    def request(self, *names: str) -> str:
        return self.container.public_requests.request(self.caller, RequestedCertificate(
            names[0], list(names[1:]), None, "EC_prime256v1", None, {}, [{"Key": "certsmith:issuer", "Value": "corp"}],
            validation_method="EMAIL"))

    def row(self, arn: str) -> CertificateRow:
        with self.container.database.read() as session:
            row = session.get(CertificateRow, arn.rsplit("/", 1)[1])
            assert row is not None
            return row

    def status(self, arn: str) -> str:
        return self.row(arn).status


@pytest.fixture()
def world(tmp_path: Path) -> Iterator[World]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    clock = FixedClock(START)
    container = build(Settings(data_dir=tmp_path / "data", database_url=backend_url(), public_url="https://cs.test:8443",
                               smtp_url=f"smtp://127.0.0.1:{port}", mail_from="certsmith@example.test"), clock)
    key_id = (tmp_path / "data" / "credentials").read_text().split("aws_access_key_id = ")[1].split("\n")[0]
    account = container.accounts.credential(key_id)
    assert account is not None
    caller = Caller(account.account_id, "us-east-1", account.principal)
    container.issuers.create(caller, IssuerSpec("corp", authority_arn=make_root(container, caller, years=5)))
    world = World(container, caller, clock, inbox, controller)
    yield world
    world.controller.stop()
    container.writes.close()
    container.database.dispose()


def test_mails_links_and_one_time_approval_of_every_name(world: World) -> None:
    service = world.container.email_validation
    arn = world.request("example.test", "www.example.test")
    drain(world.container)
    mails = world.inbox.take()
    # Both names validate at example.test (www. is dropped): five mails each, each name with its own link.
    assert sorted(m[0] for m in mails) == sorted(f"{box}@example.test" for box in MAILBOXES for _ in range(2))
    assert {m[1] for m in mails} == {"Certificate approval for example.test", "Certificate approval for www.example.test"}
    tokens = {subject.rsplit(" ", 1)[1]: token for _, subject, token in mails}
    assert len(set(tokens.values())) == 2
    row = world.row(arn)
    assert row.status == "PENDING_VALIDATION"
    for entry in row.validations or []:
        assert [link["SentTo"] for link in entry["Links"]] == [[f"{box}@example.test" for box in MAILBOXES]]
        assert all(token not in str(entry) for token in tokens.values())  # the tokens are not kept

    view = service.page(tokens["www.example.test"])
    assert view.state == "pending" and view.domain_name == "www.example.test" and view.certificate_arn == arn
    assert view.account_id == world.caller.account_id and view.names == ("example.test", "www.example.test")
    assert view.expires_at == world.clock.now() + timedelta(hours=72)
    assert service.page(tokens["www.example.test"]).state == "pending"  # looking twice changes nothing

    approved = service.approve(tokens["www.example.test"])
    assert approved.state == "approved" and approved.waiting_for == ("example.test",)
    assert world.status(arn) == "PENDING_VALIDATION"
    again = service.approve(tokens["www.example.test"])
    assert again.state == "refused" and again.reason == "used"
    drain(world.container)
    assert world.status(arn) == "PENDING_VALIDATION" and world.inbox.take() == []

    assert service.approve(tokens["example.test"]).waiting_for == ()
    drain(world.container)
    assert world.status(arn) == "ISSUED"
    assert [v["ValidationStatus"] for v in world.row(arn).validations or []] == ["SUCCESS", "SUCCESS"]
    for token in tokens.values():
        refused = service.page(token)
        assert refused.state == "refused" and refused.reason == "used" and "already approved" in refused.message


def test_altered_and_expired_links_change_nothing(world: World) -> None:
    service = world.container.email_validation
    arn = world.request("late.example.test")
    drain(world.container)
    [(_, _, token), *_] = world.inbox.take()
    body, signature = token.split(".")
    for bad, reason in ((f"{body[:-2]}xy.{signature}", "altered"), (token[:20], "malformed"),
                        (token + "x", "malformed")):
        assert service.approve(bad).reason == reason
    world.clock.advance(timedelta(hours=72))
    for view in (service.page(token), service.approve(token)):
        assert view.state == "refused" and view.reason == "expired"
    assert world.status(arn) == "PENDING_VALIDATION"
    with pytest.raises(InvalidStateError, match="more than 72 hours ago"):
        service.resend(world.caller, arn, "late.example.test", "example.test")
    drain(world.container)  # the request's validation job times it out
    assert world.status(arn) == "VALIDATION_TIMED_OUT"
    with pytest.raises(InvalidStateError, match="VALIDATION_TIMED_OUT"):
        service.resend(world.caller, arn, "late.example.test", "example.test")


def test_resend_new_addresses_rate_limit_and_refusals(world: World) -> None:
    service = world.container.email_validation
    arn = world.request("a.b.example.test")
    drain(world.container)
    [(_, _, first), *_] = world.inbox.take()

    for domain, validation_domain, field in (("other.example.test", "example.test", "Domain"),
                                             ("a.b.example.test", "other.test", "ValidationDomain"),
                                             ("a.b.example.test", "xample.test", "ValidationDomain"),
                                             ("a.b.example.test", "", "ValidationDomain")):
        with pytest.raises(InvalidDomainValidationOptionsError) as caught:
            service.resend(world.caller, arn, domain, validation_domain)
        assert caught.value.field == field and field in caught.value.message

    service.resend(world.caller, arn, "A.B.example.test.", "b.example.test")
    with pytest.raises(InvalidStateError, match="one resend per name per minute") as caught:
        service.resend(world.caller, arn, "a.b.example.test", "b.example.test")
    assert "00:01:00 UTC" in caught.value.message  # START is midnight: the next resend from a minute later
    drain(world.container)
    resent = world.inbox.take()
    assert sorted(m[0] for m in resent) == sorted(f"{box}@b.example.test" for box in MAILBOXES)
    [entry] = world.row(arn).validations or []
    assert entry["ValidationDomain"] == "b.example.test"
    assert entry["ValidationEmails"] == [f"{box}@b.example.test" for box in MAILBOXES]

    world.clock.advance(timedelta(seconds=61))
    service.resend(world.caller, arn, "a.b.example.test", "b.example.test")
    drain(world.container)
    assert len(world.inbox.take()) == 5
    assert service.approve(first).state == "approved"  # the first mail's link still works
    with pytest.raises(InvalidStateError, match="already approved"):
        service.resend(world.caller, arn, "a.b.example.test", "b.example.test")
    drain(world.container)
    with pytest.raises(InvalidStateError, match=r"is ISSUED; .* only while it is PENDING_VALIDATION"):
        service.resend(world.caller, arn, "a.b.example.test", "b.example.test")


def test_resend_of_a_certificate_not_validated_by_email(world: World) -> None:
    container, caller = world.container, world.caller
    ca = container.issuers.by_name(caller.account_id, caller.region, "corp")
    assert ca is not None and ca.authority_arn is not None
    private = container.certificates.request(caller, RequestedCertificate("private.example.test", [], ca.authority_arn,
                                                                          "EC_prime256v1", None, {}, []))
    with pytest.raises(InvalidStateError, match="not validated by email"):
        container.email_validation.resend(caller, private, "private.example.test", "example.test")
    missing = private.rsplit("/", 1)[0] + "/00000000-0000-4000-8000-000000000000"
    with pytest.raises(ResourceNotFoundError):
        container.email_validation.resend(caller, missing, "private.example.test", "example.test")


def test_an_smtp_failure_is_recorded_and_retried(world: World) -> None:
    arn = world.request("retry.example.test")
    world.controller.stop()  # the SMTP server is down when the mails should go out
    drain(world.container)
    row = world.row(arn)
    message = str((row.acme or {}).get("message"))
    assert message.startswith("could not send the approval mail: SMTP server 127.0.0.1:")
    assert "connection was refused" in message
    [entry] = row.validations or []
    assert entry["MailDue"] is True and entry.get("Links", []) == []
    world.controller = Controller(world.inbox, hostname="127.0.0.1", port=world.controller.port)
    world.controller.start()
    world.clock.advance(timedelta(minutes=1))  # past the job's backoff
    drain(world.container)
    assert len(world.inbox.take()) == 5
    assert "waiting for an approval" in str((world.row(arn).acme or {}).get("message"))


def test_without_a_mailer_the_job_fails_and_says_why(world: World) -> None:
    arn = world.request("nomail.example.test")
    container = world.container
    unmailed = EmailValidation(container.database, container.jobs, container.clock, container.signal,
                               lambda: b"k" * 32, None, "http://127.0.0.1:1")
    payload: dict[str, Any] = {"certificate_id": arn.rsplit("/", 1)[1]}
    with pytest.raises(MailError, match="no SMTP server"):
        unmailed.run(payload)
    assert "--smtp-url" in str((world.row(arn).acme or {}).get("message"))
