"""Email validation: approval mails to a name's administrators, and the one-time links that approve it.

Each name's entry in ``CertificateRow.validations`` keeps, besides ACM's members, the link ids still
open (``Links``: id, expiry, recipients; never a token), whether mails are due (``MailDue``) and the
time of the last resend (``ResentAt``). Mails go out in the EMAIL_JOB, also for ResendValidationEmail,
so a slow or failing SMTP server never holds an API call and a failure is retried by the worker. The
request's validation job times it out after 72 hours.
"""

from __future__ import annotations

import html
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ...domain.acm import CertificateStatus
from ...domain.approval import APPROVAL_LIFETIME, ApprovalClaims, ApprovalRefused, read_approval, sign_approval
from ...domain.arns import CertificateArn
from ...domain.clock import Clock
from ...domain.errors import InvalidDomainValidationOptionsError, InvalidStateError, ResourceNotFoundError
from ...domain.public_names import approval_addresses
from ...notify.smtp import Mailer, MailError
from ...store.database import Database
from ...store.jobs import JobQueue
from ...store.tables import CertificateRow
from ..context import Caller
from ..ports import WorkSignal
from .requests import EMAIL_JOB, check_validation_domain
from .validation import ORDER_JOB

__all__ = ["RESEND_INTERVAL", "ApprovalView", "EmailValidation", "approval_mail"]

RESEND_INTERVAL = timedelta(seconds=60)
PENDING = "PENDING_VALIDATION"
log = logging.getLogger("certsmith.email_validation")


def _is_email(row: CertificateRow) -> bool:
    return bool(row.validations) and all(v.get("ValidationMethod") == "EMAIL" for v in row.validations or [])


def _mail_due(entry: dict[str, Any]) -> bool:
    return entry["ValidationStatus"] == PENDING and bool(entry.get("MailDue", "Links" not in entry))


@dataclass(frozen=True, slots=True)
class ApprovalView:
    """What an approval link shows: ``state`` is pending (GET), approved (POST) or refused (with ``reason``)."""

    state: str
    message: str
    reason: str | None = None  # refused: malformed, altered, expired, used, closed
    certificate_arn: str | None = None
    account_id: str | None = None
    domain_name: str | None = None
    validation_domain: str | None = None
    names: tuple[str, ...] = ()
    expires_at: datetime | None = None
    waiting_for: tuple[str, ...] = ()  # approved: the names still waiting for their own approval


def _refused(reason: str, message: str) -> ApprovalView:
    return ApprovalView("refused", message, reason)


@dataclass(frozen=True, slots=True)
class _Mailing:
    certificate_id: str
    arn: str
    account_id: str
    domain_name: str
    validation_domain: str
    names: tuple[str, ...]
    emails: tuple[str, ...]
    link_id: str
    token: str
    expires_at: datetime


