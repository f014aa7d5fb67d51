"""What scripts and readers of ``certsmith ca|cert`` rely on, through the real CLI (stdout is a pipe here).

-q prints ARNs alone, usable in the next command; a piped table keeps every ARN whole on one line;
every help page names its environment variables and defaults, never a Python type, and answers -h.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from certsmith.cli.ca import ca_app
from certsmith.cli.cert import cert_app
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
