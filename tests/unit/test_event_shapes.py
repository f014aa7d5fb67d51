"""ACM event shapes: each detail-type's fields as the EventBridge docs list them, and the envelope."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from certsmith.domain import events
from certsmith.domain.events import CertificateFacts, Event

ARN = "arn:aws:acm:eu-west-1:123456789012:certificate/11111111-2222-4333-8444-555555555555"
ISSUED = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
NOT_BEFORE = ISSUED - timedelta(hours=1)  # certsmith backdates by an hour
NOT_AFTER = ISSUED + timedelta(days=395)
NOW = ISSUED + timedelta(days=380, hours=5)  # 14 days and 19 hours left

PRIVATE = CertificateFacts(
    arn=ARN, certificate_type="PRIVATE", common_name="api.example.internal",
    names=("www.example.internal", "api.example.internal"), not_before=NOT_BEFORE, not_after=NOT_AFTER,
    created_at=ISSUED - timedelta(minutes=3), key_pair_origin="AWS_MANAGED", validation_method=None,
    in_use=True, exported=False, exportable=True,
)
PUBLIC = replace(PRIVATE, certificate_type="AMAZON_ISSUED", common_name="example.com",
                 names=("example.com", "www.example.com"), validation_method="DNS", in_use=False, exported=True)
IMPORTED = replace(PRIVATE, certificate_type="IMPORTED", key_pair_origin="CUSTOMER_PROVIDED", in_use=False)
CA_ARN = "arn:aws:acm-pca:eu-west-1:123456789012:certificate-authority/0f0e0d0c-0000-4000-8000-000000000002"

# certsmith's fields, which follow ACM's in every detail.
CERTSMITH_KEYS = ("DomainNames", "Issuer", "InUseBy", "ManagedRenewal", "RecommendedAction")
NOT_PLANNED = "Replace it before 2027-03-31: certsmith will not renew it (no renewal is planned)."


def _split(detail: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """ACM's fields and certsmith's, after checking that ACM's all come first."""
    acm = {key: value for key, value in detail.items() if key not in CERTSMITH_KEYS}
    ours = {key: value for key, value in detail.items() if key in CERTSMITH_KEYS}
    assert list(detail) == [*acm, *ours]
    return acm, ours


def _exactly(detail: dict[str, Any], acm: dict[str, Any], ours: dict[str, Any]) -> None:
    """ACM's fields are exactly ``acm``, in its order; certsmith's are exactly ``ours``, in its order."""
    got_acm, got_ours = _split(detail)
    assert got_acm == acm and list(got_acm) == list(acm)
    assert got_ours == ours and list(got_ours) == list(ours)


def test_available_on_issuance() -> None:
    event = events.available(PUBLIC, "ISSUANCE", NOW)
    assert (event.detail_type, event.resources, event.time, event.source) == (events.AVAILABLE, (ARN,), NOW, "aws.acm")
    _exactly(event.detail, {
        "Action": "ISSUANCE",
        "CertificateType": "AMAZON_ISSUED",
        "CommonName": "example.com",
        "FirstSubjectAlternativeName": "example.com",
        "ValidityInDays": 395,
        "CertificateKeyPairOrigin": "AWS_MANAGED",
        "DomainValidationMethod": "DNS",
        "CertificateCreatedDate": "2026-03-01T11:57:00Z",
        "CertificateExpirationDate": "2027-03-31T12:00:00Z",
        "DaysToExpiry": 14,
        "InUse": False,
        "Exported": True,
    }, {
        "DomainNames": ["example.com", "www.example.com"],
        "InUseBy": [],
        "ManagedRenewal": "NOT_RENEWED",
        "RecommendedAction": f"The certificate is ready to install. {NOT_PLANNED}",
    })


@pytest.mark.parametrize("action", ["ISSUANCE", "RENEWAL", "IMPORT", "REIMPORT"])
def test_available_actions(action: str) -> None:
    detail = events.available(IMPORTED, action, NOW).detail
    assert detail["Action"] == action
    assert detail["CertificateType"] == "IMPORTED"
    assert detail["CertificateKeyPairOrigin"] == "CUSTOMER_PROVIDED"
    assert "DomainValidationMethod" not in detail  # not known for imported certificates
    first = {"RENEWAL": "Install the renewed certificate wherever the previous one is installed.",
             "REIMPORT": "Install the re-imported certificate wherever the previous one is installed.",
             }.get(action, "The certificate is ready to install.")
    assert detail["ManagedRenewal"] == "NOT_RENEWED"
    assert detail["RecommendedAction"] == (f"{first} Import a renewed certificate before 2027-03-31; certsmith cannot "
                                           "renew an imported certificate.")


