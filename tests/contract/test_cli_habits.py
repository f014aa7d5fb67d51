"""What scripts and readers of ``certsmith ca|cert`` rely on, through the real CLI (stdout is a pipe here).

-q prints ARNs alone, usable in the next command; a piped table keeps every ARN whole on one line;
every help page names its environment variables and defaults, never a Python type, and answers -h.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from certsmith.cli.ca import ca_app
from certsmith.cli.cert import cert_app
from certsmith.cli.main import app
from certsmith.testing.pki import make_csr

from ..conftest import Server, free_port, no_database
from ..unit.test_import_check import VECTORS
from .test_cli import cli

ARN = re.compile(r"arn:aws:(acm-pca|acm):us-east-1:\d{12}:(certificate-authority/[0-9a-f-]{36}"
                 r"(/certificate/[0-9a-f]{32})?|certificate/[0-9a-f-]{36})")
ALL_KEY_TYPES = ["RSA_1024", "RSA_2048", "RSA_3072", "RSA_4096", "EC_prime256v1", "EC_secp384r1", "EC_secp521r1"]


def _only_arns(stdout: str) -> list[str]:
    """The ARNs of a -q output, after checking that it holds nothing else."""
    lines = stdout.split("\n")
    assert lines[-1] == "", f"no newline after the last ARN: {stdout!r}"
    for line in lines[:-1]:
        assert ARN.fullmatch(line), f"not an ARN alone on its line: {line!r}"
    return lines[:-1]


def _plain(env: dict[str, str]) -> dict[str, str]:
    env.pop("COLUMNS", None)
    env.pop("TERMINAL_WIDTH", None)
    return env


def test_quiet_prints_arns_a_script_can_use(server: Server, pca: Any, tmp_path: Path) -> None:
    acm = server.client("acm")
    certsmith = f"{shlex.quote(sys.executable)} -m certsmith"
    script = (f'CA=$({certsmith} ca create --root -q -n "Quiet Root") && '
              f'CERT=$({certsmith} cert request quiet.cli.test --ca "$CA" -q) && '
              f'{certsmith} cert describe "$CERT" --json >/dev/null && echo "$CA" && echo "$CERT"')
    result = subprocess.run(["sh", "-c", script], env=server.env(), capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    ca_arn, cert_arn = _only_arns(result.stdout)
    assert pca.describe_certificate_authority(CertificateAuthorityArn=ca_arn)["CertificateAuthority"]["Status"] \
        == "ACTIVE"
    detail = acm.describe_certificate(CertificateArn=cert_arn)["Certificate"]
    assert detail["Status"] == "ISSUED" and detail["CertificateAuthorityArn"] == ca_arn

    listed = {ca["Arn"] for page in pca.get_paginator("list_certificate_authorities").paginate()
              for ca in page["CertificateAuthorities"]}
    assert set(_only_arns(cli(server, "ca", "list", "-q").stdout)) == listed
    certificates = {item["CertificateArn"] for page in acm.get_paginator("list_certificates").paginate(
        Includes={"keyTypes": ALL_KEY_TYPES}) for item in page["CertificateSummaryList"]}
    assert set(_only_arns(cli(server, "cert", "list", "--quiet").stdout)) == certificates

    pending = _only_arns(cli(server, "ca", "create", "-q", "-n", "Quiet Pending").stdout)
    assert len(pending) == 1
    csr, _ = make_csr("issued.quiet.test")
    (tmp_path / "leaf.csr").write_bytes(csr)
    [issued] = _only_arns(cli(server, "ca", "issue", ca_arn, "--csr", str(tmp_path / "leaf.csr"), "-q").stdout)
    assert pca.get_certificate(CertificateAuthorityArn=ca_arn, CertificateArn=issued)["Certificate"]

    repairable = [str(VECTORS / name) for name in ("rsa/leaf.crlf.pem", "rsa/leaf.key", "rsa/chain-with-leaf.pem")]
    imported = cli(server, "cert", "import", "--fix", "-q", *repairable)
    [imported_arn] = _only_arns(imported.stdout)
    assert "fixed" in imported.stderr  # what --fix did goes to stderr, beside the ARN
    assert acm.describe_certificate(CertificateArn=imported_arn)["Certificate"]["Type"] == "IMPORTED"

    both = cli(server, "ca", "list", "-q", "--json", ok=False)
    assert both.returncode == 2 and "choose --quiet or --json" in both.stderr and both.stdout == ""


def test_piped_tables_keep_arns_whole(server: Server, pca: Any) -> None:
    long_name = "A CA whose common name alone is wider than half a terminal"
    ca_arn = cli(server, "ca", "create", "--root", "-q", "-n", long_name).stdout.strip()
    cert_arn = cli(server, "cert", "request", "piped.cli.test", "--ca", ca_arn, "-q").stdout.strip()

    def run(*args: str) -> str:
        return subprocess.run([sys.executable, "-m", "certsmith", *args], capture_output=True, text=True,
                              env=_plain(server.env()), timeout=120, check=True).stdout

    ca_table = run("ca", "list").splitlines()
    arns = {ca["Arn"] for page in pca.get_paginator("list_certificate_authorities").paginate()
            for ca in page["CertificateAuthorities"]}
    for arn in arns:
        assert any(arn in line for line in ca_table), f"{arn} is not whole in:\n" + "\n".join(ca_table)
    assert any(long_name in line and ca_arn in line for line in ca_table)
    assert max(len(line) for line in ca_table) > 200  # wider than the 80 columns Rich assumes without a terminal
    assert any(ca_arn in line for line in run("ca", "describe", ca_arn).splitlines())
    assert any(cert_arn in line for line in run("cert", "list").splitlines())
    assert any(cert_arn in line for line in run("cert", "describe", cert_arn).splitlines())


def _help(*command: str, option: str = "-h") -> str:
    result = subprocess.run([sys.executable, "-m", "certsmith", *command, option], capture_output=True, text=True,
                            env=_plain(dict(os.environ)), timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _text(page: str) -> str:
    """A help page's words in order, without the boxes and the line breaks of its columns."""
    return " ".join(page.replace("│", " ").replace("╭", " ").replace("╰", " ").split())


