"""certsmith.acme against Pebble: accounts, EAB, DNS-01 orders, refusals, outages and badNonce storms.

HTTP-01 orders are in test_acme_http01.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from acme import messages
from acme.client import ClientNetwork
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from josepy import jwa, jwk

from certsmith.acme import (
    AcmeAccount,
    AcmeEndpoint,
    AcmeError,
    AcmeProblem,
    AcmeRateLimited,
    AcmeSession,
    AcmeUnavailable,
    Challenge,
    DnsChallenge,
    PlacedOrder,
    directory_meta,
    generate_account_key,
    register_account,
)
from certsmith.acme.errors import error_from_response, retry_after_seconds
from certsmith.testing.pebble import ChallTestSrv, Pebble, make_tls_cert, start_challtestsrv, start_pebble
from certsmith.testing.pki import make_csr

from ..conftest import need_binary

EAB_KID = "kid-1"
EAB_KEY = base64.urlsafe_b64encode(b"k" * 32).decode().rstrip("=")
THREE = ["example.test", "*.example.test", "api.example.test"]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@pytest.fixture(scope="module")
def pebble_binary() -> str:
    return need_binary("pebble")


@pytest.fixture(scope="module")
def pebble(tmp_path_factory: pytest.TempPathFactory, pebble_binary: str) -> Iterator[Pebble]:
    server = start_pebble(tmp_path_factory.mktemp("pebble"), None, always_valid=True, binary=pebble_binary,
                          config={"domainBlocklist": ["blocked.test"]})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def endpoint(pebble: Pebble) -> AcmeEndpoint:
    return AcmeEndpoint(pebble.directory_url, pebble.tls_cert_pem)


@pytest.fixture(scope="module")
def account(endpoint: AcmeEndpoint) -> AcmeAccount:
    return register_account(endpoint, generate_account_key(), "admin@example.test")


@pytest.fixture()
def session(endpoint: AcmeEndpoint, account: AcmeAccount) -> Iterator[AcmeSession]:
    with AcmeSession(endpoint, account) as acme:
        yield acme


def issue(acme: AcmeSession, names: list[str], within: float = 30.0) -> tuple[PlacedOrder, str]:
    order = acme.new_order(names)
    for challenge in order.challenges:
        acme.answer(challenge)
    deadline = time.monotonic() + within
    acme.wait_authorizations(order, deadline)
    csr, _ = make_csr(names[0].removeprefix("*."), names)
    return order, acme.finalize(order, csr, deadline)


def post_as_get(pebble: Pebble, account: AcmeAccount, url: str) -> Any:
    """The resource at ``url``, fetched with the acme library alone (an independent view of the CA's state)."""
    key = serialization.load_pem_private_key(account.key_pem, password=None)
    net = ClientNetwork(key=jwk.JWKEC(key=key), alg=jwa.ES256, verify_ssl=str(pebble.home / "cert.pem"),  # type: ignore[arg-type]
                        account=messages.RegistrationResource(body=messages.Registration(), uri=account.uri))
    nonce_url = net.get(pebble.directory_url).json()["newNonce"]
    return net.post(url, None, new_nonce_url=nonce_url).json()


def thumbprint(key_pem: bytes) -> str:
    """RFC 7638 thumbprint of an EC P-256 account key, computed by hand."""
    key = serialization.load_pem_private_key(key_pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    numbers = key.public_key().public_numbers()
    members = {"crv": "P-256", "kty": "EC", "x": b64url(numbers.x.to_bytes(32, "big")),
               "y": b64url(numbers.y.to_bytes(32, "big"))}
    return b64url(hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).digest())


def test_account_key_is_p256_pkcs8() -> None:
    pem = generate_account_key()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"


def test_directory_meta(endpoint: AcmeEndpoint) -> None:
    meta = directory_meta(endpoint)
    assert meta["externalAccountRequired"] is False
    assert meta["termsOfService"]


def test_register_again_with_the_same_key_finds_the_same_account(endpoint: AcmeEndpoint) -> None:
    key = generate_account_key()
    first = register_account(endpoint, key, "admin@example.test")
    again = register_account(endpoint, key, None)
    assert first.uri.startswith("https://127.0.0.1:") and again.uri == first.uri
    assert register_account(endpoint, generate_account_key(), None).uri != first.uri


def test_register_checks_its_inputs(endpoint: AcmeEndpoint) -> None:
    key = generate_account_key()
    with pytest.raises(ValueError, match="eab_hmac_key"):
        register_account(endpoint, key, None, EAB_KID, "not base64url!")
    with pytest.raises(ValueError, match="eab_kid and eab_hmac_key"):
        register_account(endpoint, key, None, EAB_KID)
    with pytest.raises(ValueError, match="email"):
        register_account(endpoint, key, "a@example.test,b@example.test")
    with pytest.raises(ValueError, match="key_pem") as caught:
        register_account(endpoint, b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", None)
    assert "AAAA" not in str(caught.value)
    with pytest.raises(ValueError, match="ca_bundle_pem"):
        register_account(AcmeEndpoint(endpoint.directory_url, "not a certificate"), key, None)


def test_external_account_binding(tmp_path: Path, pebble_binary: str) -> None:
    server = start_pebble(tmp_path, None, always_valid=True, binary=pebble_binary,
                          config={"externalAccountBindingRequired": True, "externalAccountMACKeys": {EAB_KID: EAB_KEY}})
    try:
        endpoint = AcmeEndpoint(server.directory_url, server.tls_cert_pem)
        assert directory_meta(endpoint)["externalAccountRequired"] is True
        key = generate_account_key()
        with pytest.raises(AcmeProblem) as without:
            register_account(endpoint, key, None)
        assert without.value.code == "externalAccountRequired", without.value.as_dict()
        with pytest.raises(AcmeProblem) as wrong:
            register_account(endpoint, key, None, EAB_KID, b64url(b"w" * 32))
        assert wrong.value.status is not None and 400 <= wrong.value.status < 500, wrong.value.as_dict()
        print("wrong EAB key:", wrong.value.as_dict())
        bound = register_account(endpoint, key, "admin@example.test", EAB_KID, EAB_KEY)
        assert register_account(endpoint, key, None, EAB_KID, EAB_KEY).uri == bound.uri
        with AcmeSession(endpoint, bound) as acme:
            issue(acme, ["eab.example.test"])
    finally:
        server.stop()


def test_order_for_a_name_its_wildcard_and_another(pebble: Pebble, session: AcmeSession, account: AcmeAccount,
                                                   tmp_path: Path) -> None:
    order = session.new_order(THREE)
    assert order.status == "pending" and order.url and order.finalize_url
    assert [c.identifier for c in order.challenges] == THREE
    assert [c.record_name for c in order.challenges] == ["_acme-challenge.example.test"] * 2 + [
        "_acme-challenge.api.example.test"]
    assert len({c.txt_value for c in order.challenges}) == 3
    assert all(c.status == "pending" for c in order.challenges)
    for challenge in order.challenges:  # the value is base64url(sha256(token "." thumbprint)), checked independently
        authz = post_as_get(pebble, account, challenge.authorization_url)
        assert authz["status"] == "pending" and authz["identifier"]["value"] == challenge.identifier.removeprefix("*.")
        assert authz.get("wildcard", False) == challenge.identifier.startswith("*.")
        (dns,) = [c for c in authz["challenges"] if c["type"] == "dns-01"]
        assert dns["url"] == challenge.challenge_url
        key_authorization = f"{dns['token']}.{thumbprint(account.key_pem)}"
        assert challenge.txt_value == b64url(hashlib.sha256(key_authorization.encode()).digest())
        assert challenge.type == "dns-01" and challenge.token == dns["token"] and challenge.value == challenge.txt_value
    for challenge in order.challenges:
        session.answer(challenge)
    deadline = time.monotonic() + 30
    session.wait_authorizations(order, deadline)
    csr, _ = make_csr("example.test", THREE)
    chain = session.finalize(order, csr, deadline)
    assert session.order_state(order.url) == "valid"
    certs = x509.load_pem_x509_certificates(chain.encode())
    sans = certs[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert sorted(sans) == sorted(THREE)
    assert not certs[0].extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    (tmp_path / "roots.pem").write_text(pebble.roots_pem())
    (tmp_path / "intermediates.pem").write_text(pebble.intermediates_pem())
    (tmp_path / "leaf.pem").write_bytes(certs[0].public_bytes(serialization.Encoding.PEM))
    verified = subprocess.run([need_binary("openssl"), "verify", "-CAfile", str(tmp_path / "roots.pem"), "-untrusted",
                               str(tmp_path / "intermediates.pem"), str(tmp_path / "leaf.pem")],
                              capture_output=True, text=True, check=False)
    assert verified.returncode == 0 and verified.stdout.strip().endswith("OK"), verified.stdout + verified.stderr
    # a caller that lost track after a restart: answering and finalizing again are harmless
    session.answer(order.challenges[0])
    assert session.finalize(order, csr, time.monotonic() + 10) == chain


def test_real_dns01_validation(tmp_path: Path, pebble_binary: str) -> None:
    """Without PEBBLE_VA_ALWAYS_VALID: Pebble looks the TXT values up, so they must be right."""
    dns: ChallTestSrv = start_challtestsrv(tmp_path / "dns", need_binary("pebble-challtestsrv"))
    server = start_pebble(tmp_path / "pebble", dns.dns_address, binary=pebble_binary)
    try:
        endpoint = AcmeEndpoint(server.directory_url, server.tls_cert_pem)
        with AcmeSession(endpoint, register_account(endpoint, generate_account_key(), None)) as acme:
            order = acme.new_order(["dns.example.test", "*.dns.example.test"])
            for challenge in order.challenges:
                dns.add_txt(challenge.record_name, challenge.txt_value)
                acme.answer(challenge)
            deadline = time.monotonic() + 30
            acme.wait_authorizations(order, deadline)
            csr, _ = make_csr("dns.example.test", ["dns.example.test", "*.dns.example.test"])
            assert acme.finalize(order, csr, deadline).count("BEGIN CERTIFICATE") >= 2

            bad = acme.new_order(["ok.example.test", "*.bad.example.test"])
            for challenge in bad.challenges:
                value = challenge.txt_value if challenge.identifier == "ok.example.test" else "wrong-value"
                dns.add_txt(challenge.record_name, value)
                acme.answer(challenge)
            with pytest.raises(AcmeProblem) as refused:
                acme.wait_authorizations(bad, time.monotonic() + 30)
            assert refused.value.identifier == "*.bad.example.test"
            assert refused.value.code in ("unauthorized", "incorrectResponse"), refused.value.as_dict()
            assert refused.value.detail
            assert acme.order_state(bad.url) == "invalid"
    finally:
        server.stop()
        dns.stop()


def test_refused_order_keeps_the_problem(session: AcmeSession) -> None:
    with pytest.raises(AcmeProblem) as refused:
        session.new_order(["www.blocked.test"])
    problem = refused.value
    assert problem.code == "rejectedIdentifier" and problem.type.startswith("urn:ietf:params:acme:error:")
    assert "www.blocked.test" in problem.detail and problem.status == 400
    assert set(problem.as_dict()) == {"type", "detail", "status", "subproblems"}
    json.dumps(problem.as_dict())


def test_bad_names_are_refused_before_the_ca(session: AcmeSession) -> None:
    with pytest.raises(ValueError, match="names"):
        session.new_order([])
    with pytest.raises(ValueError, match="names"):
        session.new_order("example.test")
    with pytest.raises(ValueError, match="names"):
        session.new_order(["bad name.test"])
    with pytest.raises(ValueError, match="challenge_type: 'tls-alpn-01'"):
        session.new_order(["example.test"], challenge_type="tls-alpn-01")


def test_dns_challenge_is_the_challenge_under_its_old_name() -> None:
    assert DnsChallenge is Challenge
    challenge = Challenge("a.test", "dns-01", "tok", "_acme-challenge.a.test", "txt", "u", "a", "pending")
    assert challenge.txt_value == "txt"


def test_wait_past_the_deadline_is_a_timeout(session: AcmeSession) -> None:
    order = session.new_order(["unanswered.example.test"])
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        session.wait_authorizations(order, started + 0.3)
    assert time.monotonic() - started < 2


def test_finalize_refusals(session: AcmeSession) -> None:
    order = session.new_order(["early.example.test"])
    csr, _ = make_csr("early.example.test", ["early.example.test"])
    with pytest.raises(AcmeProblem) as early:
        session.finalize(order, csr, time.monotonic() + 5)
    assert early.value.code == "orderNotReady"
    with pytest.raises(ValueError, match="csr_pem"):
        session.finalize(order, b"not a csr", time.monotonic() + 5)
    session.answer(order.challenges[0])
    session.wait_authorizations(order, time.monotonic() + 10)
    other, _ = make_csr("other.example.test", ["other.example.test"])
    with pytest.raises(AcmeProblem) as refused:
        session.finalize(order, other, time.monotonic() + 5)
    assert refused.value.code in ("badCSR", "unauthorized") and "early.example.test" in refused.value.detail
    assert "BEGIN CERTIFICATE" in session.finalize(order, csr, time.monotonic() + 10)


def test_outage_and_restart(tmp_path: Path, pebble_binary: str, monkeypatch: pytest.MonkeyPatch) -> None:
    server = start_pebble(tmp_path, None, always_valid=True, binary=pebble_binary)
    try:
        endpoint = AcmeEndpoint(server.directory_url, server.tls_cert_pem)
        key = generate_account_key()
        account = register_account(endpoint, key, None)
        with AcmeSession(endpoint, account) as acme:
            issue(acme, ["before.example.test"])
            server.stop()
            with pytest.raises(AcmeUnavailable, match="Connection refused") as down:
                acme.new_order(["during.example.test"])
            assert down.value.retry_after is None
            with pytest.raises(AcmeUnavailable):
                register_account(endpoint, key, None)
            server.start()
            # Pebble forgets its accounts when it restarts: the caller sees accountDoesNotExist and registers again
            with pytest.raises(AcmeProblem) as forgotten:
                acme.new_order(["after.example.test"])
            assert forgotten.value.code == "accountDoesNotExist"
        account = register_account(endpoint, key, None)
        with AcmeSession(endpoint, account) as acme:
            issue(acme, ["after.example.test"])

        # the bundle given is what is trusted, never REQUESTS_CA_BUNDLE
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.home / "cert.pem"))
        with pytest.raises(AcmeUnavailable, match="TLS"):
            directory_meta(AcmeEndpoint(endpoint.directory_url, make_tls_cert()[0]))
        assert directory_meta(endpoint)["externalAccountRequired"] is False
    finally:
        server.stop()


def test_bad_nonce_storm(tmp_path: Path, pebble_binary: str, caplog: pytest.LogCaptureFixture) -> None:
    """Pebble rejecting half of all nonces: the client keeps retrying, so every order goes through."""
    caplog.set_level(logging.DEBUG, logger="certsmith.acme")
    server = start_pebble(tmp_path, None, always_valid=True, binary=pebble_binary, env={"PEBBLE_WFE_NONCEREJECT": "50"})
    try:
        endpoint = AcmeEndpoint(server.directory_url, server.tls_cert_pem)
        account = register_account(endpoint, generate_account_key(), None)
        with AcmeSession(endpoint, account) as acme:
            for n in range(5):
                _, chain = issue(acme, [f"nonce{n}.example.test", f"*.nonce{n}.example.test"])
                assert chain.count("BEGIN CERTIFICATE") >= 2
        retries = [r for r in caplog.records if "badNonce" in r.getMessage()]
        print(f"badNonce retries over 5 orders: {len(retries)}")
        assert retries, "Pebble rejected no nonce: the storm did not happen"
        assert any("attempt 3" in r.getMessage() for r in retries), "never two badNonce in a row"
    finally:
        server.stop()


def test_one_name_end_to_end_time(session: AcmeSession) -> None:
    started = time.monotonic()
    _, chain = issue(session, ["timed.example.test"])
    elapsed = time.monotonic() - started
    print(f"order + answer + wait + finalize for one name: {elapsed * 1000:.0f} ms")
    assert "BEGIN CERTIFICATE" in chain


def test_retry_after_parsing() -> None:
    import datetime

    now = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)
    assert retry_after_seconds("120") == 120.0
    assert retry_after_seconds("Thu, 01 Jan 2026 12:00:30 GMT", now) == 30.0
    assert retry_after_seconds("Thu, 01 Jan 2026 11:00:00 GMT", now) == 0.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None


