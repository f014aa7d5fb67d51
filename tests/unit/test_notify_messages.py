"""What a person reads of each event: subject, facts and the recommended action."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from certsmith.domain import events
from certsmith.notify import describe
from certsmith.notify.email import email_text
from certsmith.notify.messages import PCA_AUDIT_REPORT, PCA_CRL, PCA_ISSUANCE, PCA_REVOCATION

NOW = datetime(2026, 3, 1, tzinfo=UTC)
NOT_PLANNED = "Replace it before 2026-03-15: certsmith will not renew it (no renewal is planned)."
ARN = "arn:aws:acm:us-east-1:123456789012:certificate/5b1c2d3e-0000-4000-8000-000000000001"
CA_ARN = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/0f0e0d0c-0000-4000-8000-000000000002"


def _facts(kind: str = "AMAZON_ISSUED", method: str | None = "DNS", origin: str = "AWS_MANAGED") -> events.CertificateFacts:
    return events.CertificateFacts(ARN, kind, "www.example.com", ("www.example.com", "example.com"),
                                   NOW - timedelta(days=76), NOW + timedelta(days=14), NOW - timedelta(days=76), origin,
                                   method, True, False)


def _envelope(event: events.Event) -> dict[str, Any]:
    return events.envelope(event, event_id="e-1", account="123456789012", region="us-east-1")


def _acm_only(envelope: dict[str, Any]) -> dict[str, Any]:
    """The envelope as ACM itself sends it: without certsmith's fields (so describe falls back to its own action)."""
    for key in ("DomainNames", "Issuer", "InUseBy", "ManagedRenewal", "RecommendedAction"):
        envelope["detail"].pop(key, None)
    return envelope


def _every_acm_event(facts: events.CertificateFacts) -> dict[str, dict[str, Any]]:
    return {
        events.AVAILABLE: _envelope(events.available(facts, "ISSUANCE", NOW)),
        events.APPROACHING: _envelope(events.approaching(facts, NOW)),
        events.ACTION_REQUIRED: _envelope(events.action_required(facts, "CAA_ERROR", NOW)),
        events.EXPIRED: _envelope(events.expired(facts, NOW)),
        events.REVOKED: _envelope(events.revoked(facts, NOW)),
    }


def test_every_acm_detail_type_is_told_with_certsmiths_recommended_action() -> None:
    sent = _every_acm_event(_facts())
    assert set(sent) == set(events.DETAIL_TYPES)
    told = {detail_type: describe(envelope) for detail_type, envelope in sent.items()}
    for detail_type, message in told.items():
        assert message.subject.startswith(f"{detail_type}: www.example.com and 1 more")
        assert ("Certificate", ARN) in message.lines and ("Names", "www.example.com, example.com") in message.lines
        assert ("Account", "123456789012 (us-east-1)") in message.lines
        if "InUse" in sent[detail_type]["detail"]:
            assert ("In use", "yes") in message.lines  # InUseBy is empty: the message says InUse instead
        assert not any(label in ("Recommended action", "Domain names") for label, _ in message.lines)
        assert message.action == sent[detail_type]["detail"]["RecommendedAction"]
    assert {detail_type: message.action for detail_type, message in told.items()} == {
        events.AVAILABLE: f"The certificate is ready to install. {NOT_PLANNED}",
        events.APPROACHING: NOT_PLANNED,
        events.ACTION_REQUIRED: ("Allow the issuer in the CAA records of www.example.com, example.com (a CAA record forbids "
                                 "it); certsmith renews the certificate once they do, before 2026-03-15."),
        events.EXPIRED: ("Request or import a new certificate and replace this one wherever it is installed; clients "
                         "refuse it since it expired."),
        events.REVOKED: ("Request a new certificate and install it wherever this one was installed; clients that check "
                         "revocation refuse it."),
    }
    assert told[events.AVAILABLE].subject == "ACM Certificate Available: www.example.com and 1 more (issued)"
    assert told[events.ACTION_REQUIRED].subject == ("ACM Certificate Renewal Action Required: www.example.com and 1 more "
                                                    "(CAA_ERROR, 14 days left)")
    assert ("Expires", "2026-03-15 00:00 UTC") in told[events.EXPIRED].lines