class EmailValidation:
    def __init__(self, database: Database, jobs: JobQueue, clock: Clock, signal: WorkSignal, secret: Callable[[], bytes],
                 mailer: Mailer | None, public_url: str) -> None:
        self._db, self._jobs, self._clock, self._signal = database, jobs, clock, signal
        self._secret, self._mailer, self._public_url = secret, mailer, public_url.rstrip("/")

    # -- the job ----------------------------------------------------------------------------------------------------
    def run(self, payload: dict[str, Any]) -> None:
        """EMAIL_JOB: mail every name whose mails are due (a new link per name; all its addresses get it)."""
        certificate_id = str(payload["certificate_id"])
        if self._mailer is None:
            self._note(certificate_id, "could not send the approval mail: this server has no SMTP server configured "
                                       "(start it with --smtp-url, setting smtp_url)")
            raise MailError("no SMTP server is configured (smtp_url)")
        while (mailing := self._claim(certificate_id)) is not None:
            self._send(mailing)

    def _claim(self, certificate_id: str) -> _Mailing | None:
        """Open a new link for the next name whose mails are due (committed before any mail leaves)."""
        secret = self._secret()  # before the transaction: the first call writes the secret in one of its own
        now = self._clock.now()
        with self._db.transaction() as session:
            row = session.get(CertificateRow, certificate_id, with_for_update=True)
            if row is None or row.status != CertificateStatus.PENDING_VALIDATION or not _is_email(row):
                return None
            deadline = row.created_at + APPROVAL_LIFETIME
            if now >= deadline:
                return None
            validations = [dict(v) for v in row.validations or []]
            entry = next((v for v in validations if _mail_due(v)), None)
            if entry is None:
                return None
            link_id, expires = secrets.token_urlsafe(16), min(now + APPROVAL_LIFETIME, deadline)
            emails = tuple(entry.get("ValidationEmails") or approval_addresses(entry["ValidationDomain"]))
            open_links = [link for link in entry.get("Links", []) if datetime.fromisoformat(link["ExpiresAt"]) > now]
            entry["Links"] = [*open_links, {"Id": link_id, "ExpiresAt": expires.isoformat(), "SentTo": list(emails)}]
            entry["MailDue"] = False
            row.validations = validations
            claims = ApprovalClaims(row.id, entry["DomainName"], entry["ValidationDomain"], link_id, expires)
            token = sign_approval(secret, claims)
            return _Mailing(row.id, row.arn, row.account_id, entry["DomainName"], entry["ValidationDomain"],
                            tuple(row.names), emails, link_id, token, expires)

    def _send(self, mailing: _Mailing) -> None:
        assert self._mailer is not None
        subject, text, body = approval_mail(mailing, f"{self._public_url}/approve/{mailing.token}")
        sent: list[str] = []
        for address in mailing.emails:
            try:
                self._mailer.send([address], subject, text, body)
            except MailError as error:
                self._unsent(mailing, sent, f"could not send the approval mail: {error.message}")
                raise
            sent.append(address)
        self._note(mailing.certificate_id, f"approval mails for {mailing.domain_name} sent to {', '.join(sent)}; "
                                           "waiting for an approval")
        log.info("certificate %s: approval mails for %s sent (link %s)", mailing.certificate_id, mailing.domain_name,
                 mailing.link_id)

    def _unsent(self, mailing: _Mailing, sent: list[str], message: str) -> None:
        """After a failed send: the mails are due again; the link stays open only for those who got it."""
        with self._db.transaction() as session:
            row = session.get(CertificateRow, mailing.certificate_id, with_for_update=True)
            if row is None:
                return
            validations = [dict(v) for v in row.validations or []]
            for entry in validations:
                if entry["DomainName"] == mailing.domain_name and entry["ValidationStatus"] == PENDING:
                    links = [dict(link) for link in entry.get("Links", [])]
                    for link in links:
                        if link["Id"] == mailing.link_id:
                            link["SentTo"] = list(sent)
                    entry["Links"] = [link for link in links if link["SentTo"]]
                    entry["MailDue"] = True
            row.validations = validations
            row.acme = {**(row.acme or {}), "message": message, "checked_at": self._clock.now().isoformat()}

    def _note(self, certificate_id: str, message: str) -> None:
        with self._db.transaction() as session:
            row = session.get(CertificateRow, certificate_id, with_for_update=True)
            if row is not None and row.status == CertificateStatus.PENDING_VALIDATION:
                row.acme = {**(row.acme or {}), "message": message, "checked_at": self._clock.now().isoformat()}

    # -- ResendValidationEmail --------------------------------------------------------------------------------------
    def resend(self, caller: Caller, arn: str, domain: str, validation_domain: str) -> None:
        """Mail one name's administrators again (sent by EMAIL_JOB); at most once a minute per name."""
        parsed = CertificateArn.parse(arn)
        caller.check_owns(parsed.region, parsed.account, arn, "CertificateArn", "certificate")
        name = domain.strip().lower().removesuffix(".")
        chosen = validation_domain.strip().lower().removesuffix(".")
        now = self._clock.now()
        with self._db.transaction() as session:
            row = session.get(CertificateRow, parsed.certificate_id, with_for_update=True)
            if row is None or row.arn != arn:
                raise ResourceNotFoundError(f"certificate {arn} was not found", arn=arn)
            if not _is_email(row):
                raise InvalidStateError(f"certificate {arn} is not validated by email (ValidationMethod EMAIL); there "
                                        "is no validation mail to send", field="CertificateArn", arn=arn)
            if row.status != CertificateStatus.PENDING_VALIDATION:
                raise InvalidStateError(f"certificate {arn} is {row.status}; validation mails are sent only while it is "
                                        "PENDING_VALIDATION", field="CertificateArn", arn=arn)
            if now >= row.created_at + APPROVAL_LIFETIME:
                raise InvalidStateError(f"certificate {arn} was requested at {row.created_at:%Y-%m-%d %H:%M} UTC, more "
                                        "than 72 hours ago; it can no longer be validated: request a new certificate",
                                        field="CertificateArn", arn=arn)
            validations = [dict(v) for v in row.validations or []]
            entry = next((v for v in validations if v["DomainName"] == name), None)
            if entry is None:
                raise InvalidDomainValidationOptionsError(
                    f"Domain {domain!r} is not one of the certificate's names ({', '.join(row.names)})", field="Domain")
            check_validation_domain(name, chosen, "ValidationDomain")
            if entry["ValidationStatus"] != PENDING:
                state = "approved" if entry["ValidationStatus"] == "SUCCESS" else entry["ValidationStatus"]
                raise InvalidStateError(f"{name} is already {state}; there is nothing left to approve", field="Domain")
            if entry.get("ResentAt"):
                again = datetime.fromisoformat(entry["ResentAt"]) + RESEND_INTERVAL
                if now < again:
                    raise InvalidStateError(
                        f"validation mails for {name} were resent less than a minute ago; send again from "
                        f"{again:%H:%M:%S} UTC (one resend per name per minute)", field="Domain")
            entry.update(ValidationDomain=chosen, ValidationEmails=approval_addresses(chosen), MailDue=True,
                         ResentAt=now.isoformat())
            row.validations = validations
            row.acme = {**(row.acme or {}), "message": f"resending the approval mails for {name}",
                        "checked_at": now.isoformat()}
            self._jobs.enqueue(session, EMAIL_JOB, {"certificate_id": row.id}, now, max_attempts=8)
        self._signal.notify()

    # -- the links --------------------------------------------------------------------------------------------------
    def page(self, token: str) -> ApprovalView:
        """What the link would approve, or why it approves nothing. Changes nothing (scanners open links)."""
        now = self._clock.now()
        try:
            claims = read_approval(self._secret(), token, now)
        except ApprovalRefused as refused:
            return _refused(refused.reason, refused.message)
        with self._db.read() as session:
            row = session.get(CertificateRow, claims.certificate_id)
            refusal = self._refusal(row, claims, now)
            if refusal is not None:
                return refusal
            assert row is not None
            return ApprovalView("pending", f"approve {claims.domain_name} for certificate {row.arn}",
                                certificate_arn=row.arn, account_id=row.account_id, domain_name=claims.domain_name,
                                validation_domain=claims.validation_domain, names=tuple(row.names),
                                expires_at=claims.expires_at)

    def approve(self, token: str) -> ApprovalView:
        """Approve the link's name (once); when every name is approved, the certificate is ordered."""
        now = self._clock.now()
        try:
            claims = read_approval(self._secret(), token, now)
        except ApprovalRefused as refused:
            return _refused(refused.reason, refused.message)
        with self._db.transaction() as session:
            row = session.get(CertificateRow, claims.certificate_id, with_for_update=True)
            refusal = self._refusal(row, claims, now)
            if refusal is not None:
                return refusal
            assert row is not None
            validations = [dict(v) for v in row.validations or []]
            for entry in validations:
                if entry["DomainName"] == claims.domain_name:
                    entry["ValidationStatus"], entry["MailDue"] = "SUCCESS", False
                    entry.pop("Links", None)  # the name is approved: its other links are spent too
            row.validations = validations
            waiting = tuple(v["DomainName"] for v in validations if v["ValidationStatus"] != "SUCCESS")
            if waiting:
                message = f"{claims.domain_name} approved; waiting for the approval of {', '.join(waiting)}"
            else:
                message = "every name approved; ordering the certificate"
                row.validated_at = now
                self._jobs.enqueue(session, ORDER_JOB, {"certificate_id": row.id}, now, max_attempts=20)
            row.acme = {**(row.acme or {}), "message": message, "checked_at": now.isoformat()}
            view = ApprovalView("approved", message, certificate_arn=row.arn, account_id=row.account_id,
                                domain_name=claims.domain_name, validation_domain=claims.validation_domain,
                                names=tuple(row.names), expires_at=claims.expires_at, waiting_for=waiting)
        log.info("certificate %s: %s approved through link %s", claims.certificate_id, claims.domain_name,
                 claims.link_id)
        if not waiting:
            self._signal.notify()
        return view

    @staticmethod
    def _refusal(row: CertificateRow | None, claims: ApprovalClaims, now: datetime) -> ApprovalView | None:
        """Why a well-signed link approves nothing now, or None."""
        if row is None or not _is_email(row):
            return _refused("closed", "the certificate request this link approves no longer exists")
        entry = next((v for v in row.validations or [] if v["DomainName"] == claims.domain_name), None)
        if entry is None:
            return _refused("closed", "the certificate request this link approves no longer exists")
        if entry["ValidationStatus"] == "SUCCESS":
            return _refused("used", f"{claims.domain_name} is already approved; this link has nothing left to do")
        if row.status != CertificateStatus.PENDING_VALIDATION:
            return _refused("closed", f"the certificate request is {row.status} and can no longer be approved")
        if now >= row.created_at + APPROVAL_LIFETIME:
            return _refused("expired", "the certificate request is more than 72 hours old and can no longer be "
                                       "approved; request a new certificate")
        link = next((link for link in entry.get("Links", []) if link["Id"] == claims.link_id), None)
        if link is None:
            return _refused("used", "this approval link was already used or is no longer valid; ask for a new "
                                    "validation mail (ResendValidationEmail)")
        if now >= datetime.fromisoformat(link["ExpiresAt"]):
            return _refused("expired", "this approval link has expired; ask for a new validation mail "
                                       "(ResendValidationEmail)")
        return None


