"""Rules for public certificates: request names, public suffixes, DNS-01 validation names and CAA."""

from __future__ import annotations

import socket
import string
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from certsmith.domain import public_names
from certsmith.domain.errors import ValidationError
from certsmith.domain.public_names import (
    CaaDecision,
    CaaRecord,
    PublicNameProblem,
    caa_decision,
    challenge_owner,
    check_public_names,
    check_zone_name,
    public_name_problem,
    validation_base,
    validation_label,
    validation_target,
)

SECRET = b"\x01" * 32
LE = ["letsencrypt.org"]

# -- check_public_names -----------------------------------------------------------------------------------------------


def test_names_come_domain_first_then_sans_in_order_each_once_lower_cased() -> None:
    names = check_public_names("Example.TEST", ["www.example.test", "EXAMPLE.test", "*.Example.test", "WWW.example.test"])
    assert names == ["example.test", "www.example.test", "*.example.test"]


def test_syntax_errors_name_the_field() -> None:
    with pytest.raises(ValidationError, match="positions 3-4") as info:
        check_public_names("example.test", ["ok.example.test", "ab--cd.example.test"])
    assert info.value.field == "SubjectAlternativeNames[1]"
    with pytest.raises(ValidationError, match="two labels") as info:
        check_public_names("localhost", [])
    assert info.value.field == "DomainName"


@pytest.mark.parametrize("name", ["192.0.2.1", "10.0.0.1", "*.192.0.2.1", "999.1.1.1"])
def test_ip_addresses_are_refused(name: str) -> None:
    with pytest.raises(ValidationError, match="public certificates cannot name IP addresses") as info:
        check_public_names("example.test", [name])
    assert info.value.field == "SubjectAlternativeNames[0]"
    with pytest.raises(ValidationError, match="IP addresses") as info:
        check_public_names(name, [])
    assert info.value.field == "DomainName"


@pytest.mark.parametrize("name", ["1.2.3.example", "192.0.2.1.example.test", "host-1.2.3.4.test", "a.1.2.3"])
def test_numeric_labels_in_a_name_are_fine(name: str) -> None:
    assert check_public_names(name, []) == [name]


def test_at_most_one_hundred_names_counting_the_domain_name_and_duplicates_once() -> None:
    sans = [f"n{i}.example.test" for i in range(99)]
    assert len(check_public_names("example.test", [*sans, "EXAMPLE.test", "n0.example.test"])) == 100
    with pytest.raises(ValidationError, match="at most 100 names") as info:
        check_public_names("example.test", [*sans, "one-too-many.example.test"])
    assert info.value.field == "SubjectAlternativeNames"


def test_the_first_name_is_the_common_name_and_at_most_64_characters() -> None:
    long_name = "a" * 52 + ".example.test"  # 65 characters
    assert len(long_name) == 65
    with pytest.raises(ValidationError, match="64") as info:
        check_public_names(long_name, [])
    assert info.value.field == "DomainName"
    assert check_public_names(long_name[1:], [])[0] == long_name[1:]
    assert check_public_names("example.test", [long_name]) == ["example.test", long_name]


def test_non_strings_are_validation_errors() -> None:
    bad: Any = ["ok.example.test", 7]
    with pytest.raises(ValidationError) as info:
        check_public_names("example.test", bad)
    assert info.value.field == "SubjectAlternativeNames[1]"


@given(st.text(max_size=80), st.lists(st.text(max_size=80), max_size=4))
def test_check_public_names_raises_only_validation_errors(domain_name: str, sans: list[str]) -> None:
    try:
        names = check_public_names(domain_name, sans)
    except ValidationError as error:
        assert error.field is not None
        return
    assert names[0] == domain_name.lower()
    assert len(names) == len(set(names))


dns_label = st.text(string.ascii_letters + string.digits, min_size=1, max_size=10)


@given(st.lists(dns_label, min_size=2, max_size=5), st.booleans())
def test_check_public_names_accepts_what_check_domain_name_accepts(labels: list[str], wildcard: bool) -> None:
    name = ("*." if wildcard else "") + ".".join(labels)
    if all(label.isdigit() for label in labels[-4:]) and len(labels) == 4:
        return
    assert check_public_names(name, [name.upper()]) == [name.lower()]


