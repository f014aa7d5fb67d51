"""Deployment through a real `certsmith serve` with boto3: bindings to the files target, deployments, InUseBy, renewal,
rollback to an earlier version, verification against a live TLS server (with rollback), failures that keep the old files.
"""

from __future__ import annotations

import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography import x509

from certsmith.deploy.targets.base import same_serial
from certsmith.testing.pki import WAIT, root_ca

from ..conftest import Server, backend_url, start_server

FINAL = ("SUCCEEDED", "FAILED")


@pytest.fixture(scope="module")
def deploy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("deploy-server"), backend_url(),
                       settings={"deploy_verify_attempts": 3, "deploy_verify_delay_seconds": 0.2,
                                 "deploy_retry_seconds": 0.5, "deploy_attempts": 3, "deploy_commands": "true"})
    yield srv
    srv.stop()
    log = srv.log_path.read_text()
    assert "Traceback" not in log, f"the server logged a traceback:\n{log}"


@pytest.fixture(scope="module")
def acm(deploy_server: Server) -> Any:
    return deploy_server.client("acm")


@pytest.fixture(scope="module")
def own(deploy_server: Server) -> Any:
    return deploy_server.client("certsmith")


@pytest.fixture(scope="module")
def ca(deploy_server: Server) -> str:
    return root_ca(deploy_server.client("acm-pca"), "Deploy Root", key_algorithm="RSA_2048", signing="SHA256WITHRSA")


def issued(acm: Any, ca: str, domain: str) -> str:
    arn: str = acm.request_certificate(DomainName=domain, CertificateAuthorityArn=ca)["CertificateArn"]
    acm.get_waiter("certificate_validated").wait(CertificateArn=arn, WaiterConfig=WAIT)
    return arn