def test_available_names_the_issuer_the_services_and_the_planned_renewal() -> None:
    managed = replace(PRIVATE, issuer=CA_ARN, in_use_by=("lb-1", "lb-2"), renews_at=NOW - timedelta(minutes=30))
    _, ours = _split(events.available(managed, "RENEWAL", NOW).detail)
    assert ours == {
        "DomainNames": ["www.example.internal", "api.example.internal"],
        "Issuer": CA_ARN,
        "InUseBy": ["lb-1", "lb-2"],
        "ManagedRenewal": "ON_TRACK",
        "RecommendedAction": ("Install the renewed certificate wherever the previous one is installed (lb-1, lb-2). "
                              "No action needed: certsmith's renewal of it is due now."),
    }
    later = events.available(replace(managed, renews_at=NOW + timedelta(days=2)), "ISSUANCE", NOW).detail
    assert later["ManagedRenewal"] == "ON_TRACK"
    assert later["RecommendedAction"] == (
        "The certificate is ready to install. No action needed: certsmith renews it on 2027-03-18.")
    overdue = events.approaching(replace(managed, renews_at=ISSUED + timedelta(days=365)), NOW).detail
    assert overdue["ManagedRenewal"] == "OVERDUE"
    assert overdue["RecommendedAction"] == (
        "The renewal certsmith planned for 2027-03-01 has not happened: check that a certsmith worker runs and what "
        "`certsmith renewal status` says; replace it before 2027-03-31 if it cannot be renewed.")


def test_available_refuses_an_unknown_action() -> None:
    with pytest.raises(ValueError, match="action 'EXPORT' is not one of ISSUANCE, RENEWAL, IMPORT, REIMPORT"):
        events.available(PUBLIC, "EXPORT", NOW)


def test_expired() -> None:
    at = NOT_AFTER + timedelta(minutes=7)
    event = events.expired(PUBLIC, at)
    assert event.detail_type == "ACM Certificate Expired"
    assert event.resources == (ARN,)
    assert event.time == at
    _exactly(event.detail, {
        "CertificateType": "AMAZON_ISSUED",
        "CommonName": "example.com",
        "FirstSubjectAlternativeName": "example.com",
        "ValidityInDays": 395,
        "CertificateKeyPairOrigin": "AWS_MANAGED",
        "DomainValidationMethod": "DNS",
        "CertificateCreatedDate": "2026-03-01T11:57:00Z",
        "CertificateExpirationDate": "2027-03-31T12:00:00Z",
        "InUse": False,
        "Exported": True,
    }, {
        "DomainNames": ["example.com", "www.example.com"],
        "InUseBy": [],
        "RecommendedAction": ("Request or import a new certificate and replace this one wherever it is installed; clients "
                              "refuse it since it expired."),
    })
    assert list(event.detail) == list(events.expired(PUBLIC, at).detail)  # a stable field order


def test_expired_private_has_no_validation_method() -> None:
    detail = events.expired(PRIVATE, NOT_AFTER).detail
    assert detail["CertificateType"] == "PRIVATE"
    assert "DomainValidationMethod" not in detail
    assert detail["FirstSubjectAlternativeName"] == "www.example.internal"  # the first SAN, not the common name
    assert detail["InUse"] is True and detail["Exported"] is False
    used = events.expired(replace(PRIVATE, in_use_by=("lb-1", "web-2")), NOT_AFTER).detail
    assert used["InUseBy"] == ["lb-1", "web-2"]
    assert used["RecommendedAction"] == ("Request or import a new certificate; services using it (lb-1, web-2) now fail "
                                         "TLS.")


def test_approaching() -> None:
    event = events.approaching(PRIVATE, NOW)
    assert event.detail_type == "ACM Certificate Approaching Expiration"
    assert event.resources == (ARN,)
    _exactly(event.detail, {
        "DaysToExpiry": 14,
        "CommonName": "api.example.internal",
        "FirstSubjectAlternativeName": "www.example.internal",
        "ValidityInDays": 395,
        "CertificateKeyPairOrigin": "AWS_MANAGED",
    }, {
        "DomainNames": ["www.example.internal", "api.example.internal"],
        "InUseBy": [],
        "ManagedRenewal": "NOT_RENEWED",
        "RecommendedAction": NOT_PLANNED,
    })