# -- public_name_problem -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [
    "co.uk", "*.co.uk", "com.au", "github.io", "*.github.io", "com", "test", "*.test", "CO.UK",
    "ck", "*.ck", "foo.ck", "*.foo.ck",  # *.ck is a wildcard rule
    "kawasaki.jp", "*.kawasaki.jp", "anything.kawasaki.jp",  # *.kawasaki.jp with the exception !city.kawasaki.jp
])
def test_public_suffixes_are_invalid_public_domains(name: str) -> None:
    assert public_name_problem(name) is PublicNameProblem.INVALID_PUBLIC_DOMAIN
    assert public_name_problem(name) == "INVALID_PUBLIC_DOMAIN"


@pytest.mark.parametrize("name", [
    "example.com", "*.example.com", "www.example.co.uk", "*.example.co.uk", "user.github.io", "*.user.github.io",
    "example.test", "*.example.test", "a.b.example.test", "www.ck", "*.www.ck", "a.foo.ck", "city.kawasaki.jp",
    "*.city.kawasaki.jp", "example.com.", "xn--bcher-kva.example", "example.xn--p1ai",
])
def test_registrable_names_and_their_subdomains_are_allowed(name: str) -> None:
    assert public_name_problem(name) is None


@pytest.mark.parametrize("name", [
    "amazonaws.com", "bucket.s3.amazonaws.com", "*.execute-api.us-east-1.amazonaws.com", "ec2.amazonaws.com",
    "cloudfront.net", "d111111abcdef8.cloudfront.net", "*.cloudfront.net", "elasticbeanstalk.com",
    "app.us-east-1.elasticbeanstalk.com", "WWW.CloudFront.NET",
])
def test_amazon_domains_are_not_allowed(name: str) -> None:
    assert public_name_problem(name) is PublicNameProblem.DOMAIN_NOT_ALLOWED


@pytest.mark.parametrize("name", ["notamazonaws.com", "amazonaws.com.example.test", "mycloudfront.net"])
def test_names_merely_resembling_amazon_domains_are_allowed(name: str) -> None:
    assert public_name_problem(name) is None


def test_problem_values_are_acm_failure_reasons() -> None:
    assert {p.value for p in PublicNameProblem} == {"INVALID_PUBLIC_DOMAIN", "DOMAIN_NOT_ALLOWED"}


@pytest.fixture()
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the Public Suffix List must not be fetched over the network")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    public_names._psl.cache_clear()
    yield
    public_names._psl.cache_clear()


@pytest.mark.usefixtures("no_network")
def test_the_list_is_read_from_the_package_without_the_network() -> None:
    assert public_name_problem("example.co.uk") is None
    assert public_name_problem("co.uk") is PublicNameProblem.INVALID_PUBLIC_DOMAIN


@given(st.text(max_size=60))
def test_public_name_problem_is_total(name: str) -> None:
    assert public_name_problem(name) in (None, *PublicNameProblem)


# -- validation names --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "base"), [
    ("*.example.com", "example.com"), ("Example.COM", "example.com"), ("example.com.", "example.com"),
    ("*.WWW.Example.com.", "www.example.com"), ("a.b.example.test", "a.b.example.test"),
])
def test_validation_base(name: str, base: str) -> None:
    assert validation_base(name) == base


def test_challenge_owner_is_the_dns01_record_name() -> None:
    assert challenge_owner("*.Example.test") == "_acme-challenge.example.test"
    assert challenge_owner("www.example.test.") == "_acme-challenge.www.example.test"


def test_validation_label_is_a_keyed_hash_of_account_and_base() -> None:
    label = validation_label(SECRET, "123456789012", "example.test")
    assert len(label) == 32
    assert int(label, 16) >= 0 and label == label.lower()
    assert validation_label(SECRET, "123456789012", "*.EXAMPLE.test") == label
    assert validation_label(SECRET, "123456789012", "example.test") == label  # every request, every renewal
    assert validation_label(SECRET, "210987654321", "example.test") != label
    assert validation_label(SECRET, "123456789012", "www.example.test") != label
    assert validation_label(b"\x02" * 32, "123456789012", "example.test") != label


def test_validation_label_known_answer() -> None:
    import hashlib
    import hmac
    expected = hmac.new(SECRET, b"123456789012\nexample.test", hashlib.sha256).hexdigest()[:32]
    assert validation_label(SECRET, "123456789012", "*.example.test") == expected


account_ids = st.text(string.digits, min_size=12, max_size=12)
bases = st.lists(dns_label, min_size=2, max_size=4).map(".".join)


