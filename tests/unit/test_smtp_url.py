"""smtp_url: what parses, what is refused (naming the field), and that the password never shows."""

from __future__ import annotations

import pytest

from certsmith.domain.errors import ValidationError
from certsmith.notify.smtp import Mailer, SmtpTarget


@pytest.mark.parametrize(("url", "expected"), [
    ("smtp://127.0.0.1:8025", SmtpTarget("smtp", "127.0.0.1", 8025)),
    ("smtp://mail.example.test", SmtpTarget("smtp", "mail.example.test", 25)),
    ("smtps://mail.example.test", SmtpTarget("smtps", "mail.example.test", 465)),
    ("SMTPS://Mail.Example.Test:2465/", SmtpTarget("smtps", "mail.example.test", 2465)),
    ("smtp://user:pass@host:587?starttls=true", SmtpTarget("smtp", "host", 587, "user", "pass", True)),
    ("smtp://u%40corp:p%3Aw%2Fd@host?starttls=1", SmtpTarget("smtp", "host", 25, "u@corp", "p:w/d", True)),
    ("smtp://host?starttls=false", SmtpTarget("smtp", "host", 25)),
    ("smtp://[::1]:2525", SmtpTarget("smtp", "::1", 2525)),
])
def test_good_urls_parse(url: str, expected: SmtpTarget) -> None:
    assert SmtpTarget.parse(url) == expected


@pytest.mark.parametrize(("url", "named"), [
    ("http://host", "smtp:// or smtps://"),
    ("host:25", "smtp:// or smtps://"),
    ("", "no scheme"),
    ("smtp://", "no host"),
    ("smtp://host:99999", "valid port"),
    ("smtp://host:port", "valid port"),
    ("smtp://host:0", "port 0"),
    ("smtp://host/path", "path"),
    ("smtp://host#frag", "fragment"),
    ("smtp://:secret@host", "no user"),
    ("smtp://user@host", "no password"),
    ("smtp://host?tls=yes", "unknown option 'tls'"),
    ("smtp://host?starttls=maybe", "true or false"),
    ("smtps://host?starttls=true", "STARTTLS"),
])
def test_bad_urls_are_refused_naming_the_field(url: str, named: str) -> None:
    with pytest.raises(ValidationError) as caught:
        SmtpTarget.parse(url)
    assert caught.value.field == "smtp_url"
    assert caught.value.message.startswith("smtp_url ") and named in caught.value.message


def test_the_password_never_shows() -> None:
    target = SmtpTarget.parse("smtp://mailer:Hunter2-secret@mail.example.test:587?starttls=true")
    assert target.password == "Hunter2-secret"
    for text in (repr(target), str(target), target.display(), repr(Mailer(target, "certsmith@example.test"))):
        assert "Hunter2" not in text
    assert target.display() == "smtp://mailer@mail.example.test:587?starttls=true"
    assert SmtpTarget.parse("smtp://[::1]:2525").address == "[::1]:2525"
    for bad in ("smtp://mailer:Hunter2-secret@host?starttls=maybe", "smtp://mailer:Hunter2-secret@host:99999",
                "smtps://mailer:Hunter2-secret@host?starttls=true", "smtp://mailer:Hunter2-secret@host/x"):
        with pytest.raises(ValidationError) as caught:
            SmtpTarget.parse(bad)
        assert "Hunter2" not in caught.value.message


def test_the_sender_must_be_an_address() -> None:
    target = SmtpTarget.parse("smtp://127.0.0.1:8025")
    for sender in ("certsmith", "", "a@b\r\nBcc: x@y"):
        with pytest.raises(ValidationError) as caught:
            Mailer(target, sender)
        assert caught.value.field == "mail_from"
    assert Mailer(target, "Certsmith <certsmith@example.test>").sender == "Certsmith <certsmith@example.test>"
