"""Property: whatever a client of one region does, no answer it gets names a resource of another region."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certsmith.testing.pki import activate_root, create_ca

from ..conftest import Server

REGIONS = ["us-east-1", "eu-west-1", "us-gov-east-1"]
_ARN_REGION = re.compile(r"arn:[a-z-]+:acm(?:-pca)?:([a-z0-9-]+):")


@pytest.fixture(scope="module")
def regional(server: Server) -> dict[str, dict[str, Any]]:
    clients: dict[str, dict[str, Any]] = {}
    for region in REGIONS:
        pca, acm = server.client("acm-pca", region_name=region), server.client("acm", region_name=region)
        ca = create_ca(pca, "ROOT", f"Property root {region}")
        activate_root(pca, ca)
        clients[region] = {"pca": pca, "acm": acm, "ca": ca}
    return clients


OPERATIONS = ["request", "list", "search", "describe", "get", "tags", "list_cas", "describe_ca", "delete"]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(REGIONS), st.sampled_from(OPERATIONS), st.integers(0, 1000)),
                min_size=4, max_size=12))
def test_no_answer_names_another_region(regional: dict[str, dict[str, Any]],
                                        steps: list[tuple[str, str, int]]) -> None:
    known: list[str] = [regional[region]["ca"] for region in REGIONS]  # ARNs of every region, to aim at
    for region, operation, pick in steps:
        acm, pca = regional[region]["acm"], regional[region]["pca"]
        target = known[pick % len(known)]
        certificate = target if ":acm:" in target else None
        try:
            if operation == "request":
                answer = acm.request_certificate(DomainName=f"p{pick}.{region}.test", KeyAlgorithm="EC_prime256v1",
                                                 CertificateAuthorityArn=regional[region]["ca"])
                known.append(answer["CertificateArn"])
            elif operation == "list":
                answer = acm.list_certificates(Includes={"keyTypes": ["EC_prime256v1", "RSA_2048"]})
            elif operation == "search":
                answer = acm.search_certificates()
            elif operation == "describe" and certificate:
                answer = acm.describe_certificate(CertificateArn=certificate)
            elif operation == "get" and certificate:
                answer = acm.get_certificate(CertificateArn=certificate)
            elif operation == "tags" and certificate:
                answer = acm.list_tags_for_certificate(CertificateArn=certificate)
            elif operation == "delete" and certificate:
                answer = acm.delete_certificate(CertificateArn=certificate)
            elif operation == "list_cas":
                answer = pca.list_certificate_authorities()
            else:
                answer = pca.describe_certificate_authority(CertificateAuthorityArn=regional[REGIONS[pick % 3]]["ca"])
        except ClientError as error:  # refusals echo the ARN the caller sent; only the code matters
            assert error.response["ResponseMetadata"]["HTTPStatusCode"] < 500, error.response
            continue
        answer.pop("ResponseMetadata", None)
        regions = set(_ARN_REGION.findall(json.dumps(answer, default=str)))
        assert regions <= {region}, (region, operation, regions)
