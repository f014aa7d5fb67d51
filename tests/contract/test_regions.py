"""Every region is a service of its own, as in AWS: one server, clients of five regions in four partitions."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
from botocore.exceptions import ClientError

from certsmith.testing.pki import WAIT, activate_root, create_ca

from ..conftest import Server, need_binary

REGIONS = {"us-east-1": "aws", "eu-west-1": "aws", "cn-north-1": "aws-cn", "us-gov-east-1": "aws-us-gov",
           "eusc-de-east-1": "aws-eusc"}
IMPORT_VECTORS = "tests/vectors"


@pytest.fixture(scope="module")
def world(server: Server) -> dict[str, dict[str, Any]]:
    """In each region: a root CA (made with one shared idempotency token), a private and an imported certificate."""
    from pathlib import Path

    vectors = Path(__file__).parent.parent / "vectors"
    made: dict[str, dict[str, Any]] = {}
    for region in REGIONS:
        pca, acm = server.client("acm-pca", region_name=region), server.client("acm", region_name=region)
        ca = create_ca(pca, "ROOT", f"Root of {region}", IdempotencyToken="same-token-everywhere")
        activate_root(pca, ca)
        private = acm.request_certificate(DomainName=f"app.{region}.test", CertificateAuthorityArn=ca,
                                          KeyAlgorithm="EC_prime256v1", IdempotencyToken="sametoken")["CertificateArn"]
        acm.get_waiter("certificate_validated").wait(CertificateArn=private, WaiterConfig=WAIT)
        imported = acm.import_certificate(Certificate=(vectors / "rsa/leaf.pem").read_bytes(),
                                          PrivateKey=(vectors / "rsa/leaf.key").read_bytes(),
                                          CertificateChain=(vectors / "rsa/chain.pem").read_bytes())["CertificateArn"]
        acm.add_tags_to_certificate(CertificateArn=private, Tags=[{"Key": "region", "Value": region}])
        made[region] = {"pca": pca, "acm": acm, "ca": ca, "private": private, "imported": imported}
    return made


def test_arns_carry_their_region_and_partition(world: dict[str, dict[str, Any]]) -> None:
    for region, partition in REGIONS.items():
        for key, service in (("ca", "acm-pca"), ("private", "acm"), ("imported", "acm")):
            assert world[region][key].startswith(f"arn:{partition}:{service}:{region}:"), world[region][key]
    cas = {world[region]["ca"] for region in REGIONS}
    assert len(cas) == len(REGIONS)  # one idempotency token, one CA per region


def test_each_region_lists_and_searches_only_its_own(world: dict[str, dict[str, Any]]) -> None:
    for region, mine in world.items():
        listed = [ca["Arn"] for ca in mine["pca"].list_certificate_authorities()["CertificateAuthorities"]]
        assert mine["ca"] in listed
        assert all(f":{region}:" in arn for arn in listed), (region, listed)
        arns: set[str] = set()
        for page in mine["acm"].get_paginator("list_certificates").paginate(
                Includes={"keyTypes": ["RSA_2048", "EC_prime256v1"]}):
            arns |= {s["CertificateArn"] for s in page["CertificateSummaryList"]}
        assert {mine["private"], mine["imported"]} <= arns and all(f":{region}:" in a for a in arns), (region, arns)
        found: set[str] = set()
        token: dict[str, str] = {}
        while True:  # SearchCertificates has no paginator in botocore: follow NextToken by hand
            answer = mine["acm"].search_certificates(MaxResults=500, **token)
            found |= {r["CertificateArn"] for r in answer["Results"]}
            if "NextToken" not in answer:
                break
            token = {"NextToken": answer["NextToken"]}
        assert {mine["private"], mine["imported"]} <= found and all(f":{region}:" in a for a in found), (region, found)
        for other, theirs in world.items():
            if other != region:
                assert theirs["private"] not in arns and theirs["ca"] not in listed


def test_another_regions_arn_is_not_found_and_another_partitions_is_invalid(world: dict[str, dict[str, Any]]) -> None:
    for region, mine in world.items():
        for other, theirs in world.items():
            if other == region:
                continue
            expected = "ResourceNotFoundException" if REGIONS[other] == REGIONS[region] else None
            acm, pca, cert, ca = mine["acm"], mine["pca"], theirs["private"], theirs["ca"]
            calls: list[tuple[Any, dict[str, Any]]] = [
                (acm.describe_certificate, {"CertificateArn": cert}),
                (acm.get_certificate, {"CertificateArn": cert}),
                (acm.list_tags_for_certificate, {"CertificateArn": cert}),
                (acm.add_tags_to_certificate, {"CertificateArn": cert, "Tags": [{"Key": "x", "Value": "y"}]}),
                (pca.describe_certificate_authority, {"CertificateAuthorityArn": ca}),
                (pca.get_certificate_authority_certificate, {"CertificateAuthorityArn": ca}),
                (pca.list_tags, {"CertificateAuthorityArn": ca}),
                (pca.create_certificate_authority_audit_report,
                 {"CertificateAuthorityArn": ca, "S3BucketName": "reports", "AuditReportResponseFormat": "JSON"}),
            ]
            for call, kwargs in calls:
                with pytest.raises(ClientError) as caught:
                    call(**kwargs)
                code = caught.value.response["Error"]["Code"]
                if expected is not None:
                    assert code == expected, (region, other, code)
                else:
                    assert code in ("InvalidArnException", "ValidationException"), (region, other, code)
                    assert "partition" in caught.value.response["Error"]["Message"]
    tags = world["us-east-1"]["acm"].list_tags_for_certificate(CertificateArn=world["us-east-1"]["private"])["Tags"]
    assert tags == [{"Key": "region", "Value": "us-east-1"}]  # no tag leaked in from another region's call


def test_account_configuration_is_per_region(world: dict[str, dict[str, Any]]) -> None:
    world["eu-west-1"]["acm"].put_account_configuration(ExpiryEvents={"DaysBeforeExpiry": 10}, IdempotencyToken="t")
    assert world["eu-west-1"]["acm"].get_account_configuration()["ExpiryEvents"]["DaysBeforeExpiry"] == 10
    assert world["cn-north-1"]["acm"].get_account_configuration()["ExpiryEvents"]["DaysBeforeExpiry"] == 45


def test_an_unknown_region_is_refused_by_name(server: Server) -> None:
    acm = server.client("acm", region_name="xx-nowhere-1")
    with pytest.raises(ClientError) as caught:
        acm.list_certificates()
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] < 500
    assert "xx-nowhere-1" in caught.value.response["Error"]["Message"]


def test_aws_cli_in_two_partitions(server: Server, world: dict[str, dict[str, Any]]) -> None:
    for region in ("us-gov-east-1", "cn-north-1"):
        env = server.env()
        env["AWS_DEFAULT_REGION"] = region
        result = subprocess.run([need_binary("aws"), "acm-pca", "list-certificate-authorities", "--endpoint-url",
                                 server.endpoint], capture_output=True, text=True, env=env, check=False)
        assert result.returncode == 0, result.stderr
        listed = [ca["Arn"] for ca in json.loads(result.stdout)["CertificateAuthorities"]]
        assert world[region]["ca"] in listed and all(arn.startswith(f"arn:{REGIONS[region]}:") for arn in listed)
