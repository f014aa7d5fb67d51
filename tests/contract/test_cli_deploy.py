"""``certsmith deploy ...`` against a real server: bindings to ``files`` targets, runs followed to the end (the progress
display in a terminal and in a pipe), verification by a real TLS handshake, rollback, agents, and bad input in words.

The server is this module's own: deployments retry quickly, so a failing target fails within seconds.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from typer.testing import CliRunner

from certsmith.cli.deploy_view import parse_verify
from certsmith.cli.main import app
from certsmith.testing.moto import DUMMY_KEYS, start_moto

from ..conftest import Server, backend_url, need_binary, start_server
from .test_cli import cli

NAME = "cli-deploy.test"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("deploy-cli"), backend_url(), settings={
        "deploy_attempts": 2, "deploy_retry_seconds": 0.5, "deploy_verify_attempts": 3,
        "deploy_verify_delay_seconds": 0.3, "deploy_commands": "true"})
    yield srv
    srv.stop()
    assert not srv.errors(), srv.errors()


class Pki:
    """A CA made here, and leaf certificates for NAME under it (PEM)."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Deploy CLI Test CA")])
        now = datetime.now(UTC)
        self.cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=30))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.chain = self.cert.public_bytes(serialization.Encoding.PEM)

    def leaf(self) -> tuple[bytes, bytes, str]:
        """(certificate PEM, key PEM, serial as colon hex)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAME)]))
                .issuer_name(self.cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=20))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=False)
                .sign(self.key, hashes.SHA256()))
        text = format(cert.serial_number, "x")
        text = ("0" + text) if len(text) % 2 else text
        serial = ":".join(text[i:i + 2] for i in range(0, len(text), 2))
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        return cert.public_bytes(serialization.Encoding.PEM), key_pem, serial


def same_serial(first: str | None, second: str) -> bool:
    return first is not None and int(first.replace(":", ""), 16) == int(second.replace(":", ""), 16)


def served_serial(folder: Path) -> int:
    return x509.load_pem_x509_certificate((folder / "cert.pem").read_bytes()).serial_number


class FolderTls:
    """A TLS server on [::1] presenting whatever fullchain.pem and privkey.pem in ``folder`` hold at each handshake."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.sock = socket.socket(socket.AF_INET6)
        self.sock.bind(("::1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                try:
                    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                    context.load_cert_chain(self.folder / "fullchain.pem", self.folder / "privkey.pem")
                    conn.settimeout(5)
                    with context.wrap_socket(conn, server_side=True) as tls:
                        tls.recv(1)
                except (OSError, ssl.SSLError):
                    pass  # no files yet, or the client hung up after its handshake

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(5)
        self.sock.close()


def imported(server: Server, pki: Pki, arn: str | None = None) -> tuple[str, str]:
    """(certificate ARN, serial) of a new leaf imported (again, under ``arn``)."""
    cert, key, serial = pki.leaf()
    kwargs: dict[str, Any] = {"CertificateArn": arn} if arn else {}
    found = server.client("acm").import_certificate(Certificate=cert, PrivateKey=key, CertificateChain=pki.chain,
                                                    **kwargs)
    return found["CertificateArn"], serial


def in_terminal(server: Server, *args: str) -> tuple[int, str, str]:
    """(exit status, stdout, what a terminal on stderr saw, control codes left out) of a CLI command."""
    master, slave = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "certsmith", *args], stdout=subprocess.PIPE, stderr=slave,
                               env={**server.env(), "TERM": "xterm", "COLUMNS": "160"})
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the command has exited and the terminal is closed
                break
            if not chunk:
                break
            seen += chunk
        elif process.poll() is not None:
            break
    os.close(master)
    assert process.stdout is not None
    with process.stdout:
        out = process.stdout.read().decode()
    status = process.wait(10)
    return status, out, ANSI.sub("", seen.decode(errors="replace"))