@given(st.binary(min_size=1, max_size=64), account_ids, bases)
def test_label_is_32_hex_and_the_same_for_d_and_wildcard_d(secret: bytes, account: str, base: str) -> None:
    label = validation_label(secret, account, base)
    assert len(label) == 32 and set(label) <= set("0123456789abcdef")
    assert validation_label(secret, account, "*." + base) == label
    assert validation_label(secret, account, base.upper() + ".") == label


@given(st.binary(min_size=1, max_size=64), account_ids, account_ids, bases)
def test_label_differs_by_account(secret: bytes, first: str, second: str, base: str) -> None:
    if first != second:
        assert validation_label(secret, first, base) != validation_label(secret, second, base)


def test_validation_target() -> None:
    assert validation_target("ABCdef", "Validation.Example.test.") == "abcdef.validation.example.test"
    assert validation_target("0" * 32, "v.example.test") == "0" * 32 + ".v.example.test"


# -- check_zone_name ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("zone", "expected"), [
    ("validation.example.test", "validation.example.test"), ("Validation.Example.TEST.", "validation.example.test"),
    ("example.test", "example.test"), ("a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 8, None),
])
def test_valid_zones(zone: str, expected: str | None) -> None:
    assert check_zone_name(zone) == (expected or zone)
    assert len(validation_label(SECRET, "1", "x") + "." + check_zone_name(zone)) <= 253


