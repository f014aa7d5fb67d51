"""certsmith_validation_duration_seconds for a public certificate whose DNS-01 challenge is answered directly through
a DNS provider (the user's BIND): validating is the order's part, so the names count as validated when Pebble's
authorizations are valid, after the request and before the certificate is issued. The CNAME path is checked where
it issues (test_acme_issuance)."""

from __future__ import annotations

import uuid
from typing import NamedTuple

import httpx
from prometheus_client.parser import text_string_to_metric_families

from ..conftest import Server
from .conftest import PublicWorld, wait_status

FAMILY = "certsmith_validation_duration_seconds"


class Observed(NamedTuple):
    count: float
    total: float


def validation_observed(server: Server, kind: str = "AMAZON_ISSUED") -> Observed:
    """The validation histogram's count and sum for one certificate type, from the server's /metrics."""
    page = httpx.get(f"{server.endpoint}/metrics", timeout=30)
    assert page.status_code == 200, page.text
    family = next(f for f in text_string_to_metric_families(page.text) if f.name == FAMILY)
    found = {s.name: s.value for s in family.samples if s.labels.get("type") == kind}
    return Observed(found.get(f"{FAMILY}_count", 0.0), found.get(f"{FAMILY}_sum", 0.0))


def test_a_certificate_validated_directly_counts_when_the_acme_ca_authorized_it(public_world: PublicWorld) -> None:
    server, bind = public_world.server, public_world.bind
    server.client("certsmith").create_dns_provider(Name="latency-bind", Kind="rfc2136", Options={
        "server": bind.address, "tsig_name": bind.tsig_name, "tsig_secret": bind.tsig_secret,
        "tsig_algorithm": bind.tsig_algorithm})
    acm = server.client("acm")
    before = validation_observed(server)
    arn = acm.request_certificate(DomainName=f"latency-{uuid.uuid4().hex[:8]}.example.test",
                                  Tags=[{"Key": "certsmith:dns-provider", "Value": "latency-bind"}])["CertificateArn"]
    detail = wait_status(acm, arn)
    assert detail["Status"] == "ISSUED", detail
    after = validation_observed(server)
    assert after.count == before.count + 1
    seconds = after.total - before.total
    assert 0 < seconds <= (detail["IssuedAt"] - detail["CreatedAt"]).total_seconds() + 1, (seconds, detail)
