"""The deployment agent in its own process (`certsmith agent --config ...`) against a real `certsmith serve` and a real
nginx whose certificate files are the agent's ``files`` target folder, reloaded by the target's reload command.

One server, one nginx and one agent for the module; the tests run in order (first deployment, renewal, the key's
limits, the server going away and coming back).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from certsmith.deploy.targets.base import same_serial, serial_text
from certsmith.models import MODELS_PATH
from certsmith.testing.nginx import worker_pids
from certsmith.testing.pki import WAIT, root_ca
from certsmith.testing.processes import launch, log_tail
from certsmith.testing.server import stop_process
from certsmith.tls.probe import probe_tls

from ..conftest import Server, backend_url, free_port, need_binary, start_server

WEB = "web.agent.test"
DEADLINE = 30.0


def until(check: Callable[[], Any], what: str, within: float = DEADLINE, log: Path | None = None) -> Any:
    """Poll ``check`` until it returns something true; fail naming ``what`` (and the agent's log) otherwise."""
    deadline = time.monotonic() + within
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {within:.0f} s" + (f"\n{log_tail(log, 40)}" if log else ""))
        time.sleep(0.1)


def served_serial(port: int) -> str | None:
    seen = probe_tls("127.0.0.1", port, WEB, None, timeout=2.0)
    return serial_text(x509.load_der_x509_certificate(seen.chain[0]).serial_number) if seen.chain else None


def self_signed(folder: Path) -> None:
    """A placeholder certificate, so nginx can start before the agent's first deployment."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "placeholder")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=1))
            .not_valid_after(now + timedelta(days=1)).sign(key, hashes.SHA256()))
    (folder / "fullchain.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "privkey.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))


class TlsNginx:
    """nginx serving ``certs/fullchain.pem`` and ``certs/privkey.pem`` on one loopback port."""

    def __init__(self, home: Path, binary: str) -> None:
        self.home, self.binary, self.port = home, binary, free_port()
        self.certs = home / "certs"
        self.process: subprocess.Popen[bytes] | None = None

    def command(self, *args: str) -> list[str]:
        return [self.binary, "-p", str(self.home), "-c", str(self.home / "nginx.conf"), "-e", "stderr", *args]

    def start(self) -> None:
        for folder in ("logs", "tmp", "certs"):
            (self.home / folder).mkdir(parents=True, exist_ok=True)
        self_signed(self.certs)
        home = self.home
        lines = ["worker_processes 1;", f"pid {home}/nginx.pid;", f"error_log {home}/logs/error.log info;",
                 "events { worker_connections 64; }", "http {", f"    access_log {home}/logs/access.log;",
                 *(f"    {kind}_temp_path {home}/tmp/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi",
                                                                         "scgi")),
                 "    server {", f"        listen 127.0.0.1:{self.port} ssl;",
                 f"        ssl_certificate {self.certs}/fullchain.pem;",
                 f"        ssl_certificate_key {self.certs}/privkey.pem;",
                 '        location / { return 200 "ok\\n"; }', "    }", "}"]
        (home / "nginx.conf").write_text("\n".join(lines) + "\n")
        launch(self, self.command("-g", "daemon off;"), lambda: until(lambda: served_serial(self.port), "nginx start"),
               log_path=home / "logs" / "stderr.log")

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None


# -- fixtures ------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("agent").resolve()


@pytest.fixture(scope="module")
def server(folder: Path) -> Iterator[Server]:
    (folder / "server").mkdir()
    srv = start_server(folder / "server", backend_url(), settings={"deploy_commands": "true"})
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def acm(server: Server) -> Any:
    return server.client("acm")


@pytest.fixture(scope="module")
def own(server: Server) -> Any:
    return server.client("certsmith")


def agent_client(server: Server, agent: dict[str, Any], service: str = "certsmith") -> Any:
    session = boto3.session.Session()
    session._session.get_component("data_loader").search_paths.append(str(MODELS_PATH))
    return session.client(service, endpoint_url=server.endpoint, region_name="us-east-1",
                          aws_access_key_id=agent["Agent"]["AccessKeyId"],
                          aws_secret_access_key=agent["SecretAccessKey"])


@pytest.fixture(scope="module")
def certificate(server: Server, acm: Any) -> str:
    ca = root_ca(server.client("acm-pca"), "Agent Test Root")
    arn: str = acm.request_certificate(DomainName=WEB, CertificateAuthorityArn=ca,
                                       KeyAlgorithm="EC_prime256v1")["CertificateArn"]
    acm.get_waiter("certificate_validated").wait(CertificateArn=arn, WaiterConfig=WAIT)
    return arn


@pytest.fixture(scope="module")
def nginx(folder: Path) -> Iterator[TlsNginx]:
    peer = TlsNginx(folder / "nginx", need_binary("nginx"))
    peer.start()
    yield peer
    peer.stop()


@pytest.fixture(scope="module")
def agents(own: Any) -> dict[str, dict[str, Any]]:
    return {name: own.create_agent(Name=name) for name in ("web", "other")}


@pytest.fixture(scope="module")
def binding(own: Any, certificate: str, nginx: TlsNginx, agents: dict[str, Any]) -> dict[str, Any]:
    reload = " ".join(nginx.command("-s", "reload"))
    created: dict[str, Any] = own.create_binding(
        CertificateArn=certificate, Kind="files", Agent="web", Name="web-nginx",
        Options={"path": str(nginx.certs), "reload_command": reload},
        Verify={"Host": "127.0.0.1", "Port": nginx.port, "ServerName": WEB})["Binding"]
    return created


@pytest.fixture(scope="module")
def agent(server: Server, folder: Path, agents: dict[str, Any], binding: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """`certsmith agent` for agent "web", polling with a 2-second wait."""
    home = folder / "agent"
    home.mkdir()
    web = agents["web"]
    config = home / "agent.toml"
    config.write_text(f'endpoint = "{server.endpoint}"\nregion = "us-east-1"\n'
                      f'access_key_id = "{web["Agent"]["AccessKeyId"]}"\n'
                      f'secret_access_key = "{web["SecretAccessKey"]}"\n'
                      'state_dir = "state"\nwait_seconds = 2\nmax_backoff_seconds = 1\nverify_seconds = 10\n')
    log_path = home / "agent.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "certsmith", "agent", "--config", str(config)],
                                   stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
    yield {"process": process, "log": log_path, "home": home}
    stop_process(process)


def restart(server: Server) -> None:
    """Start `certsmith serve` again on the same port and data folder (the agent's endpoint)."""
    port = server.endpoint.rsplit(":", 1)[1]
    args = [sys.executable, "-m", "certsmith", "serve", "--port", port, "--data-dir", str(server.data_dir)]
    if server.database_url:
        args += ["--database-url", server.database_url]
    with open(server.log_path, "ab") as log:
        server.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)

    def ready() -> bool:
        try:
            return httpx.get(f"{server.endpoint}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    until(ready, "the server's restart", 60)


def current_serial(acm: Any, arn: str) -> str:
    serial: str = acm.describe_certificate(CertificateArn=arn)["Certificate"]["Serial"]
    return serial


def renew(acm: Any, arn: str) -> str:
    before = current_serial(acm, arn)
    acm.renew_certificate(CertificateArn=arn)
    return str(until(lambda: (s := current_serial(acm, arn)) != before and s, "the renewal"))


# -- tests ---------------------------------------------------------------------------------------------------------
def test_first_deployment(acm: Any, own: Any, certificate: str, nginx: TlsNginx, binding: dict[str, Any],
                          agent: dict[str, Any]) -> None:
    serial = current_serial(acm, certificate)
    until(lambda: same_serial(served_serial(nginx.port), serial), "nginx serving version 1", log=agent["log"])
    described = until(lambda: (b := own.describe_binding(BindingArn=binding["BindingArn"])["Binding"])
                      ["Status"] == "DEPLOYED" and b, "the binding DEPLOYED", log=agent["log"])
    assert described["DeployedVersion"] == 1 and same_serial(described["DeployedSerial"], serial)
    assert binding["BindingArn"] in acm.describe_certificate(CertificateArn=certificate)["Certificate"]["InUseBy"]
    state = (agent["home"] / "state" / "state.json").read_text()
    assert "PRIVATE KEY" not in state and binding["BindingArn"] in state
    assert oct((nginx.certs / "privkey.pem").stat().st_mode & 0o777) == "0o600"
    listed = own.list_agents()["Agents"]
    assert {a["Name"] for a in listed} == {"web", "other"}
    assert next(a for a in listed if a["Name"] == "web").get("LastSeenAt")


def test_renewal_is_deployed(acm: Any, own: Any, certificate: str, nginx: TlsNginx, binding: dict[str, Any],
                             agent: dict[str, Any]) -> None:
    workers = worker_pids(agent["process"].pid) | (worker_pids(nginx.process.pid) if nginx.process else set())
    serial = renew(acm, certificate)
    # within one poll interval (2 s) and the deployment
    until(lambda: same_serial(served_serial(nginx.port), serial), "nginx serving version 2", 15, agent["log"])
    until(lambda: own.describe_binding(BindingArn=binding["BindingArn"])["Binding"].get("DeployedVersion") == 2,
          "DeployedVersion 2", 15, agent["log"])
    assert workers  # nginx was reloaded, not restarted: the master is the same process
    assert nginx.process is not None and nginx.process.poll() is None


def test_agent_key_is_limited(server: Server, own: Any, certificate: str, agents: dict[str, Any],
                              binding: dict[str, Any]) -> None:
    web = agents["web"]
    with pytest.raises(ClientError) as denied:
        agent_client(server, web, "acm").list_certificates()
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "PollAgentWork" in denied.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as denied:
        agent_client(server, web).list_bindings()
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    # the admin key may not poll as an agent
    with pytest.raises(ClientError) as denied:
        own.poll_agent_work(WaitSeconds=0, Passphrase=b"passphrase")
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    # another agent's binding: not in the work of "web", and a report on it is refused
    other = own.create_binding(CertificateArn=certificate, Kind="files", Agent="other",
                               Options={"path": "/nonexistent/other"})["Binding"]
    serial = own.describe_binding(BindingArn=binding["BindingArn"])["Binding"]["DeployedSerial"]
    work = agent_client(server, web).poll_agent_work(WaitSeconds=0, Passphrase=b"passphrase",
                                                     Held=[{"BindingArn": binding["BindingArn"], "Version": 2}])["Work"]
    assert other["BindingArn"] not in [w["BindingArn"] for w in work]
    with pytest.raises(ClientError) as denied:
        agent_client(server, web).report_deployment(BindingArn=other["BindingArn"], Version=2, Serial=serial,
                                                    Status="SUCCEEDED")
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert other["BindingArn"] not in acm_in_use(server, certificate)
    # the other agent sees its binding, with the key encrypted under the passphrase it sent
    work = agent_client(server, agents["other"]).poll_agent_work(WaitSeconds=0, Passphrase=b"passphrase")["Work"]
    assert [w["BindingArn"] for w in work] == [other["BindingArn"]]
    assert "ENCRYPTED PRIVATE KEY" in work[0]["PrivateKey"]
    serialization.load_pem_private_key(work[0]["PrivateKey"].encode(), b"passphrase")
    # deleting an agent with bindings is refused
    with pytest.raises(ClientError) as in_use:
        own.delete_agent(Name="other")
    assert in_use.value.response["Error"]["Code"] == "ResourceInUseException"
    own.delete_binding(BindingArn=other["BindingArn"])
    own.delete_agent(Name="other")
    assert [a["Name"] for a in own.list_agents()["Agents"]] == ["web"]


def acm_in_use(server: Server, arn: str) -> list[str]:
    found: list[str] = server.client("acm").describe_certificate(CertificateArn=arn)["Certificate"].get("InUseBy", [])
    return found


def test_server_away_and_back(server: Server, acm: Any, own: Any, certificate: str, nginx: TlsNginx,
                              binding: dict[str, Any], agent: dict[str, Any]) -> None:
    server.stop()
    until(lambda: "cannot be reached" in agent["log"].read_text(), "the agent noticing the server is away",
          log=agent["log"])
    assert agent["process"].poll() is None
    restart(server)
    serial = renew(acm, certificate)
    until(lambda: same_serial(served_serial(nginx.port), serial), "nginx serving version 3", 20, agent["log"])
    until(lambda: own.describe_binding(BindingArn=binding["BindingArn"])["Binding"].get("DeployedVersion") == 3,
          "DeployedVersion 3", 15, agent["log"])


def test_agent_stops_on_sigterm(agent: dict[str, Any], server: Server) -> None:
    agent["process"].send_signal(signal.SIGTERM)
    assert agent["process"].wait(timeout=15) == 0
    assert "agent stopped" in agent["log"].read_text()
    assert "Traceback" not in agent["log"].read_text()
    assert not server.errors(), server.errors()
