"""Endpoint monitoring against a real nginx on loopback and a real `certsmith serve` (one of each for the module).

nginx serves a private certificate issued and exported through the ACM API on one port and a self-signed one on
another; a third port is closed. The server's worker looks for due endpoints every second.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from certsmith.domain.clock import SystemClock
from certsmith.domain.endpoints import Observation
from certsmith.services.context import Caller
from certsmith.services.endpoints.prober import EndpointProber
from certsmith.services.endpoints.registry import EndpointRegistry, EndpointSpec
from certsmith.services.events.outbox import EventOutbox
from certsmith.store.database import Database, migrate
from certsmith.testing.nginx import worker_pids
from certsmith.testing.pki import WAIT, root_ca
from certsmith.testing.processes import launch, log_tail
from certsmith.testing.server import stop_process
from certsmith.testing.waiting import until

from ..conftest import Server, backend_url, free_port, need_binary, start_server
from .test_cli import cli

PASSPHRASE = b"endpoint monitoring"
WEB = "web.endpoints.test"
SELF = "self.endpoints.test"
DRIFT_EVENT, UNREACHABLE_EVENT = "Certsmith Endpoint Drift", "Certsmith Endpoint Unreachable"


# -- nginx serving TLS ---------------------------------------------------------------------------------------------
@dataclass
class TlsNginx:
    """nginx on 127.0.0.1, one TLS server per port, each with its certificate chain and key files."""

    home: Path
    binary: str
    sites: dict[int, str] = field(default_factory=dict)  # port -> site name (files <name>.crt / <name>.key)
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.home / "logs" / "stderr.log"

    def command(self, *args: str) -> list[str]:
        return [self.binary, "-p", str(self.home), "-c", str(self.home / "nginx.conf"), "-e", "stderr", *args]

    def install(self, site: str, chain_pem: str, key_pem: bytes) -> None:
        (self.home / f"{site}.crt").write_text(chain_pem)
        (self.home / f"{site}.key").write_bytes(key_pem)

    def write(self) -> None:
        home = self.home
        lines = ["worker_processes 1;", f"pid {home}/nginx.pid;", f"error_log {home}/logs/error.log info;",
                 "events { worker_connections 64; }", "http {", f"    access_log {home}/logs/access.log;",
                 *(f"    {kind}_temp_path {home}/tmp/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi",
                                                                         "scgi"))]
        for port, site in self.sites.items():
            lines += ["    server {", f"        listen 127.0.0.1:{port} ssl;",
                      f"        ssl_certificate {home}/{site}.crt;", f"        ssl_certificate_key {home}/{site}.key;",
                      '        location / { return 200 "ok\\n"; }', "    }"]
        lines.append("}")
        (home / "nginx.conf").write_text("\n".join(lines) + "\n")

    def serving(self) -> bool:
        """Whether every port serves the leaf of its site's files now."""
        for port, site in self.sites.items():
            want = x509.load_pem_x509_certificate((self.home / f"{site}.crt").read_bytes())
            if served_leaf(port) != want:
                return False
        return True

    def wait_serving(self, old_workers: frozenset[int] | set[int] = frozenset()) -> None:
        deadline = time.monotonic() + 15
        while True:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"nginx exited:\n{log_tail(self.log_path)}")
            if not (old_workers & self.workers()) and self.serving():
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"nginx does not serve its certificates:\n{log_tail(self.log_path)}")
            time.sleep(0.02)

    def workers(self) -> set[int]:
        return set() if self.process is None else worker_pids(self.process.pid)

    def reload(self) -> None:
        old = self.workers()
        subprocess.run(self.command("-s", "reload"), check=True, capture_output=True, timeout=30)
        self.wait_serving(old)

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None


def served_leaf(port: int) -> x509.Certificate | None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock, \
                context.wrap_socket(sock, server_hostname=WEB) as tls:
            der = tls.getpeercert(binary_form=True)
    except OSError:
        return None
    return x509.load_der_x509_certificate(der) if der else None


def self_signed(name: str) -> tuple[str, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def exported(acm: Any, arn: str) -> tuple[str, bytes]:
    """The certificate with its chain, and its key opened, as a user installs them on a web server."""
    got = acm.export_certificate(CertificateArn=arn, Passphrase=PASSPHRASE)
    key = serialization.load_pem_private_key(got["PrivateKey"].encode(), PASSPHRASE)
    return (got["Certificate"].strip() + "\n" + got["CertificateChain"].strip() + "\n",
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))