def test_action_required() -> None:
    event = events.action_required(PUBLIC, "PENDING_DOMAIN_VALIDATION", NOW)
    assert event.detail_type == "ACM Certificate Renewal Action Required"
    _exactly(event.detail, {
        "CertificateType": "AMAZON_ISSUED",
        "CommonName": "example.com",
        "FirstSubjectAlternativeName": "example.com",
        "ValidityInDays": 395,
        "CertificateKeyPairOrigin": "AWS_MANAGED",
        "DomainValidationMethod": "DNS",
        "RenewalStatusReason": "PENDING_DOMAIN_VALIDATION",
        "DaysToExpiry": 14,
        "CertificateExpirationDate": "2027-03-31T12:00:00Z",
        "InUse": False,
        "Exported": True,
    }, {
        "DomainNames": ["example.com", "www.example.com"],
        "InUseBy": [],
        "ManagedRenewal": "NEEDS_ACTION",
        "RecommendedAction": (f"Restore the validation CNAME records for example.com, www.example.com; `certsmith cert "
                              f"create-records {ARN} --provider NAME` writes them."),
    })
    private = events.action_required(replace(PRIVATE, issuer=CA_ARN, authority_status="DISABLED"), "PCA_INVALID_STATE",
                                     NOW).detail
    assert private["RenewalStatusReason"] == "PCA_INVALID_STATE"
    assert "DomainValidationMethod" not in private
    assert private["Issuer"] == CA_ARN and private["ManagedRenewal"] == "NEEDS_ACTION"
    assert private["RecommendedAction"] == (f"Enable the issuing CA {CA_ARN} (it is DISABLED): `certsmith ca enable "
                                            f"{CA_ARN}`; certsmith then renews the certificate before 2027-03-31.")


@pytest.mark.parametrize("reason", ["", "pending", "CAA ERROR", "X" * 65])
def test_action_required_refuses_a_malformed_reason(reason: str) -> None:
    with pytest.raises(ValueError, match="is not a FailureReason value or PENDING_DOMAIN_VALIDATION"):
        events.action_required(PUBLIC, reason, NOW)


def test_revoked() -> None:
    event = events.revoked(PRIVATE, NOW)
    assert event.detail_type == "ACM Certificate Revoked"
    _exactly(event.detail, {
        "CertificateType": "PRIVATE",
        "CommonName": "api.example.internal",
        "FirstSubjectAlternativeName": "www.example.internal",
        "ValidityInDays": 395,
        "CertificateKeyPairOrigin": "AWS_MANAGED",
        "CertificateExpirationDate": "2027-03-31T12:00:00Z",
        "Exportable": True,
    }, {
        "DomainNames": ["www.example.internal", "api.example.internal"],
        "InUseBy": [],
        "RecommendedAction": ("Request a new certificate and install it wherever this one was installed; clients that "
                              "check revocation refuse it."),
    })
    compromised = events.revoked(replace(PRIVATE, revocation_reason="KEY_COMPROMISE"), NOW).detail
    assert compromised["RecommendedAction"] == (
        "Request a new certificate and install it wherever this one was installed; clients that check revocation refuse "
        "it (revoked: KEY_COMPROMISE). Use a new key: this one must not be trusted again.")


def test_every_detail_is_json_of_strings_ints_bools_and_lists_of_strings() -> None:
    made = [events.available(PUBLIC, "RENEWAL", NOW), events.expired(IMPORTED, NOT_AFTER), events.approaching(PUBLIC, NOW),
            events.action_required(PRIVATE, "OTHER", NOW), events.revoked(PUBLIC, NOW)]
    assert [event.detail_type for event in made] == [events.AVAILABLE, events.EXPIRED, events.APPROACHING,
                                                      events.ACTION_REQUIRED, events.REVOKED]
    for event in made:
        assert json.loads(json.dumps(event.detail)) == event.detail
        for key, value in event.detail.items():
            if isinstance(value, list):
                assert key in ("DomainNames", "InUseBy") and all(type(item) is str for item in value)
            else:
                assert type(value) in (str, int, bool), key
        for key in ("CertificateCreatedDate", "CertificateExpirationDate"):
            if key in event.detail:
                assert datetime.strptime(event.detail[key], "%Y-%m-%dT%H:%M:%SZ")


