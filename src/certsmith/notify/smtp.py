"""Mail out through an SMTP server named by a URL: ``smtp[s]://[USER:PASSWORD@]HOST[:PORT][?starttls=true]``."""

from __future__ import annotations

import smtplib
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from urllib.parse import parse_qsl, unquote, urlsplit

from ..domain.errors import ValidationError

__all__ = ["MailError", "Mailer", "SmtpTarget"]

DEFAULT_PORTS = {"smtp": 25, "smtps": 465}
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


class MailError(Exception):
    """A mail could not be handed to the SMTP server; the message names the server and its reply.

    ``permanent`` is true when the server refused with a 5xx reply (sending the same mail again fails again).
    """

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.message, self.permanent = message, permanent


def _problem(text: str) -> ValidationError:
    return ValidationError(f"smtp_url {text}", field="smtp_url")


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    """Where and how to connect; the password never shows in ``repr`` or in messages."""

    scheme: str
    host: str
    port: int
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = False

    @classmethod
    def parse(cls, url: str) -> SmtpTarget:
        """The target of an ``smtp://`` or ``smtps://`` URL; ``ValidationError`` (field smtp_url) if it is not one."""
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError:
            raise _problem("is not a URL with a valid port: use smtp[s]://[USER:PASSWORD@]HOST[:PORT]"
                           "[?starttls=true]") from None
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            raise _problem(f"must start with smtp:// or smtps://, not {scheme + '://' if scheme else 'no scheme'}")
        if not parts.hostname:
            raise _problem("names no host: use smtp[s]://[USER:PASSWORD@]HOST[:PORT]")
        if port == 0:
            raise _problem("port 0 is not a port: use 1 to 65535")
        if parts.path not in ("", "/") or parts.fragment:
            raise _problem("has a path or fragment; only smtp[s]://[USER:PASSWORD@]HOST[:PORT][?starttls=true] is read")
        user = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password is not None else None
        if password is not None and not user:
            raise _problem("has a password but no user name")
        if user and not password:
            raise _problem(f"has the user {user!r} but no password: use USER:PASSWORD@HOST")
        starttls = False
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key != "starttls":
                raise _problem(f"has the unknown option {key!r}; the one option is starttls=true")
            if value.lower() not in _TRUE + _FALSE:
                raise _problem(f"option starttls must be true or false, not {value!r}")
            starttls = value.lower() in _TRUE
        if starttls and scheme == "smtps":
            raise _problem("asks for STARTTLS on smtps://, which is TLS from the start: use one or the other")
        return cls(scheme, parts.hostname, port or DEFAULT_PORTS[scheme], user, password, starttls)

    @property
    def address(self) -> str:
        """host:port, with brackets around an IPv6 address."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def display(self) -> str:
        """The URL without the password."""
        login = f"{self.user}@" if self.user else ""
        return f"{self.scheme}://{login}{self.address}{'?starttls=true' if self.starttls else ''}"

    def __repr__(self) -> str:
        return f"SmtpTarget({self.display()!r})"


class Mailer:
    """Sends plain-text (optionally HTML too) mails through one SMTP server, one connection per mail."""

    def __init__(self, target: SmtpTarget, sender: str, *, timeout: float = 20.0,
                 tls_context: ssl.SSLContext | None = None, local_hostname: str | None = None) -> None:
        _, address = parseaddr(sender)
        if "@" not in address or any(c in sender for c in "\r\n"):
            raise ValidationError(f"mail_from {sender!r} is not a mail address", field="mail_from")
        self.target, self.sender, self.timeout = target, sender, timeout
        self._sender_address = address
        self._context = tls_context or ssl.create_default_context()
        self._local_hostname = local_hostname

    def __repr__(self) -> str:
        return f"Mailer({self.target!r}, sender={self.sender!r})"

    def send(self, to: Sequence[str], subject: str, text: str, html: str | None = None, *,
             attachments: Sequence[tuple[str, str, bytes]] = ()) -> None:
        """Hand one mail to the server for ``to``; ``MailError`` if it is not accepted for every recipient.

        ``attachments`` are (file name, MIME type, content) tuples.
        """
        if isinstance(to, str) or not to:
            raise ValueError("to must be a non-empty list of addresses")
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = ", ".join(to)
        message["Subject"] = subject
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = make_msgid(domain=self._sender_address.rsplit("@", 1)[1] or "localhost")
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(text)
        if html is not None:
            message.add_alternative(html, subtype="html")
        for filename, mime_type, content in attachments:
            maintype, _, subtype = mime_type.partition("/")
            message.add_attachment(content, maintype=maintype, subtype=subtype or "octet-stream", filename=filename)
        try:
            refused = self._deliver(message, list(to))
        except MailError:
            raise
        except (smtplib.SMTPException, OSError) as error:
            raise MailError(f"SMTP server {self.target.address}: {self._describe(error)}",
                            permanent=_permanent(error)) from None
        if refused:
            raise MailError(f"SMTP server {self.target.address}: refused " + self._refusals(refused),
                            permanent=all(code >= 500 for code, _ in refused.values()))

    def _deliver(self, message: EmailMessage, to: list[str]) -> dict[str, tuple[int, bytes]]:
        target = self.target
        client: smtplib.SMTP
        if target.scheme == "smtps":
            client = smtplib.SMTP_SSL(target.host, target.port, local_hostname=self._local_hostname,
                                      timeout=self.timeout, context=self._context)
        else:
            client = smtplib.SMTP(target.host, target.port, local_hostname=self._local_hostname, timeout=self.timeout)
        with client:
            client.ehlo()
            if target.starttls:
                if not client.has_extn("starttls"):
                    raise MailError(f"SMTP server {target.address}: STARTTLS was asked for (starttls=true) but the "
                                    "server does not offer it")
                client.starttls(context=self._context)
                client.ehlo()
            if target.user and target.password is not None:
                client.login(target.user, target.password)
            return client.send_message(message, from_addr=self._sender_address, to_addrs=to)

    def _reply(self, code: int, text: bytes | str) -> str:
        said = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
        said = " ".join(said.split())
        if self.target.password:
            said = said.replace(self.target.password, "***")
        return f"{code} {said}".strip()

    def _refusals(self, refused: dict[str, tuple[int, bytes]]) -> str:
        return "; ".join(f"recipient {address} ({self._reply(*reply)})" for address, reply in refused.items())

    def _describe(self, error: BaseException) -> str:
        """What went wrong, in words, with the server's reply; never the password."""
        if isinstance(error, smtplib.SMTPAuthenticationError):
            return f"the login of user {self.target.user!r} was refused: {self._reply(error.smtp_code, error.smtp_error)}"
        if isinstance(error, smtplib.SMTPSenderRefused):
            return f"the sender {self._sender_address} was refused: {self._reply(error.smtp_code, error.smtp_error)}"
        if isinstance(error, smtplib.SMTPRecipientsRefused):
            return "refused " + self._refusals(error.recipients)
        if isinstance(error, smtplib.SMTPConnectError):
            return f"the connection was refused: {self._reply(error.smtp_code, error.smtp_error)}"
        if isinstance(error, smtplib.SMTPResponseException):
            return f"the server answered {self._reply(error.smtp_code, error.smtp_error)}"
        if isinstance(error, smtplib.SMTPNotSupportedError) and self.target.user:
            return f"the server does not offer login (AUTH) on this connection ({error}); add ?starttls=true or use smtps://"
        if isinstance(error, smtplib.SMTPServerDisconnected) and isinstance(error.__context__, TimeoutError):
            return f"no answer within {self.timeout:g} s"
        if isinstance(error, smtplib.SMTPServerDisconnected):
            return f"the server closed the connection ({error or 'no reason given'})"
        if isinstance(error, smtplib.SMTPException):
            return str(error)
        if isinstance(error, ssl.SSLCertVerificationError):
            return f"its TLS certificate is not trusted ({error.verify_message})"
        if isinstance(error, ssl.SSLError):
            return f"TLS failed ({error.reason or error})"
        if isinstance(error, TimeoutError):
            return f"no answer within {self.timeout:g} s"
        if isinstance(error, ConnectionRefusedError):
            return "the connection was refused (is the SMTP server running and listening there?)"
        if isinstance(error, socket.gaierror):
            return f"the host name cannot be resolved ({error.strerror})"
        if isinstance(error, OSError):
            return error.strerror or str(error) or type(error).__name__
        return type(error).__name__


def _permanent(error: BaseException) -> bool:
    """Whether the server refused for good (a 5xx reply) rather than for now."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return bool(error.recipients) and all(code >= 500 for code, _ in error.recipients.values())
    return isinstance(error, smtplib.SMTPResponseException) and error.smtp_code >= 500