def finished(own: Any, deployment_id: str, within: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        deployment: dict[str, Any] = own.describe_deployment(DeploymentId=deployment_id)["Deployment"]
        if deployment["Status"] in FINAL or time.monotonic() > deadline:
            return deployment
        time.sleep(0.1)


def serial_in(folder: Path) -> int:
    return x509.load_pem_x509_certificate((folder / "cert.pem").read_bytes()).serial_number


def error_of(call: Any, **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


def current_serial(acm: Any, arn: str) -> str:
    serial: str = acm.describe_certificate(CertificateArn=arn)["Certificate"]["Serial"]
    return serial


def test_a_binding_deploys_the_files_and_holds_the_certificate_in_use(acm: Any, own: Any, ca: str,
                                                                       tmp_path: Path) -> None:
    arn = issued(acm, ca, "files.deploy.test")
    folder = tmp_path / "site"
    folder.mkdir()
    created = own.create_binding(CertificateArn=arn, Kind="files", Options={"path": str(folder)}, Name="site")
    binding = created["Binding"]
    assert binding["BindingArn"].startswith("arn:aws:certsmith:us-east-1:") and ":binding/" in binding["BindingArn"]
    assert binding["Kind"] == "files" and binding["Options"]["path"] == str(folder) and binding["Name"] == "site"
    assert str(folder) in binding["Target"] and binding["Status"] == "PENDING"
    deployment = finished(own, created["DeploymentId"])
    assert deployment["Status"] == "SUCCEEDED", deployment
    assert deployment["Trigger"] == "MANUAL" and deployment["Version"] == 1
    [item] = deployment["Items"]
    assert item["BindingArn"] == binding["BindingArn"] and item["Status"] == "SUCCEEDED" and item["Attempts"] == 1
    assert same_serial(serial_in(folder), current_serial(acm, arn))
    assert {p.name for p in folder.iterdir()} >= {"cert.pem", "chain.pem", "fullchain.pem", "privkey.pem"}
    assert oct(os.stat(folder / "privkey.pem").st_mode & 0o777) == "0o600"
    described = own.describe_binding(BindingArn=binding["BindingArn"])["Binding"]
    assert described["Status"] == "DEPLOYED" and described["DeployedVersion"] == 1
    assert same_serial(described["DeployedSerial"], current_serial(acm, arn))
    listed = own.list_bindings(CertificateArn=arn)["Bindings"]
    assert [b["BindingArn"] for b in listed] == [binding["BindingArn"]]
    assert any(d["DeploymentId"] == created["DeploymentId"] and "Items" not in d
               for d in own.list_deployments(CertificateArn=arn)["Deployments"])
    # The binding holds the certificate in use: ACM shows it, and the certificate cannot be deleted.
    assert acm.describe_certificate(CertificateArn=arn)["Certificate"]["InUseBy"] == [binding["BindingArn"]]
    code, message = error_of(acm.delete_certificate, CertificateArn=arn)
    assert code == "ResourceInUseException" and message == (
        f"certificate {arn} is in use by binding {binding['BindingArn']} (site); remove the binding first: certsmith "
        f"deploy remove {binding['BindingId']}, or DeleteBinding"), message
    own.delete_binding(BindingArn=binding["BindingArn"], RemoveFromTarget=True)
    assert not (folder / "privkey.pem").exists()
    assert acm.describe_certificate(CertificateArn=arn)["Certificate"].get("InUseBy", []) == []
    assert error_of(own.describe_binding, BindingArn=binding["BindingArn"])[0] == "ResourceNotFoundException"
    acm.delete_certificate(CertificateArn=arn)


def test_create_binding_says_what_is_wrong(acm: Any, own: Any, ca: str, tmp_path: Path) -> None:
    arn = issued(acm, ca, "wrong.deploy.test")
    code, message = error_of(own.create_binding, CertificateArn=arn, Kind="ftp", Options={})
    assert code == "ValidationException" and "ftp" in message and "files" in message
    code, message = error_of(own.create_binding, CertificateArn=arn, Kind="files", Options={"folder": "/tmp"})
    assert code == "ValidationException" and "folder" in message and "path" in message
    code, message = error_of(own.create_binding, CertificateArn=arn, Kind="files", Options={})
    assert code == "ValidationException" and "path" in message
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    code, message = error_of(own.create_binding, CertificateArn=arn, Kind="files", Options={"path": str(locked / "x")})
    assert code == "ValidationException" and str(locked) in message
    code, message = error_of(own.create_binding, CertificateArn=arn, Kind="files", Options={"path": str(tmp_path)},
                             Verify={"Host": "127.0.0.1", "Port": 70000})
    assert code == "ValidationException" and "Verify.Port" in message
    missing = arn[:-4] + "0000"
    assert error_of(own.create_binding, CertificateArn=missing, Kind="files",
                    Options={"path": str(tmp_path)})[0] == "ResourceNotFoundException"
    assert own.list_bindings(CertificateArn=arn)["Bindings"] == []
    code, message = error_of(own.create_binding, CertificateArn=arn, Kind="files", Options={"path": str(tmp_path)},
                             Rollback=True)
    assert (code, message) == ("ValidationException", "Rollback needs Verify: the version is put back when the "
                               "endpoint does not serve it")
    first = own.create_binding(CertificateArn=arn, Kind="files", Options={"path": str(tmp_path)}, Name="wrong-site",
                               Verify={"Host": "127.0.0.1"}, Deploy=False)["Binding"]
    assert first["Verify"] == {"Host": "127.0.0.1", "Port": 443, "ServerName": "wrong.deploy.test"}
    code, message = error_of(own.create_binding, CertificateArn=arn, Kind="files", Options={"path": f"{tmp_path}/"})
    assert code == "ConflictException" and message == (
        f"Options.path: binding {first['BindingId']} (files {tmp_path}) already deploys to {tmp_path}; a folder holds one "
        "certificate"), message
    (tmp_path / "other").mkdir()
    code, message = error_of(own.create_binding, CertificateArn=arn, Kind="files", Name="wrong-site",
                             Options={"path": str(tmp_path / "other")})
    assert code == "ConflictException" and message.startswith("Name: ") and first["BindingId"] in message
    own.delete_binding(BindingArn=first["BindingArn"])


# -- a TLS server that serves whatever the folder holds now ------------------------------------------------------
class FolderTlsServer:
    """Serves TLS on loopback with the fullchain.pem and privkey.pem of ``folder``, read anew for each connection."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.socket.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.socket.settimeout(0.2)
        while not self.stop.is_set():
            try:
                connection, _ = self.socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with connection:
                try:
                    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                    context.load_cert_chain(self.folder / "fullchain.pem", self.folder / "privkey.pem")
                    connection.settimeout(5)
                    with context.wrap_socket(connection, server_side=True) as tls:
                        tls.recv(1)
                except (OSError, ssl.SSLError):
                    continue

    def close(self) -> None:
        self.stop.set()
        self.socket.close()
        self.thread.join(5)


@pytest.fixture
def tls_folder(tmp_path: Path) -> Iterator[tuple[Path, FolderTlsServer]]:
    folder = tmp_path / "served"
    folder.mkdir()
    served = FolderTlsServer(folder)
    yield folder, served
    served.close()


def deployment_of(own: Any, arn: str, trigger: str, within: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for deployment in own.list_deployments(CertificateArn=arn)["Deployments"]:
            if deployment["Trigger"] == trigger:
                return finished(own, deployment["DeploymentId"], within)
        time.sleep(0.1)
    raise AssertionError(f"no {trigger} deployment of {arn} within {within} s")


def test_renewal_deploys_the_new_version_verified_and_an_earlier_one_can_be_put_back(
        acm: Any, own: Any, ca: str, tls_folder: tuple[Path, FolderTlsServer]) -> None:
    folder, served = tls_folder
    arn = issued(acm, ca, "verified.deploy.test")
    first = current_serial(acm, arn)
    created = own.create_binding(CertificateArn=arn, Kind="files", Options={"path": str(folder)},
                                 Verify={"Host": "127.0.0.1", "Port": served.port, "ServerName": "verified.deploy.test"})
    assert created["Binding"]["Verify"] == {"Host": "127.0.0.1", "Port": served.port,
                                            "ServerName": "verified.deploy.test"}
    deployment = finished(own, created["DeploymentId"])
    assert deployment["Status"] == "SUCCEEDED", deployment
    assert same_serial(deployment["Items"][0]["VerifiedSerial"], first)
    # A renewal deploys the new version to the binding, verified against the live server.
    acm.renew_certificate(CertificateArn=arn)
    renewal = deployment_of(own, arn, "RENEWAL")
    second = current_serial(acm, arn)
    assert not same_serial(first, second)
    assert renewal["Status"] == "SUCCEEDED" and renewal["Version"] == 2, renewal
    assert same_serial(renewal["Serial"], second) and same_serial(renewal["Items"][0]["VerifiedSerial"], second)
    assert renewal["Items"][0]["PreviousVersion"] == 1
    assert same_serial(serial_in(folder), second)
    # An earlier version goes back on request: a ROLLBACK deployment.
    rollback_id = own.run_deployment(CertificateArn=arn, Version=1)["DeploymentId"]
    rollback = finished(own, rollback_id)
    assert rollback["Trigger"] == "ROLLBACK" and rollback["Status"] == "SUCCEEDED" and rollback["Version"] == 1
    assert same_serial(serial_in(folder), first) and same_serial(rollback["Items"][0]["VerifiedSerial"], first)
    binding = own.describe_binding(BindingArn=created["Binding"]["BindingArn"])["Binding"]
    assert binding["DeployedVersion"] == 1 and same_serial(binding["DeployedSerial"], first)
    # The current one again, to the bindings named.
    again = finished(own, own.run_deployment(CertificateArn=arn, BindingArns=[binding["BindingArn"]])["DeploymentId"])
    assert again["Trigger"] == "MANUAL" and again["Version"] == 2 and again["Status"] == "SUCCEEDED"
    assert same_serial(serial_in(folder), second)
    code, message = error_of(own.run_deployment, CertificateArn=arn, Version=7)
    assert code == "ValidationException" and "Version" in message
    own.delete_binding(BindingArn=binding["BindingArn"])


def test_an_endpoint_that_serves_another_certificate_rolls_the_binding_back(
        acm: Any, own: Any, ca: str, tls_folder: tuple[Path, FolderTlsServer], tmp_path: Path) -> None:
    stale, served = tls_folder  # the server serves this folder; the binding writes another one
    other = issued(acm, ca, "stale.deploy.test")
    stale_binding = own.create_binding(CertificateArn=other, Kind="files", Options={"path": str(stale)})
    assert finished(own, stale_binding["DeploymentId"])["Status"] == "SUCCEEDED"
    arn = issued(acm, ca, "rollback.deploy.test")
    folder = tmp_path / "written"
    folder.mkdir()
    created = own.create_binding(CertificateArn=arn, Kind="files", Options={"path": str(folder)}, Rollback=True,
                                 Verify={"Host": "127.0.0.1", "Port": served.port})
    deployment = finished(own, created["DeploymentId"])
    [item] = deployment["Items"]
    assert deployment["Status"] == "FAILED" and item["Status"] == "ROLLED_BACK", deployment
    assert same_serial(item["VerifiedSerial"], current_serial(acm, other))
    served = acm.describe_certificate(CertificateArn=other)["Certificate"]["Serial"]
    assert f"served serial {served} (CN=stale.deploy.test), expected " in item["Error"], item["Error"]
    assert item["Error"].endswith("; nothing was there before: the files were removed again"), item["Error"]
    assert "previous version" not in item["Error"]
    assert not (folder / "cert.pem").exists()  # what was there before (nothing) is back
    binding = own.describe_binding(BindingArn=created["Binding"]["BindingArn"])["Binding"]
    assert binding["Status"] == "FAILED" and "DeployedVersion" not in binding and "served serial" in binding["LastError"]
    for each in (binding["BindingArn"], stale_binding["Binding"]["BindingArn"]):
        own.delete_binding(BindingArn=each)


def test_a_failing_reload_command_leaves_the_old_files(acm: Any, own: Any, ca: str, tmp_path: Path) -> None:
    arn = issued(acm, ca, "reload.deploy.test")
    folder = tmp_path / "old"
    folder.mkdir()
    for name in ("cert.pem", "chain.pem", "fullchain.pem", "privkey.pem"):
        (folder / name).write_text(f"the old {name}\n")
    created = own.create_binding(CertificateArn=arn, Kind="files",
                                 Options={"path": str(folder), "reload_command": "echo no >&2; exit 3"})
    deployment = finished(own, created["DeploymentId"])
    [item] = deployment["Items"]
    assert deployment["Status"] == "FAILED" and item["Status"] == "FAILED", deployment
    assert "exit status 3" in item["Error"] and "activating the previous version failed too" in item["Error"]
    assert (folder / "cert.pem").read_text() == "the old cert.pem\n"
    assert (folder / "privkey.pem").read_text() == "the old privkey.pem\n"
    own.delete_binding(BindingArn=created["Binding"]["BindingArn"])


def test_a_failing_reload_command_in_an_empty_folder_removes_the_files_and_says_so(acm: Any, own: Any, ca: str,
                                                                                  tmp_path: Path) -> None:
    arn = issued(acm, ca, "first-reload.deploy.test")
    folder, runs = tmp_path / "empty", tmp_path / "runs"
    folder.mkdir()
    created = own.create_binding(CertificateArn=arn, Kind="files",
                                 Options={"path": str(folder), "reload_command": f"echo run >> {runs}; exit 3"})
    deployment = finished(own, created["DeploymentId"])
    [item] = deployment["Items"]
    assert deployment["Status"] == "FAILED" and item["Status"] == "FAILED", deployment
    assert "exit status 3" in item["Error"] and "previous version" not in item["Error"], item["Error"]
    assert item["Error"].endswith("; nothing was there before: the files were removed again (not activated again: "
                                  "nothing is left to serve)"), item["Error"]
    assert item["Error"].count("exit status 3") == 1
    assert list(folder.iterdir()) == [] and runs.read_text() == "run\n"  # the reload ran once
    own.delete_binding(BindingArn=created["Binding"]["BindingArn"])