def test_every_acm_detail_type_is_told_without_a_recommended_action() -> None:
    told = {detail_type: describe(_acm_only(envelope)) for detail_type, envelope in _every_acm_event(_facts()).items()}
    assert set(told) == set(events.DETAIL_TYPES)
    for detail_type, message in told.items():
        assert message.subject.startswith(f"{detail_type}: www.example.com")
        assert ("Certificate", ARN) in message.lines and ("Names", "www.example.com") in message.lines
        assert ("Account", "123456789012 (us-east-1)") in message.lines
        assert message.action.endswith(".")
    assert told[events.AVAILABLE].subject == "ACM Certificate Available: www.example.com (issued)"
    assert told[events.AVAILABLE].action == "Nothing to do."
    assert told[events.APPROACHING].subject == "ACM Certificate Approaching Expiration: www.example.com (14 days left)"
    assert told[events.APPROACHING].action.startswith("Nothing to do yet: certsmith renews the certificate")
    assert told[events.ACTION_REQUIRED].subject == ("ACM Certificate Renewal Action Required: www.example.com "
                                                    "(CAA_ERROR, 14 days left)")
    assert told[events.ACTION_REQUIRED].action == ("Allow the issuing CA in the CAA records of www.example.com, then "
                                                   "certsmith renews the certificate before 2026-03-15 00:00 UTC.")
    assert ("Expires", "2026-03-15 00:00 UTC") in told[events.EXPIRED].lines
    assert told[events.REVOKED].action.startswith("Replace the certificate wherever it is used")


def test_imported_certificates_are_re_imported() -> None:
    imported = _facts("IMPORTED", None, "CUSTOMER_PROVIDED")
    envelope = _envelope(events.approaching(imported, NOW))
    assert describe(envelope).action == envelope["detail"]["RecommendedAction"] == (
        "Import a renewed certificate before 2026-03-15; certsmith cannot renew an imported certificate.")
    expired = _envelope(events.expired(imported, NOW))
    assert describe(expired).action == expired["detail"]["RecommendedAction"] == (
        "Request or import a new certificate and replace this one wherever it is installed; clients refuse it since it "
        "expired.")


def test_imported_certificates_are_re_imported_without_a_recommended_action() -> None:
    imported = _facts("IMPORTED", None, "CUSTOMER_PROVIDED")
    message = describe(_acm_only(_envelope(events.approaching(imported, NOW))))  # no CertificateType: the origin says
    assert message.action == ("Re-import a renewed certificate within the 14 days left; certsmith cannot renew imported "
                              "certificates.")
    envelope = _acm_only(_envelope(events.approaching(imported, NOW)))
    envelope["detail"] |= {"CertificateType": "IMPORTED", "CertificateExpirationDate": "2026-03-15T00:00:00Z"}
    assert describe(envelope).action == ("Re-import a renewed certificate before 2026-03-15 00:00 UTC; certsmith cannot "
                                         "renew imported certificates.")
    assert "Re-import a valid certificate" in describe(_acm_only(_envelope(events.expired(imported, NOW)))).action


