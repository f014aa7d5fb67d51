"""SearchCertificates, ListCertificateDomainValidations, the generic tag operations, CA duration limits."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import WaiterError

from certsmith.testing.pki import activate_root, create_ca, root_ca

from ..conftest import Server
from .test_acm_import import import_vector
from .test_acm_private import error_code, issued, request
from .test_wire import signed


@pytest.fixture(scope="module")
def acm(server: Server) -> Any:
    return server.client("acm")


@pytest.fixture(scope="module")
def certificates(acm: Any, pca: Any) -> dict[str, str]:
    ca = root_ca(pca, "Search Root")
    first, _ = issued(acm, ca, "alpha.search.test", KeyAlgorithm="EC_prime256v1",
                      SubjectAlternativeNames=["www.alpha.search.test"])
    second, _ = issued(acm, ca, "beta.search.test", KeyAlgorithm="EC_secp384r1")
    acm.export_certificate(CertificateArn=second, Passphrase=b"search passphrase")
    imported = import_vector(acm, "rsa/leaf.pem", "rsa/leaf.key", "rsa/chain.pem")
    return {"alpha": first, "beta": second, "imported": imported, "ca": ca}


def search(acm: Any, statement: dict[str, Any] | None = None, only: dict[str, str] | None = None,
           **kwargs: Any) -> list[str]:
    """ARNs found; with ``only``, just those among these (other tests share the account)."""
    if statement is not None:
        kwargs["FilterStatement"] = statement
    found = [r["CertificateArn"] for r in acm.search_certificates(**kwargs)["Results"]]
    return [arn for arn in found if only is None or arn in only.values()]


def test_search_filters(acm: Any, certificates: dict[str, str]) -> None:
    alpha, beta, imported = certificates["alpha"], certificates["beta"], certificates["imported"]
    cn = {"Filter": {"X509AttributeFilter": {"Subject": {"CommonName": {"Value": "alpha", "ComparisonOperator":
                                                                         "CONTAINS"}}}}}
    mine = certificates
    assert search(acm, cn, mine) == [alpha]
    san = {"Filter": {"X509AttributeFilter": {"SubjectAlternativeName": {"DnsName": {
        "Value": "www.alpha.search.test", "ComparisonOperator": "EQUALS"}}}}}
    assert search(acm, san, mine) == [alpha]
    exported = {"Filter": {"AcmCertificateMetadataFilter": {"Exported": True}}}
    assert search(acm, exported, mine) == [beta]
    private_not_exported = {"And": [{"Filter": {"AcmCertificateMetadataFilter": {"Type": "PRIVATE"}}},
                                    {"Not": exported}]}
    assert search(acm, private_not_exported, mine) == [alpha]
    either = {"Or": [{"Filter": {"CertificateArn": imported}}, {"Filter": {"X509AttributeFilter": {
        "KeyAlgorithm": "EC_secp384r1"}}}]}
    assert sorted(search(acm, either, mine)) == sorted([imported, beta])
    soon = {"Filter": {"X509AttributeFilter": {"NotAfter": {"End": datetime.now(UTC) + timedelta(days=400)}}}}
    assert {alpha, beta} <= set(search(acm, soon)) and imported not in search(acm, soon)

    results = [r for r in acm.search_certificates(FilterStatement=cn)["Results"] if r["CertificateArn"] == alpha]
    attributes = results[0]["X509Attributes"]
    assert attributes["Subject"]["CommonName"] == "alpha.search.test"
    assert attributes["Issuer"] == {"Organization": "certsmith tests", "CommonName": "Search Root"}
    assert {"DnsName": "www.alpha.search.test"} in attributes["SubjectAlternativeNames"]
    assert attributes["KeyAlgorithm"] == "EC_prime256v1" and ":" in attributes["SerialNumber"]
    assert results[0]["CertificateMetadata"]["AcmCertificateMetadata"]["Type"] == "PRIVATE"


def test_search_pages_sorts_and_refuses_bad_trees(acm: Any, server: Server, certificates: dict[str, str]) -> None:
    everything = search(acm, SortBy="COMMON_NAME", SortOrder="ASCENDING")
    names = [r["X509Attributes"]["Subject"].get("CommonName") for r in acm.search_certificates(
        SortBy="COMMON_NAME", SortOrder="ASCENDING")["Results"] if "X509Attributes" in r]
    assert names == sorted(names)
    first = acm.search_certificates(MaxResults=1, SortBy="COMMON_NAME", SortOrder="ASCENDING")
    second = acm.search_certificates(MaxResults=1, SortBy="COMMON_NAME", SortOrder="ASCENDING",
                                     NextToken=first["NextToken"])
    assert [first["Results"][0]["CertificateArn"], second["Results"][0]["CertificateArn"]] == everything[:2]
    # boto3 refuses such trees itself; other clients may send them.
    for tree in ({"Filter": {"AcmCertificateMetadataFilter": {"Exported": True, "InUse": False}}}, {},
                 {"And": []}, {"Not": {"Filter": {}}}):
        response = signed(server, "CertificateManager.SearchCertificates",
                          json.dumps({"FilterStatement": tree}).encode(), service="acm")
        assert response.status_code == 400 and response.json()["__type"] == "ValidationException", response.text
        assert "filterstatement" in response.json()["message"].lower()


def test_domain_validations_and_generic_tags(acm: Any, certificates: dict[str, str]) -> None:
    listed = acm.list_certificate_domain_validations(CertificateArn=certificates["alpha"])
    assert [(s["DomainName"], s["ActiveValidationConfiguration"]["ValidationStatus"])
            for s in listed["DomainValidationSummaryList"]] == [("alpha.search.test", "SUCCESS"),
                                                                ("www.alpha.search.test", "SUCCESS")]
    arn = certificates["imported"]
    acm.tag_resource(ResourceArn=arn, Tags=[{"Key": "owner", "Value": "ops"}])
    assert acm.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "owner", "Value": "ops"}]
    acm.untag_resource(ResourceArn=arn, TagKeys=["owner"])
    assert acm.list_tags_for_resource(ResourceArn=arn)["Tags"] == []
    code, _ = error_code(acm.list_tags_for_resource,
                         ResourceArn="arn:aws:acm:us-east-1:123456789012:acme-endpoint/abc")
    assert code == "ResourceNotFoundException"


def test_cas_that_cannot_cover_thirteen_months(acm: Any, pca: Any) -> None:
    short_lived = create_ca(pca, "ROOT", "Short Lived Root", UsageMode="SHORT_LIVED_CERTIFICATE")
    activate_root(pca, short_lived)
    ends_soon = create_ca(pca, "ROOT", "One Year Root")
    activate_root(pca, ends_soon, years=1)
    for ca in (short_lived, ends_soon):
        arn = request(acm, ca, "duration.search.test", KeyAlgorithm="EC_prime256v1")
        with pytest.raises(WaiterError, match="terminal failure"):
            acm.get_waiter("certificate_validated").wait(CertificateArn=arn, WaiterConfig={"Delay": 1,
                                                                                           "MaxAttempts": 30})
        assert acm.describe_certificate(CertificateArn=arn)["Certificate"]["FailureReason"] == "PCA_INVALID_DURATION"