def test_run_over_several_files_bindings_shows_progress_and_each_failure(own_server: Server, tmp_path: Path) -> None:
    pki = Pki()
    arn, serial = imported(own_server, pki)
    folders = [tmp_path / f"site{i}" for i in range(5)]
    ids = []
    for index, folder in enumerate(folders):
        folder.mkdir()
        extra = ["--reload-command", "false"] if index == 4 else []
        added = json.loads(cli(own_server, "deploy", "add", arn, "--target", "files", "--path", str(folder),
                               "--name", f"site{index}", "--no-deploy", *extra, "--json").stdout)
        assert added["Binding"]["Status"] == "PENDING" and not added.get("DeploymentId")
        ids.append(added["Binding"]["BindingId"])
    listed = json.loads(cli(own_server, "deploy", "list", arn, "--json").stdout)
    assert sorted(b["Name"] for b in listed) == [f"site{i}" for i in range(5)]
    table = cli(own_server, "deploy", "list", arn).stdout
    assert "site3" in table and "files" in table and "PENDING" in table

    # In a terminal: a progress bar (N of M), the failure as it comes, the outcome, exit 1.
    status, out, terminal = in_terminal(own_server, "deploy", "run", arn)
    assert status == 1, (out, terminal)
    assert "5/5" in terminal and "1 failed" in terminal, terminal
    assert re.search(rf"x {ids[4]} \(files {folders[4]}\) failed: ", terminal), terminal
    assert "FAILED" in out and "on 4 of 5 targets" in out and "Traceback" not in terminal
    for folder in folders[:4]:
        assert same_serial(format(served_serial(folder), "x"), serial)

    # Into a pipe: a line whenever the counts change, each failure's error on stderr, exit 1.
    piped = cli(own_server, "deploy", "run", arn, ok=False)
    assert piped.returncode == 1, piped.stderr
    assert re.search(r"deployment \S+: 5 of 5 done, 1 failed", piped.stderr), piped.stderr
    errors = [line for line in piped.stderr.splitlines() if f"{ids[4]} (files {folders[4]}) failed: " in line]
    assert len(errors) == 1 and "Traceback" not in piped.stderr, piped.stderr  # each failure once
    assert "files: the reload command 'false' failed (exit status 1)" in errors[0]
    assert piped.stderr.count("reload command") == 1, piped.stderr  # said once

    # Only the good bindings, by name: it succeeds, exit 0.
    good = [arg for i in range(4) for arg in ("--binding", f"site{i}")]
    only = cli(own_server, "deploy", "run", arn, *good, "--json")
    deployment = json.loads(only.stdout)
    assert deployment["Status"] == "SUCCEEDED" and len(deployment["Items"]) == 4
    assert deployment["Trigger"] == "MANUAL" and same_serial(deployment["Serial"], serial)
    latest = json.loads(cli(own_server, "deploy", "status", arn, "--json").stdout)
    assert latest["DeploymentId"] == deployment["DeploymentId"]
    shown = cli(own_server, "deploy", "status", deployment["DeploymentId"]).stdout
    assert "SUCCEEDED" in shown and "MANUAL" in shown and str(folders[0]) in shown

    started = cli(own_server, "deploy", "run", arn, "--binding", "site0", "--no-wait").stdout
    assert "certsmith deploy status" in started
    for index in range(5):
        cli(own_server, "deploy", "remove", f"site{index}")
    assert json.loads(cli(own_server, "deploy", "list", arn, "--json").stdout) == []


