"""``certsmith issuer``, ``cert request --public`` and ``doctor validation`` through the real CLI, against a real
server with a validation zone; its resolver is a closed port, or a real BIND that forwards the zone to it.

The issuers are certsmith private CAs standing in as public CAs, so no ACME CA is needed.
"""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import dns.rdatatype
import dns.zone

from certsmith.testing.bind import free_dns_port, start_bind
from certsmith.testing.pki import create_ca, root_ca

from ..conftest import Server, backend_url, need_binary, no_database, start_server
from .test_cli import cli

ZONE = "acme.test"
CERT_ARN = re.compile(r"arn:aws:acm:us-east-1:\d{12}:certificate/[0-9a-f-]{36}")
TARGET = re.compile(r"[0-9a-f]{32}\.acme\.test\.")


def words(text: str) -> str:
    return " ".join(text.split())


@contextmanager
def validating_server(folder: Path, resolvers: str, dns_port: int | None = None) -> Iterator[Server]:
    """A server with the validation zone acme.test (its DNS server on ``dns_port``) that asks ``resolvers``."""
    folder.mkdir(parents=True, exist_ok=True)
    server = start_server(folder, backend_url(), extra=[
        "--validation-zone", ZONE, "--dns-listen", f"127.0.0.1:{dns_port or free_dns_port()}", "--resolvers", resolvers])
    try:
        yield server
    finally:
        server.stop()
    log = server.log_path.read_text()
    assert "Traceback" not in log, f"the server logged a traceback:\n{log}"


def refused(server: Server, *args: str, code: int = 1) -> str:
    """Run a command that must fail with ``code``, print nothing on stdout and no traceback; its stderr in one line."""
    result = cli(server, *args, ok=False)
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == "" and "Traceback" not in result.stderr, result.stderr
    return words(result.stderr)


def zone_records(lines: list[str]) -> list[tuple[str, int, str, str]]:
    """(name, ttl, type, value) of zone-file lines, parsed by dnspython as a zone file (comments allowed)."""
    zone = dns.zone.from_text("\n".join(lines) + "\n", origin=".", relativize=False, check_origin=False)
    return [(name.to_text(), ttl, dns.rdatatype.to_text(rdata.rdtype), rdata.to_text())
            for name, ttl, rdata in zone.iterate_rdatas()]


