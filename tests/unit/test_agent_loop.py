"""The agent's loop on one host: a files target in a temporary folder, a small TLS server on loopback serving a
folder's files (read at each handshake), and a client object standing in for the server's two operations."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from cryptography.hazmat.primitives import serialization

from certsmith.deploy.agent.client import AgentClient
from certsmith.deploy.agent.config import AgentConfig
from certsmith.deploy.agent.loop import Agent
from certsmith.deploy.targets import Material, build_target
from certsmith.deploy.targets.base import same_serial

from ..deploy.conformance import make_materials

BINDING = "arn:aws:certsmith:us-east-1:123456789012:binding/0d0e0f00-0000-4000-8000-00000000000b"


@pytest.fixture(scope="module")
def materials() -> list[Material]:
    return make_materials()


class FolderTls:
    """A TLS server on 127.0.0.1 presenting ``fullchain.pem`` and ``privkey.pem`` of ``folder``, read per handshake."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port: int = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with connection, contextlib.suppress(OSError, ssl.SSLError):
                connection.settimeout(5)
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.load_cert_chain(self.folder / "fullchain.pem", self.folder / "privkey.pem")
                with context.wrap_socket(connection, server_side=True) as tls:
                    tls.recv(1)

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        self.listener.close()


@dataclass
class FakeClient:
    """PollAgentWork and ReportDeployment as the server answers them: the queued work once, every report kept."""

    queued: list[tuple[Material, dict[str, Any]]] = field(default_factory=list)
    reports: list[dict[str, Any]] = field(default_factory=list)
    polls: list[dict[str, int]] = field(default_factory=list)

    def poll(self, held: dict[str, int], passphrase: bytes, wait: int | None = None) -> list[dict[str, Any]]:
        self.polls.append(dict(held))
        work = [_work(material, extra, passphrase) for material, extra in self.queued]
        self.queued.clear()
        return work

    def report(self, binding_arn: str, version: int, serial: str, succeeded: bool, error: str | None = None,
               verified_serial: str | None = None) -> None:
        self.reports.append({"BindingArn": binding_arn, "Version": version, "Serial": serial, "Succeeded": succeeded,
                             "Error": error, "VerifiedSerial": verified_serial})


def _work(material: Material, extra: dict[str, Any], passphrase: bytes) -> dict[str, Any]:
    key = serialization.load_pem_private_key(material.private_key_pem.encode(), None)
    encrypted = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.BestAvailableEncryption(passphrase)).decode()
    return {"BindingArn": BINDING, "CertificateArn": material.certificate_arn, "Version": material.version,
            "Serial": material.serial, "Certificate": material.certificate_pem, "CertificateChain": material.chain_pem,
            "PrivateKey": encrypted, "DeploymentId": f"deployment-{material.version}", **extra}


@dataclass
class World:
    folder: Path  # what the binding deploys to
    elsewhere: Path  # another folder, for a server that does not serve the binding's files
    reloads: Path
    client: FakeClient
    agent: Agent
    options: dict[str, str]

    def deploy(self, material: Material, server: FolderTls, *, rollback: bool | None) -> dict[str, Any]:
        extra: dict[str, Any] = {"Kind": "files", "Options": self.options,
                                 "Verify": {"Host": "127.0.0.1", "Port": server.port, "ServerName": "localhost"}}
        if rollback is not None:
            extra["Rollback"] = rollback
        self.client.queued.append((material, extra))
        assert self.agent.step(wait=0) == 1
        return self.client.reports[-1]

    def folder_serial(self) -> str | None:
        return build_target("files", self.options).held().serial

    def reload_count(self) -> int:
        return len(self.reloads.read_text().splitlines()) if self.reloads.exists() else 0


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    folder, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    folder.mkdir()
    elsewhere.mkdir()
    reloads = tmp_path / "reloads"
    config = AgentConfig(endpoint="http://127.0.0.1:9", access_key_id="CSAKTEST", secret_access_key="unused",
                         state_dir=tmp_path / "state", verify_seconds=1.0)
    client = FakeClient()
    agent = Agent(config, client=cast(AgentClient, client))
    yield World(folder, elsewhere, reloads, client, agent,
                {"path": str(folder), "reload_command": f"echo reloaded >> {reloads}"})
    agent.stop.set()