def test_verified_deployment_new_version_and_rollback(own_server: Server, tmp_path: Path) -> None:
    pki = Pki()
    arn, first = imported(own_server, pki)
    folder = tmp_path / "tls"
    folder.mkdir()
    tls = FolderTls(folder)
    try:
        result = cli(own_server, "deploy", "add", arn, "--target", "files", "--path", str(folder), "--name", "tls",
                     "--verify", f"[::1]:{tls.port}/{NAME}", "--rollback", "--wait", "--json")
        answer = json.loads(result.stdout)
        deployment = answer["Deployment"]
        assert deployment["Status"] == "SUCCEEDED" and answer["DeploymentId"] == deployment["DeploymentId"], answer
        assert answer["Binding"]["Name"] == "tls"
        [item] = deployment["Items"]
        assert same_serial(item["VerifiedSerial"], first)

        shown = cli(own_server, "deploy", "show", "tls").stdout
        assert f"[::1]:{tls.port}/{NAME}" in shown and "DEPLOYED" in shown and "on a failed check" in shown
        binding = json.loads(cli(own_server, "deploy", "show", "tls", "--json").stdout)
        assert binding["Verify"] == {"Host": "::1", "Port": tls.port, "ServerName": NAME}
        assert binding["Options"]["path"] == str(folder)

        # A re-import is a new version: deployed by itself, then verified.
        _, second = imported(own_server, pki, arn)
        deadline = time.monotonic() + 60
        latest: dict[str, Any] = {}
        while time.monotonic() < deadline:
            latest = json.loads(cli(own_server, "deploy", "status", arn, "--json").stdout)
            if latest["Version"] == 2 and latest["Status"] in ("SUCCEEDED", "FAILED"):
                break
            time.sleep(0.3)
        assert latest["Version"] == 2 and latest["Status"] == "SUCCEEDED", latest
        assert same_serial(format(served_serial(folder), "x"), second)

        back = cli(own_server, "deploy", "rollback", arn, "--json")
        rolled = json.loads(back.stdout)
        assert rolled["Version"] == 1 and rolled["Trigger"] == "ROLLBACK" and rolled["Status"] == "SUCCEEDED"
        assert same_serial(format(served_serial(folder), "x"), first)
        assert same_serial(rolled["Items"][0]["VerifiedSerial"], first)
        behind = cli(own_server, "deploy", "list", arn).stdout
        assert "Current version" in behind and "2 (behind)" in behind, behind  # version 1 is deployed, 2 is current
        again = cli(own_server, "deploy", "rollback", arn, "--to-version", "2")
        assert "SUCCEEDED" in again.stdout and "on 1 of 1 targets" in again.stdout
        assert "behind" not in cli(own_server, "deploy", "list", arn).stdout
        assert same_serial(format(served_serial(folder), "x"), second)
        missing = cli(own_server, "deploy", "rollback", arn, "--to-version", "7", ok=False)
        assert missing.returncode == 1 and "--to-version 7" in missing.stderr and "versions 1, 2" in missing.stderr
    finally:
        tls.close()
    cli(own_server, "deploy", "remove", "tls", "--remove-from-target")
    assert not (folder / "privkey.pem").exists()


def test_bad_input_is_one_line_naming_the_option(own_server: Server, tmp_path: Path) -> None:
    arn, _ = imported(own_server, Pki())
    (tmp_path / "x").mkdir()
    folder = str(tmp_path / "x")
    where = ["--path", folder]
    cases = [
        (["--verify", "web:https", *where], "--verify", "the port must be a number"),
        (["--verify", "web:70000", *where], "--verify", "from 1 to 65535"),
        (["--verify", "[::1]443", *where], "--verify", "[ADDRESS]:PORT"),
        (["--verify", "[::1]:443/", *where], "--verify", "after the '/'"),
        (["--verify", "web:443/not a name", *where], "--verify", "is not a DNS name"),
        (["--verify", "https://127.0.0.1:33799", *where], "--verify",
         "--verify takes HOST:PORT[/SNI] without a scheme, e.g. 127.0.0.1:33799"),
        (["--verify", "127.0.0.1:33799:www.trial.test", *where], "--verify",
         "put a '/' before the server name: 127.0.0.1:33799/www.trial.test"),
        (["--verify", "web:a:b", *where], "--verify", "is not an IPv6 address"),
        (["--option", "reload_command", *where], "--option", "KEY=VALUE"),
        (["--option", "reload-command=true", *where], "--option", "use underscores: reload_command"),
        (["--option", "path=/a", "--option", "path=/b"], "--option path", "given twice"),
        (["--option", "path=/a", *where], "--path and --option path", "give it once"),
        (["--path", "relative/dir"], "--path 'relative/dir'", "give an absolute folder"),
    ]
    runner = CliRunner()  # checked before anything is sent: in this process, to keep the test quick
    for extra, field, words in cases:
        result = runner.invoke(app, ["deploy", "add", arn, "--target", "files", *extra], env=own_server.env())
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == 2 and len(lines) == 1, (extra, result.stderr)
        assert field in lines[0] and words in lines[0], (extra, lines)
        assert result.exception is None or isinstance(result.exception, SystemExit), (extra, result.exception)
    piped = cli(own_server, "deploy", "add", arn, "--target", "files", "--verify", "[::1]:99999/x.test", ok=False)
    assert piped.returncode == 2 and piped.stderr.strip().splitlines() == [
        "certsmith: --verify '[::1]:99999/x.test': the port must be from 1 to 65535"]
    zero = cli(own_server, "deploy", "run", arn, "--version", "0", ok=False)
    assert zero.returncode == 2 and "--version" in zero.stderr and "Traceback" not in zero.stderr
    assert json.loads(cli(own_server, "deploy", "list", arn, "--json").stdout) == []  # nothing was bound

    # What only the server can check comes back as its message, one line, exit 1.
    for args in (["--target", "no-such-kind", "--path", folder], ["--target", "files", "--option", "colour=blue",
                                                                  "--path", folder]):
        refused = cli(own_server, "deploy", "add", arn, *args, ok=False)
        assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
        assert ("no-such-kind" in refused.stderr or "colour" in refused.stderr) and "Traceback" not in refused.stderr
    unknown = cli(own_server, "deploy", "show", "nothing-here", ok=False)
    assert unknown.returncode == 1 and "no binding has the id or name 'nothing-here'" in unknown.stderr
    never = cli(own_server, "deploy", "status", arn, ok=False)
    assert never.returncode == 1 and "has not been deployed yet" in never.stderr
    only_one = cli(own_server, "deploy", "rollback", arn, ok=False)
    assert only_one.returncode == 1 and "nothing to roll back to" in only_one.stderr


