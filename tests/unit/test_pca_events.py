"""ACM-PCA's events (source aws.acm-pca) and certsmith's own (source certsmith): details, resources, the CA expiry rule."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from certsmith.domain import certsmith_events as own
from certsmith.domain import events, pca_events

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CA = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/0f0e0d0c-0000-4000-8000-000000000002"
CERT = "arn:aws:acm:us-east-1:123456789012:certificate/5b1c2d3e-0000-4000-8000-000000000001"


def _envelope(event: events.Event) -> dict[str, object]:
    envelope = events.envelope(event, event_id="e-1", account="123456789012", region="us-east-1")
    assert json.loads(json.dumps(envelope)) == envelope
    return envelope


def test_pca_detail_types_and_source() -> None:
    assert pca_events.DETAIL_TYPES == ("ACM Private CA Creation", "ACM Private CA Certificate Issuance",
                                       "ACM Private CA Certificate Revocation", "ACM Private CA CRL Generation",
                                       "ACM Private CA Audit Report Generation")
    envelope = _envelope(pca_events.creation(CA, NOW))
    assert envelope["source"] == "aws.acm-pca" and envelope["detail-type"] == "ACM Private CA Creation"
    assert envelope["resources"] == [CA] and envelope["detail"] == {"result": "success"}


def test_pca_resources_name_the_ca_then_what_the_event_is_about() -> None:
    issued = pca_events.issuance(CA, "1a2b", NOW)
    assert issued.resources == (CA, f"{CA}/certificate/1a2b") and issued.detail == {"result": "success"}
    assert pca_events.revocation(CA, "1a2b", NOW).resources == (CA, f"{CA}/certificate/1a2b")
    assert pca_events.crl_generation(CA, NOW).resources == (CA,)
    report = pca_events.audit_report_object_arn(CA, "reports", "audit-report/0f0e/r-1.json")
    assert report == "arn:aws:s3:::reports/audit-report/0f0e/r-1.json"
    assert pca_events.audit_report(CA, report, NOW).resources == (CA, report)
    china = CA.replace("arn:aws:", "arn:aws-cn:").replace("us-east-1", "cn-north-1")
    assert pca_events.audit_report_object_arn(china, "b", "k").startswith("arn:aws-cn:s3:::")


def test_pca_failures_carry_a_reason_in_one_line() -> None:
    failed = pca_events.crl_generation(CA, NOW, pca_events.CRL_INTERNAL_FAILURE)
    assert failed.detail == {"result": "failure", "reason": "Failed to generate CRL. Internal failure."}
    long = pca_events.issuance(CA, "1", NOW, "line one\n  line two " + "x" * 1000)
    assert long.detail["result"] == "failure" and long.detail["reason"].startswith("line one line two x")
    assert len(long.detail["reason"]) == pca_events.MAX_REASON
    assert pca_events.creation(CA, NOW, "").detail["reason"] == "Internal failure."
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        pca_events.creation(CA, datetime(2026, 3, 1))


def test_certsmith_detail_types() -> None:
    assert own.DETAIL_TYPES == ("Certsmith Validation Failed", "Certsmith Deployment Succeeded",
                                "Certsmith Deployment Failed", "Certsmith Endpoint Drift", "Certsmith Endpoint Unreachable",
                                "Certsmith CA Expiring", "Certsmith CRL Published")


def _every_certsmith_event() -> list[events.Event]:
    not_after = NOW + timedelta(days=20)
    return [
        own.validation_failed(CERT, ["a.example.com", "b.example.com"], "CAA_ERROR", "CAA forbids it", NOW,
                              failed_names=["b.example.com"], issuer="letsencrypt",
                              issuer_arn="arn:aws:certsmith:us-east-1:123456789012:issuer/letsencrypt"),
        own.deployment_succeeded(CERT, "web-1", NOW, names=["a.example.com"], serial="1a", not_after=not_after),
        own.deployment_failed(CERT, "web-1", "reload failed", NOW, names=["a.example.com"]),
        own.endpoint_drift("www.example.com", 443, "www.example.com", NOW, certificate_arn=CERT, expected_serial="2b",
                           served_serial="1a", served_not_after=not_after),
        own.endpoint_unreachable("2001:db8::1", 8443, "api.example.com", "connection refused", NOW, certificate_arn=CERT),
        own.ca_expiring(CA, "CN=Root", not_after, 30, NOW),
        own.crl_published(CA, 7, NOW, NOW + timedelta(days=7), 2, NOW, url="http://pki.example/crl/0f0e.crl"),
    ]


def test_every_certsmith_event_names_its_arns_and_says_what_to_do() -> None:
    made = _every_certsmith_event()
    assert [e.detail_type for e in made] == list(own.DETAIL_TYPES)
    for event in made:
        envelope = _envelope(event)
        assert envelope["source"] == "certsmith"
        assert event.resources and all(r.startswith("arn:") for r in event.resources)
        action = event.detail["RecommendedAction"]
        assert isinstance(action, str) and action.endswith(".") and list(event.detail)[-1] == "RecommendedAction"


def test_validation_failed() -> None:
    event = _every_certsmith_event()[0]
    assert event.resources == (CERT, "arn:aws:certsmith:us-east-1:123456789012:issuer/letsencrypt")
    assert event.detail == {
        "DomainNames": ["a.example.com", "b.example.com"], "FailedNames": ["b.example.com"], "Reason": "CAA_ERROR",
        "Error": "CAA forbids it", "Issuer": "letsencrypt",
        "RecommendedAction": "Allow the issuer in the CAA records of b.example.com (or remove the record that forbids "
                             "it), then request the certificate again."}
    timed_out = own.validation_failed(CERT, ["a.example.com"], "VALIDATION_TIMED_OUT", "no validation", NOW,
                                      validation_method="DNS")
    assert timed_out.resources == (CERT,) and timed_out.detail["FailedNames"] == ["a.example.com"]
    assert timed_out.detail["DomainValidationMethod"] == "DNS"
    assert f"`certsmith doctor validation {CERT}`" in timed_out.detail["RecommendedAction"]
    by_mail = own.validation_failed(CERT, ["a.example.com"], "VALIDATION_TIMED_OUT", "no approval", NOW,
                                    validation_method="EMAIL")
    assert "approval mails for a.example.com approved" in by_mail.detail["RecommendedAction"]
    by_http = own.validation_failed(CERT, ["a.example.com"], "VALIDATION_TIMED_OUT", "no redirect", NOW,
                                    validation_method="HTTP")
    assert by_http.detail["RecommendedAction"].startswith("Put the HTTP redirects of a.example.com in place")


def test_endpoint_events_name_host_and_port() -> None:
    drift, unreachable = _every_certsmith_event()[3:5]
    assert drift.detail["Host"] == "www.example.com" and drift.detail["Port"] == 443
    assert drift.detail["ServedSerial"] == "1a" and drift.detail["ExpectedSerial"] == "2b"
    assert drift.detail["RecommendedAction"] == (f"Deploy {CERT} to www.example.com:443 and reload it: it serves serial "
                                                 "1a, which expires on 2026-03-21.")
    assert unreachable.detail["RecommendedAction"].startswith(
        "Check that [2001:db8::1]:8443 (SNI api.example.com) is up and reachable from certsmith (connection refused)")


def test_ca_expiring_and_crl_published() -> None:
    expiring, published = _every_certsmith_event()[5:]
    assert expiring.resources == (CA,)
    assert {k: expiring.detail[k] for k in ("Subject", "Threshold", "DaysToExpiry", "NotAfter")} == {
        "Subject": "CN=Root", "Threshold": 30, "DaysToExpiry": 20, "NotAfter": "2026-03-21T12:00:00Z"}
    assert expiring.detail["RecommendedAction"].startswith(f"Rotate the CA before 2026-03-21: `certsmith ca rotate {CA}`")
    assert {k: published.detail[k] for k in ("CrlNumber", "ThisUpdate", "NextUpdate", "RevokedCount", "Url")} == {
        "CrlNumber": 7, "ThisUpdate": "2026-03-01T12:00:00Z", "NextUpdate": "2026-03-08T12:00:00Z", "RevokedCount": 2,
        "Url": "http://pki.example/crl/0f0e.crl"}


@pytest.mark.parametrize(("days_left", "threshold"), [
    (120, None), (90.5, None), (90, 90), (45, 90), (30, 30), (12, 30), (7, 7), (0.1, 7), (0, None), (-3, None),
])
def test_ca_expiry_threshold(days_left: float, threshold: int | None) -> None:
    assert own.ca_expiry_threshold(NOW + timedelta(days=days_left), NOW) == threshold


def test_ca_expiry_event_ids_are_one_per_ca_certificate_and_threshold() -> None:
    not_after = NOW + timedelta(days=80)
    first = own.ca_expiry_event_id(CA, not_after, 90)
    assert first == own.ca_expiry_event_id(CA, not_after, 90)  # the same notice, whoever computes it
    assert len({first, own.ca_expiry_event_id(CA, not_after, 30), own.ca_expiry_event_id(CA, not_after + timedelta(days=1),
                                                                                            90),
                own.ca_expiry_event_id(CA.replace("0f0e", "1f0e"), not_after, 90)}) == 4
