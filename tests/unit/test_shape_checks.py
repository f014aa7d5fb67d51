"""The shape check at the edges: timestamps, integer widths, lone surrogates, long values, many problems."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from certsmith.api.aws.protocol import EpochSeconds
from certsmith.api.aws.shapes import service_shapes
from certsmith.domain.errors import ValidationError

START = "filterStatement.filter.x509AttributeFilter.notAfter.start"


def search(start: Any, *, cbor: bool = False) -> dict[str, Any]:
    document = {"FilterStatement": {"Filter": {"X509AttributeFilter": {"NotAfter": {"Start": start}}}}}
    return service_shapes("acm").parse_input("SearchCertificates", document, cbor=cbor)


def problem(operation: str, document: dict[str, Any], service: str = "acm-pca", cbor: bool = False) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        service_shapes(service).parse_input(operation, document, cbor=cbor)
    return caught.value


@pytest.mark.parametrize("seconds", [1e12, -1e12, 253_402_300_800, 253_402_300_799.9999999, -62_135_596_801, 1e308,
                                     -1e308, float("nan"), float("inf"), float("-inf"), 2**63, 2**64, 10**30])
@pytest.mark.parametrize("tagged", [False, True], ids=["number", "cbor-tag-1"])
def test_timestamps_out_of_range_name_the_member(seconds: float, tagged: bool) -> None:
    with pytest.raises(ValidationError) as caught:
        search(EpochSeconds(seconds) if tagged else seconds, cbor=tagged)
    assert caught.value.field == START
    assert f"at '{START}'" in caught.value.message and "0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z" in caught.value.message


@pytest.mark.parametrize("seconds,expected", [
    (0, datetime(1970, 1, 1, tzinfo=UTC)),
    (1.5, datetime(1970, 1, 1, 0, 0, 1, 500_000, tzinfo=UTC)),
    (-62_135_596_800, datetime(1, 1, 1, tzinfo=UTC)),
    (253_402_300_799, datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
    (EpochSeconds(1_700_000_000), datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
])
def test_timestamps_in_range(seconds: Any, expected: datetime) -> None:
    parsed = search(seconds)["FilterStatement"]["Filter"]["X509AttributeFilter"]["NotAfter"]["Start"]
    assert parsed == expected


@pytest.mark.parametrize("value", ["2024-01-01T00:00:00Z", True, [1], {"a": 1}, EpochSeconds("1"),
                                   EpochSeconds(EpochSeconds(1))])
def test_a_timestamp_that_is_no_number(value: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        search(value)
    assert caught.value.field == START and "Member must be a timestamp" in caught.value.message


@pytest.mark.parametrize("value,constraint", [
    (2**31, "less than or equal to 1000"),
    (-(2**63) - 1, "greater than or equal to 1"),
    (True, "Member must be an integer"),
    (1.0, "Member must be an integer"),
])
def test_integers(value: Any, constraint: str) -> None:
    error = problem("ListCertificateAuthorities", {"MaxResults": value})
    assert error.field == "maxResults" and constraint in error.message


@pytest.mark.parametrize("value", [2**63, 2**64 - 1])
def test_a_long_stops_at_64_bits(value: int) -> None:
    document = {"CertificateAuthorityArn": "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/x",
                "Csr": b"x", "SigningAlgorithm": "SHA256WITHECDSA", "Validity": {"Type": "DAYS", "Value": value}}
    error = problem("IssueCertificate", document, cbor=True)
    assert error.field == "validity.value" and f"less than or equal to {2**63 - 1}" in error.message


def test_a_lone_surrogate_is_refused_and_shown_escaped() -> None:
    error = problem("ListCertificateAuthorities", {"NextToken": "ab\ud800", "\udfff": 1})
    assert error.field == "nextToken" and "Unicode" in error.message
    assert "'ab\\ud800'" in error.message and "'\\udfff'" in error.message
    error.message.encode("utf-8")  # the message itself is valid Unicode: it can go out as CBOR text


def test_a_nul_character_is_refused_by_name() -> None:
    error = problem("ListCertificateAuthorities", {"NextToken": "ab\x00cd"})
    assert error.field == "nextToken" and "NUL character" in error.message


def test_patterns_are_not_tried_on_strings_past_their_length() -> None:
    error = problem("ListCertificateAuthorities", {"NextToken": "x" * 3_000_000}, service="acm-pca")
    assert error.field == "nextToken" and "length less than or equal to" in error.message
    assert "regular expression" not in error.message and len(error.message) < 400


def test_values_are_shown_short() -> None:
    error = problem("ListCertificateAuthorities", {"ResourceOwner": "x" * 10_000})
    assert len(error.message) < 600


def test_many_problems_are_counted_and_the_first_ten_shown() -> None:
    document = {f"Unknown{number}": number for number in range(500)}
    error = problem("ListCertificateAuthorities", document)
    assert error.message.startswith("500 validation errors detected: ")
    assert error.message.count("Unknown member") == 10 and error.message.endswith("; and 490 more")


def test_a_byte_string_key_is_an_unknown_member() -> None:
    error = problem("ListCertificateAuthorities", {b"MaxResults": 5}, cbor=True)
    assert "Unknown member <blob>" in error.message