def test_issuer_add_list_describe_default_remove(tmp_path: Path) -> None:
    with validating_server(tmp_path, f"127.0.0.1:{free_dns_port()}") as server:
        pca = server.client("acm-pca")
        first_ca = root_ca(pca, "Issuer One")
        second_ca = root_ca(pca, "Issuer Two", key_algorithm="RSA_2048", signing="SHA256WITHRSA")
        pending_ca = create_ca(pca, "ROOT", "Issuer Pending")

        added = cli(server, "issuer", "add", "one", "--private-ca", first_ca).stdout
        assert "added issuer one (PRIVATE_CA), the default" in words(added) and first_ca in added
        second = json.loads(cli(server, "issuer", "add", "two", "--private-ca", second_ca,
                                "--caa-identity", "ca.example.test", "--json").stdout)
        assert second["Name"] == "two" and second["Type"] == "PRIVATE_CA" and second["IsDefault"] is False
        assert second["CertificateAuthorityArn"] == second_ca and second["CaaIdentities"] == ["ca.example.test"]
        assert "AcmeAccountUrl" not in second

        listed = json.loads(cli(server, "issuer", "list", "--json").stdout)
        assert [(item["Name"], item["IsDefault"]) for item in listed] == [("one", True), ("two", False)]
        table = cli(server, "issuer", "list").stdout.splitlines()
        assert any(re.search(r"\*.*\bone\b.*PRIVATE_CA", line) and first_ca in line for line in table), table
        assert any(" two " in line and second_ca in line and "*" not in line for line in table), table

        described = words(cli(server, "issuer", "describe", "two").stdout)
        assert "Type: PRIVATE_CA" in described and f"Private CA: {second_ca}" in described
        assert "CAA identities: ca.example.test" in described and "Default: no" in described

        assert "two is now the default issuer" in cli(server, "issuer", "set-default", "two").stdout
        assert json.loads(cli(server, "issuer", "describe", "two", "--json").stdout)["IsDefault"] is True
        assert json.loads(cli(server, "issuer", "describe", "one", "--json").stdout)["IsDefault"] is False

        # Errors, each in plain words on stderr, nothing on stdout.
        text = refused(server, "issuer", "add", "both", "--private-ca", first_ca, "--acme-directory",
                       "https://127.0.0.1:1/dir", "--email", "ops@example.test", code=2)
        assert "exactly one of --acme-directory and --private-ca" in text
        assert "exactly one of --acme-directory and --private-ca" in refused(server, "issuer", "add", "neither", code=2)
        text = refused(server, "issuer", "add", "eab", "--acme-directory", "https://127.0.0.1:1/dir",
                       "--email", "ops@example.test", "--eab-kid", "kid-1", code=2)
        assert "--eab-kid needs --eab-hmac-key" in text
        text = refused(server, "issuer", "add", "mixed", "--private-ca", first_ca, "--email", "ops@example.test", code=2)
        assert "--email: for an ACME issuer only" in text
        assert "--acme-directory needs --email ADDR" in refused(server, "issuer", "add", "mute", "--acme-directory",
                                                                "https://127.0.0.1:1/dir", code=2)
        missing = tmp_path / "absent.pem"
        text = refused(server, "issuer", "add", "bundle", "--acme-directory", "https://127.0.0.1:1/dir",
                       "--email", "ops@example.test", "--acme-ca-bundle", str(missing), code=2)
        assert f"--acme-ca-bundle {missing}: no such file" in text
        (tmp_path / "not-pem.txt").write_text("hello\n")
        text = refused(server, "issuer", "add", "bundle", "--acme-directory", "https://127.0.0.1:1/dir",
                       "--email", "ops@example.test", "--acme-ca-bundle", str(tmp_path / "not-pem.txt"), code=2)
        assert "holds no PEM certificate" in text
        for command in ("describe", "remove", "set-default"):
            text = refused(server, "issuer", command, "nobody")
            assert "ResourceNotFoundException" in text and "issuer 'nobody' was not found" in text
        text = refused(server, "issuer", "add", "one", "--private-ca", second_ca)
        assert "ConflictException" in text and "an issuer named 'one' already exists" in text
        text = refused(server, "issuer", "add", "pending", "--private-ca", pending_ca)
        assert "PENDING_CERTIFICATE" in text and "ACTIVE" in text
        text = refused(server, "issuer", "add", "offline", "--acme-directory", "https://127.0.0.1:1/dir",
                       "--email", "ops@example.test")
        assert "cannot register with the ACME CA at https://127.0.0.1:1/dir" in text and "refused" in text

        removed = words(cli(server, "issuer", "remove", "two").stdout)
        assert "removed issuer two" in removed and "the default issuer is now one" in removed
        assert [item["Name"] for item in json.loads(cli(server, "issuer", "list", "--json").stdout)] == ["one"]
        assert "no issuer is left" in words(cli(server, "issuer", "remove", "one").stdout)
        assert cli(server, "issuer", "list", "--json").stdout.strip() == "[]"
        assert "no issuer yet" in cli(server, "issuer", "list").stderr


