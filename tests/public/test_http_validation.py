"""HTTP validation end to end: RequestCertificate(ValidationMethod=HTTP), the user's nginx carries the one redirect
DescribeCertificate gives for each name, certsmith sees it, orders from Pebble (which follows the redirect to
certsmith's own URL for the key authorization), ISSUED. No validation zone: HTTP needs none."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import botocore.exceptions
import httpx
import pytest
from cryptography import x509

from certsmith.testing.bind import Bind, start_bind
from certsmith.testing.nginx import Nginx, start_nginx
from certsmith.testing.pebble import Pebble, start_pebble

from ..conftest import Server, backend_url, free_port, need_binary, start_server
from ..contract.test_cli import cli
from .conftest import wait_status

CHALLENGE_PATH = "/.well-known/acme-challenge/"
NAMES = ["www.example.test", "api.example.test"]


@dataclass
class HttpWorld:
    server: Server
    bind: Bind
    nginx: Nginx
    pebble: Pebble
    home: Path


@pytest.fixture(scope="module")
def http_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpWorld]:
    need_binary("nsupdate")
    home = tmp_path_factory.mktemp("http-validation")
    home.chmod(0o755)
    started: list[Bind | Nginx | Pebble | Server] = []
    try:
        bind = start_bind(home / "bind", binary=need_binary("named"))  # example.test: every name is 127.0.0.1
        started.append(bind)
        nginx = start_nginx(home / "nginx", free_port(), {}, binary=need_binary("nginx"))  # no redirect yet
        started.append(nginx)
        pebble = start_pebble(home / "pebble", bind.address, binary=need_binary("pebble"), config={"httpPort": nginx.port})
        started.append(pebble)
        (home / "server").mkdir()
        server = start_server(home / "server", backend_url(),
                              ["--resolvers", bind.address, "--http-validation-port", str(nginx.port)])
        started.append(server)
        server.client("certsmith").create_issuer(Name="pebble", AcmeDirectoryUrl=pebble.directory_url,
                                                 ContactEmail="admin@example.test", CaBundle=pebble.tls_cert_pem,
                                                 Default=True)
        yield HttpWorld(server, bind, nginx, pebble, home)
    finally:
        for peer in reversed(started):
            peer.stop()


def test_http_validation_through_the_users_redirect(http_world: HttpWorld) -> None:
    server, nginx = http_world.server, http_world.nginx
    acm = server.client("acm")
    arn = acm.request_certificate(DomainName=NAMES[0], SubjectAlternativeNames=NAMES,
                                  ValidationMethod="HTTP")["CertificateArn"]
    detail = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    assert detail["Status"] == "PENDING_VALIDATION", detail
    options = {o["DomainName"]: o for o in detail["DomainValidationOptions"]}
    assert list(options) == NAMES
    redirects: dict[str, str] = {}
    for name, option in options.items():
        assert option["ValidationMethod"] == "HTTP" and option["ValidationStatus"] == "PENDING_VALIDATION", option
        assert "ResourceRecord" not in option
        redirect = option["HttpRedirect"]
        assert redirect["RedirectFrom"] == f"http://{name}{CHALLENGE_PATH}"
        assert redirect["RedirectTo"].startswith(f"{server.endpoint}{CHALLENGE_PATH}") and redirect["RedirectTo"].endswith("/")
        redirects[urlsplit(redirect["RedirectFrom"]).hostname or ""] = redirect["RedirectTo"]
    assert redirects[NAMES[0]] != redirects[NAMES[1]]  # one label per name

    nginx.set_redirects(redirects)  # what the user does, once per name
    detail = wait_status(acm, arn, seconds=120)
    assert detail["Status"] == "ISSUED", detail
    assert all(o["ValidationStatus"] == "SUCCESS" for o in detail["DomainValidationOptions"])
    assert sorted(detail["SubjectAlternativeNames"]) == sorted(NAMES)
    assert "Pebble" in detail["Issuer"]

    got = acm.get_certificate(CertificateArn=arn)
    folder = http_world.home / "issued"
    folder.mkdir()
    (folder / "leaf.pem").write_text(got["Certificate"])
    (folder / "chain.pem").write_text(got["CertificateChain"])
    (folder / "root.pem").write_text(http_world.pebble.roots_pem())
    verified = subprocess.run([need_binary("openssl"), "verify", "-CAfile", str(folder / "root.pem"), "-untrusted",
                               str(folder / "chain.pem"), str(folder / "leaf.pem")], capture_output=True, text=True,
                              check=False)
    assert verified.returncode == 0 and verified.stdout.strip().endswith(": OK"), verified.stdout + verified.stderr
    leaf = x509.load_pem_x509_certificate(got["Certificate"].encode())
    assert sorted(leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                  .get_values_for_type(x509.DNSName)) == sorted(NAMES)

    # Pebble came through nginx and the redirect; certsmith no longer answers for the order's tokens.
    access = (nginx.home / "logs" / "access.log").read_text()
    tokens = [line.split(CHALLENGE_PATH, 1)[1].split()[0] for line in access.splitlines()
              if CHALLENGE_PATH in line and "certsmith-probe-" not in line and "nginx-ready-probe" not in line]
    assert tokens, access
    with httpx.Client(trust_env=False, follow_redirects=True) as client:
        for token in tokens:
            answer = client.get(f"http://127.0.0.1:{nginx.port}{CHALLENGE_PATH}{token}", headers={"Host": NAMES[0]})
            assert answer.status_code == 404 and answer.history, (token, answer.status_code)

    # The same names again: the redirects stay in place, once and for all.
    again = acm.request_certificate(DomainName=NAMES[0], SubjectAlternativeNames=NAMES,
                                    ValidationMethod="HTTP")["CertificateArn"]
    assert {o["HttpRedirect"]["RedirectTo"] for o in acm.describe_certificate(CertificateArn=again)["Certificate"]
            ["DomainValidationOptions"]} == set(redirects.values())
    assert wait_status(acm, again, seconds=120)["Status"] == "ISSUED"


def test_wildcards_cannot_be_validated_over_http(http_world: HttpWorld) -> None:
    acm = http_world.server.client("acm")
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        acm.request_certificate(DomainName="example.test", SubjectAlternativeNames=["*.example.test"],
                                ValidationMethod="HTTP")
    error = refused.value.response["Error"]
    assert error["Code"] == "ValidationException" and "wildcard" in error["Message"], error


def test_the_cli_prints_the_redirects_and_the_doctor_says_what_the_web_server_does(http_world: HttpWorld) -> None:
    server = http_world.server
    requested = cli(server, "cert", "request", "shop.example.test", "--public", "--method", "http", "--no-wait")
    arn, *lines = requested.stdout.splitlines()
    assert lines[0].startswith(f"http://shop.example.test{CHALLENGE_PATH} -> {server.endpoint}{CHALLENGE_PATH}"), lines
    assert "return 302" in lines[-1]
    report = server.client("certsmith").diagnose_validation(CertificateArn=arn)
    name = report["Names"][0]
    assert (name["RecordType"], name["RecordName"]) == ("HTTP_REDIRECT", f"http://shop.example.test{CHALLENGE_PATH}")
    assert "404" in name["Verdict"] and name["ExpectedValue"] in name["Verdict"], name
    doctor = cli(server, "doctor", "validation", arn, ok=False)
    assert doctor.returncode == 1 and "404" in doctor.stdout, doctor.stdout + doctor.stderr
    server.client("acm").delete_certificate(CertificateArn=arn)