@no_database
def test_every_help_page_shows_env_vars_defaults_and_value_names() -> None:
    commands = [("ca", info.name or "") for info in ca_app.registered_commands] + \
        [("cert", info.name or "") for info in cert_app.registered_commands]
    assert len(commands) >= 22 and ("ca", "delete") in commands and ("ca", "update") in commands
    lists_or_creates = {("ca", "create"), ("ca", "list"), ("ca", "issue"), ("cert", "request"), ("cert", "list"),
                        ("cert", "import")}
    for group in ("ca", "cert"):
        page = _help(group)
        assert page == _help(group, option="--help")
        assert "-h" in page and "<bool>" not in page
    for command in commands:
        page = _help(*command)
        text = _text(page)
        assert not re.search(r"<(bool|str|int|float|path|list|file|int range)\b", page), f"{command}:\n{page}"
        assert "…" not in page, f"{command} help is cut:\n{page}"
        for hint in ("[env var: CERTSMITH_ENDPOINT]", "[default: http://127.0.0.1:8000]",
                     "[env var: AWS_SHARED_CREDENTIALS_FILE]", "[default: certsmith-data/credentials]",
                     "[env var: AWS_DEFAULT_REGION]", "[default: us-east-1]",
                     "--ca-bundle FILE", "[env var: CERTSMITH_CA_BUNDLE, AWS_CA_BUNDLE]", "-h Show this message"):
            assert hint in text, f"{command} help lacks {hint!r}:\n{page}"
        assert ("--quiet -q" in text) == (command in lists_or_creates), command
    create = _text(_help("ca", "create"))
    assert "--key-algorithm ALGORITHM" in create and "[default: EC_prime256v1]" in create
    assert "(SHA256WITHECDSA for an EC key, SHA256WITHRSA for an RSA key)" in create
    assert "--validity-years YEARS [x>=1]" in create and "--parent ARN" in create
    request = _text(_help("cert", "request", option="--help"))
    assert "(EC_prime256v1 from an EC CA, RSA_2048 from an RSA CA)" in request and "{DOMAIN}" in request
    assert "[default: 30]" in _text(_help("ca", "delete"))


def test_connection_problems_are_explained(server: Server, tmp_path: Path) -> None:
    (tmp_path / "credentials").write_text("[someone-else]\naws_access_key_id = AKIAEXAMPLE\n")
    no_key = cli(server, "ca", "list", "--credentials", str(tmp_path / "credentials"), ok=False)
    assert no_key.returncode == 1
    assert f"no access key in {tmp_path / 'credentials'}: it needs a [default] section" in no_key.stderr
    closed = f"http://127.0.0.1:{free_port()}"
    nobody = cli(server, "cert", "list", "--endpoint", closed, ok=False)
    assert nobody.returncode == 1 and f"no certsmith answers at {closed}" in nobody.stderr
    for result in (no_key, nobody):
        assert "Traceback" not in result.stderr and result.stdout == ""


def _run(*args: str | Path | int, env: dict[str, str] | None = None) -> Result:
    """``certsmith ARGS`` in this process (no child process: these refusals come before any server work)."""
    return CliRunner().invoke(app, [str(arg) for arg in args], env=env)


def _refused(result: Result, *words: str, code: int = 2) -> None:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception  # a message, never a traceback
    line = result.stderr.strip()
    assert line.startswith("certsmith: ") and "\n" not in line, line
    for word in words:
        assert word in line, line