def test_agent_commands(own_server: Server, tmp_path: Path) -> None:
    key_file = tmp_path / "agent.credentials"
    created = cli(own_server, "deploy", "agent", "create", "edge-1", "--credentials-file", str(key_file)).stdout
    assert "created agent edge-1" in created and str(key_file) in created
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    text = key_file.read_text()
    assert text.startswith("[default]\naws_access_key_id = ") and "aws_secret_access_key = " in text
    again = cli(own_server, "deploy", "agent", "create", "edge-2", "--credentials-file", str(key_file), ok=False)
    assert again.returncode == 2 and "exists" in again.stderr

    printed = cli(own_server, "deploy", "agent", "create", "edge-2", "--json")
    answer = json.loads(printed.stdout)
    assert answer["Agent"]["Name"] == "edge-2" and answer["SecretAccessKey"]
    agents = {a["Name"]: a for a in json.loads(cli(own_server, "deploy", "agent", "list", "--json").stdout)}
    assert {"edge-1", "edge-2"} <= agents.keys()
    assert f"aws_access_key_id = {agents['edge-1']['AccessKeyId']}" in text
    assert "edge-1" in cli(own_server, "deploy", "agent", "list").stdout
    arn, _ = imported(own_server, Pki())
    bound = cli(own_server, "deploy", "add", arn, "--target", "files", "--path", "/srv/tls", "--agent", "edge-2",
                "--name", "on-edge").stdout
    assert "via agent edge-2" not in bound and "Agent:" in bound and "edge-2" in bound
    listed = cli(own_server, "deploy", "list", "--agent", "edge-2").stdout
    assert "on-edge" in listed and "via agent edge-2" in listed
    waiting = cli(own_server, "deploy", "run", arn, "--timeout", "1", ok=False)
    assert waiting.returncode == 1 and "1 waiting for an agent" in waiting.stderr, waiting.stderr
    assert "certsmith deploy status" in waiting.stderr and "Traceback" not in waiting.stderr
    assert "WAITING_FOR_AGENT" in cli(own_server, "deploy", "status", arn).stdout
    cli(own_server, "deploy", "remove", "on-edge")
    cli(own_server, "deploy", "agent", "remove", "edge-2")
    names = {a["Name"] for a in json.loads(cli(own_server, "deploy", "agent", "list", "--json").stdout)}
    assert "edge-2" not in names and "edge-1" in names
    cli(own_server, "deploy", "agent", "remove", "edge-1")


