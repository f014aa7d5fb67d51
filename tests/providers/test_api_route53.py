"""Route 53 (moto in server mode) through certsmith's API and CLI: a provider added with `dns-provider add --route53`,
the validation CNAMEs written by `cert create-records`, read back from the hosted zone; a second run changes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from certsmith.testing.bind import free_dns_port
from certsmith.testing.moto import DUMMY_KEYS, Moto
from certsmith.testing.pki import root_ca

from ..conftest import Server, backend_url, start_server
from ..contract.test_cli import cli
from .conftest import ZONE, route53_client


@pytest.fixture(scope="module")
def r53_server(tmp_path_factory: pytest.TempPathFactory, moto_peer: Moto) -> Iterator[Server]:
    home: Path = tmp_path_factory.mktemp("r53-server")
    server = start_server(home, backend_url(), ["--validation-zone", "validation.certsmith.test", "--dns-listen",
                                                f"127.0.0.1:{free_dns_port()}", "--resolvers", "127.0.0.1:9"])
    server.client("certsmith").create_issuer(Name="corp", CertificateAuthorityArn=root_ca(server.client("acm-pca")))
    yield server
    server.stop()


def _records(moto: Moto, name: str) -> list[str]:
    client = route53_client(moto.endpoint)
    zone = client.list_hosted_zones_by_name(DNSName=ZONE + ".")["HostedZones"][0]["Id"]
    sets = client.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
    return [r["ResourceRecords"][0]["Value"] for r in sets if r["Name"] == name and r["Type"] == "CNAME"]


def test_route53_provider_writes_the_records_once(r53_server: Server, moto_peer: Moto) -> None:
    added = cli(r53_server, "dns-provider", "add", "aws", "--route53", "--route53-endpoint", moto_peer.endpoint,
                "--aws-access-key-id", DUMMY_KEYS["access_key_id"], "--aws-secret-access-key",
                DUMMY_KEYS["secret_access_key"])
    assert "route53" in added.stdout and DUMMY_KEYS["secret_access_key"] not in added.stdout
    acm = r53_server.client("acm")
    arn = acm.request_certificate(DomainName=f"r53.{ZONE}", SubjectAlternativeNames=[f"*.r53.{ZONE}", f"www.{ZONE}"],
                                  Tags=[{"Key": "certsmith:issuer", "Value": "corp"}])["CertificateArn"]
    first = json.loads(cli(r53_server, "cert", "create-records", arn, "--provider", "aws", "--json").stdout)
    assert sorted(r["State"] for r in first) == ["WRITTEN", "WRITTEN"]  # r53 and *.r53 share one record
    for record in first:
        assert _records(moto_peer, record["Name"]) == [record["Value"]]
    second = json.loads(cli(r53_server, "cert", "create-records", arn, "--provider", "aws", "--json").stdout)
    assert [r["State"] for r in second] == ["ALREADY_RIGHT", "ALREADY_RIGHT"]


def test_a_name_outside_every_hosted_zone_names_the_provider_and_the_name(r53_server: Server, moto_peer: Moto) -> None:
    cli(r53_server, "dns-provider", "add", "aws-2", "--route53", "--route53-endpoint", moto_peer.endpoint,
        "--aws-access-key-id", DUMMY_KEYS["access_key_id"], "--aws-secret-access-key", DUMMY_KEYS["secret_access_key"])
    acm = r53_server.client("acm")
    arn = acm.request_certificate(DomainName=f"in.{ZONE}", SubjectAlternativeNames=["out.nowhere.test"],
                                  Tags=[{"Key": "certsmith:issuer", "Value": "corp"}])["CertificateArn"]
    refused = cli(r53_server, "cert", "create-records", arn, "--provider", "aws-2", ok=False)
    assert refused.returncode == 1 and "aws-2" in refused.stderr and "out.nowhere.test" in refused.stderr
    assert _records(moto_peer, f"_acme-challenge.in.{ZONE}.") == []  # nothing half-written
