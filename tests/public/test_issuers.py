"""Issuers through certsmith's own API (Certsmith.*): boto3 with the shipped model, and the AWS CLI with AWS_DATA_PATH."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import botocore.exceptions
import pytest

from certsmith.models import MODELS_PATH
from certsmith.testing.pki import activate_root, create_ca

from ..conftest import start_server
from .conftest import PublicWorld, wait_status

NO_CA = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/00000000-0000-0000-0000-000000000000"


def _code(caught: pytest.ExceptionInfo[botocore.exceptions.ClientError]) -> str:
    return str(caught.value.response["Error"]["Code"])


def test_issuers_are_listed_described_updated_and_removed(public_world: PublicWorld) -> None:
    own = public_world.server.client("certsmith")
    pca = public_world.server.client("acm-pca")
    ca = create_ca(pca, "ROOT", "Issuer Test Root")
    activate_root(pca, ca)
    own.create_issuer(Name="second", CertificateAuthorityArn=ca)
    listed = own.list_issuers()["Issuers"]
    assert listed[0]["Name"] == "pebble" and listed[0]["IsDefault"]  # the default comes first
    assert {"pebble", "second"} <= {issuer["Name"] for issuer in listed}
    pebble = own.describe_issuer(Name="pebble")["Issuer"]
    assert pebble["Type"] == "ACME" and pebble["AcmeAccountUrl"].startswith(public_world.pebble.directory_url[:-4])
    assert pebble["CaaIdentities"] == ["pebble.letsencrypt.org"] and pebble["HasCaBundle"] is True
    assert "CaBundle" not in pebble and "HmacKey" not in json.dumps(pebble, default=str)

    updated = own.update_issuer(Name="pebble", ContactEmail="ops@example.test")["Issuer"]
    assert updated["ContactEmail"] == "ops@example.test"
    own.update_issuer(Name="second", Default=True)
    assert own.describe_issuer(Name="second")["Issuer"]["IsDefault"]
    assert not own.describe_issuer(Name="pebble")["Issuer"]["IsDefault"]
    own.update_issuer(Name="pebble", Default=True)

    # A pending request keeps its issuer; once it is settled, the issuer can go.
    acm = public_world.server.client("acm")
    arn = acm.request_certificate(DomainName="keep.example.test",
                                  Tags=[{"Key": "certsmith:issuer", "Value": "second"}])["CertificateArn"]
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        own.delete_issuer(Name="second")
    assert _code(caught) == "ResourceInUseException"
    assert "pending" in caught.value.response["Error"]["Message"]
    acm.delete_certificate(CertificateArn=arn)
    own.delete_issuer(Name="second")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        own.describe_issuer(Name="second")
    assert _code(caught) == "ResourceNotFoundException"


def test_bad_issuers_are_refused_with_the_field_named(public_world: PublicWorld) -> None:
    own = public_world.server.client("certsmith")
    cases = [
        (dict(Name="x"), "ValidationException", "AcmeDirectoryUrl"),
        (dict(Name="x", AcmeDirectoryUrl="https://127.0.0.1:1/dir", CertificateAuthorityArn=NO_CA), "ValidationException",
         "exactly one"),
        (dict(Name="x", AcmeDirectoryUrl="https://127.0.0.1:1/dir"), "ValidationException", "cannot register"),
        (dict(Name="x", AcmeDirectoryUrl="ftp://example.test/dir"), "ValidationException", "AcmeDirectoryUrl"),
        (dict(Name="x", AcmeDirectoryUrl=public_world.pebble.directory_url, ContactEmail="nobody"),
         "ValidationException", "ContactEmail"),
        (dict(Name="x", AcmeDirectoryUrl=public_world.pebble.directory_url, CaBundle="not pem"), "ValidationException",
         "CaBundle"),
        (dict(Name="pebble", AcmeDirectoryUrl=public_world.pebble.directory_url, CaBundle=public_world.pebble.tls_cert_pem),
         "ConflictException", "pebble"),
        (dict(Name="bad name!", AcmeDirectoryUrl=public_world.pebble.directory_url), "ValidationException", "name"),
    ]
    for arguments, code, named in cases:
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            own.create_issuer(**arguments)
        assert _code(caught) == code, (arguments, caught.value.response["Error"])
        assert named.lower() in caught.value.response["Error"]["Message"].lower(), caught.value.response["Error"]
    # Pebble's TLS certificate is not trusted without its bundle: the message says the directory cannot be reached.
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        own.create_issuer(Name="untrusted", AcmeDirectoryUrl=public_world.pebble.directory_url)
    assert "cannot register" in caught.value.response["Error"]["Message"]


def test_the_aws_cli_calls_certsmith_with_the_shipped_model(public_world: PublicWorld) -> None:
    env = {**public_world.server.env(), "AWS_DATA_PATH": str(MODELS_PATH)}
    aws = str(Path(sys.executable).parent / "aws")
    run = subprocess.run([aws, "certsmith", "list-issuers", "--endpoint-url", public_world.server.endpoint,
                          "--output", "json"], capture_output=True, text=True, env=env, check=False)
    assert run.returncode == 0, run.stderr
    assert "pebble" in [issuer["Name"] for issuer in json.loads(run.stdout)["Issuers"]]


def test_the_same_idempotency_token_within_an_hour_returns_the_same_public_certificate(public_world: PublicWorld) -> None:
    acm = public_world.server.client("acm")
    first = acm.request_certificate(DomainName="token.example.test", IdempotencyToken="public1")["CertificateArn"]
    again = acm.request_certificate(DomainName="token.example.test", IdempotencyToken="public1")["CertificateArn"]
    assert first == again
    assert wait_status(acm, first, seconds=0)["Status"] == "PENDING_VALIDATION"


def test_a_server_without_a_validation_zone_says_how_to_get_one_and_a_bad_zone_stops_it(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    server = start_server(tmp_path / "plain")
    try:
        pca, own = server.client("acm-pca"), server.client("certsmith")
        ca = create_ca(pca, "ROOT", "No Zone Root")
        activate_root(pca, ca)
        own.create_issuer(Name="inhouse", CertificateAuthorityArn=ca)
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            server.client("acm").request_certificate(DomainName="example.test")
        assert "--validation-zone" in caught.value.response["Error"]["Message"]
    finally:
        server.stop()
    run = subprocess.run([sys.executable, "-m", "certsmith", "serve", "--data-dir", str(tmp_path / "bad"),
                          "--validation-zone", "not a zone", "--port", "1"], capture_output=True, text=True, timeout=60,
                         check=False)
    assert run.returncode != 0
    assert "validation_zone" in run.stderr and "Traceback" not in run.stderr
