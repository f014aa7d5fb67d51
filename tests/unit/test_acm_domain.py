"""ACM's request rules and certificate facts."""

from __future__ import annotations

import pytest

from certsmith.domain.acm import check_domain_name, colon_hex
from certsmith.domain.arns import CertificateArn
from certsmith.domain.errors import InvalidArnError, ValidationError


@pytest.mark.parametrize("name", ["example.com", "*.example.com", "xn--bcher-kva.example", "a-b.c-d.test",
                                  "Upper.Example.COM", "a" * 63 + ".test"])
def test_valid_names(name: str) -> None:
    assert check_domain_name(name, "DomainName") == name.lower()


@pytest.mark.parametrize(("name", "problem"), [
    ("localhost", "two labels"), ("*.*.example.com", "label"), ("a.*.example.com", "wildcard"),
    ("bücher.example", "Punycode"), ("-a.example", "hyphen"), ("ab--cd.example", "positions 3-4"),
    ("a" * 64 + ".test", "1-63"), (".".join(["abcdefgh"] * 29) + ".test", "253"), ("a..b", "label"),
])
def test_invalid_names_say_why(name: str, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem) as info:
        check_domain_name(name, "SubjectAlternativeNames[2]")
    assert info.value.field == "SubjectAlternativeNames[2]"


def test_serials_are_colon_hex_bytes() -> None:
    assert colon_hex(0x0771_71F4) == "07:71:71:f4"
    assert colon_hex(0xABC) == "0a:bc"


def test_certificate_arns() -> None:
    arn = CertificateArn.new("eu-west-1", "123456789012")
    assert CertificateArn.parse(str(arn)) == arn and str(arn).startswith("arn:aws:acm:eu-west-1:123456789012:")
    for bad in ("arn:aws:acm:us-east-1:123456789012:certificate/nope",
                "arn:aws:acm-pca:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000",
                "arn:aws-cn:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"):
        with pytest.raises(InvalidArnError):
            CertificateArn.parse(bad)