def error(call: Callable[..., Any], **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


def events(own: Any, detail_type: str, resource: str) -> list[dict[str, Any]]:
    found = own.list_events(Source="certsmith", DetailType=detail_type, Resource=resource)["Events"]
    return [json.loads(e["Event"]) for e in found]


# -- fixtures ------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("endpoints"), backend_url(), settings={"endpoint_probe_seconds": 1})
    yield srv
    srv.stop()
    assert not srv.errors(), srv.errors()


@pytest.fixture(scope="module")
def acm(server: Server) -> Any:
    return server.client("acm")


@pytest.fixture(scope="module")
def own(server: Server) -> Any:
    return server.client("certsmith")


@pytest.fixture(scope="module")
def pki(server: Server, acm: Any) -> dict[str, str]:
    """A private CA, and a certificate of it for WEB (exported, so that a renewal is allowed)."""
    pca = server.client("acm-pca")
    ca = root_ca(pca, "Endpoint Monitoring Root")
    arn = acm.request_certificate(DomainName=WEB, CertificateAuthorityArn=ca,
                                  KeyAlgorithm="EC_prime256v1")["CertificateArn"]
    acm.get_waiter("certificate_validated").wait(CertificateArn=arn, WaiterConfig=WAIT)
    ca_pem = pca.get_certificate_authority_certificate(CertificateAuthorityArn=ca)["Certificate"]
    return {"ca": ca, "arn": arn, "ca_pem": ca_pem}


@pytest.fixture(scope="module")
def nginx(acm: Any, pki: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsNginx]:
    home = tmp_path_factory.mktemp("nginx-tls").resolve()
    for folder in ("logs", "tmp"):
        (home / folder).mkdir()
    peer = TlsNginx(home, need_binary("nginx"), {free_port(): "web", free_port(): "self"})
    peer.install("web", *exported(acm, pki["arn"]))
    peer.install("self", *self_signed(SELF))
    peer.write()
    launch(peer, peer.command("-g", "daemon off;"), peer.wait_serving)
    yield peer
    peer.stop()


def port_of(nginx: TlsNginx, site: str) -> int:
    return next(port for port, name in nginx.sites.items() if name == site)


@pytest.fixture(scope="module")
def scheduled(own: Any, nginx: TlsNginx, pki: dict[str, str]) -> dict[str, Any]:
    """An endpoint left to the worker's schedule (the shortest interval), registered as soon as nginx serves."""
    created: dict[str, Any] = own.create_endpoint(Host="127.0.0.1", Port=port_of(nginx, "web"), ServerName=WEB,
                                                  CertificateArn=pki["arn"], IntervalSeconds=10)["Endpoint"]
    return created


@pytest.fixture(scope="module")
def watched(own: Any, nginx: TlsNginx, pki: dict[str, str]) -> dict[str, Any]:
    """The same server by the name localhost, probed on demand."""
    created: dict[str, Any] = own.create_endpoint(Host="localhost", Port=port_of(nginx, "web"), ServerName=WEB,
                                                  CertificateArn=pki["arn"])["Endpoint"]
    return created


@pytest.fixture(scope="module")
def mismatched(own: Any, nginx: TlsNginx, pki: dict[str, str]) -> dict[str, Any]:
    """The web server by another name, checked against the CA given as the endpoint's own bundle."""
    created: dict[str, Any] = own.create_endpoint(Host="127.0.0.1", Port=port_of(nginx, "web"),
                                                  ServerName="other.endpoints.test", TrustBundle=pki["ca_pem"])["Endpoint"]
    return created


@pytest.fixture(scope="module")
def down(own: Any) -> dict[str, Any]:
    """A closed port."""
    created: dict[str, Any] = own.create_endpoint(Host="127.0.0.1", Port=free_port())["Endpoint"]
    return created


@pytest.fixture(scope="module")
def renewed(acm: Any, pki: dict[str, str], watched: dict[str, Any], own: Any) -> tuple[str, str]:
    """The certificate renewed (version 2) while nginx still serves version 1: (served serial, current serial)."""
    arn = pki["arn"]
    assert own.probe_endpoint(EndpointId=watched["EndpointId"])["Endpoint"]["Status"] == "OK"
    before: str = acm.describe_certificate(CertificateArn=arn)["Certificate"]["Serial"]
    acm.renew_certificate(CertificateArn=arn)
    current: str = until("the renewal", lambda: (lambda s: s if s != before else None)(
        acm.describe_certificate(CertificateArn=arn)["Certificate"]["Serial"]))
    return before, current


# -- tests ---------------------------------------------------------------------------------------------------------
def test_the_worker_probes_a_new_endpoint_by_itself_and_finds_it_ok(own: Any, acm: Any, pki: dict[str, str],
                                                                   scheduled: dict[str, Any]) -> None:
    assert scheduled["Status"] == "PENDING" and scheduled["TrustSource"] == "CERTIFICATE_AUTHORITY"
    assert scheduled["EndpointArn"].endswith(f":endpoint/{scheduled['EndpointId']}")
    assert scheduled["EndpointArn"].startswith("arn:aws:certsmith:us-east-1:")
    found = until("the worker's first probe", lambda: (lambda e: e if e["Status"] != "PENDING" else None)(
        own.describe_endpoint(EndpointId=scheduled["EndpointId"])["Endpoint"]))
    detail = acm.describe_certificate(CertificateArn=pki["arn"])["Certificate"]
    assert found["Status"] == "OK", found
    assert found["Trusted"] is True and found["HostnameMatch"] is True and "Error" not in found
    assert found["ServedSerial"] == detail["Serial"] == found["CurrentSerial"]
    assert (found["ServedVersion"], found["CurrentVersion"]) == (1, 1)
    assert found["Chain"][0]["Serial"] == detail["Serial"] and len(found["Chain"]) == 2
    assert found["Chain"][1]["Subject"] == found["Chain"][0]["Issuer"]
    assert found["ServedNotAfter"] == detail["NotAfter"] and found["DaysToExpiry"] > 300
    assert 0 < found["HandshakeMs"] < 5000
    assert found["NextProbeAt"] - found["ProbedAt"] == timedelta(seconds=10)


def test_a_wrong_server_name_is_a_mismatch_checked_against_the_given_bundle(own: Any,
                                                                            mismatched: dict[str, Any]) -> None:
    created = mismatched
    assert created["TrustSource"] == "BUNDLE" and "CertificateArn" not in created
    found = own.probe_endpoint(EndpointId=created["EndpointId"])["Endpoint"]
    assert found["Status"] == "MISMATCH" and found["Trusted"] is True and found["HostnameMatch"] is False
    assert found["Error"] == f"the certificate is for {WEB}, not for other.endpoints.test"


def test_a_self_signed_certificate_is_untrusted_by_the_system_store(own: Any, nginx: TlsNginx) -> None:
    created = own.create_endpoint(Host="127.0.0.1", Port=port_of(nginx, "self"), ServerName=SELF)["Endpoint"]
    assert created["TrustSource"] == "SYSTEM"
    found = own.probe_endpoint(EndpointId=created["EndpointId"])["Endpoint"]
    assert found["Status"] == "UNTRUSTED" and found["Trusted"] is False and found["HostnameMatch"] is True
    assert found["Error"].startswith("the chain is not trusted: self") and "signed certificate" in found["Error"]
    assert len(found["Chain"]) == 1 and found["Chain"][0]["Subject"] == f"CN={SELF}"


def test_a_closed_port_is_unreachable_and_told_once(own: Any, down: dict[str, Any]) -> None:
    created, closed = down, down["Port"]
    assert created["ServerName"] == "127.0.0.1"
    found = own.probe_endpoint(EndpointId=created["EndpointId"])["Endpoint"]
    assert found["Status"] == "UNREACHABLE" and found["Error"] == f"127.0.0.1:{closed}: connection refused"
    assert "Chain" not in found and "HandshakeMs" not in found
    own.probe_endpoint(EndpointId=created["EndpointId"])  # still unreachable: no second event
    (event,) = events(own, UNREACHABLE_EVENT, created["EndpointArn"])
    assert event["source"] == "certsmith" and event["resources"] == [created["EndpointArn"]]
    detail = event["detail"]
    assert (detail["Host"], detail["Port"], detail["Error"]) == ("127.0.0.1", closed, found["Error"])
    assert detail["EndpointId"] == created["EndpointId"] and "reachable" in detail["RecommendedAction"]


def test_a_renewal_not_yet_deployed_is_drift_and_told_once(own: Any, pki: dict[str, str], nginx: TlsNginx,
                                                            watched: dict[str, Any], scheduled: dict[str, Any],
                                                            renewed: tuple[str, str]) -> None:
    arn, port = pki["arn"], port_of(nginx, "web")
    before, current = renewed
    found = own.probe_endpoint(EndpointId=watched["EndpointId"])["Endpoint"]
    assert found["Status"] == "DRIFT", found
    assert (found["ServedSerial"], found["ServedVersion"]) == (before, 1)
    assert (found["CurrentSerial"], found["CurrentVersion"]) == (current, 2)
    assert found["Error"] == f"serves version 1 (serial {before}) instead of version 2 of {arn}"
    own.probe_endpoint(EndpointId=watched["EndpointId"])  # still drifting: no second event
    (event,) = events(own, DRIFT_EVENT, watched["EndpointArn"])
    assert event["resources"] == [arn, watched["EndpointArn"]] and event["source"] == "certsmith"
    detail = event["detail"]
    assert (detail["Host"], detail["Port"], detail["ServerName"]) == ("localhost", port, WEB)
    assert (detail["CertificateArn"], detail["ServedSerial"], detail["CurrentSerial"]) == (arn, before, current)
    assert detail["ServedVersion"] == 1
    assert detail["RecommendedAction"] == (f"Deploy version 2 of {arn} to localhost:{port} and reload the server; "
                                           "it still serves version 1.")
    listed = own.list_endpoints(Status="DRIFT")["Endpoints"]
    assert watched["EndpointId"] in {e["EndpointId"] for e in listed}
    assert all(e["Status"] == "DRIFT" for e in listed)
    mine = {e["EndpointId"] for e in own.list_endpoints(CertificateArn=arn)["Endpoints"]}
    assert mine == {watched["EndpointId"], scheduled["EndpointId"]}


def test_what_a_user_gives_is_checked_naming_the_field(own: Any, pki: dict[str, str]) -> None:
    account = pki["arn"].split(":")[4]
    missing = f"arn:aws:acm:us-east-1:{account}:certificate/00000000-0000-4000-8000-000000000000"
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"Host": "bad host"}, "ValidationException", "Host 'bad host' is neither a host name"),
        ({"Host": "web.test", "Port": 0}, "ValidationException", "Port 0 is not a port"),
        ({"Host": "web.test", "Port": 70000}, "ValidationException", "Port 70000 is not a port"),
        ({"Host": "web.test", "IntervalSeconds": 5}, "ValidationException", "IntervalSeconds 5 is out of range"),
        ({"Host": "web.test", "TrustBundle": "junk"}, "ValidationException", "TrustBundle is not a PEM bundle"),
        ({"Host": "web.test", "CertificateArn": missing}, "ResourceNotFoundException", "CertificateArn: certificate"),
        ({"Host": "web.test", "CertificateArn": "arn:aws:acm:us-east-1:123:nope"}, "InvalidArnException",
         "CertificateArn"),
    ]
    for request, code, start in cases:
        got_code, message = error(own.create_endpoint, **request)
        assert (got_code, message[:len(start)]) == (code, start), (request, message)
    created = own.create_endpoint(Host="Dup.Endpoints.Test.", Port=9)["Endpoint"]
    assert (created["Host"], created["ServerName"], created["IntervalSeconds"]) == ("dup.endpoints.test",) * 2 + (3600,)
    code, message = error(own.create_endpoint, Host="dup.endpoints.test", Port=9)
    assert code == "ConflictException" and "already monitored" in message
    assert error(own.list_endpoints, Status="NOPE")[0] == "ValidationException"
    own.delete_endpoint(EndpointId=created["EndpointArn"])  # the ARN serves as well as the id
    code, message = error(own.describe_endpoint, EndpointId=created["EndpointId"])
    assert code == "ResourceNotFoundException" and created["EndpointId"] in message