def answer_of(status: int, body: Any, headers: dict[str, str] | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code, response.url = status, "https://ca.test/order-plz"
    response.headers.update(headers or {})
    response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return response


def test_error_responses_are_mapped() -> None:
    limited = error_from_response(answer_of(429, {"type": "urn:ietf:params:acme:error:rateLimited", "detail": "slow down"},
                                            {"Retry-After": "7"}))
    assert isinstance(limited, AcmeRateLimited) and limited.retry_after == 7.0 and "slow down" in str(limited)
    assert limited.problem is not None and limited.problem["status"] == 429
    down = error_from_response(answer_of(503, b"<html>maintenance</html>", {"Retry-After": "30"}))
    assert type(down) is AcmeUnavailable and down.retry_after == 30.0 and "503" in str(down)
    failed = error_from_response(answer_of(500, {"type": "urn:ietf:params:acme:error:serverInternal", "detail": "oops"}))
    assert type(failed) is AcmeUnavailable and failed.problem is not None and "oops" in str(failed)
    caa = {"type": "urn:ietf:params:acme:error:caa", "detail": "CAA forbids", "identifier": {"type": "dns", "value": "a.test"}}
    compound = error_from_response(answer_of(403, {"type": "urn:ietf:params:acme:error:compound", "detail": "several",
                                                   "subproblems": [caa]}))
    assert isinstance(compound, AcmeProblem) and compound.status == 403 and compound.code == "compound"
    assert compound.subproblems[0]["identifier"]["value"] == "a.test" and "a.test: caa: CAA forbids" in str(compound)
    plain = error_from_response(answer_of(404, b"not found"))
    assert type(plain) is AcmeError and "404" in str(plain)


def test_errors_form_a_hierarchy() -> None:
    assert issubclass(AcmeRateLimited, AcmeUnavailable) and issubclass(AcmeUnavailable, AcmeError)
    assert issubclass(AcmeProblem, AcmeError)
    problem = AcmeProblem("urn:ietf:params:acme:error:accountDoesNotExist", "gone", 400)
    assert problem.code == "accountDoesNotExist" and "gone" in str(problem)