def put_files(target_folder: Path, material: Material) -> None:
    """``material`` in ``target_folder`` as a files target writes it (for the server that serves something else)."""
    build_target("files", {"path": str(target_folder)}).install(material)


def test_a_served_version_is_reported_and_held(world: World, materials: list[Material]) -> None:
    server = FolderTls(world.folder)
    try:
        report = world.deploy(materials[0], server, rollback=True)
    finally:
        server.close()
    assert report["Succeeded"] and same_serial(report["VerifiedSerial"], materials[0].serial)
    assert world.agent.held() == {BINDING: 1} and world.reload_count() == 1


def test_with_rollback_a_failed_check_puts_the_previous_version_back(world: World, materials: list[Material]) -> None:
    server = FolderTls(world.folder)
    try:
        assert world.deploy(materials[0], server, rollback=True)["Succeeded"]
        put_files(world.elsewhere, materials[0])
        server.folder = world.elsewhere  # the endpoint keeps serving version 1, whatever the folder holds
        report = world.deploy(materials[1], server, rollback=True)
        assert not report["Succeeded"] and report["Version"] == 2
        assert same_serial(report["VerifiedSerial"], materials[0].serial)
        assert "rolled back to version 1" in report["Error"] and materials[1].serial in report["Error"]
        assert same_serial(world.folder_serial(), materials[0].serial)
        assert world.reload_count() == 3  # version 1, version 2, and version 1 again
        assert world.agent.held() == {BINDING: 1}
        # a restarted agent holds the same: what the folder really holds
        restarted = Agent(world.agent.config, client=cast(AgentClient, world.client))
        assert restarted.held() == {BINDING: 1}
        assert restarted.bindings[BINDING]["serial"] == materials[0].serial
        world.agent.step(wait=0)
        assert world.client.polls[-1] == {BINDING: 1}
        # the binding serves version 1 again once the server reads the folder: the rollback is real
        server.folder = world.folder
        assert world.deploy(materials[2], server, rollback=True)["Succeeded"]
        assert world.agent.held() == {BINDING: 3}
    finally:
        server.close()


def test_with_rollback_a_first_version_that_fails_its_check_is_taken_away(world: World,
                                                                          materials: list[Material]) -> None:
    put_files(world.elsewhere, materials[0])
    server = FolderTls(world.elsewhere)
    try:
        report = world.deploy(materials[1], server, rollback=True)
    finally:
        server.close()
    assert not report["Succeeded"] and "rolled back" in report["Error"]
    assert sorted(p.name for p in world.folder.iterdir()) == [] and world.folder_serial() is None
    assert world.agent.held() == {}


@pytest.mark.parametrize("rollback", [False, None])
def test_without_rollback_a_failed_check_keeps_the_new_version(world: World, materials: list[Material],
                                                               rollback: bool | None) -> None:
    server = FolderTls(world.folder)
    try:
        assert world.deploy(materials[0], server, rollback=rollback)["Succeeded"]
        put_files(world.elsewhere, materials[0])
        server.folder = world.elsewhere
        report = world.deploy(materials[1], server, rollback=rollback)
    finally:
        server.close()
    assert not report["Succeeded"] and "rolled back" not in report["Error"]
    assert f"serves serial {materials[0].serial}, not {materials[1].serial}" in report["Error"]
    assert same_serial(world.folder_serial(), materials[1].serial) and world.reload_count() == 2
    assert world.agent.held() == {BINDING: 2}


def test_no_key_material_in_reports(world: World, materials: list[Material]) -> None:
    put_files(world.elsewhere, materials[0])
    server = FolderTls(world.elsewhere)
    try:
        report = world.deploy(materials[1], server, rollback=True)
    finally:
        server.close()
    body = "".join(line for line in materials[1].private_key_pem.splitlines() if not line.startswith("-----"))
    assert body[:24] not in repr(report) and "PRIVATE KEY" not in repr(report)
