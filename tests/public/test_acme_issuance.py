"""Public certificates end to end: ACM's RequestCertificate, one CNAME per name added with nsupdate at BIND,
validated by certsmith, ordered from Pebble (which reads the TXT values through BIND's CNAME chain), ISSUED."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import botocore.exceptions
import pytest

from certsmith.testing.pki import activate_root, create_ca

from .conftest import ZONE, PublicWorld, pending_records, wait_status
from .test_validation_latency import validation_observed


def _verify(world: PublicWorld, certificate: str, chain: str, root: str, name: str) -> None:
    folder = world.home / name
    folder.mkdir()
    (folder / "leaf.pem").write_text(certificate)
    (folder / "chain.pem").write_text(chain)
    (folder / "root.pem").write_text(root)
    result = subprocess.run(["openssl", "verify", "-CAfile", folder / "root.pem", "-untrusted", folder / "chain.pem",
                             folder / "leaf.pem"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith(": OK")


def test_a_certificate_for_a_name_its_wildcard_and_a_subdomain_is_issued_once_the_cnames_are_added(
        public_world: PublicWorld) -> None:
    acm = public_world.server.client("acm")
    arn = acm.request_certificate(DomainName="example.test",
                                  SubjectAlternativeNames=["*.example.test", "api.example.test"])["CertificateArn"]
    detail = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    assert detail["Status"] == "PENDING_VALIDATION"
    assert detail["Type"] == "AMAZON_ISSUED"
    options = {o["DomainName"]: o for o in detail["DomainValidationOptions"]}
    assert set(options) == {"example.test", "*.example.test", "api.example.test"}
    base, wildcard, api = options["example.test"], options["*.example.test"], options["api.example.test"]
    assert base["ResourceRecord"] == wildcard["ResourceRecord"]  # one record serves the name and its wildcard
    assert base["ResourceRecord"]["Name"] == "_acme-challenge.example.test."
    assert base["ResourceRecord"]["Type"] == "CNAME"
    assert base["ResourceRecord"]["Value"].endswith(f".{ZONE}.")
    assert api["ResourceRecord"]["Name"] == "_acme-challenge.api.example.test."
    assert api["ResourceRecord"]["Value"] != base["ResourceRecord"]["Value"]
    assert all(o["ValidationStatus"] == "PENDING_VALIDATION" and o["ValidationMethod"] == "DNS"
               for o in options.values())

    public_world.add_records(arn)
    detail = wait_status(acm, arn)
    assert detail["Status"] == "ISSUED", detail
    assert all(o["ValidationStatus"] == "SUCCESS" for o in detail["DomainValidationOptions"])
    assert sorted(detail["SubjectAlternativeNames"]) == ["*.example.test", "api.example.test", "example.test"]
    assert "Pebble" in detail["Issuer"]
    # Validated here (every CNAME found) before it was ordered: /metrics counts how long validation took.
    observed = validation_observed(public_world.server)
    assert observed.count >= 1 and observed.total > 0

    # The AWS CLI gets the certificate and its chain, which verify against Pebble's root.
    cli = subprocess.run([str(Path(__import__("sys").executable).parent / "aws"), "acm", "get-certificate",
                          "--certificate-arn", arn, "--endpoint-url", public_world.server.endpoint, "--output", "json"],
                         capture_output=True, text=True, env=public_world.server.env(), check=False)
    assert cli.returncode == 0, cli.stderr
    got = json.loads(cli.stdout)
    _verify(public_world, got["Certificate"], got["CertificateChain"], public_world.pebble.roots_pem(), "first")

    # A second request for the same names is issued with no DNS change: the records stay, once and for all.
    again = acm.request_certificate(DomainName="example.test",
                                    SubjectAlternativeNames=["*.example.test", "api.example.test"])["CertificateArn"]
    assert again != arn
    assert pending_records(acm, again) == pending_records(acm, arn)
    detail = wait_status(acm, again)
    assert detail["Status"] == "ISSUED", detail
    assert detail["Serial"] != acm.describe_certificate(CertificateArn=arn)["Certificate"]["Serial"]


def test_a_private_ca_issuer_validates_the_same_way_and_signs(public_world: PublicWorld) -> None:
    server = public_world.server
    pca, acm = server.client("acm-pca"), server.client("acm")
    ca = create_ca(pca, "ROOT", "Example Public Stand-in")
    activate_root(pca, ca)
    issuer = server.client("certsmith").create_issuer(Name="inhouse", CertificateAuthorityArn=ca)["Issuer"]
    assert issuer["Type"] == "PRIVATE_CA" and not issuer["IsDefault"]
    arn = acm.request_certificate(DomainName="inhouse.example.test", KeyAlgorithm="EC_prime256v1",
                                  Tags=[{"Key": "certsmith:issuer", "Value": "inhouse"}])["CertificateArn"]
    assert wait_status(acm, arn, seconds=2)["Status"] == "PENDING_VALIDATION"  # no record yet: no certificate
    public_world.add_records(arn)
    detail = wait_status(acm, arn)
    assert detail["Status"] == "ISSUED", detail
    assert detail["Type"] == "AMAZON_ISSUED"
    got = acm.get_certificate(CertificateArn=arn)
    root = pca.get_certificate_authority_certificate(CertificateAuthorityArn=ca)["Certificate"]
    _verify(public_world, got["Certificate"], got.get("CertificateChain") or root, root, "private")


def test_requests_without_an_issuer_or_with_bad_names_are_refused_with_the_field_named(public_world: PublicWorld) -> None:
    acm = public_world.server.client("acm")
    cases = [
        (dict(DomainName="192.0.2.10"), "DomainName"),
        (dict(DomainName="example.test", SubjectAlternativeNames=[f"n{i}.example.test" for i in range(100)]),
         "SubjectAlternativeNames"),
        (dict(DomainName="example.test", Tags=[{"Key": "certsmith:issuer", "Value": "nobody"}]), "nobody"),
        (dict(DomainName="example.test", ValidationMethod="EMAIL"), "ValidationMethod"),
        (dict(DomainName="*.example.test", ValidationMethod="HTTP"), "ValidationMethod"),
        (dict(DomainName="bad_name.example.test"), "DomainName"),
    ]
    for arguments, named in cases:
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            acm.request_certificate(**arguments)
        assert caught.value.response["Error"]["Code"] == "ValidationException", arguments
        assert named.lower() in caught.value.response["Error"]["Message"].lower(), caught.value.response["Error"]
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        acm.request_certificate(DomainName="example.test", DomainValidationOptions=[
            {"DomainName": "example.test", "ValidationDomain": "other.test"}])
    assert caught.value.response["Error"]["Code"] == "InvalidDomainValidationOptionsException"
    # A public suffix is a certificate that failed at once, as ACM answers.
    for name in ("co.uk", "*.github.io"):
        arn = acm.request_certificate(DomainName=name)["CertificateArn"]
        detail = acm.describe_certificate(CertificateArn=arn)["Certificate"]
        assert (detail["Status"], detail["FailureReason"]) == ("FAILED", "INVALID_PUBLIC_DOMAIN")
