"""SigV4 verification against requests signed by botocore itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from certsmith.api.sigv4 import verify_sigv4
from certsmith.domain.errors import InvalidSignatureError, UnrecognizedClientError

KEY, SECRET = "AKIDEXAMPLE0000000001", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
BODY = b'{"MaxResults": 10}'


def signed_headers(secret: str = SECRET, service: str = "acm-pca") -> dict[str, str]:
    request = AWSRequest(method="POST", url="http://127.0.0.1:8000/", data=BODY, headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "ACMPrivateCA.ListCertificateAuthorities"})
    SigV4Auth(Credentials(KEY, secret), service, "eu-west-1").add_auth(request)
    headers = {name.lower(): value for name, value in request.headers.items()}
    headers["host"] = "127.0.0.1:8000"
    return headers


def verify(headers: dict[str, str], *, secret: str = SECRET, now: datetime | None = None, body: bytes = BODY) -> str:
    identity = verify_sigv4(method="POST", raw_path="/", query="", headers=headers, body=body,
                            now=now or datetime.now(UTC), expected_services=("acm-pca",),
                            secret_for=lambda key: secret if key == KEY else None)
    return f"{identity.access_key_id} {identity.region} {identity.service}"


def test_a_botocore_signature_verifies() -> None:
    assert verify(signed_headers()) == f"{KEY} eu-west-1 acm-pca"


def test_a_changed_secret_is_refused_even_after_the_day_key_was_kept() -> None:
    headers = signed_headers()
    assert verify(headers)  # the day's signing key of SECRET is now kept
    with pytest.raises(InvalidSignatureError, match="does not match"):
        verify(headers, secret=SECRET.replace("w", "v", 1))
    with pytest.raises(InvalidSignatureError, match="does not match"):
        verify(signed_headers(secret="another-secret"))


def test_a_changed_body_is_refused() -> None:
    with pytest.raises(InvalidSignatureError):
        verify(signed_headers(), body=b'{"MaxResults": 11}')


@pytest.mark.parametrize("amz_date, problem", [
    ("2026-11-27T12:00:00Z", "not in the form YYYYMMDDTHHMMSSZ"),
    ("20261127T120000", "not in the form"),
    ("20261127T120000Z\n", "not in the form"),
    ("\u0662\u0660\u0662\u0666" "1127T120000Z", "not in the form"),  # Arabic-Indic digits
    ("20261327T120000Z", "not a valid date and time"),
    ("20261127T250000Z", "not a valid date and time"),
])
def test_a_bad_x_amz_date_is_named(amz_date: str, problem: str) -> None:
    headers = signed_headers()
    headers["x-amz-date"] = amz_date
    with pytest.raises(InvalidSignatureError, match=problem):
        verify(headers)


def test_the_clock_skew_limit_is_fifteen_minutes() -> None:
    headers = signed_headers()
    signed_at = datetime.strptime(headers["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert verify(headers, now=signed_at + timedelta(minutes=14))
    with pytest.raises(InvalidSignatureError, match="Signature expired"):
        verify(headers, now=signed_at + timedelta(minutes=16))


def test_an_unknown_key_and_a_missing_signature_are_told_apart() -> None:
    with pytest.raises(UnrecognizedClientError, match="not known"):
        verify_sigv4(method="POST", raw_path="/", query="", headers=signed_headers(), body=BODY,
                     now=datetime.now(UTC), expected_services=("acm-pca",), secret_for=lambda key: None)
    headers = signed_headers()
    del headers["authorization"]
    with pytest.raises(UnrecognizedClientError, match="not signed"):
        verify(headers)
