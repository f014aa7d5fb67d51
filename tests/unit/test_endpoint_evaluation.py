"""Endpoint monitoring's pure rules: what a user may register, host-name matching, the verdict, and the events."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from certsmith.cli.endpoint import parse_interval, split_target
from certsmith.domain.acm import colon_hex
from certsmith.domain.endpoints import (
    DRIFT,
    DRIFT_EVENT,
    EXPIRED,
    MISMATCH,
    OK,
    PENDING,
    UNREACHABLE,
    UNREACHABLE_EVENT,
    UNTRUSTED,
    ChainEntry,
    EndpointFacts,
    Expected,
    Observation,
    check_host,
    check_interval,
    check_port,
    check_trust_bundle,
    endpoint_arn,
    evaluate,
    events_for,
    hostname_matches,
    reminder_due,
)
from certsmith.domain.errors import ValidationError

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
CERT_ARN = "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
FACTS = EndpointFacts("ep-0123456789abcdef0", endpoint_arn("us-east-1", "123456789012", "ep-0123456789abcdef0"),
                      "127.0.0.1", 8443, "web.example.test", CERT_ARN)


def certificate(dns: list[str] | None = None, ips: list[str] | None = None, cn: str = "leaf", *,
                not_before: datetime = NOW - timedelta(days=10), not_after: datetime = NOW + timedelta(days=50),
                serial: int = 0x1234) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(serial).not_valid_before(not_before).not_valid_after(not_after))
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns or []]
    names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips or []]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(key, hashes.SHA256())


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def observed(*certs: x509.Certificate, trusted: bool | None = True, trust_error: str | None = None) -> Observation:
    return Observation(2.5, tuple(der(c) for c in certs), trusted, trust_error)


# -- registration --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("given", "kept"), [("Web.Example.TEST.", "web.example.test"), ("127.0.0.1", "127.0.0.1"),
                                             ("[::1]", "::1"), ("2001:DB8::1", "2001:db8::1"),
                                             ("_srv.x-y.test", "_srv.x-y.test")])
def test_hosts_are_kept_normalised(given: str, kept: str) -> None:
    assert check_host(given) == kept


@pytest.mark.parametrize("bad", ["", "bad host", "-lead.test", "a..b", "x" * 64 + ".test", "bücher.test", "a/b"])
def test_a_bad_host_is_refused_naming_the_field(bad: str) -> None:
    with pytest.raises(ValidationError) as info:
        check_host(bad)
    assert info.value.message.startswith("Host") and info.value.field == "Host"


def test_ports_intervals_and_bundles_are_checked_naming_the_field() -> None:
    assert check_port(1) == 1 and check_port(65535) == 65535
    for bad_port in (0, 65536, -1, True):
        with pytest.raises(ValidationError, match=r"^Port .* give 1 to 65535"):
            check_port(bad_port)
    assert check_interval(10) == 10
    for bad_interval in (9, 7 * 86400 + 1):
        with pytest.raises(ValidationError, match=r"^IntervalSeconds .* 10 to 604800"):
            check_interval(bad_interval)
    pem = certificate(["a.test"]).public_bytes(serialization.Encoding.PEM).decode()
    assert check_trust_bundle("junk before\n" + pem) == pem
    with pytest.raises(ValidationError, match=r"^TrustBundle is not a PEM bundle"):
        check_trust_bundle("not pem")
    with pytest.raises(ValidationError, match=r"^TrustBundle holds a private key"):
        check_trust_bundle(pem + "-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n")


def test_the_endpoint_arn() -> None:
    assert FACTS.arn == "arn:aws:certsmith:us-east-1:123456789012:endpoint/ep-0123456789abcdef0"
    assert endpoint_arn("cn-north-1", "123456789012", "ep-1").startswith("arn:aws-cn:certsmith:cn-north-1:")


def test_cli_targets_and_intervals() -> None:
    assert split_target("web.test") == ("web.test", None)
    assert split_target("web.test:8443") == ("web.test", 8443)
    assert split_target("[::1]:8443") == ("::1", 8443)
    assert split_target("::1") == ("::1", None)
    with pytest.raises(ValueError, match="port must be a number"):
        split_target("web.test:https")
    assert [parse_interval(t) for t in ("90", "10s", "15m", "1h", "1d", "1h30m")] == [90, 10, 900, 3600, 86400, 5400]
    with pytest.raises(ValueError, match="--interval"):
        parse_interval("soon")


# -- host names (RFC 6125) -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("names", "server_name", "matches"), [
    (["web.example.test"], "web.example.test", True),
    (["WEB.example.test."], "web.EXAMPLE.test", True),
    (["*.example.test"], "web.example.test", True),
    (["*.example.test"], "example.test", False),  # a wildcard covers exactly one label
    (["*.example.test"], "a.b.example.test", False),
    (["w*.example.test"], "web.example.test", False),  # no partial wildcards
    (["*.test"], "example.test", False),  # never a wildcard over a single label
    (["other.example.test"], "web.example.test", False),
])
def test_dns_names_match_per_rfc_6125(names: list[str], server_name: str, matches: bool) -> None:
    assert hostname_matches(certificate(names), server_name) is matches


def test_ip_addresses_match_ip_names_only_and_the_common_name_only_without_dns_names() -> None:
    assert hostname_matches(certificate(["web.test"], ["127.0.0.1"]), "127.0.0.1")
    assert not hostname_matches(certificate(["127.0.0.1"], cn="127.0.0.1"), "127.0.0.1")
    assert hostname_matches(certificate(ips=["::1"]), "::1")
    assert hostname_matches(certificate(cn="legacy.test"), "legacy.test")
    assert not hostname_matches(certificate(["other.test"], cn="legacy.test"), "legacy.test")


# -- the verdict ---------------------------------------------------------------------------------------------------
def test_a_trusted_matching_current_certificate_is_ok_and_the_chain_is_kept_leaf_first() -> None:
    leaf = certificate(["web.example.test"], serial=0x0A0B)
    root = certificate(cn="root", serial=0x01, not_after=NOW + timedelta(days=3000))
    expected = Expected(CERT_ARN, colon_hex(0x0A0B), 2, ((1, "01:02"), (2, colon_hex(0x0A0B))))
    verdict = evaluate(observed(leaf, root), "web.example.test", expected, NOW)
    assert verdict.status == OK and verdict.message is None
    assert verdict.served_serial == "0a:0b" and verdict.served_version == 2 and verdict.days_to_expiry == 50
    assert [e.subject for e in verdict.chain] == ["CN=leaf", "CN=root"]
    assert ChainEntry.from_json(verdict.chain[0].to_json()) == verdict.chain[0]


def test_each_status_and_which_wins() -> None:
    good = certificate(["web.example.test"], serial=0x22)
    expected = Expected(CERT_ARN, "00:33", 3, ((1, "11"), (2, "22"), (3, "00:33")))
    drift = evaluate(observed(good), "web.example.test", expected, NOW)
    assert drift.status == DRIFT and drift.served_version == 2
    assert drift.message == f"serves version 2 (serial 22) instead of version 3 of {CERT_ARN}"
    stranger = evaluate(observed(certificate(["web.example.test"], serial=0x99)), "web.example.test", expected, NOW)
    assert stranger.status == DRIFT and stranger.served_version is None and "no version of it" in (stranger.message or "")

    mismatch = evaluate(observed(good), "api.example.test", expected, NOW)  # the name before drift
    assert mismatch.status == MISMATCH and mismatch.hostname_match is False
    assert mismatch.message == "the certificate is for web.example.test, not for api.example.test"

    untrusted = evaluate(observed(good, trusted=False, trust_error="self-signed certificate"), "api.example.test",
                         None, NOW)  # trust before the name
    assert untrusted.status == UNTRUSTED and untrusted.message == "the chain is not trusted: self-signed certificate"
    early = evaluate(observed(certificate(["web.example.test"], not_before=NOW + timedelta(hours=1))),
                     "web.example.test", None, NOW)
    assert early.status == UNTRUSTED and "not valid before" in (early.message or "")

    old = certificate(["web.example.test"], not_before=NOW - timedelta(days=90), not_after=NOW - timedelta(days=1))
    expired = evaluate(observed(old, trusted=False), "other.test", expected, NOW)  # expiry before everything
    assert expired.status == EXPIRED and expired.days_to_expiry == 0
    assert expired.message == "the certificate expired on 2027-02-28T12:00:00Z"
    stale_root = certificate(cn="old root", not_after=NOW - timedelta(seconds=1))
    assert evaluate(observed(good, stale_root), "web.example.test", None, NOW).message == \
        "the chain's certificate CN=old root expired on 2027-03-01T11:59:59Z"

    down = evaluate(Observation(None, error="127.0.0.1:8443: connection refused"), "web.example.test", expected, NOW)
    assert down.status == UNREACHABLE and down.message == "127.0.0.1:8443: connection refused" and not down.chain
    assert evaluate(Observation(1.0), "web.example.test", None, NOW).status == UNREACHABLE


# -- events --------------------------------------------------------------------------------------------------------
def _drift() -> tuple[Expected, Observation]:
    return (Expected(CERT_ARN, "03", 3, ((1, "01"), (2, "02"), (3, "03"))),
            observed(certificate(["web.example.test"], serial=2)))


def test_becoming_drift_raises_one_drift_event_with_the_plain_words_action() -> None:
    expected, seen = _drift()
    verdict = evaluate(seen, "web.example.test", expected, NOW)
    (event,) = events_for(FACTS, OK, NOW - timedelta(hours=1), verdict, expected, NOW, NOW - timedelta(days=3))
    assert event.detail_type == DRIFT_EVENT == "Certsmith Endpoint Drift" and event.source == "certsmith"
    assert event.resources == (CERT_ARN, FACTS.arn)
    detail = event.detail
    assert (detail["Host"], detail["Port"], detail["ServerName"]) == ("127.0.0.1", 8443, "web.example.test")
    assert (detail["CertificateArn"], detail["ServedSerial"], detail["CurrentSerial"]) == (CERT_ARN, "02", "03")
    assert (detail["ServedVersion"], detail["CurrentVersion"], detail["EndpointId"]) == (2, 3, FACTS.endpoint_id)
    assert detail["RecommendedAction"] == (f"Deploy version 3 of {CERT_ARN} to 127.0.0.1:8443 and reload the server; "
                                           "it still serves version 2.")
    assert list(detail)[-1] == "RecommendedAction"
    assert all(isinstance(v, str | int | bool) for v in detail.values())


def test_events_come_on_a_change_of_status_and_once_a_day_while_it_lasts() -> None:
    expected, seen = _drift()
    anchor = datetime(2027, 2, 20, 9, 30, tzinfo=UTC)
    verdict = evaluate(seen, "web.example.test", expected, NOW)
    assert events_for(FACTS, DRIFT, NOW - timedelta(minutes=1), verdict, expected, NOW, anchor) == []
    assert events_for(FACTS, PENDING, None, verdict, expected, NOW, anchor)
    # 2027-03-01 12:00 is in day 9 counted from 2027-02-20 09:30; 09:29 that morning was still day 8
    assert events_for(FACTS, DRIFT, datetime(2027, 3, 1, 9, 29, tzinfo=UTC), verdict, expected, NOW, anchor)
    assert not events_for(FACTS, DRIFT, datetime(2027, 3, 1, 9, 31, tzinfo=UTC), verdict, expected, NOW, anchor)
    assert reminder_due(None, NOW, anchor)

    down = evaluate(Observation(None, error="127.0.0.1:8443: connection refused"), "web.example.test", None, NOW)
    (event,) = events_for(FACTS, OK, NOW - timedelta(hours=1), down, None, NOW, anchor)
    assert event.detail_type == UNREACHABLE_EVENT and event.detail["Error"] == "127.0.0.1:8443: connection refused"
    assert event.resources == (CERT_ARN, FACTS.arn) and "RecommendedAction" in event.detail
    assert events_for(FACTS, UNREACHABLE, NOW - timedelta(minutes=1), down, None, NOW, anchor) == []
    ok = evaluate(observed(certificate(["web.example.test"], serial=3)), "web.example.test", expected, NOW)
    assert ok.status == OK and events_for(FACTS, UNREACHABLE, NOW, ok, expected, NOW, anchor) == []
    unnamed = EndpointFacts(FACTS.endpoint_id, FACTS.arn, FACTS.host, FACTS.port, FACTS.server_name, None)
    (alone,) = events_for(unnamed, OK, None, down, None, NOW, anchor)
    assert alone.resources == (FACTS.arn,) and "CertificateArn" not in alone.detail