@no_database
def test_serve_refuses_ports_outside_1_to_65535(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _refused(_run("serve", "--port", 0, "--data-dir", data), "--port must be from 1 to 65535, not 0", "CERTSMITH_PORT")
    _refused(_run("serve", "--port", 99999, "--data-dir", data), "--port must be from 1 to 65535, not 99999")
    _refused(_run("serve", "--data-dir", data, env={"CERTSMITH_PORT": "0"}), "--port must be from 1 to 65535, not 0")
    (tmp_path / "port.toml").write_text("[certsmith]\nport = 70000\n")
    _refused(_run("serve", "--config", tmp_path / "port.toml", "--data-dir", data), "not 70000")
    _refused(_run("serve", "--port", free_port(), "--http-validation-port", 0, "--data-dir", data),
             "--http-validation-port must be from 1 to 65535, not 0")
    _refused(_run("worker", "--http-validation-port", 65536, "--data-dir", data), "not 65536")
    assert not data.exists()


@no_database
def test_serve_says_in_one_line_what_is_wrong_with_its_folder_or_settings(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    data = tmp_path / "data"
    port = free_port()
    _refused(_run("serve", "--port", port, "--data-dir", tmp_path / "a-file" / "x"),
             f"--data-dir {tmp_path / 'a-file' / 'x'}: Not a directory")
    _refused(_run("serve", "--port", port, "--data-dir", data, env={"CERTSMITH_SMTP_URL": "http://x"}),
             "bad settings: smtp_url must start with smtp:// or smtps://, not http://")
    _refused(_run("serve", "--port", port, "--data-dir", data, "--dns-listen", "nowhere"), "dns_listen 'nowhere'")
    _refused(_run("serve", "--port", port, "--data-dir", data, env={"CERTSMITH_EVENT_COMMANDS": "maybe"}),
             "setting event_commands must be true or false", "'maybe'", "CERTSMITH_EVENT_COMMANDS")
    (tmp_path / "broken.toml").write_text("[certsmith]\nport = \n")
    _refused(_run("serve", "--config", tmp_path / "broken.toml"), f"{tmp_path / 'broken.toml'}: not a valid TOML file")
    assert not data.exists()  # each refused before anything was made


@no_database
def test_a_bad_endpoint_is_a_usage_error(tmp_path: Path) -> None:
    wanted = "--endpoint must be an http:// or https:// URL, e.g. http://127.0.0.1:8000"
    _refused(_run("cert", "list", "--endpoint", "127.0.0.1:18437"), wanted, "not '127.0.0.1:18437'")
    _refused(_run("ca", "list", env={"CERTSMITH_ENDPOINT": "localhost:8000"}), wanted, "CERTSMITH_ENDPOINT")
    _refused(_run("endpoint", "probe", "ep-x", "--endpoint", "http://127.0.0.1:99999"), "with a port from 1 to 65535")
    _refused(_run("events", "list", "--endpoint", "http://127.0.0.1:0"), "with a port from 1 to 65535")


@no_database
def test_rule_add_takes_one_target_and_no_empty_secret(tmp_path: Path) -> None:
    add = ["events", "rule", "add", "r", "--pattern", "{}"]
    _refused(_run(*add, "--webhook", "https://a.test/", "--secret", ""),
             "--secret is empty; leave --secret out for an unsigned webhook")
    (tmp_path / "empty").write_text("\n")
    _refused(_run(*add, "--webhook", "https://a.test/", "--secret", f"@{tmp_path / 'empty'}"), "is empty")
    _refused(_run(*add), "give the rule's target: --webhook URL, --slack URL, --email ADDRESS or --command CMD")
    _refused(_run(*add, "--webhook", ""), "--webhook is empty")
    _refused(_run(*add, "--email", "a@example.test", "--command", "true"), "give one target: --email or --command")


def test_events_list_says_what_its_limit_left_out(server: Server) -> None:
    acm = server.client("acm")
    pem = {"Certificate": (VECTORS / "rsa" / "leaf.pem").read_bytes(),
           "PrivateKey": (VECTORS / "rsa" / "leaf.key").read_bytes(),
           "CertificateChain": (VECTORS / "rsa" / "chain.pem").read_bytes()}
    arn = acm.import_certificate(**pem)["CertificateArn"]
    for _ in range(2):
        acm.import_certificate(CertificateArn=arn, **pem)  # each import is an ACM Certificate Available event
    listed = _run("events", "list", "--resource", arn, "--limit", 1, "--json", env=server.env())
    assert listed.exit_code == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == 1
    assert re.search(r"showing the first 1 events \(oldest first\); 2 later ones left out: see them with --since "
                     r"\S+Z \(the time of the last shown\), or a larger --limit \(now 1\)", listed.stderr), listed.stderr
    everything = _run("events", "list", "--resource", arn, env=server.env())
    assert everything.exit_code == 0 and everything.stderr == "" and everything.stdout.count("ACM Certificate Available") == 3


def test_endpoint_add_probes_at_once(server: Server) -> None:
    closed = free_port()
    added = _run("endpoint", "add", f"127.0.0.1:{closed}", "--interval", "1h", env=server.env())
    assert added.exit_code == 0, added.stderr
    assert f"monitoring 127.0.0.1:{closed}" in added.stdout and "UNREACHABLE" in added.stdout
    own = server.client("certsmith")
    [found] = [e for e in own.list_endpoints()["Endpoints"] if e["Port"] == closed]
    assert found["Status"] == "UNREACHABLE" and found.get("ProbedAt") is not None
    own.delete_endpoint(EndpointId=found["EndpointId"])