def test_secret_options_are_asked_for_or_read_and_never_shown(own_server: Server, tmp_path: Path) -> None:
    need_binary("moto_server")
    arn, serial = imported(own_server, Pki())
    secret = DUMMY_KEYS["secret_access_key"]
    with start_moto(tmp_path / "moto", env={"MOTO_ACM_VALIDATION_WAIT": "0"}) as moto:
        common = ["deploy", "add", arn, "--target", "aws-acm", "--option", "region=us-east-1",
                  "--option", f"endpoint_url={moto.endpoint}", "--option", f"access_key_id={DUMMY_KEYS['access_key_id']}"]
        asked = subprocess.run([sys.executable, "-m", "certsmith", *common, "--secret-option", "secret_access_key",
                                "--name", "acm-asked", "--wait", "--json"], input=f"{secret}\n", capture_output=True,
                               text=True, env=own_server.env(), timeout=120)
        assert asked.returncode == 0, asked.stderr
        answer = json.loads(asked.stdout)
        assert answer["Binding"]["SecretOptionsSet"] == ["secret_access_key"]
        assert "secret_access_key" not in answer["Binding"]["Options"] and secret not in asked.stdout + asked.stderr
        assert answer["Deployment"]["Status"] == "SUCCEEDED" and same_serial(answer["Deployment"]["Serial"], serial)
        acm = boto3.client("acm", region_name="us-east-1", endpoint_url=moto.endpoint,
                           aws_access_key_id=DUMMY_KEYS["access_key_id"], aws_secret_access_key=secret)
        [there] = acm.list_certificates()["CertificateSummaryList"]
        body = acm.get_certificate(CertificateArn=there["CertificateArn"])["Certificate"]
        assert same_serial(format(x509.load_pem_x509_certificate(body.encode()).serial_number, "x"), serial)
        assert there["CertificateArn"] in cli(own_server, "deploy", "show", "acm-asked").stdout  # the target's ARN now

        (tmp_path / "secret").write_text(f"{secret}\n")
        from_file = cli(own_server, *common, "--secret-option", f"secret_access_key=@{tmp_path / 'secret'}",
                        "--option", "timeout=5", "--name", "acm-file", "--no-deploy")
        assert "secret_access_key (set)" in from_file.stdout and secret not in from_file.stdout
        shown = cli(own_server, "deploy", "show", "acm-file").stdout
        assert "secret_access_key (set)" in shown and "timeout=5" in shown and secret not in shown
        plain = cli(own_server, *common, "--secret-option", "timeout=7", "--option", f"secret_access_key={secret}",
                    "--name", "acm-plain", "--no-deploy")
        assert "note: timeout is not a secret option of aws-acm" in plain.stderr
        missing = cli(own_server, "deploy", "add", arn, "--target", "files", "--path", str(tmp_path),
                      "--secret-option", f"token=@{tmp_path / 'nope'}", ok=False)
        assert missing.returncode == 2 and "--secret-option token=@" in missing.stderr
        assert "cannot read the file" in missing.stderr
        for name in ("acm-asked", "acm-file", "acm-plain"):
            cli(own_server, "deploy", "remove", name)


def test_add_and_wait_prints_a_failure_once(own_server: Server, tmp_path: Path) -> None:
    arn, _ = imported(own_server, Pki())
    folder = tmp_path / "once"
    folder.mkdir()
    added = cli(own_server, "deploy", "add", arn, "--target", "files", "--path", str(folder), "--name", "once",
                "--reload-command", "echo the service said no >&2; exit 4", "--wait", ok=False)
    assert added.returncode == 1, added.stderr
    assert added.stderr.count("failed (exit status 4)") == 1 and "Traceback" not in added.stderr, added.stderr
    assert added.stderr.count("the service said no") == 1 + 1, added.stderr  # the command once, its output once
    assert "files: the reload command 'echo the service said no >&2; exit 4' failed" in added.stderr
    as_json = cli(own_server, "deploy", "run", arn, "--binding", "once", "--json", ok=False)
    assert as_json.returncode == 1 and as_json.stderr.count("failed (exit status 4)") == 1, as_json.stderr
    binding = json.loads(cli(own_server, "deploy", "show", "once", "--json").stdout)["BindingArn"]
    assert f"In use by: {binding}" in cli(own_server, "cert", "describe", arn).stdout  # as describe-certificate says
    cli(own_server, "deploy", "remove", "once")
    assert "In use by" not in cli(own_server, "cert", "describe", arn).stdout


def test_verify_values_that_are_taken() -> None:
    assert parse_verify("127.0.0.1") == {"Host": "127.0.0.1"}  # the server's default port, 443
    assert parse_verify("::1") == {"Host": "::1"}
    assert parse_verify("[::1]:8443/www.trial.test") == {"Host": "::1", "Port": 8443, "ServerName": "www.trial.test"}
    assert parse_verify("web.test:8443/www.trial.test") == {"Host": "web.test", "Port": 8443,
                                                             "ServerName": "www.trial.test"}
    shown = CliRunner().invoke(app, ["deploy", "add", "--help"], env={"COLUMNS": "200"}).stdout
    assert "HOST alone means port 443" in " ".join(shown.split())
