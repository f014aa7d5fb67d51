"""The compliance report's rules, on real certificates made here with cryptography."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from certsmith.cli.report import parse_tag
from certsmith.domain.compliance import (
    ENDPOINT_OLD_VERSION,
    EXPIRING,
    FORBIDDEN_WILDCARD,
    IMPORTED_NO_RENEWAL,
    RULES,
    SHA1_SIGNATURE,
    UNUSED,
    WEAK_RSA,
    CertificateState,
    EndpointState,
    Finding,
    ReportPolicy,
    check_policy,
    evaluate,
    evaluate_endpoint,
    findings_in_order,
    rsa_bits,
    split_pem,
    state_of,
    summary,
    weak_digest,
)
from certsmith.domain.errors import ValidationError
from certsmith.services.compliance.report import renewal_columns

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ARN = "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
EC_KEY = ec.generate_private_key(ec.SECP256R1())
RSA_1024 = rsa.generate_private_key(public_exponent=65537, key_size=1024)
RSA_2048 = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make(common_name: str, key: Any, *, names: list[str] | None = None, digest: Any = None, issuer: Any = None,
         issuer_name: str | None = None, ca: bool = False, days: int = 90) -> x509.Certificate:
    """A certificate for ``key``, signed by ``issuer`` (itself when None) with ``digest`` (SHA-256)."""
    builder = (x509.CertificateBuilder().subject_name(_name(common_name))
               .issuer_name(_name(issuer_name or common_name)).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
    signer = issuer or key
    certificate = builder.sign(signer, hashes.SHA256())
    return resigned(certificate, signer, digest) if digest is not None else certificate


# cryptography no longer signs with SHA-1 or MD5: sign the same TBS with them by hand (RSA only, whose algorithm
# identifiers of SHA-256, SHA-1 and MD5 have the same length).
_RSA_OIDS = {"sha256": bytes.fromhex("2a864886f70d01010b"), "sha1": bytes.fromhex("2a864886f70d010105"),
             "md5": bytes.fromhex("2a864886f70d010104")}


def _der(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def resigned(certificate: x509.Certificate, key: Any, digest: Any) -> x509.Certificate:
    """``certificate`` signed again by the RSA ``key`` with ``digest`` (SHA1, MD5) instead of SHA-256."""
    assert isinstance(key, rsa.RSAPrivateKey), "only RSA certificates are re-signed"
    oid = _der(0x06, _RSA_OIDS[digest.name])
    tbs = certificate.tbs_certificate_bytes
    assert tbs.count(_der(0x06, _RSA_OIDS["sha256"])) == 1
    tbs = tbs.replace(_der(0x06, _RSA_OIDS["sha256"]), oid)
    signature = key.sign(tbs, padding.PKCS1v15(), digest)
    algorithm = _der(0x30, oid + b"\x05\x00")
    der = _der(0x30, tbs + algorithm + _der(0x03, b"\x00" + signature))
    return x509.load_der_x509_certificate(der)


def rules_of(findings: list[Finding]) -> list[str]:
    return [f.rule for f in findings]


def only(findings: list[Finding], rule: str) -> Finding:
    matching = [f for f in findings if f.rule == rule]
    assert len(matching) == 1, findings
    return matching[0]


def run(state: CertificateState, **policy: Any) -> list[Finding]:
    return evaluate(state, check_policy(**policy), NOW)


# -- the request ----------------------------------------------------------------------------------------------------
def test_policy_defaults_and_errors_name_the_field() -> None:
    policy = check_policy()
    assert policy == ReportPolicy(30, (), RULES)
    policy = check_policy(7, [{"Key": "env", "Value": "prod"}, {"Key": "tier"}], ["unused", "expiring", "unused"])
    assert policy.expiring_within_days == 7 and policy.wildcard_forbidden_tags == (("env", "prod"), ("tier", ""))
    assert policy.rules == ("unused", "expiring")
    for kwargs, field in (({"expiring_within_days": -1}, "ExpiringWithinDays"),
                          ({"expiring_within_days": 4000}, "ExpiringWithinDays"),
                          ({"wildcard_forbidden_tags": [{"Key": " "}]}, "WildcardForbiddenTags[0].Key"),
                          ({"rules": ["expiring", "nope"]}, "Rules[1]"), ({"rules": []}, "Rules")):
        with pytest.raises(ValidationError) as info:
            check_policy(**kwargs)
        assert info.value.field == field and field.split("[")[0] in str(info.value)
    with pytest.raises(ValidationError, match="the rules are expiring, weak-rsa"):
        check_policy(rules=["nope"])


def test_parse_tag_of_the_cli() -> None:
    assert parse_tag("env=prod") == {"Key": "env", "Value": "prod"}
    assert parse_tag("team=a=b") == {"Key": "team", "Value": "a=b"}
    assert parse_tag("flag") == {"Key": "flag", "Value": ""}
    with pytest.raises(ValueError, match="--no-wildcards-tag '=prod': give KEY=VALUE"):
        parse_tag("=prod")


def test_names_of_keys_and_digests() -> None:
    assert rsa_bits("RSA_1024") == 1024 and rsa_bits("RSA_4096") == 4096
    assert rsa_bits("EC_prime256v1") is None and rsa_bits(None) is None
    assert weak_digest("SHA1WITHRSA") == "SHA-1" and weak_digest("MD5WITHRSA") == "MD5"
    assert weak_digest("SHA1WITHECDSA") == "SHA-1"
    assert weak_digest("SHA256WITHRSA") is None and weak_digest(None) is None and weak_digest("SHA512WITHRSAPSS") is None


# -- keys and signatures ----------------------------------------------------------------------------------------------
def test_rsa_1024_signed_with_sha1_is_two_findings() -> None:
    certificate = make("legacy.example.com", RSA_1024, names=["legacy.example.com"], digest=hashes.SHA1())
    state = state_of(certificate, arn=ARN, in_use_by=["lb"])
    assert state.key_algorithm == "RSA_1024" and state.signature_algorithm == "SHA1WITHRSA"
    RSA_1024.public_key().verify(certificate.signature, certificate.tbs_certificate_bytes, padding.PKCS1v15(),
                                 hashes.SHA1())  # a real signature, not only its name
    found = run(state, rules=[WEAK_RSA, SHA1_SIGNATURE])
    assert rules_of(found) == [WEAK_RSA, SHA1_SIGNATURE]
    weak = only(found, WEAK_RSA)
    assert weak.severity == "HIGH" and weak.domain_name == "legacy.example.com" and weak.certificate_arn == ARN
    assert "1024-bit RSA" in weak.detail and "2048" in weak.action
    sha1 = only(found, SHA1_SIGNATURE)
    assert "SHA-1" in sha1.detail and "SHA1WITHRSA" in sha1.detail and "SHA-256" in sha1.action
    # A certificate that is not ISSUED serves nothing: its key and signature are not reported.
    assert run(state_of(certificate, arn=ARN, status="EXPIRED"), rules=[WEAK_RSA, SHA1_SIGNATURE]) == []


def test_md5_is_critical_and_strong_certificates_are_clean() -> None:
    md5 = make("md5.example.com", RSA_1024, digest=hashes.MD5())
    assert only(run(state_of(md5, arn=ARN), rules=[SHA1_SIGNATURE]), SHA1_SIGNATURE).severity == "CRITICAL"
    strong = make("strong.example.com", EC_KEY, names=["strong.example.com"])
    assert run(state_of(strong, arn=ARN, type="PRIVATE", in_use_by=["x"])) == []


def test_chain_signed_with_sha1_except_the_roots_own_signature() -> None:
    root_key = RSA_2048
    root = make("Old Root", root_key, digest=hashes.SHA1(), ca=True)  # its self-signature is never checked
    intermediate_key = ec.generate_private_key(ec.SECP256R1())
    intermediate = make("Old Intermediate", intermediate_key, issuer=root_key, issuer_name="Old Root",
                        digest=hashes.SHA1(), ca=True)
    leaf = make("app.example.com", EC_KEY, names=["app.example.com"], issuer=intermediate_key,
                issuer_name="Old Intermediate")
    found = run(state_of(leaf, arn=ARN, chain=[intermediate, root]), rules=[SHA1_SIGNATURE, WEAK_RSA])
    assert rules_of(found) == [SHA1_SIGNATURE]
    assert "chain's certificate CN=Old Intermediate is signed with SHA-1" in found[0].detail


def test_chain_with_a_weak_rsa_key() -> None:
    intermediate = make("Small CA", RSA_1024, ca=True)
    leaf = make("app.example.com", EC_KEY, issuer=RSA_1024, issuer_name="Small CA")
    found = run(state_of(leaf, arn=ARN, chain=[intermediate]), rules=[WEAK_RSA])
    assert len(found) == 1 and "CN=Small CA has a 1024-bit RSA key" in found[0].detail


# -- names and tags ---------------------------------------------------------------------------------------------------
def test_wildcard_forbidden_only_under_the_tag() -> None:
    wildcard = make("*.shop.example.com", EC_KEY, names=["*.shop.example.com", "shop.example.com"])
    tagged = state_of(wildcard, arn=ARN, type="PRIVATE", tags={"env": "prod", "team": "web"}, in_use_by=["lb"])
    policy = {"wildcard_forbidden_tags": [{"Key": "env", "Value": "prod"}]}
    finding = only(run(tagged, **policy), FORBIDDEN_WILDCARD)
    assert finding.severity == "MEDIUM" and "*.shop.example.com" in finding.detail and "env=prod" in finding.detail
    assert "shop.example.com," not in finding.detail and "naming each host" in finding.action
    assert run(tagged) == []  # no policy given: wildcards are fine
    staging = state_of(wildcard, arn=ARN, type="PRIVATE", tags={"env": "staging"}, in_use_by=["lb"])
    assert run(staging, **policy) == []
    plain = state_of(make("www.example.com", EC_KEY, names=["www.example.com"]), arn=ARN, type="PRIVATE",
                     tags={"env": "prod"}, in_use_by=["lb"])
    assert run(plain, **policy) == []
    pending = CertificateState(ARN, "*.example.com", "PRIVATE", "PENDING_VALIDATION", names=("*.example.com",),
                               tags=(("env", "prod"),))
    assert rules_of(run(pending, **policy)) == [FORBIDDEN_WILDCARD]
    revoked = CertificateState(ARN, "*.example.com", "PRIVATE", "REVOKED", tags=(("env", "prod"),))
    assert run(revoked, **policy) == []


# -- expiry, use and renewal ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("days", "severity", "words"), [
    (20, "MEDIUM", "(in 20 days)"), (5, "HIGH", "(in 5 days)"), (0.5, "HIGH", "in less than a day"),
    (-2, "CRITICAL", "expired on"), (31, None, None)])
def test_expiring(days: float, severity: str | None, words: str | None) -> None:
    state = CertificateState(ARN, "soon.example.com", "PRIVATE", "ISSUED" if days > 0 else "EXPIRED",
                             not_after=NOW + timedelta(days=days), in_use_by=("lb",))
    found = run(state, rules=[EXPIRING])
    if severity is None or words is None:
        assert found == []
        return
    finding = only(found, EXPIRING)
    assert finding.severity == severity and words in finding.detail
    if days > 0:  # how its renewal stands is not known here: renew it
        assert "renew it now" in finding.action
    else:  # an expired certificate is not renewed any more: replace it
        assert "request or import a new certificate" in finding.action


def test_expiring_window_and_imported_action() -> None:
    state = CertificateState(ARN, "later.example.com", "IMPORTED", "ISSUED", not_after=NOW + timedelta(days=45))
    assert run(state, rules=[EXPIRING]) == []
    finding = only(run(state, expiring_within_days=60, rules=[EXPIRING]), EXPIRING)
    assert "ImportCertificate" in finding.action
    pending = CertificateState(ARN, "p.example.com", "PRIVATE", "PENDING_VALIDATION", not_after=NOW)
    assert run(pending, rules=[EXPIRING]) == []


SHORT = CertificateState(ARN, "short.example.com", "PRIVATE", "ISSUED", not_after=NOW + timedelta(days=5),
                         in_use_by=("lb",), managed_renewal="ON_TRACK", renews_at=NOW + timedelta(days=2))


def test_expiring_leaves_out_a_renewal_planned_in_time_or_under_way() -> None:
    assert run(SHORT) == []  # a short-lived certificate that certsmith renews in two days is no finding at all
    assert run(replace(SHORT, not_after=NOW + timedelta(hours=3), renews_at=NOW + timedelta(hours=1))) == []
    assert run(replace(SHORT, managed_renewal="IN_PROGRESS", renews_at=NOW - timedelta(minutes=5))) == []
    # Expired is expired, whatever the plan said.
    expired = replace(SHORT, status="EXPIRED", not_after=NOW - timedelta(days=1))
    assert only(run(expired), EXPIRING).severity == "CRITICAL"
    # A plan after expiry would not save it.
    late_plan = replace(SHORT, renews_at=SHORT.not_after)
    assert only(run(late_plan), EXPIRING).severity == "HIGH"


@pytest.mark.parametrize(("state", "note", "detail", "action"), [
    ("NEEDS_ACTION", "PCA_INVALID_STATE", "its managed renewal waits for action (PCA_INVALID_STATE)",
     "clear what the renewal waits for"),
    ("OVERDUE", "OTHER: the CA did not answer",
     "its managed renewal was due on 2026-05-31 12:00 UTC and has not happened (OTHER: the CA did not answer)",
     "check that a certsmith worker runs"),
    ("NOT_RENEWED", "it has not been exported and is not in use", "certsmith does not renew it (it has not been exported",
     "request its successor"),
])
def test_expiring_keeps_a_renewal_in_trouble_or_none(state: str, note: str, detail: str, action: str) -> None:
    troubled = replace(SHORT, managed_renewal=state, renewal_note=note, renews_at=NOW - timedelta(days=1))
    finding = only(run(troubled), EXPIRING)
    assert finding.severity == "HIGH" and "(in 5 days)" in finding.detail
    assert detail in finding.detail and action in finding.action
    medium = only(run(replace(troubled, not_after=NOW + timedelta(days=20))), EXPIRING)
    assert medium.severity == "MEDIUM"


def test_expiring_imported_is_a_finding_whatever_it_says_of_renewal() -> None:
    imported = replace(SHORT, type="IMPORTED", managed_renewal="ON_TRACK")  # not possible, and still not trusted
    finding = only(run(imported, rules=[EXPIRING]), EXPIRING)
    assert "ImportCertificate" in finding.action and finding.detail.endswith("(in 5 days)")


def test_a_certificate_a_monitored_endpoint_serves_is_not_unused() -> None:
    served = replace(SHORT, in_use_by=(), not_after=NOW + timedelta(days=200), endpoints=("web1.example.com:443",))
    assert run(served) == []
    assert only(run(replace(served, endpoints=())), UNUSED).severity == "LOW"


def test_how_the_renewal_stands_from_the_columns() -> None:
    at = (NOW + timedelta(days=2)).isoformat()
    planned = {"eligibility": "ELIGIBLE", "at": at, "reason": "a third of the lifetime", "strict": False}
    assert renewal_columns("PRIVATE", planned, None, NOW) == ("ON_TRACK", NOW + timedelta(days=2), None)
    assert renewal_columns("PRIVATE", planned, {"RenewalStatus": "SUCCESS"}, NOW)[0] == "ON_TRACK"
    assert renewal_columns("PRIVATE", planned | {"renewing": "job-1"}, None, NOW)[0] == "IN_PROGRESS"
    waiting = planned | {"renewing": "job-1", "needs_action": "PCA_INVALID_STATE", "last_error": "the private CA\nrefused"}
    assert renewal_columns("PRIVATE", waiting, {"RenewalStatus": "PENDING_AUTO_RENEWAL"}, NOW)[::2] == (
        "NEEDS_ACTION", "PCA_INVALID_STATE: the private CA refused")
    past = planned | {"at": (NOW - timedelta(days=1)).isoformat(), "last_error": "timed out"}
    assert renewal_columns("PRIVATE", past, None, NOW)[::2] == ("OVERDUE", "timed out")
    # A failed attempt the summary tells, before the plan's hour of grace is over.
    just = planned | {"at": (NOW - timedelta(minutes=10)).isoformat(), "last_error": "timed out"}
    failed = {"RenewalStatus": "PENDING_AUTO_RENEWAL", "RenewalStatusReason": "OTHER"}
    assert renewal_columns("PRIVATE", just, failed, NOW)[::2] == ("OVERDUE", "OTHER: timed out")
    validation = {"RenewalStatus": "PENDING_VALIDATION", "RenewalStatusReason": "PENDING_DOMAIN_VALIDATION"}
    assert renewal_columns("AMAZON_ISSUED", just, validation, NOW)[0] == "NEEDS_ACTION"
    # A summary left from an earlier certificate (no error on this one) changes nothing.
    assert renewal_columns("PRIVATE", planned, failed, NOW)[0] == "ON_TRACK"
    strict = {"eligibility": "INELIGIBLE", "reason": "it has not been exported and is not in use"}
    assert renewal_columns("PRIVATE", strict, None, NOW) == ("NOT_RENEWED", None, strict["reason"])
    assert renewal_columns("IMPORTED", {"eligibility": "INELIGIBLE"}, None, NOW)[::2] == ("NOT_RENEWED", "imported")
    assert renewal_columns("PRIVATE", None, None, NOW) == ("NOT_RENEWED", None, "no renewal is planned")


def test_unused_and_imported_without_renewal() -> None:
    far = NOW + timedelta(days=200)
    unused = CertificateState(ARN, "idle.example.com", "AMAZON_ISSUED", "ISSUED", not_after=far)
    finding = only(run(unused), UNUSED)
    assert finding.severity == "LOW" and finding.detail == "issued but associated with no service (InUseBy is empty)"
    exported = CertificateState(ARN, "idle.example.com", "PRIVATE", "ISSUED", not_after=far, exported=True)
    assert "it was exported, so it may be installed where certsmith cannot see" in only(run(exported), UNUSED).detail
    assert run(CertificateState(ARN, "idle.example.com", "PRIVATE", "PENDING_VALIDATION")) == []
    imported = CertificateState(ARN, "ext.example.com", "IMPORTED", "ISSUED", not_after=far, in_use_by=("lb",))
    finding = only(run(imported), IMPORTED_NO_RENEWAL)
    assert "cannot renew it" in finding.detail and "expires on 2026-12-18" in finding.detail
    assert "(in 200 days)" in finding.detail and "ImportCertificate" in finding.action
    expired = CertificateState(ARN, "ext.example.com", "IMPORTED", "EXPIRED", not_after=NOW - timedelta(days=3))
    assert "expired on" in only(run(expired), IMPORTED_NO_RENEWAL).detail
    assert run(imported, rules=[UNUSED]) == []


# -- endpoints --------------------------------------------------------------------------------------------------------
def test_endpoint_serving_an_old_version() -> None:
    drift = EndpointState("web1.example.com", 8443, "www.example.com", "DRIFT", ARN, "www.example.com",
                          served_serial="0a:01", served_not_after=NOW + timedelta(days=3), served_version=1,
                          current_serial="0a:02", current_version=2)
    finding = only(evaluate_endpoint(drift, check_policy()), ENDPOINT_OLD_VERSION)
    assert finding.severity == "HIGH" and finding.certificate_arn == ARN
    assert finding.detail == ("web1.example.com:8443 (server name www.example.com) serves version 1 (serial 0a:01), "
                              "which expires on 2026-06-04 12:00 UTC; the current one is version 2 (serial 0a:02)")
    assert "deploy the current version to web1.example.com:8443" in finding.action
    assert finding.extra == {"Host": "web1.example.com", "Port": 8443, "ServerName": "www.example.com"}
    unknown = EndpointState("::1", 443, "www.example.com", "DRIFT", ARN, served_serial="ff")
    assert "[::1]:443" in only(evaluate_endpoint(unknown, check_policy()), ENDPOINT_OLD_VERSION).detail
    assert "serves serial ff" in evaluate_endpoint(unknown, check_policy())[0].detail
    ok = EndpointState("web1.example.com", 443, "www.example.com", "OK", ARN)
    assert evaluate_endpoint(ok, check_policy()) == []
    assert evaluate_endpoint(drift, check_policy(rules=[UNUSED])) == []


# -- the report's shape -----------------------------------------------------------------------------------------------
def test_order_and_summary() -> None:
    states = [CertificateState(ARN, "a.example.com", "IMPORTED", "ISSUED", not_after=NOW + timedelta(days=3)),
              CertificateState(ARN, "b.example.com", "PRIVATE", "ISSUED", not_after=NOW + timedelta(days=300))]
    policy = check_policy(rules=[UNUSED, EXPIRING, IMPORTED_NO_RENEWAL])
    found = findings_in_order(f for s in states for f in evaluate(s, policy, NOW))
    assert [(f.severity, f.rule, f.domain_name) for f in found] == [
        ("HIGH", EXPIRING, "a.example.com"), ("LOW", UNUSED, "a.example.com"), ("LOW", UNUSED, "b.example.com"),
        ("LOW", IMPORTED_NO_RENEWAL, "a.example.com")]
    assert summary(found, policy) == [(EXPIRING, 1), (UNUSED, 2), (IMPORTED_NO_RENEWAL, 1)]
    assert summary([], check_policy()) == [(rule, 0) for rule in RULES]


def test_split_pem() -> None:
    one = make("a", EC_KEY).public_bytes(serialization.Encoding.PEM).decode()
    two = make("b", EC_KEY).public_bytes(serialization.Encoding.PEM).decode()
    assert split_pem(one + "\n" + two) == [one.strip(), two.strip()]
    assert split_pem(None) == [] and split_pem("") == []