def approval_mail(mailing: _Mailing, url: str) -> tuple[str, str, str]:
    """(subject, text, HTML) of one name's approval mail."""
    until = f"{mailing.expires_at:%Y-%m-%d %H:%M} UTC"
    subject = f"Certificate approval for {mailing.domain_name}"
    facts = [("Domain", mailing.domain_name), ("Validation domain", mailing.validation_domain),
             ("Account", mailing.account_id), ("Certificate", mailing.arn), ("Names", ", ".join(mailing.names)),
             ("Link valid until", until)]
    text = "\n".join([
        f"certsmith was asked for a certificate that includes {mailing.domain_name}. As an administrator of",
        f"{mailing.validation_domain}, you are asked to approve it.", "",
        *(f"{label + ':':<19}{value}" for label, value in facts), "",
        "To approve, open this link and press \"Approve\" (it works once):", url, "",
        "If you did not expect this request, ignore this mail: nothing is issued without an approval.", ""])
    rows = "".join(f"<tr><th align=\"left\">{html.escape(label)}</th><td>{html.escape(value)}</td></tr>"
                   for label, value in facts)
    body = (f"<p>certsmith was asked for a certificate that includes <b>{html.escape(mailing.domain_name)}</b>. As an "
            f"administrator of {html.escape(mailing.validation_domain)}, you are asked to approve it.</p>"
            f"<table>{rows}</table><p>To approve, open this link and press &quot;Approve&quot; (it works once):<br>"
            f"<a href=\"{html.escape(url)}\">{html.escape(url)}</a></p>"
            "<p>If you did not expect this request, ignore this mail: nothing is issued without an approval.</p>")
    return subject, text, body
