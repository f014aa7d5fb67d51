"""HTTP-01 through one redirect: Pebble asks nginx (the user's web server), which redirects to certsmith's route.

The route runs in uvicorn over an HttpChallengeStore on a migrated database; Pebble resolves every name through
BIND. Pebble follows the redirect to another port and to an IP literal as well as to a DNS name, and to HTTPS with
a self-signed certificate (a public CA such as Let's Encrypt follows redirects only to ports 80 and 443 and to DNS
names, and does not check the certificate of an HTTPS target).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from cryptography import x509
from starlette.applications import Starlette

from certsmith.acme import (
    AcmeAccount,
    AcmeEndpoint,
    AcmeError,
    AcmeProblem,
    AcmeSession,
    Challenge,
    PlacedOrder,
    generate_account_key,
    register_account,
)
from certsmith.api.http_challenge import http_challenge_routes
from certsmith.domain.clock import SystemClock
from certsmith.services.public.http_validation import CHALLENGE_PATH, HttpChallengeStore, HttpResponder, redirect_for
from certsmith.store.database import Database, migrate
from certsmith.store.tables import CertificateRow
from certsmith.testing.bind import Bind, start_bind
from certsmith.testing.nginx import Nginx, start_nginx
from certsmith.testing.pebble import Pebble, make_tls_cert, start_pebble
from certsmith.testing.pki import make_csr
from certsmith.testing.server import free_port

from ..conftest import need_binary

ACCOUNT = "123456789012"
LABELS = {"www.example.test": "a" * 32, "api.example.test": "b" * 32, "named.example.test": "c" * 32,
          "secure.example.test": "d" * 32, "wrong.example.test": "e" * 32}


@dataclass
class ChallengeServer:
    """certsmith's HTTP-01 route in uvicorn, in a thread of the test process."""

    store: HttpChallengeStore
    port: int
    server: uvicorn.Server
    thread: threading.Thread
    scheme: str = "http"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class Container:
    http_challenges: HttpChallengeStore


def serve_challenges(store: HttpChallengeStore, certfile: Path | None = None) -> ChallengeServer:
    port = free_port()
    app = Starlette(routes=http_challenge_routes(Container(store)))
    tls = {"ssl_certfile": str(certfile), "ssl_keyfile": str(certfile.with_suffix(".key"))} if certfile else {}
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", **tls))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    return ChallengeServer(store, port, server, thread, "https" if certfile else "http")


@dataclass
class World:
    bind: Bind
    nginx: Nginx
    pebble: Pebble
    store: HttpChallengeStore
    plain: ChallengeServer
    secure: ChallengeServer
    endpoint: AcmeEndpoint
    account: AcmeAccount

    def responder(self) -> HttpResponder:
        return HttpResponder(self.store, lambda account_id, name: LABELS[name])


def row(certificate_id: str) -> CertificateRow:
    return CertificateRow(id=certificate_id, account_id=ACCOUNT)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    need_binary("nsupdate")
    home = tmp_path_factory.mktemp("http01")
    bind = start_bind(home / "bind", binary=need_binary("named"))  # example.test: every name is 127.0.0.1
    url = f"sqlite:///{home / 'certsmith.db'}"
    migrate(url)
    database = Database(url)
    store = HttpChallengeStore(database, SystemClock())
    cert_pem, key_pem = make_tls_cert()
    (home / "tls.pem").write_text(cert_pem)
    (home / "tls.key").write_bytes(key_pem)
    plain = serve_challenges(store)
    secure = serve_challenges(store, home / "tls.pem")
    started: list[object] = [bind, plain, secure]
    try:
        targets = {name: f"http://127.0.0.1:{plain.port}{CHALLENGE_PATH}{label}/" for name, label in LABELS.items()}
        targets["named.example.test"] = f"http://challenges.example.test:{plain.port}{CHALLENGE_PATH}{LABELS['named.example.test']}/"
        targets["secure.example.test"] = f"https://127.0.0.1:{secure.port}{CHALLENGE_PATH}{LABELS['secure.example.test']}/"
        nginx = start_nginx(home / "nginx", free_port(), targets, binary=need_binary("nginx"))
        started.append(nginx)
        pebble = start_pebble(home / "pebble", bind.address, binary=need_binary("pebble"), config={"httpPort": nginx.port})
        started.append(pebble)
        endpoint = AcmeEndpoint(pebble.directory_url, pebble.tls_cert_pem)
        yield World(bind, nginx, pebble, store, plain, secure, endpoint,
                    register_account(endpoint, generate_account_key(), "admin@example.test"))
    finally:
        for peer in reversed(started):
            peer.stop()  # type: ignore[attr-defined]
        database.dispose()


@pytest.fixture()
def session(world: World) -> Iterator[AcmeSession]:
    with AcmeSession(world.endpoint, world.account) as acme:
        yield acme


def validate(world: World, acme: AcmeSession, certificate_id: str, names: list[str]) -> PlacedOrder:
    order = acme.new_order(names, challenge_type="http-01")
    world.responder().publish(row(certificate_id), order.challenges)
    for challenge in order.challenges:
        acme.answer(challenge)
    acme.wait_authorizations(order, time.monotonic() + 30)
    return order