@pytest.mark.parametrize(("method", "recommended", "fallback"), [
    ("DNS", f"Restore the validation CNAME records for www.example.com, example.com; `certsmith cert create-records {ARN} "
            "--provider NAME` writes them.",
     "Restore the validation CNAME records for www.example.com, api.example.com"),
    ("HTTP", "Restore the HTTP redirects of www.example.com, example.com to certsmith (DescribeCertificate shows them); "
             "certsmith checks them every hour and renews the certificate once they answer, before 2026-03-15.",
     "Restore the HTTP validation redirects for www.example.com, api.example.com"),
    ("EMAIL", "Approve the validation mails sent for www.example.com, example.com; certsmith renews the certificate once "
              "they are approved, before 2026-03-15.",
     "Approve the validation mails sent for www.example.com, api.example.com"),
])
def test_pending_domain_validation(method: str, recommended: str, fallback: str) -> None:
    envelope = _envelope(events.action_required(_facts(method=method), events.PENDING_DOMAIN_VALIDATION, NOW))
    message = describe(envelope)
    assert message.action == envelope["detail"]["RecommendedAction"] == recommended
    assert message.subject == ("ACM Certificate Renewal Action Required: www.example.com and 1 more "
                               "(PENDING_DOMAIN_VALIDATION, 14 days left)")
    assert ("Renewal blocked by", "PENDING_DOMAIN_VALIDATION") in message.lines
    # Without certsmith's RecommendedAction, describe says it from the method and the names the event carries.
    del envelope["detail"]["RecommendedAction"]
    envelope["detail"]["DomainNames"] = ["www.example.com", "api.example.com"]
    message = describe(envelope)
    assert message.action == f"{fallback} so certsmith can renew the certificate before 2026-03-15 00:00 UTC."
    assert message.subject == ("ACM Certificate Renewal Action Required: www.example.com and 1 more "
                               "(PENDING_DOMAIN_VALIDATION, 14 days left)")
    assert ("Renewal blocked by", "PENDING_DOMAIN_VALIDATION") in message.lines


def test_other_reasons() -> None:
    envelope = _envelope(events.action_required(_facts(), "OTHER", NOW))
    assert describe(envelope).action == envelope["detail"]["RecommendedAction"] == (
        "The renewal is blocked (OTHER): fix the cause, or request or import a new certificate before 2026-03-15.")
    private = _envelope(events.action_required(replace(_facts("PRIVATE"), issuer=CA_ARN), "PCA_INVALID_STATE", NOW))
    assert describe(private).action == private["detail"]["RecommendedAction"] == (
        f"Make the issuing CA {CA_ARN} ACTIVE (it is not ACTIVE); certsmith then renews the certificate before 2026-03-15.")


def test_other_reasons_point_at_the_certificate_without_a_recommended_action() -> None:
    message = describe(_acm_only(_envelope(events.action_required(_facts(), "OTHER", NOW))))
    assert message.action == (f"Fix what blocks the renewal (OTHER) (`certsmith cert describe {ARN}`) "
                              "before 2026-03-15 00:00 UTC.")
    private = _acm_only(_envelope(events.action_required(_facts("PRIVATE"), "PCA_INVALID_STATE", NOW)))
    assert "private CA ACTIVE" in describe(private).action


def test_fields_others_add() -> None:
    envelope = _envelope(events.approaching(_facts(), NOW))
    envelope["detail"] |= {"DomainNames": ["a.example", "b.example", "c.example", "d.example"], "Issuer": "Example CA",
                           "InUseBy": ["lb-1", "lb-2"], "RecommendedAction": "Call the platform team."}
    message = describe(envelope)
    assert message.action == "Call the platform team."
    assert message.subject == "ACM Certificate Approaching Expiration: a.example and 3 more (14 days left)"
    assert ("Names", "a.example, b.example, c.example, d.example") in message.lines
    assert ("Issuer", "Example CA") in message.lines and ("In use by", "lb-1, lb-2") in message.lines
    assert not any(label == "Recommended action" for label, _ in message.lines)


@pytest.mark.parametrize(("detail_type", "result", "action"), [
    (PCA_ISSUANCE, "success", "Nothing to do."),
    (PCA_ISSUANCE, "failure", "Check the CA's state (it must be ACTIVE) and the request, then issue again."),
    (PCA_REVOCATION, "failure", "Revoke the certificate again; it is not yet in the CA's CRL."),
    (PCA_CRL, "failure", "Check the CA's CRL configuration and its storage; clients may refuse certificates while the CRL "
                         "is stale."),
    (PCA_AUDIT_REPORT, "failure", "Check where the CA writes its audit reports, then ask for the report again."),
])
def test_private_ca_events(detail_type: str, result: str, action: str) -> None:
    envelope = {"id": "e-2", "source": "aws.acm-pca", "detail-type": detail_type, "account": "123456789012",
                "region": "us-east-1", "resources": [CA_ARN], "detail": {"result": result}}
    message = describe(envelope)
    assert message.action == action and ("Certificate authority", CA_ARN) in message.lines
    failed = " (failed)" if result == "failure" else ""
    assert message.subject == f"{detail_type}: 0f0e0d0c-0000-4000-8000-000000000002{failed}"
    assert ("Result", result) in message.lines


