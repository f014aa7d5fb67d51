"""ACME Renewal Information (RFC 9773) against Pebble 2.6 on loopback: the client's renewalInfo and "replaces", and
the ordering service's obtain / renewal_window / replaces_id that managed renewal calls.

Pebble 2.6 comes from scripts/fetch_pebble_ari.sh (or $CERTSMITH_PEBBLE_ARI); Pebble 2.4 on PATH has no renewalInfo.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from acme import messages
from acme.client import ClientNetwork, ClientV2
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from josepy import jwa, jwk

from certsmith.acme import (
    AcmeAccount,
    AcmeEndpoint,
    AcmeProblem,
    AcmeSession,
    AcmeUnavailable,
    certificate_id,
    generate_account_key,
    register_account,
)
from certsmith.domain.acm import FailureReason
from certsmith.domain.clock import SystemClock
from certsmith.services.acm.certificates import RequestedCertificate
from certsmith.services.acm.private_signing import PrivateMaterial
from certsmith.services.context import Caller
from certsmith.services.public.issuers import IssuerSpec
from certsmith.services.public.ordering import OrderRefused
from certsmith.services.wiring import Container, build
from certsmith.settings import Settings
from certsmith.store.tables import CertificateRow
from certsmith.testing.pebble import ARI_ENV, Pebble, ari_pebble_binary, start_pebble
from certsmith.testing.pki import make_csr
from certsmith.worker.loop import RunLater

from ..conftest import IN_CI, backend_url, need_binary
from ..integration.ca_world import make_root

VALIDITY = timedelta(days=90)
NAMES = ["ari.example.test", "www.ari.example.test"]


def need_ari_pebble() -> str:
    """Pebble with renewalInfo: skipped on a laptop without it, a failure in CI."""
    path = ari_pebble_binary()
    if path is None or not os.access(path, os.X_OK):
        message = f"a Pebble with renewalInfo (2.6): run scripts/fetch_pebble_ari.sh or set {ARI_ENV}"
        if IN_CI:
            pytest.fail(f"{message} (required in CI)")
        pytest.skip(message)
    return path


def start_ari_pebble(home: Path) -> Pebble:
    return start_pebble(home, None, always_valid=True, binary=need_ari_pebble(),
                        validity_seconds=int(VALIDITY.total_seconds()))


@pytest.fixture(scope="module")
def pebble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    server = start_ari_pebble(tmp_path_factory.mktemp("pebble-ari"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def account(pebble: Pebble) -> AcmeAccount:
    return register_account(AcmeEndpoint(pebble.directory_url, pebble.tls_cert_pem), generate_account_key(), None)


@pytest.fixture()
def session(pebble: Pebble, account: AcmeAccount) -> Iterator[AcmeSession]:
    with AcmeSession(AcmeEndpoint(pebble.directory_url, pebble.tls_cert_pem), account) as acme:
        yield acme


def issue(acme: AcmeSession, names: list[str], replaces: str | None = None) -> tuple[str, x509.Certificate]:
    """(order URL, leaf) of a certificate from an always-valid Pebble."""
    order = acme.new_order(names, replaces=replaces)
    for challenge in order.challenges:
        acme.answer(challenge)
    deadline = time.monotonic() + 30
    acme.wait_authorizations(order, deadline)
    csr, _ = make_csr(names[0], names)
    return order.url, x509.load_pem_x509_certificates(acme.finalize(order, csr, deadline).encode())[0]


def pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def pebble_client(pebble: Pebble, account: AcmeAccount) -> tuple[ClientV2, ClientNetwork]:
    """The acme library alone, for what certsmith's client does not do (revoking) and an independent view."""
    key = serialization.load_pem_private_key(account.key_pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    net = ClientNetwork(key=jwk.JWKEC(key=key), alg=jwa.ES256, verify_ssl=str(pebble.home / "cert.pem"),  # type: ignore[arg-type]
                        account=messages.RegistrationResource(body=messages.Registration(), uri=account.uri))
    return ClientV2(ClientV2.get_directory(pebble.directory_url, net), net), net


def fetch_order(pebble: Pebble, account: AcmeAccount, url: str) -> dict[str, Any]:
    client, net = pebble_client(pebble, account)
    document: dict[str, Any] = net.post(url, None, new_nonce_url=client.directory["newNonce"]).json()
    return document


# -- the client ---------------------------------------------------------------------------------------------------
def test_the_window_of_a_fresh_certificate_lies_inside_its_validity(session: AcmeSession) -> None:
    assert session.supports_renewal_info()
    _, leaf = issue(session, ["fresh.example.test"])
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == VALIDITY - timedelta(seconds=1)
    info = session.renewal_info(pem(leaf))
    assert info is not None
    assert leaf.not_valid_before_utc < info.start < info.end < leaf.not_valid_after_utc
    assert info.start > datetime.now(UTC) + timedelta(days=30)
    assert info.start.tzinfo == UTC and info.end.tzinfo == UTC
    assert info.retry_after is not None and info.retry_after > 0  # Pebble says 21600 s
    assert info.explanation_url is None


def test_after_revocation_the_window_starts_in_the_past(pebble: Pebble, account: AcmeAccount,
                                                        session: AcmeSession) -> None:
    _, leaf = issue(session, ["revoked.example.test"])
    client, _ = pebble_client(pebble, account)
    client.revoke(leaf, 1)  # keyCompromise
    info = session.renewal_info(pem(leaf))
    assert info is not None
    assert info.start < datetime.now(UTC) < leaf.not_valid_after_utc
    assert info.end < leaf.not_valid_before_utc + timedelta(days=1)


def test_an_order_that_replaces_a_certificate_is_recorded_and_only_once(pebble: Pebble, account: AcmeAccount,
                                                                       session: AcmeSession) -> None:
    _, old = issue(session, ["replaced.example.test"])
    old_id = certificate_id(old)
    url, new = issue(session, ["replaced.example.test"], replaces=old_id)
    assert fetch_order(pebble, account, url)["replaces"] == old_id
    assert new.serial_number != old.serial_number
    with pytest.raises(AcmeProblem, match="already has a replacement order") as refused:
        session.new_order(["replaced.example.test"], replaces=old_id)
    assert refused.value.status == 409  # Conflict
    plain_url, _ = issue(session, ["replaced.example.test"])  # without replaces, nothing is sent
    assert "replaces" not in fetch_order(pebble, account, plain_url)
    with pytest.raises(ValueError, match="replaces: 'not an id' is not an ACME certificate id"):
        session.new_order(["replaced.example.test"], replaces="not an id")


def test_a_certificate_the_ca_did_not_issue_is_a_problem(session: AcmeSession, tmp_path: Path) -> None:
    other = start_ari_pebble(tmp_path / "other")  # another CA, with its own intermediate
    try:
        with AcmeSession(AcmeEndpoint(other.directory_url, other.tls_cert_pem),
                         register_account(AcmeEndpoint(other.directory_url, other.tls_cert_pem),
                                          generate_account_key(), None)) as elsewhere:
            _, foreign = issue(elsewhere, ["foreign.example.test"])
    finally:
        other.stop()
    with pytest.raises(AcmeProblem, match="malformed") as refused:
        session.renewal_info(pem(foreign))
    assert refused.value.status == 400


def test_a_ca_that_went_away_is_unavailable(tmp_path: Path) -> None:
    server = start_ari_pebble(tmp_path / "pebble")
    endpoint = AcmeEndpoint(server.directory_url, server.tls_cert_pem)
    try:
        with AcmeSession(endpoint, register_account(endpoint, generate_account_key(), None)) as acme:
            _, leaf = issue(acme, ["gone.example.test"])
            assert acme.supports_renewal_info()  # the directory is read now, and kept
            server.stop()
            with pytest.raises(AcmeUnavailable, match=r"cannot reach the ACME server .* the connection failed"):
                acme.renewal_info(pem(leaf))
    finally:
        server.stop()


def test_a_ca_without_renewal_info(tmp_path: Path, session: AcmeSession) -> None:
    old = start_pebble(tmp_path / "pebble-2.4", None, always_valid=True, binary=need_binary("pebble"))
    endpoint = AcmeEndpoint(old.directory_url, old.tls_cert_pem)
    try:
        with AcmeSession(endpoint, register_account(endpoint, generate_account_key(), None)) as acme:
            assert not acme.supports_renewal_info()
            _, leaf = issue(session, ["elsewhere.example.test"])
            assert acme.renewal_info(pem(leaf)) is None
    finally:
        old.stop()


# -- the ordering service -------------------------------------------------------------------------------------------
@dataclass
class World:
    container: Container
    caller: Caller
    pebble: Pebble

    def request(self, names: list[str], issuer: str = "pebble") -> str:
        """A certificate validated by HTTP (Pebble is always-valid), issued by the order job."""
        arn = self.container.public_requests.request(self.caller, RequestedCertificate(
            names[0], names[1:], None, "EC_prime256v1", None, {}, [{"Key": "certsmith:issuer", "Value": issuer}],
            validation_method="HTTP"))
        certificate_id_ = arn.rsplit("/", 1)[1]
        self.container.ordering.run({"certificate_id": certificate_id_})
        row = self.row(certificate_id_)
        assert row.status == "ISSUED", row.acme
        return certificate_id_

    def row(self, certificate_id_: str) -> CertificateRow:
        with self.container.database.read() as session:
            row = session.get(CertificateRow, certificate_id_)
            assert row is not None
            return row

    def last_order(self, certificate_id_: str) -> dict[str, Any]:
        """The ACME order the row's last attempt placed, as Pebble has it."""
        url = (self.row(certificate_id_).acme or {})["order_url"]
        return fetch_order(self.pebble, self.acme_account(), url)

    def acme_account(self) -> AcmeAccount:
        issuer = self.container.issuers.by_name(self.caller.account_id, self.caller.region, "pebble")
        assert issuer is not None
        with self.container.issuers.session(issuer) as acme:
            return acme.account


@pytest.fixture()
def world(tmp_path: Path) -> Iterator[World]:
    server = start_ari_pebble(tmp_path / "pebble")
    container = build(Settings(data_dir=tmp_path / "data", database_url=backend_url(),
                               public_url="https://certsmith.example.test"), SystemClock())
    try:
        key_id = (tmp_path / "data" / "credentials").read_text().split("aws_access_key_id = ")[1].split("\n")[0]
        credential = container.accounts.credential(key_id)
        assert credential is not None
        caller = Caller(credential.account_id, "us-east-1", credential.principal)
        container.issuers.create(caller, IssuerSpec("pebble", directory_url=server.directory_url,
                                                    contact_email="admin@example.test", ca_bundle_pem=server.tls_cert_pem,
                                                    default=True))
        yield World(container, caller, server)
    finally:
        server.stop()
        container.writes.close()
        container.database.dispose()


def leaf_of(material: PrivateMaterial) -> x509.Certificate:
    return x509.load_pem_x509_certificate(material.certificate_pem.encode())


def test_renewal_window_and_replaces_id_of_an_issued_certificate(world: World) -> None:
    ordering = world.container.ordering
    row = world.row(world.request(NAMES))
    assert row.certificate_pem is not None and row.not_before is not None and row.not_after is not None
    assert ordering.replaces_id(row) == certificate_id(x509.load_pem_x509_certificate(row.certificate_pem.encode()))
    before = datetime.now(UTC)
    window = ordering.renewal_window(row)
    assert window is not None
    assert row.not_before < window.start < window.end < row.not_after
    assert window.retry_after is not None and before < window.retry_after <= datetime.now(UTC) + timedelta(days=1)
    assert window.explanation_url is None


def test_obtain_renews_an_issued_certificate_as_its_replacement(world: World) -> None:
    ordering = world.container.ordering
    row = world.row(world.request(NAMES))
    old_id = ordering.replaces_id(row)
    material = ordering.obtain(row, replaces=old_id)
    leaf = leaf_of(material)
    assert sorted(n.value for n in leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value) == \
        sorted(NAMES)
    assert material.facts.serial != row.serial and material.certificate_pem != row.certificate_pem
    assert material.chain_pem.startswith("-----BEGIN CERTIFICATE-----")
    assert world.last_order(row.id)["replaces"] == old_id
    assert world.row(row.id).status == "ISSUED"  # obtain hands the certificate back; it stores nothing of it

    # The same certificate replaced twice: Pebble refuses the second "replaces", the order goes ahead without it.
    again = ordering.obtain(row, replaces=old_id)
    assert leaf_of(again).serial_number != leaf.serial_number
    assert "replaces" not in world.last_order(row.id)


def test_obtain_with_the_same_key(world: World) -> None:
    row = world.row(world.request(["reuse.example.test"]))
    key = ec.generate_private_key(ec.SECP256R1())
    material = world.container.ordering.obtain(row, key=key)
    assert leaf_of(material).public_key() == key.public_key()


def test_after_a_ca_restart_the_replacement_is_ordered_without_replaces(world: World,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    ordering = world.container.ordering
    row = world.row(world.request(["restart.example.test"]))
    world.pebble.stop()
    world.pebble.start()  # a new CA: it forgot the account, the certificate and its issuer
    caplog.set_level(logging.INFO, logger="certsmith.ordering")
    assert ordering.renewal_window(row) is None
    assert "no renewal information from issuer pebble" in caplog.text and "malformed" in caplog.text
    old_id = ordering.replaces_id(row)
    assert old_id is not None
    material = ordering.obtain(row, replaces=old_id)
    assert "ordering without it" in caplog.text
    assert certificate_id(leaf_of(material)).split(".")[0] != old_id.split(".")[0]  # signed by the new CA
    assert "replaces" not in world.last_order(row.id)


def test_a_ca_that_is_down(world: World, caplog: pytest.LogCaptureFixture) -> None:
    ordering = world.container.ordering
    row = world.row(world.request(["down.example.test"]))
    world.pebble.stop()
    caplog.set_level(logging.WARNING, logger="certsmith.ordering")
    assert ordering.renewal_window(row) is None
    assert "no renewal information from issuer pebble" in caplog.text and "the connection failed" in caplog.text
    with pytest.raises(RunLater, match="the ACME CA is unavailable"):
        ordering.obtain(row, replaces=ordering.replaces_id(row))
    assert world.row(row.id).status == "ISSUED"


def test_no_window_without_renewal_info_or_a_certificate(world: World, tmp_path: Path) -> None:
    ordering = world.container.ordering
    row = world.row(world.request(["nowindow.example.test"]))
    expired = world.row(row.id)
    expired.not_after = datetime.now(UTC) - timedelta(seconds=1)
    assert ordering.renewal_window(expired) is None  # RFC 9773: not asked about an expired certificate
    pending = world.row(row.id)
    pending.certificate_pem = None
    assert ordering.renewal_window(pending) is None and ordering.replaces_id(pending) is None

    old = start_pebble(tmp_path / "pebble-2.4", None, always_valid=True, binary=need_binary("pebble"))
    try:
        world.container.issuers.create(world.caller, IssuerSpec("old", directory_url=old.directory_url,
                                                                ca_bundle_pem=old.tls_cert_pem))
        from_old = world.row(world.request(["old.example.test"], issuer="old"))
        assert ordering.replaces_id(from_old) is not None
        assert ordering.renewal_window(from_old) is None
    finally:
        old.stop()


def test_a_private_ca_issuer(world: World) -> None:
    ordering = world.container.ordering
    authority = make_root(world.container, world.caller, years=5)
    world.container.issuers.create(world.caller, IssuerSpec("corp", authority_arn=authority))
    row = world.row(world.request(["private.example.test"], issuer="corp"))
    assert ordering.renewal_window(row) is None
    key = ec.generate_private_key(ec.SECP256R1())
    material = ordering.obtain(row, replaces=ordering.replaces_id(row), key=key)  # replaces means nothing here
    assert leaf_of(material).public_key() == key.public_key() and material.facts.serial != row.serial


def test_obtain_when_the_issuer_was_removed(world: World) -> None:
    row = world.row(world.request(["removed.example.test"]))
    row.issuer_name = "gone"
    with pytest.raises(OrderRefused) as refused:
        world.container.ordering.obtain(row)
    assert refused.value.failure == FailureReason.OTHER and refused.value.problem is None
    assert refused.value.message == "issuer 'gone' was removed; the certificate cannot be renewed from it"