def test_a_certificate_without_names_has_no_first_san() -> None:
    detail = events.approaching(replace(IMPORTED, names=()), NOW).detail
    assert "FirstSubjectAlternativeName" not in detail
    assert detail["CommonName"] == "api.example.internal"


def test_dates_are_required() -> None:
    with pytest.raises(ValueError, match="not_after is required for an 'ACM Certificate Approaching Expiration' event"):
        events.approaching(replace(PUBLIC, not_after=None), NOW)
    with pytest.raises(ValueError, match="not_before is required"):
        events.revoked(replace(PUBLIC, not_before=None), NOW)


def test_times_must_be_aware() -> None:
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        events.approaching(PUBLIC, datetime(2027, 3, 1, 12, 0))
    with pytest.raises(ValueError, match="not_after must be timezone-aware"):
        replace(PUBLIC, not_after=datetime(2027, 3, 1, 12, 0))


def test_facts_refuse_unknown_types_and_methods() -> None:
    with pytest.raises(ValueError, match="certificate_type 'PUBLIC' is not one of AMAZON_ISSUED, PRIVATE, IMPORTED"):
        replace(PUBLIC, certificate_type="PUBLIC")
    with pytest.raises(ValueError, match="validation_method 'dns' is not one of DNS, EMAIL, HTTP"):
        replace(PUBLIC, validation_method="dns")
    assert events.available(replace(PUBLIC, validation_method="EMAIL"), "ISSUANCE", NOW).detail[
        "DomainValidationMethod"] == "EMAIL"


def test_event_time_is_utc() -> None:
    paris = timezone(timedelta(hours=1))
    event = events.approaching(PUBLIC, NOW.astimezone(paris))
    assert event.time == NOW and event.time.tzinfo == UTC


@pytest.mark.parametrize(("left", "days"), [
    (timedelta(days=45), 45), (timedelta(days=45) - timedelta(microseconds=1), 44), (timedelta(days=44, hours=23), 44),
    (timedelta(hours=23, minutes=59), 0), (timedelta(0), 0), (-timedelta(days=3), 0), (timedelta(days=395), 395),
])
def test_days_to_expiry_rounds_down_and_stops_at_zero(left: timedelta, days: int) -> None:
    assert events.days_to_expiry(NOT_AFTER, NOT_AFTER - left) == days


@pytest.mark.parametrize(("span", "days"), [
    (timedelta(days=90), 90), (timedelta(days=90) - timedelta(seconds=1), 90), (timedelta(days=395, hours=1), 395),
    (timedelta(days=13, hours=11), 13), (timedelta(days=13, hours=12), 14), (timedelta(hours=3), 0),
])
def test_validity_in_days_is_the_nearest_whole_day(span: timedelta, days: int) -> None:
    assert events.validity_in_days(NOT_BEFORE, NOT_BEFORE + span) == days


def test_validity_cannot_end_before_it_starts() -> None:
    with pytest.raises(ValueError, match="not_after is before not_before"):
        events.validity_in_days(NOT_AFTER, NOT_BEFORE)


def test_envelope() -> None:
    event = events.expired(PUBLIC, NOT_AFTER + timedelta(seconds=30, microseconds=5))
    wrapped = events.envelope(event, event_id="6a7e8feb-b491-4cf7-a9f1-bf3703467718", account="123456789012",
                              region="eu-west-1")
    assert wrapped == {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "ACM Certificate Expired",
        "source": "aws.acm",
        "account": "123456789012",
        "time": "2027-03-31T12:00:30Z",
        "region": "eu-west-1",
        "resources": [ARN],
        "detail": event.detail,
    }
    assert list(wrapped) == ["version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"]
    assert json.loads(json.dumps(wrapped)) == wrapped
    wrapped["detail"]["InUse"] = "changed"
    assert event.detail["InUse"] is False  # the envelope holds a copy


def test_envelope_of_a_stored_naive_time_reads_it_as_utc() -> None:
    stored = Event(events.REVOKED, (ARN,), {"CommonName": "example.com"}, datetime(2027, 1, 2, 3, 4, 5))
    assert events.envelope(stored, event_id="e", account="123456789012", region="us-east-1")["time"] == "2027-01-02T03:04:05Z"