@pytest.mark.parametrize(("detail_type", "detail", "action"), [
    ("Certsmith Validation Failed", {"DomainNames": ["www.example.com"], "Error": "NXDOMAIN for _acme-challenge"},
     "Fix what the validation of www.example.com reported (NXDOMAIN for _acme-challenge); certsmith tries again."),
    ("Certsmith Deployment Succeeded", {"Target": "web-1"}, "Nothing to do."),
    ("Certsmith Deployment Failed", {"Target": "web-1", "Error": "reload failed"},
     "Check the deployment target web-1 (reload failed); the certificate is not in place there."),
    ("Certsmith Endpoint Drift", {"Host": "www.example.com", "Port": 443},
     "www.example.com:443 serves another certificate than the one it should; deploy the current certificate there and "
     "reload the server."),
    ("Certsmith Endpoint Unreachable", {"Host": "2001:db8::1", "Port": 8443, "Error": "connection refused"},
     "Check that [2001:db8::1]:8443 is up and reachable from certsmith (connection refused)."),
    ("Certsmith CA Expiring", {"NotAfter": "2027-01-01T00:00:00Z"},
     f"Rotate the CA before 2027-01-01 00:00 UTC (`certsmith ca rotate {CA_ARN}`) and re-issue its certificates."),
    ("Certsmith CRL Published", {"CrlNumber": 7}, "Nothing to do."),
])
def test_certsmith_events(detail_type: str, detail: dict[str, Any], action: str) -> None:
    envelope = {"id": "e-3", "source": "certsmith", "detail-type": detail_type, "resources": [CA_ARN], "detail": detail}
    message = describe(envelope)
    assert message.action == action and message.subject.startswith(detail_type)


def test_unknown_events_show_their_detail() -> None:
    envelope = {"source": "example.other", "detail-type": "Something Happened", "resources": ["urn:x"],
                "detail": {"serialNumber": "0a:0b", "HTTPStatus": 502, "Nested": {"a": [1, 2]}, "Empty": None,
                           "When": "2026-01-02T03:04:05Z", "Long": "x" * 600, "Flag": False}}
    message = describe(envelope)
    assert message.subject == "Something Happened: urn:x"
    assert message.lines[:6] == [("Resource", "urn:x"), ("Serial number", "0a:0b"), ("HTTP status", "502"),
                                 ("Nested", '{"a":[1,2]}'), ("When", "2026-01-02 03:04 UTC"), ("Long", "x" * 499 + "…")]
    assert ("Flag", "no") in message.lines and message.action == "No action is known for this event; see its detail."
    assert describe({}).subject == "Event" and describe({"detail": "not an object"}).lines == []


def test_email_text_lines_up_the_facts() -> None:
    subject, text = email_text(_envelope(events.approaching(_facts(), NOW)))
    assert subject == "[certsmith] ACM Certificate Approaching Expiration: www.example.com and 1 more (14 days left)"
    assert (f"\n\nCertificate:     {ARN}\nNames:           www.example.com, example.com\nDays to expiry:  14\n"
            "Managed renewal: NOT_RENEWED\nAccount:         123456789012 (us-east-1)\n\n") in text
    assert f"\nWhat to do: {NOT_PLANNED}\n" in text and "The event (id e-1) is attached as JSON." in text


def test_email_text_without_a_recommended_action() -> None:
    subject, text = email_text(_acm_only(_envelope(events.approaching(_facts(), NOW))))
    assert subject == "[certsmith] ACM Certificate Approaching Expiration: www.example.com (14 days left)"
    assert f"Certificate:    {ARN}\n" in text and "Days to expiry: 14\n" in text
    assert "\nWhat to do: Nothing to do yet" in text and "The event (id e-1) is attached as JSON." in text