def test_the_cli_adds_lists_probes_and_removes(server: Server, own: Any, nginx: TlsNginx, mismatched: dict[str, Any]) -> None:
    web = port_of(nginx, "web")
    spare = free_port()
    added = json.loads(cli(server, "endpoint", "add", f"127.0.0.1:{spare}", "--sni", "cli.endpoints.test",
                           "--interval", "10m", "--json").stdout)
    assert (added["Port"], added["ServerName"], added["IntervalSeconds"]) == (spare, "cli.endpoints.test", 600)
    probed = cli(server, "endpoint", "probe", mismatched["EndpointId"], ok=False)
    assert probed.returncode == 1, probed.stderr
    out = probed.stdout
    assert f"127.0.0.1:{web} (SNI other.endpoints.test)" in out and " ms" in out
    assert "does not match other.endpoints.test" in out and "trusted by the endpoint's trust bundle" in out
    assert "Endpoint Monitoring Root" in out and "MISMATCH" in out and f"the certificate is for {WEB}" in out

    table = cli(server, "endpoint", "list").stdout
    header = table.splitlines()[1]
    assert all(word in header for word in ("Endpoint", "SNI", "Status", "Days left", "Served serial", "Checked at"))
    line = next(line for line in table.splitlines() if "other.endpoints.test" in line)
    assert f"127.0.0.1:{web}" in line and "MISMATCH" in line

    cli(server, "endpoint", "remove", f"127.0.0.1:{spare}")  # HOST:PORT names it as well as its id
    assert added["EndpointId"] not in {e["EndpointId"] for e in own.list_endpoints()["Endpoints"]}


