"""Sending notices out of certsmith: approval mails over SMTP."""

from .smtp import Mailer, MailError, SmtpTarget

__all__ = ["MailError", "Mailer", "SmtpTarget"]
