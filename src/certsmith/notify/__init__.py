"""Sending notices out of certsmith: approval mails over SMTP; events to webhooks, Slack, email and commands."""

from .messages import Message, describe
from .smtp import Mailer, MailError, SmtpTarget
from .targets import TARGET_KINDS, DeliveryFailed, Notifiers, check_target
from .webhook import sign, verify

__all__ = ["TARGET_KINDS", "DeliveryFailed", "MailError", "Mailer", "Message", "Notifiers", "SmtpTarget", "check_target",
           "describe", "sign", "verify"]