def test_the_worker_finds_the_drift_on_its_schedule_and_deploying_the_new_version_ends_it(
        own: Any, acm: Any, pki: dict[str, str], nginx: TlsNginx, watched: dict[str, Any], scheduled: dict[str, Any],
        renewed: tuple[str, str]) -> None:
    _, current = renewed
    until("the worker's drift", lambda: own.describe_endpoint(
        EndpointId=scheduled["EndpointId"])["Endpoint"]["Status"] == "DRIFT")
    (event,) = events(own, DRIFT_EVENT, scheduled["EndpointArn"])
    assert event["detail"]["Host"] == "127.0.0.1" and event["detail"]["ServedVersion"] == 1

    nginx.install("web", *exported(acm, pki["arn"]))
    nginx.reload()
    fixed = own.probe_endpoint(EndpointId=watched["EndpointId"])["Endpoint"]
    assert fixed["Status"] == "OK" and (fixed["ServedSerial"], fixed["ServedVersion"]) == (current, 2)
    assert "Error" not in fixed and len(events(own, DRIFT_EVENT, watched["EndpointArn"])) == 1


def test_two_workers_share_a_backlog_each_endpoint_probed_once(tmp_path: Path) -> None:
    """Claims are exclusive (SKIP LOCKED on PostgreSQL) and a pool works a backlog through without further sweeps.
    The probe here is a stand-in that records who probed what; the real probe is the one above, against nginx."""
    url = backend_url() or f"sqlite:///{tmp_path / 'claims.db'}"
    migrate(url)
    database = Database(url)
    try:
        clock = SystemClock()
        registry = EndpointRegistry(database, clock)
        caller = Caller("123456789012", "us-east-1", "test")
        for index in range(60):
            registry.create(caller, EndpointSpec(f"host{index}.backlog.test", 443))
        probed: list[str] = []
        lock = threading.Lock()

        def stand_in(host: str, port: int, server_name: str, trust: str | None, timeout: float) -> Observation:
            with lock:
                probed.append(host)
            time.sleep(0.005)
            return Observation(None, error=f"{host}:{port}: connection refused")

        workers = [EndpointProber(database, clock, registry, EventOutbox(), threads=2, probe=stand_in) for _ in "ab"]
        assert [worker.sweep() for worker in workers] == [4, 4]  # once each; the pools claim the rest themselves
        until("the backlog", lambda: len(registry.page(caller, status="UNREACHABLE", max_results=1000)[0]) == 60)
        for worker in workers:
            worker.close()
        assert sorted(probed) == sorted(f"host{index}.backlog.test" for index in range(60))
        with database.read() as session:
            told = EventOutbox.read(session, account_id="123456789012", detail_type=UNREACHABLE_EVENT)
        assert len(told) == 60
    finally:
        database.dispose()