def test_public_request_prints_zone_lines_and_the_doctor_finds_them_missing(tmp_path: Path) -> None:
    resolver = f"127.0.0.1:{free_dns_port()}"  # nothing listens: every lookup fails
    with validating_server(tmp_path, resolver) as server:
        acm = server.client("acm")
        ca = root_ca(server.client("acm-pca"), "Public Stand-in")
        text = refused(server, "cert", "request", "example.test", "--public", code=1)
        assert "this account has none" in text and "certsmith issuer add" in text
        cli(server, "issuer", "add", "stand-in", "--private-ca", ca)

        assert "--public and --ca are exclusive" in refused(server, "cert", "request", "x.example.test", "--public",
                                                            "--ca", ca, code=2)
        assert "give --ca ARN" in refused(server, "cert", "request", "x.example.test", code=2)
        assert "--issuer is for --public" in refused(server, "cert", "request", "x.example.test", "--ca", ca,
                                                     "--issuer", "stand-in", code=2)
        assert "issuer 'nobody' was not found" in refused(server, "cert", "request", "x.example.test", "--public",
                                                          "--issuer", "nobody")
        assert "both name the issuer" in refused(server, "cert", "request", "x.example.test", "--public", "--issuer",
                                                 "stand-in", "--tag", "certsmith:issuer=other", code=2)

        text = refused(server, "cert", "request", "co.uk", "--public", "--no-wait")  # a public suffix: FAILED at once
        assert "is FAILED: INVALID_PUBLIC_DOMAIN (a public suffix" in text and "certsmith doctor validation" in text

        requested = cli(server, "cert", "request", "example.test", "*.example.test", "--public", "--no-wait")
        lines = requested.stdout.splitlines()
        arn = lines[0]
        assert CERT_ARN.fullmatch(arn), lines
        records = zone_records(lines[1:])  # a wildcard and its base name: one record
        assert len(records) == 1 and len(lines) == 3, lines
        name, ttl, rtype, value = records[0]
        assert (name, ttl, rtype) == ("_acme-challenge.example.test.", 300, "CNAME") and TARGET.fullmatch(value)
        assert lines[2].startswith("; add this record once") and "every later request and renewal" in lines[2]
        detail = acm.describe_certificate(CertificateArn=arn)["Certificate"]
        assert detail["Status"] == "PENDING_VALIDATION" and detail["KeyAlgorithm"] == "EC_prime256v1"
        assert {option["ResourceRecord"]["Value"] for option in detail["DomainValidationOptions"]} == {value}

        quiet = cli(server, "cert", "request", "www.example.test", "--public", "--no-wait", "-q")
        assert CERT_ARN.fullmatch(quiet.stdout.strip()) and quiet.stdout.count("\n") == 1
        assert "_acme-challenge.www.example.test. 300 IN CNAME" in quiet.stderr  # the records, beside the ARN
        shown = cli(server, "cert", "request", "api.example.test", "--public", "--issuer", "stand-in", "--no-wait",
                    "--json")
        tagged = json.loads(shown.stdout)
        assert tagged["Status"] == "PENDING_VALIDATION" and tagged["CertificateArn"] in shown.stderr
        assert {"Key": "certsmith:issuer", "Value": "stand-in"} in \
            acm.list_tags_for_certificate(CertificateArn=tagged["CertificateArn"])["Tags"]

        waited = cli(server, "cert", "request", "example.test", "--public", "--timeout", "1", ok=False)
        assert waited.returncode == 1 and CERT_ARN.fullmatch(waited.stdout.splitlines()[0])
        assert "still PENDING_VALIDATION after 1 s" in words(waited.stderr)
        assert "certsmith doctor validation" in waited.stderr and "Traceback" not in waited.stderr

        doctor = cli(server, "doctor", "validation", arn, ok=False)
        assert doctor.returncode == 1, doctor.stderr
        report = words(doctor.stdout)
        assert f"{arn}: PENDING_VALIDATION, issuer stand-in" in report
        assert "example.test: PENDING_VALIDATION" in report and "*.example.test: PENDING_VALIDATION" in report
        assert "record _acme-challenge.example.test. CNAME" in report and f"expected value {value}" in report
        assert report.count(f"resolver {resolver}") == 3  # each name, and the delegation probe
        assert "verdict missing" in report and "validation zone acme.test: not reachable" in report
        diagnosis = json.loads(cli(server, "doctor", "validation", arn, "--json", ok=False).stdout)
        assert [n["DomainName"] for n in diagnosis["Names"]] == ["example.test", "*.example.test"]
        for entry in diagnosis["Names"]:
            assert [(a["Resolver"], a["Values"], bool(a.get("Error"))) for a in entry["Answers"]] == \
                [(resolver, [], True)]
        assert diagnosis["Delegation"]["Reachable"] is False

        private = cli(server, "cert", "request", "private.example.test", "--ca", ca, "-q").stdout.strip()
        result = cli(server, "doctor", "validation", private, ok=False)
        assert result.returncode == 1 and "not a public certificate" in words(result.stdout)
        assert "ResourceNotFoundException" in refused(server, "doctor", "validation", arn[:-4] + "0000")


def _lines(stream: IO[str]) -> queue.Queue[str | None]:
    """A reader thread's lines of ``stream`` (None at its end), so that a test can wait for them with a deadline."""
    found: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        for line in stream:
            found.put(line.rstrip("\n"))
        found.put(None)

    threading.Thread(target=read, daemon=True).start()
    return found


def _until_note(found: queue.Queue[str | None], within: float) -> list[str]:
    deadline, lines = time.monotonic() + within, list[str]()
    while not lines or not lines[-1].startswith(";"):
        line = found.get(timeout=max(0.0, deadline - time.monotonic()))
        assert line is not None, f"stdout ended before the records: {lines}"
        lines.append(line)
    return lines


