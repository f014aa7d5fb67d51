"""Random and mutated input never gets a 500 or a traceback: only the AWS error shape."""

from __future__ import annotations

import json
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..conftest import Server
from .test_wire import signed

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63) | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12)
MEMBERS = ["CertificateAuthorityArn", "Csr", "SigningAlgorithm", "Validity", "TemplateArn", "ApiPassthrough",
           "CertificateAuthorityConfiguration", "CertificateAuthorityType", "RevocationConfiguration", "Tags",
           "Certificate", "CertificateChain", "CertificateSerial", "RevocationReason", "Policy", "ResourceArn"]
OPERATIONS = ["IssueCertificate", "CreateCertificateAuthority", "ImportCertificateAuthorityCertificate",
              "RevokeCertificate", "PutPolicy", "UpdateCertificateAuthority", "ListCertificateAuthorities",
              "TagCertificateAuthority", "GetCertificate"]


def check(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code != 200:
        document: dict[str, Any] = response.json()
        assert set(document) == {"__type", "message"} and document["message"]
        assert "Traceback" not in document["message"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operation=st.sampled_from(OPERATIONS),
       body=st.dictionaries(st.sampled_from(MEMBERS), json_values, max_size=5))
def test_random_members(server: Server, operation: str, body: dict[str, Any]) -> None:
    check(signed(server, f"ACMPrivateCA.{operation}", json.dumps(body).encode()))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operation=st.sampled_from(OPERATIONS), body=st.binary(max_size=200))
def test_random_bytes(server: Server, operation: str, body: bytes) -> None:
    check(signed(server, f"ACMPrivateCA.{operation}", body))


ACM_MEMBERS = ["CertificateArn", "DomainName", "SubjectAlternativeNames", "CertificateAuthorityArn", "KeyAlgorithm",
               "IdempotencyToken", "Options", "Tags", "Includes", "CertificateStatuses", "MaxItems", "NextToken",
               "SortBy", "SortOrder", "ExpiryEvents"]
ACM_OPERATIONS = ["RequestCertificate", "DescribeCertificate", "GetCertificate", "ListCertificates",
                  "DeleteCertificate", "AddTagsToCertificate", "UpdateCertificateOptions", "PutAccountConfiguration"]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operation=st.sampled_from(ACM_OPERATIONS),
       body=st.dictionaries(st.sampled_from(ACM_MEMBERS), json_values, max_size=5))
def test_random_acm_members(server: Server, operation: str, body: dict[str, Any]) -> None:
    check(signed(server, f"CertificateManager.{operation}", json.dumps(body).encode(), service="acm"))
