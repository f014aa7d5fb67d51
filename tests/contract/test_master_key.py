"""The master key: never silently replaced, checked at every start, rotated by re-sealing every key."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certsmith.deploy.targets.base import same_serial
from certsmith.testing.pki import WAIT, activate_root, create_ca, issue, make_csr

from ..conftest import backend_url, free_port, start_server
from .local_cli import certsmith, database_args


def _serve_refused(data_dir: Path, url: str | None, env: dict[str, str] | None = None) -> str:
    result = certsmith("serve", "--port", free_port(), "--data-dir", data_dir, *database_args(url), env=env, timeout=60)
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    assert "listening" not in result.stderr
    return result.stderr


def test_missing_or_wrong_master_key_stops_the_start(tmp_path: Path) -> None:
    url = backend_url()
    server = start_server(tmp_path, url)
    try:
        pca = server.client("acm-pca")
        arn = create_ca(pca, "ROOT", "Key Check Root")
        activate_root(pca, arn)
    finally:
        server.stop()
    key_file = server.data_dir / "master.key"
    original = key_file.read_bytes()

    key_file.unlink()
    message = _serve_refused(server.data_dir, url)
    assert f"{key_file} is missing" in message and "restore it from your backup" in message
    assert not key_file.exists(), "a new master key was made for a database with sealed keys"

    key_file.write_bytes(os.urandom(32))
    message = _serve_refused(server.data_dir, url)
    assert f"{key_file} is not the master key that sealed" in message

    wrong = "A" * 43 + "="  # base64 of 32 zero bytes: well-formed, but not the key
    message = _serve_refused(server.data_dir, url, env={"CERTSMITH_MASTER_KEY": wrong})
    assert "the master_key setting (CERTSMITH_MASTER_KEY) is not the master key" in message
    message = _serve_refused(server.data_dir, url, env={"CERTSMITH_MASTER_KEY": "c2hvcnQ="})
    assert "holds 5 bytes; it must be 32 bytes" in message

    key_file.unlink()
    key_file.write_bytes(original)
    os.chmod(key_file, 0o600)
    again = start_server(tmp_path, url)
    try:
        csr, _ = make_csr("after-restore.test")
        issue(again.client("acm-pca"), arn, csr)  # the restored key opens the CA's key
    finally:
        again.stop()


def test_rotation_reseals_every_key(tmp_path: Path) -> None:
    url = backend_url()
    server = start_server(tmp_path, url, extra=["--tls", "auto"])  # its TLS key files are sealed too
    trust = str(server.data_dir / "tls" / "ca.pem")
    try:
        pca, acm = server.client("acm-pca", verify=trust), server.client("acm", verify=trust)
        ca_arn = create_ca(pca, "ROOT", "Rotation Root")
        activate_root(pca, ca_arn)
        cert_arn = acm.request_certificate(DomainName="rotate.internal.test", CertificateAuthorityArn=ca_arn,
                                           KeyAlgorithm="EC_prime256v1")["CertificateArn"]
        acm.get_waiter("certificate_validated").wait(CertificateArn=cert_arn, WaiterConfig=WAIT)
        first_serial = acm.describe_certificate(CertificateArn=cert_arn)["Certificate"]["Serial"]
        acm.renew_certificate(CertificateArn=cert_arn)  # version 2: version 1 keeps its own key, sealed
        deadline = time.monotonic() + 30
        while acm.describe_certificate(CertificateArn=cert_arn)["Certificate"]["Serial"] == first_serial:
            assert time.monotonic() < deadline, "the renewal did not finish"
            time.sleep(0.2)
    finally:
        server.stop()
    key_file = server.data_dir / "master.key"
    old_key = key_file.read_bytes()

    result = certsmith("master-key", "rotate", "--data-dir", server.data_dir, *database_args(url))
    assert result.returncode == 0, result.stderr
    assert "re-sealed" in result.stdout and "1 in certificate_authorities" in result.stdout
    assert "in certificates" in result.stdout and "in access_keys" in result.stdout and "in key_pool" in result.stdout
    assert "2 in certificate_versions" in result.stdout
    new_key = key_file.read_bytes()
    assert new_key != old_key and len(new_key) == 32
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert not (server.data_dir / "master.key.new").exists()

    root_before = (server.data_dir / "tls" / "ca.pem").read_bytes()
    again = start_server(tmp_path, url, extra=["--tls", "auto"])  # the same credentials: the access key was re-sealed
    try:
        # the TLS key files were re-encrypted, not remade: clients keep trusting the same root
        assert (server.data_dir / "tls" / "ca.pem").read_bytes() == root_before
        csr, _ = make_csr("after-rotation.test")
        issue(again.client("acm-pca", verify=trust), ca_arn, csr)  # the CA key opens under the new master key
        exported = again.client("acm", verify=trust).export_certificate(CertificateArn=cert_arn,
                                                                        Passphrase=b"rotation-pass")
        assert "ENCRYPTED PRIVATE KEY" in exported["PrivateKey"]  # the certificate's key opens too
        # version 1's key opens too: deploying that version again writes its key beside its certificate
        folder = tmp_path / "deployed"
        folder.mkdir()
        certsmith_api = again.client("certsmith", verify=trust)
        binding = certsmith_api.create_binding(CertificateArn=cert_arn, Kind="files", Options={"path": str(folder)},
                                               Deploy=False)["Binding"]
        run = certsmith_api.run_deployment(CertificateArn=cert_arn, Version=1)["DeploymentId"]
        deadline = time.monotonic() + 30
        while (deployment := certsmith_api.describe_deployment(DeploymentId=run)["Deployment"])["Status"] in (
                "PENDING", "IN_PROGRESS"):
            assert time.monotonic() < deadline, deployment
            time.sleep(0.2)
        assert deployment["Status"] == "SUCCEEDED", deployment
        leaf = x509.load_pem_x509_certificate((folder / "cert.pem").read_bytes())
        key = serialization.load_pem_private_key((folder / "privkey.pem").read_bytes(), None)
        assert same_serial(leaf.serial_number, first_serial)
        assert key.public_key().public_numbers() == leaf.public_key().public_numbers()  # type: ignore[union-attr]
        certsmith_api.delete_binding(BindingArn=binding["BindingArn"])
    finally:
        again.stop()

    key_file.unlink()
    key_file.write_bytes(old_key)
    assert "is not the master key that sealed" in _serve_refused(server.data_dir, url)


@pytest.mark.parametrize("finished", [False, True])
def test_a_rotation_interrupted_after_its_commit_is_finished_at_the_next_start(tmp_path: Path, finished: bool) -> None:
    url = backend_url()
    server = start_server(tmp_path, url)
    server.stop()
    key_file, pending = server.data_dir / "master.key", server.data_dir / "master.key.new"
    old_key = key_file.read_bytes()
    assert certsmith("master-key", "rotate", "--data-dir", server.data_dir, *database_args(url)).returncode == 0
    new_key = key_file.read_bytes()
    if not finished:  # as if the process died between the commit and the rename
        key_file.replace(pending)
        key_file.write_bytes(old_key)
    again = start_server(tmp_path, url)
    again.stop()
    assert key_file.read_bytes() == new_key
    assert not pending.exists()