def test_order_validated_through_the_redirect_and_finalized(world: World, session: AcmeSession) -> None:
    names = ["www.example.test", "api.example.test"]
    order = session.new_order(names, challenge_type="http-01")
    assert [c.identifier for c in order.challenges] == names
    for challenge in order.challenges:
        assert challenge.type == "http-01" and challenge.status == "pending" and challenge.record_name == ""
        assert challenge.value.startswith(challenge.token + ".") and challenge.txt_value == challenge.value
    world.responder().publish(row("cert-1"), order.challenges)
    with httpx.Client(trust_env=False, follow_redirects=True) as client:  # the path the CA takes, by hand
        first = order.challenges[0]
        answer = client.get(f"http://127.0.0.1:{world.nginx.port}{CHALLENGE_PATH}{first.token}",
                            headers={"Host": "www.example.test"})
        assert answer.status_code == 200 and answer.text == first.value
        assert answer.headers["content-type"].startswith("text/plain") and len(answer.history) == 1
    for challenge in order.challenges:
        session.answer(challenge)
    deadline = time.monotonic() + 30
    session.wait_authorizations(order, deadline)
    csr, _ = make_csr("www.example.test", names)
    chain = session.finalize(order, csr, deadline)
    leaf = x509.load_pem_x509_certificates(chain.encode())[0]
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert sorted(sans) == sorted(names)
    log = (world.nginx.home / "logs" / "access.log").read_text()
    assert f"{CHALLENGE_PATH}{first.token} HTTP/1.1\" 302" in log  # Pebble came through nginx
    world.responder().clear(row("cert-1"))
    assert world.store.key_authorization(LABELS["www.example.test"], first.token) is None


def test_redirect_to_a_dns_name_on_another_port(world: World, session: AcmeSession) -> None:
    validate(world, session, "cert-2", ["named.example.test"])
    world.store.clear("cert-2")


def test_redirect_to_https_with_a_self_signed_certificate(world: World, session: AcmeSession) -> None:
    validate(world, session, "cert-3", ["secure.example.test"])
    world.store.clear("cert-3")


def test_a_wrong_key_authorization_is_refused(world: World, session: AcmeSession) -> None:
    order = session.new_order(["wrong.example.test"], challenge_type="http-01")
    (challenge,) = order.challenges
    world.store.publish("cert-4", [(LABELS["wrong.example.test"], challenge.token, challenge.token + ".not-the-thumbprint")])
    session.answer(challenge)
    with pytest.raises(AcmeProblem) as refused:
        session.wait_authorizations(order, time.monotonic() + 30)
    print("wrong key authorization:", refused.value)
    assert refused.value.identifier == "wrong.example.test" and refused.value.code in ("unauthorized", "incorrectResponse")
    assert session.order_state(order.url) == "invalid"
    world.store.clear("cert-4")


def test_a_name_without_the_redirect_is_refused(world: World, session: AcmeSession) -> None:
    """other.example.test resolves, but nginx has no rule for it: a 404, which Pebble reports."""
    order = session.new_order(["other.example.test"], challenge_type="http-01")
    session.answer(order.challenges[0])
    with pytest.raises(AcmeProblem) as refused:
        session.wait_authorizations(order, time.monotonic() + 30)
    print("no redirect:", refused.value)
    assert refused.value.identifier == "other.example.test" and "404" in refused.value.detail


def test_wildcards_have_no_http01(session: AcmeSession) -> None:
    with pytest.raises(AcmeError, match=r"offers no http-01 challenge for \*\.example\.test .*dns-01 only.*dns-01"):
        session.new_order(["example.test", "*.example.test"], challenge_type="http-01")


def test_the_route_and_the_store(world: World) -> None:
    challenge = Challenge("www.example.test", "http-01", "tok-1", "", "tok-1.thumb", "u", "a", "pending")
    done = Challenge("api.example.test", "http-01", "tok-2", "", "tok-2.thumb", "u", "a", "valid")
    dns = Challenge("api.example.test", "dns-01", "tok-3", "_acme-challenge.api.example.test", "txt", "u", "a", "pending")
    world.responder().publish(row("cert-5"), [challenge, done, dns])
    base = f"http://127.0.0.1:{world.plain.port}{CHALLENGE_PATH}"
    with httpx.Client(trust_env=False) as client:
        found = client.get(f"{base}{'a' * 32}/tok-1")
        assert (found.status_code, found.text, found.headers["cache-control"]) == (200, "tok-1.thumb", "no-store")
        assert client.head(f"{base}{'a' * 32}/tok-1").status_code == 200
        for missing in (f"{'b' * 32}/tok-2", f"{'b' * 32}/tok-3", f"{'b' * 32}/tok-1", f"{'a' * 32}/tok-9",
                        "a%27b/tok-1", f"{'a' * 32}/tok-1/more", f"{'a' * 32}/"):
            assert client.get(base + missing).status_code == 404, missing
        world.store.publish("cert-5", [("a" * 32, "tok-1", "tok-1.other")])  # replaces the certificate's own
        assert client.get(f"{base}{'a' * 32}/tok-1").text == "tok-1.other"
        world.store.publish("cert-6", [("f" * 32, "tok-6", "tok-6.thumb")])
        world.store.clear("cert-5")
        assert client.get(f"{base}{'a' * 32}/tok-1").status_code == 404
        assert client.get(f"{base}{'f' * 32}/tok-6").text == "tok-6.thumb"
    world.store.clear("cert-6")
    assert redirect_for("http://127.0.0.1:8000", "f" * 32, "www.example.test")["RedirectTo"] == \
        f"http://127.0.0.1:8000{CHALLENGE_PATH}{'f' * 32}/"
