"""The TLS probe against a real TLS server on loopback (Python's ssl in a thread): the chain as served, OpenSSL's
trust verdict, SNI, and the failures it reports instead of raising."""

from __future__ import annotations

import http.server
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from certsmith.domain.endpoints import OK, UNTRUSTED, evaluate, parse_chain
from certsmith.testing.server import free_port
from certsmith.tls.probe import probe_tls

NOW = datetime.now(UTC)
KeyPair = tuple[x509.Certificate, ec.EllipticCurvePrivateKey]


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(cn: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn)).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(NOW - timedelta(days=1))
            .not_valid_after(NOW + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def make_leaf(ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey], names: list[str], *,
              not_after: datetime = NOW + timedelta(days=30)) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name(names[0])).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(min(NOW - timedelta(days=1), not_after - timedelta(days=2))).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert, key


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@dataclass
class TlsServer:
    """Serves one chain on 127.0.0.1:port; remembers the SNI names it was sent."""

    port: int
    sock: socket.socket
    context: ssl.SSLContext
    names: list[str | None] = field(default_factory=list)

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.settimeout(2)
            try:
                with self.context.wrap_socket(conn, server_side=True):
                    pass
            except (OSError, ssl.SSLError):
                conn.close()


def start_tls(tmp: Path, chain: list[x509.Certificate], key: ec.EllipticCurvePrivateKey) -> TlsServer:
    cert_file, key_file = tmp / f"chain-{id(chain)}.pem", tmp / f"key-{id(chain)}.pem"
    cert_file.write_text("".join(pem(c) for c in chain))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    sock = socket.create_server(("127.0.0.1", 0))
    server = TlsServer(sock.getsockname()[1], sock, context)

    def remember(_sock: ssl.SSLObject, name: str | None, _context: ssl.SSLContext) -> None:
        server.names.append(name)

    context.sni_callback = remember
    threading.Thread(target=server.serve, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def pki() -> dict[str, KeyPair]:
    ca = make_ca("Probe Test Root")
    other = make_ca("Another Root")
    return {"ca": ca, "other": other, "leaf": make_leaf(ca, ["web.probe.test"]),
            "expired": make_leaf(ca, ["old.probe.test"], not_after=NOW - timedelta(days=1))}


@pytest.fixture(scope="module")
def served(pki: dict[str, KeyPair], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, TlsServer]]:
    tmp = tmp_path_factory.mktemp("tls")
    ca, leaf, expired = pki["ca"], pki["leaf"], pki["expired"]
    servers = {"good": start_tls(tmp, [leaf[0], ca[0]], leaf[1]),
               "expired": start_tls(tmp, [expired[0], ca[0]], expired[1])}
    yield servers
    for server in servers.values():
        server.sock.close()


def test_a_chain_that_verifies_is_read_whole_leaf_first_with_the_sni_sent(pki: dict[str, KeyPair],
                                                                         served: dict[str, TlsServer]) -> None:
    ca, leaf = pki["ca"], pki["leaf"]
    seen = probe_tls("127.0.0.1", served["good"].port, "web.probe.test", pem(ca[0]))
    assert seen.error is None and seen.trusted is True and seen.trust_error is None
    assert [c.serial_number for c in parse_chain(seen.chain)] == [leaf[0].serial_number, ca[0].serial_number]
    assert seen.handshake_ms is not None and 0 < seen.handshake_ms < 5000
    assert served["good"].names[-1] == "web.probe.test"
    assert evaluate(seen, "web.probe.test", None, datetime.now(UTC)).status == OK
    probe_tls("127.0.0.1", served["good"].port, "127.0.0.1", pem(ca[0]))
    assert served["good"].names[-1] is None  # an IP address is not sent as SNI


def test_a_chain_of_another_ca_or_not_in_the_system_store_is_untrusted_and_still_read(
        pki: dict[str, KeyPair], served: dict[str, TlsServer]) -> None:
    other = pki["other"]
    seen = probe_tls("127.0.0.1", served["good"].port, "web.probe.test", pem(other[0]))
    assert seen.error is None and seen.trusted is False
    assert seen.trust_error == "self-signed certificate in certificate chain"  # the root it sent is no anchor
    assert len(seen.chain) == 2
    verdict = evaluate(seen, "web.probe.test", None, datetime.now(UTC))
    assert verdict.status == UNTRUSTED and verdict.message and verdict.message.startswith("the chain is not trusted: ")
    system = probe_tls("127.0.0.1", served["good"].port, "web.probe.test", None)
    assert system.trusted is False and len(system.chain) == 2


def test_an_expired_certificate_still_verifies_its_trust_its_expiry_is_judged_apart(
        pki: dict[str, KeyPair], served: dict[str, TlsServer]) -> None:
    ca = pki["ca"]
    seen = probe_tls("127.0.0.1", served["expired"].port, "old.probe.test", pem(ca[0]))
    assert seen.trusted is True
    assert evaluate(seen, "old.probe.test", None, datetime.now(UTC)).status == "EXPIRED"


def test_a_closed_port_and_a_silent_one_are_errors_not_exceptions() -> None:
    closed = free_port()
    refused = probe_tls("127.0.0.1", closed, "web.probe.test", None)
    assert refused.error == f"127.0.0.1:{closed}: connection refused" and not refused.chain
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts (backlog) but never answers the handshake
        port = silent.getsockname()[1]
        started = time.monotonic()
        quiet = probe_tls("127.0.0.1", port, "web.probe.test", None, timeout=0.3)
        assert time.monotonic() - started < 2
    assert quiet.error == f"127.0.0.1:{port}: no answer within 0.3 s"
    assert probe_tls("::1" if socket.has_ipv6 else "127.0.0.1", closed, "x.test", None).error


def test_a_plain_http_port_is_named_as_the_likely_cause() -> None:
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler) as plain:
        threading.Thread(target=plain.serve_forever, daemon=True).start()
        try:
            seen = probe_tls("127.0.0.1", plain.server_address[1], "web.probe.test", None, timeout=3)
        finally:
            plain.shutdown()
    assert seen.error is not None and "TLS handshake failed" in seen.error, seen.error
    assert seen.error.endswith("(is it a plain-HTTP port?)"), seen.error