@pytest.mark.parametrize(("zone", "problem"), [
    ("test", "two labels"), ("test.", "two labels"), ("*.example.test", "wildcard"), ("", "DNS name"),
    ("a..example.test", "label"), ("-bad.example.test", "hyphen"), ("bücher.example", "ASCII"),
    ("a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 9, "200"), (".", "two labels"),
])
def test_invalid_zones_name_the_field(zone: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as info:
        check_zone_name(zone, "acme.validation_zone")
    assert "acme.validation_zone" in str(info.value)
    assert not isinstance(info.value, ValidationError)
    with pytest.raises(ValueError, match=r"^validation_zone"):
        check_zone_name(zone)


# -- CAA ---------------------------------------------------------------------------------------------------------------

def issue(value: str, flags: int = 0) -> CaaRecord:
    return CaaRecord(flags, "issue", value)


def issuewild(value: str, flags: int = 0) -> CaaRecord:
    return CaaRecord(flags, "issuewild", value)


def test_no_caa_allows_anyone() -> None:
    assert caa_decision(None, [], LE, wildcard=False).allowed
    assert caa_decision(None, [], [], wildcard=True).allowed
    assert caa_decision("example.test", [], [], wildcard=False).allowed


def test_an_issue_record_naming_the_issuer_allows_it() -> None:
    decision = caa_decision("example.test", [issue("letsencrypt.org")], LE, wildcard=False)
    assert decision.allowed
    assert "example.test" in decision.reason and '"letsencrypt.org"' in decision.reason


def test_an_issue_record_naming_another_issuer_refuses_and_says_who() -> None:
    decision = caa_decision("example.test.", [issue("letsencrypt.org")], ["pebble.letsencrypt.org"], wildcard=False)
    assert decision == CaaDecision(False, 'CAA at example.test allows only "letsencrypt.org" to issue certificates; '
                                          'the issuer is "pebble.letsencrypt.org"')


def test_any_of_several_records_or_identities_may_match() -> None:
    records = [issue("sectigo.com"), issue("letsencrypt.org; accounturi=https://acme.example/acct/1")]
    assert caa_decision("example.test", records, ["other.example", "LetsEncrypt.org"], wildcard=False).allowed
    refused = caa_decision("example.test", records, ["a.example", "b.example"], wildcard=False)
    assert not refused.allowed
    assert '"sectigo.com" and "letsencrypt.org"' in refused.reason and '"a.example" or "b.example"' in refused.reason


@pytest.mark.parametrize("value", [";", "  ;  ", "", ";policy=ev"])
def test_an_empty_issuer_domain_forbids_all(value: str) -> None:
    decision = caa_decision("example.test", [issue(value)], LE, wildcard=False)
    assert not decision.allowed and "forbids all" in decision.reason
    assert not caa_decision("example.test", [issue(value)], LE, wildcard=True).allowed


def test_empty_record_next_to_a_matching_one_still_allows() -> None:
    assert caa_decision("example.test", [issue(";"), issue("letsencrypt.org")], LE, wildcard=False).allowed


def test_tags_are_case_insensitive() -> None:
    assert not caa_decision("example.test", [CaaRecord(0, "ISSUE", "other.example")], LE, wildcard=False).allowed
    assert caa_decision("example.test", [CaaRecord(0, "Issue", "letsencrypt.org")], LE, wildcard=False).allowed
    assert not caa_decision("example.test", [CaaRecord(0, "IssueWild", ";")], LE, wildcard=True).allowed


def test_wildcards_use_issuewild_when_present_else_issue() -> None:
    records = [issue("other.example"), issuewild("letsencrypt.org")]
    assert caa_decision("example.test", records, LE, wildcard=True).allowed
    assert not caa_decision("example.test", records, LE, wildcard=False).allowed
    records = [issue("letsencrypt.org"), issuewild(";")]
    assert not caa_decision("example.test", records, LE, wildcard=True).allowed
    assert caa_decision("example.test", records, LE, wildcard=False).allowed
    assert caa_decision("example.test", [issue("letsencrypt.org")], LE, wildcard=True).allowed
    assert not caa_decision("example.test", [issue("other.example")], LE, wildcard=True).allowed


def test_issuewild_alone_does_not_restrict_non_wildcard_names() -> None:
    decision = caa_decision("example.test", [issuewild(";")], LE, wildcard=False)
    assert decision.allowed and "'issue'" in decision.reason


def test_unknown_critical_tag_forbids_and_unknown_non_critical_is_ignored() -> None:
    records = [issue("letsencrypt.org"), CaaRecord(128, "tbs", "whatever")]
    decision = caa_decision("example.test", records, LE, wildcard=False)
    assert not decision.allowed and "'tbs'" in decision.reason and "critical" in decision.reason
    assert not caa_decision("example.test", [CaaRecord(129, "future", "x")], LE, wildcard=False).allowed
    assert caa_decision("example.test", [issue("letsencrypt.org"), CaaRecord(0, "tbs", "x")], LE, wildcard=False).allowed
    assert caa_decision("example.test", [CaaRecord(1, "tbs", "x")], LE, wildcard=False).allowed  # only bit 128 is critical


@pytest.mark.parametrize("record", [
    CaaRecord(0, "iodef", "mailto:security@example.test"), CaaRecord(128, "iodef", "mailto:security@example.test"),
    CaaRecord(0, "contactemail", "admin@example.test"), CaaRecord(128, "contactemail", "admin@example.test"),
    CaaRecord(0, "contactphone", "+1 555 0100"), CaaRecord(128, "issuemail", "ca.example"),
])
def test_reporting_and_contact_properties_are_ignored(record: CaaRecord) -> None:
    assert caa_decision("example.test", [record], LE, wildcard=False).allowed
    assert caa_decision("example.test", [record, issue("letsencrypt.org")], LE, wildcard=False).allowed
    assert not caa_decision("example.test", [record, issue("other.example")], LE, wildcard=False).allowed


@pytest.mark.parametrize("identities", [[], [""], ["  "]])
def test_an_issuer_without_caa_identities_is_refused_where_caa_restricts(identities: list[str]) -> None:
    decision = caa_decision("example.test", [issue("letsencrypt.org")], identities, wildcard=False)
    assert not decision.allowed and "no CAA identity configured" in decision.reason
    assert caa_decision("example.test", [CaaRecord(0, "iodef", "mailto:x@example.test")], identities,
                        wildcard=False).allowed
    assert caa_decision("example.test", [issuewild(";")], identities, wildcard=False).allowed


caa_records = st.builds(CaaRecord, st.integers(-1000, 1000),
                        st.sampled_from(["issue", "issuewild", "ISSUE", "iodef", "tbs", ""]) | st.text(max_size=10),
                        st.text(max_size=40) | st.sampled_from(["letsencrypt.org", ";", "letsencrypt.org; a=b"]))


@given(st.none() | st.text(max_size=30), st.lists(caa_records, max_size=5),
       st.lists(st.text(max_size=20) | st.just("letsencrypt.org"), max_size=3), st.booleans())
def test_caa_decision_is_total(node: str | None, records: list[CaaRecord], identities: list[str],
                               wildcard: bool) -> None:
    decision = caa_decision(node, records, identities, wildcard)
    assert isinstance(decision.allowed, bool) and decision.reason
    ignorable = CaaRecord(0, "iodef", "mailto:x@example.test")
    assert caa_decision(node, [*records, ignorable], identities, wildcard).allowed == decision.allowed
    if not any(r.tag.lower() in ("issue", "issuewild") or r.flags & 128 for r in records):
        assert decision.allowed