def test_records_in_place_validate_and_the_certificate_is_issued(tmp_path: Path) -> None:
    need_binary("named")
    need_binary("nsupdate")
    need_binary("tsig-keygen")
    dns_port = free_dns_port()
    with start_bind(tmp_path / "bind", zones=("example.test",), forwards={ZONE: ("127.0.0.1", dns_port)}) as bind, \
            validating_server(tmp_path / "server", bind.address, dns_port) as server:
        acm = server.client("acm")
        ca = root_ca(server.client("acm-pca"), "Public Stand-in", key_algorithm="RSA_2048", signing="SHA256WITHRSA")
        cli(server, "issuer", "add", "stand-in", "--private-ca", ca)

        command = [sys.executable, "-m", "certsmith", "cert", "request", "example.test", "*.example.test", "--public",
                   "--timeout", "120"]
        with open(tmp_path / "request.err", "w") as errors, \
                subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True, env=server.env()) as waiting:
            assert waiting.stdout is not None
            found = _lines(waiting.stdout)
            try:
                arn, *zone_lines = _until_note(found, 60)  # printed before the wait
                [(name, _, rtype, target)] = zone_records(zone_lines)
                assert rtype == "CNAME" and waiting.poll() is None

                missing = cli(server, "doctor", "validation", arn, ok=False)
                assert missing.returncode == 1
                report = words(missing.stdout)
                assert "verdict missing" in report and f"add `{name} CNAME {target}`" in report
                assert "validation zone acme.test: reachable" in report  # BIND forwards the zone to certsmith

                bind.set_cname(name, target)
                in_place = cli(server, "doctor", "validation", arn)
                report = words(in_place.stdout)
                assert report.count("verdict in place") == 2 and f"resolver {bind.address} {target[:-1]}" in report
                assert waiting.wait(timeout=120) == 0, (tmp_path / "request.err").read_text()
            finally:
                if waiting.poll() is None:
                    waiting.kill()
                while found.get(timeout=30) is not None:  # the reader is done before the pipe is closed
                    pass
        said = words((tmp_path / "request.err").read_text())
        assert "waiting for the certificate" in said and f"issued: {arn}" in said
        detail = acm.describe_certificate(CertificateArn=arn)["Certificate"]
        assert detail["Status"] == "ISSUED" and detail["KeyAlgorithm"] == "RSA_2048"
        assert detail["SubjectAlternativeNames"] == ["example.test", "*.example.test"]
        assert {option["ValidationStatus"] for option in detail["DomainValidationOptions"]} == {"SUCCESS"}

        # The record stays: a later request for the name is validated by it, with nothing to add.
        again = cli(server, "cert", "request", "example.test", "--public", "-q", "--timeout", "120").stdout.strip()
        assert acm.describe_certificate(CertificateArn=again)["Certificate"]["Status"] == "ISSUED"

        # CAA that allows another CA: the request fails, and the doctor shows what the issuer said.
        bind.set_caa("example.test", [(0, "issue", "ca.other.test")])
        cli(server, "issuer", "add", "strict", "--private-ca", ca, "--caa-identity", "ca.certsmith.test")
        failed = cli(server, "cert", "request", "example.test", "--public", "--issuer", "strict", "--timeout", "120",
                     ok=False)
        assert failed.returncode == 1 and "Traceback" not in failed.stderr
        failed_arn = failed.stdout.splitlines()[0]
        text = words(failed.stderr)
        assert f"the request {failed_arn} is FAILED: CAA_ERROR" in text
        assert f"certsmith doctor validation {failed_arn}" in text
        diagnosed = cli(server, "doctor", "validation", failed_arn)  # the record is in place: exit code 0
        assert "last ACME problem: urn:ietf:params:acme:error:caa" in words(diagnosed.stdout)
        assert "last message:" in diagnosed.stdout


@no_database
def test_help_pages_show_env_vars_and_value_names() -> None:
    env = {key: value for key, value in os.environ.items() if key not in ("COLUMNS", "TERMINAL_WIDTH")}
    commands = [("issuer", "add"), ("issuer", "list"), ("issuer", "describe"), ("issuer", "remove"),
                ("issuer", "set-default"), ("doctor", "validation")]
    for command in [("issuer",), ("doctor",), *commands]:
        result = subprocess.run([sys.executable, "-m", "certsmith", *command, "-h"], capture_output=True, text=True,
                                env=env, timeout=60)
        assert result.returncode == 0, result.stderr
        page = " ".join(result.stdout.replace("│", " ").replace("╭", " ").replace("╰", " ").split())
        assert not re.search(r"<(bool|str|int|float|path|list|file)\b", result.stdout), f"{command}:\n{result.stdout}"
        assert "…" not in result.stdout, f"{command} help is cut:\n{result.stdout}"
        if command in commands:
            for hint in ("[env var: CERTSMITH_ENDPOINT]", "[env var: AWS_SHARED_CREDENTIALS_FILE]",
                         "[env var: CERTSMITH_CA_BUNDLE, AWS_CA_BUNDLE]", "-h Show this message"):
                assert hint in page, f"{command} help lacks {hint!r}:\n{result.stdout}"
    validation = subprocess.run([sys.executable, "-m", "certsmith", "doctor", "validation", "-h"], capture_output=True,
                                text=True, env=env, timeout=60).stdout
    assert "Exit code 0 when every name's record is in place" in " ".join(validation.replace("│", " ").split())

