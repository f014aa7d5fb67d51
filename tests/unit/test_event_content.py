"""What ACM's events carry for a person: ACM's fields unchanged, then DomainNames, Issuer, InUseBy, ManagedRenewal (the
renewal events only) and RecommendedAction."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from certsmith.domain import events
from certsmith.domain.events import CertificateFacts

ARN = "arn:aws:acm:eu-west-1:123456789012:certificate/11111111-2222-4333-8444-555555555555"
CA = "arn:aws:acm-pca:eu-west-1:123456789012:certificate-authority/0f0e0d0c-0000-4000-8000-000000000002"
ISSUED = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
NOT_AFTER = datetime(2027, 1, 2, 12, 0, 0, tzinfo=UTC)
NOW = NOT_AFTER - timedelta(days=14, hours=3)
CERTSMITH_FIELDS = ["DomainNames", "Issuer", "InUseBy", "ManagedRenewal", "RecommendedAction"]

PRIVATE = CertificateFacts(
    arn=ARN, certificate_type="PRIVATE", common_name="api.example.internal",
    names=("api.example.internal", "www.example.internal"), not_before=ISSUED - timedelta(hours=1),
    not_after=NOT_AFTER, created_at=ISSUED, key_pair_origin="AWS_MANAGED", validation_method=None, in_use=True,
    exported=False, exportable=True, issuer=CA, in_use_by=("arn:aws:elasticloadbalancing:eu-west-1:1:lb/app/web/1",),
    renews_at=NOT_AFTER - timedelta(days=12))
PUBLIC = replace(PRIVATE, certificate_type="AMAZON_ISSUED", common_name="a.example.com",
                 names=("a.example.com", "b.example.com"), validation_method="DNS",
                 issuer="letsencrypt (https://acme.example/directory)", in_use=False, in_use_by=())
IMPORTED = replace(PRIVATE, certificate_type="IMPORTED", key_pair_origin="CUSTOMER_PROVIDED",
                   issuer="CN=Example Issuing CA,O=Example", renews_at=None,
                   not_renewed_because="imported certificates are never renewed by certsmith")


def _acm_only(detail: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in detail.items() if k not in CERTSMITH_FIELDS}


def test_acm_fields_are_unchanged_and_certsmith_fields_follow() -> None:
    plain = replace(PRIVATE, issuer=None, in_use_by=(), renews_at=None)
    renewals = [
        (events.available(PRIVATE, "RENEWAL", NOW), events.available(plain, "RENEWAL", NOW)),
        (events.approaching(PRIVATE, NOW), events.approaching(plain, NOW)),
        (events.action_required(PRIVATE, "PCA_INVALID_STATE", NOW), events.action_required(plain, "PCA_INVALID_STATE", NOW)),
    ]
    others = [
        (events.expired(PRIVATE, NOW), events.expired(plain, NOW)),
        (events.revoked(PRIVATE, NOW), events.revoked(plain, NOW)),
    ]
    for rich, bare in renewals + others:
        assert _acm_only(rich.detail) == _acm_only(bare.detail)  # certsmith's facts change none of ACM's fields
        assert rich.resources == (ARN,) and rich.source == "aws.acm"
    for rich, _ in renewals:
        assert list(rich.detail)[-5:] == CERTSMITH_FIELDS  # appended after ACM's, in this order
    for rich, _ in others:  # no renewal to speak of once expired or revoked
        assert list(rich.detail)[-4:] == [f for f in CERTSMITH_FIELDS if f != "ManagedRenewal"]
    detail = events.approaching(PRIVATE, NOW).detail
    assert detail["DomainNames"] == ["api.example.internal", "www.example.internal"]
    assert detail["Issuer"] == CA and detail["InUseBy"] == list(PRIVATE.in_use_by)
    assert list(_acm_only(detail)) == ["DaysToExpiry", "CommonName", "FirstSubjectAlternativeName", "ValidityInDays",
                                       "CertificateKeyPairOrigin"]


def test_details_are_json_of_strings_ints_bools_and_lists_of_strings() -> None:
    for event in (events.available(PUBLIC, "ISSUANCE", NOW), events.expired(IMPORTED, NOW),
                  events.action_required(PUBLIC, "PENDING_DOMAIN_VALIDATION", NOW)):
        envelope = events.envelope(event, event_id="e-1", account="123456789012", region="eu-west-1")
        assert json.loads(json.dumps(envelope)) == envelope
        for value in event.detail.values():
            assert isinstance(value, (str, int, bool)) or (isinstance(value, list) and
                                                           all(isinstance(v, str) for v in value))


def test_domain_names_fall_back_to_the_common_name_and_an_unknown_issuer_is_left_out() -> None:
    bare = replace(PRIVATE, names=(), issuer=None)
    detail = events.approaching(bare, NOW).detail
    assert detail["DomainNames"] == ["api.example.internal"]
    assert "Issuer" not in detail and "FirstSubjectAlternativeName" not in detail


def test_approaching_an_imported_certificate() -> None:
    assert events.approaching(IMPORTED, NOW).detail["RecommendedAction"] == (
        "Import a renewed certificate before 2027-01-02; certsmith cannot renew an imported certificate.")


def test_approaching_with_managed_renewal_on_track_renewing_or_not_planned() -> None:
    assert events.approaching(PRIVATE, NOW).detail["RecommendedAction"] == (
        "No action needed: certsmith renews it on 2026-12-21.")
    due = replace(PRIVATE, renews_at=NOW - timedelta(hours=1))
    assert events.approaching(due, NOW).detail["RecommendedAction"] == (
        "No action needed: certsmith's renewal of it is due now.")
    busy = replace(PRIVATE, renews_at=None, renewing=True)
    assert events.approaching(busy, NOW).detail["RecommendedAction"] == "No action needed: certsmith is renewing it now."
    strict = replace(PRIVATE, renews_at=None, not_renewed_because="it has not been exported and is not in use")
    assert events.approaching(strict, NOW).detail["RecommendedAction"] == (
        "Replace it before 2027-01-02: certsmith will not renew it (it has not been exported and is not in use).")


def test_approaching_while_the_renewal_waits_for_the_user_says_what_to_do() -> None:
    waiting = replace(PUBLIC, renews_at=None, needs_action="PENDING_DOMAIN_VALIDATION", missing_names=("b.example.com",))
    assert events.approaching(waiting, NOW).detail["RecommendedAction"] == (
        f"Restore the validation CNAME records for b.example.com; `certsmith cert create-records {ARN} --provider NAME` "
        "writes them.")


def test_pending_domain_validation_by_method() -> None:
    detail = events.action_required(PUBLIC, "PENDING_DOMAIN_VALIDATION", NOW).detail
    assert detail["RenewalStatusReason"] == "PENDING_DOMAIN_VALIDATION"
    assert detail["RecommendedAction"] == (
        f"Restore the validation CNAME records for a.example.com, b.example.com; `certsmith cert create-records {ARN} "
        "--provider NAME` writes them.")
    http = events.action_required(replace(PUBLIC, validation_method="HTTP"), "PENDING_DOMAIN_VALIDATION", NOW)
    assert http.detail["RecommendedAction"].startswith("Restore the HTTP redirects of a.example.com, b.example.com")
    mail = events.action_required(replace(PUBLIC, validation_method="EMAIL"), "PENDING_DOMAIN_VALIDATION", NOW)
    assert mail.detail["RecommendedAction"].startswith("Approve the validation mails sent for a.example.com")


@pytest.mark.parametrize(("status", "start"), [
    ("DISABLED", f"Enable the issuing CA {CA} (it is DISABLED): `certsmith ca enable {CA}`; certsmith then renews"),
    ("DELETED", f"Restore the issuing CA {CA} (it is DELETED) with `certsmith ca restore {CA}`"),
    ("EXPIRED", f"The issuing CA {CA} has expired: request a new certificate from another CA before 2027-01-02."),
    (None, f"Make the issuing CA {CA} ACTIVE (it is not ACTIVE)"),
    ("PENDING_CERTIFICATE", f"Make the issuing CA {CA} ACTIVE (it is PENDING_CERTIFICATE)"),
])
def test_a_ca_that_cannot_sign(status: str | None, start: str) -> None:
    facts = replace(PRIVATE, authority_status=status, needs_action="PCA_INVALID_STATE")
    assert events.action_required(facts, "PCA_INVALID_STATE", NOW).detail["RecommendedAction"].startswith(start)


@pytest.mark.parametrize(("reason", "words"), [
    ("PCA_RESOURCE_NOT_FOUND", "no longer exists"),
    ("PCA_INVALID_DURATION", f"`certsmith ca rotate {CA}`"),
    ("PCA_LIMIT_EXCEEDED", "refused the renewal (PCA_LIMIT_EXCEEDED) (the CA said no)"),
    ("CAA_ERROR", "Allow the issuer in the CAA records of api.example.internal, www.example.internal"),
    ("DOMAIN_VALIDATION_DENIED", f"`certsmith doctor validation {ARN}`"),
    ("OTHER", "The renewal is blocked (OTHER) (the CA said no): fix the cause"),
])
def test_other_reasons(reason: str, words: str) -> None:
    facts = replace(PRIVATE, last_error="the CA said no")
    action = events.action_required(facts, reason, NOW).detail["RecommendedAction"]
    assert words in action and action.endswith(".") and "2027-01-02" in action


def test_expired_names_the_services_that_now_fail() -> None:
    assert events.expired(PRIVATE, NOT_AFTER).detail["RecommendedAction"] == (
        f"Request or import a new certificate; services using it ({PRIVATE.in_use_by[0]}) now fail TLS.")
    assert events.expired(PUBLIC, NOT_AFTER).detail["RecommendedAction"].startswith(
        "Request or import a new certificate and replace this one wherever it is installed")


def test_revoked() -> None:
    facts = replace(PRIVATE, in_use=False, in_use_by=(), revocation_reason="KEY_COMPROMISE")
    action = events.revoked(facts, NOW).detail["RecommendedAction"]
    assert action == ("Request a new certificate and install it wherever this one was installed; clients that check "
                      "revocation refuse it (revoked: KEY_COMPROMISE). Use a new key: this one must not be trusted again.")
    assert "(revoked:" not in events.revoked(replace(facts, revocation_reason=None), NOW).detail["RecommendedAction"]


def test_available_by_action() -> None:
    renewed = events.available(PRIVATE, "RENEWAL", NOW).detail["RecommendedAction"]
    assert renewed == (f"Install the renewed certificate wherever the previous one is installed ({PRIVATE.in_use_by[0]}). "
                       "No action needed: certsmith renews it on 2026-12-21.")
    assert events.available(PUBLIC, "ISSUANCE", NOW).detail["RecommendedAction"] == (
        "The certificate is ready to install. No action needed: certsmith renews it on 2026-12-21.")
    assert events.available(IMPORTED, "IMPORT", NOW).detail["RecommendedAction"] == (
        "The certificate is ready to install. Import a renewed certificate before 2027-01-02; certsmith cannot renew an "
        "imported certificate.")


def test_facts_refuse_a_naive_renewal_time() -> None:
    with pytest.raises(ValueError, match="renews_at must be timezone-aware"):
        replace(PRIVATE, renews_at=datetime(2026, 11, 3))


def test_existing_callers_keep_working_with_the_defaults() -> None:
    facts = CertificateFacts(ARN, "PRIVATE", "x.test", ("x.test",), ISSUED, NOT_AFTER, ISSUED, "AWS_MANAGED", None,
                             False, False)
    detail = events.approaching(facts, NOW).detail
    assert detail["InUseBy"] == [] and "Issuer" not in detail
    assert detail["RecommendedAction"] == "Replace it before 2027-01-02: certsmith will not renew it (no renewal is planned)."


# -- ManagedRenewal -------------------------------------------------------------------------------------------------
def _renewal(facts: CertificateFacts, now: datetime = NOW) -> object:
    return events.approaching(facts, now).detail["ManagedRenewal"]


def test_managed_renewal_on_track_in_progress_or_not_renewed() -> None:
    assert _renewal(PRIVATE) == _renewal(PUBLIC) == "ON_TRACK"
    assert _renewal(replace(PRIVATE, renews_at=NOW - timedelta(minutes=59))) == "ON_TRACK"  # due now: the worker is on it
    assert _renewal(replace(PRIVATE, renewing=True)) == "IN_PROGRESS"
    assert _renewal(replace(PRIVATE, renewing=True, renews_at=None)) == "IN_PROGRESS"
    # Under way well past its time, but without an error: a slow CA, not a failure.
    assert _renewal(replace(PRIVATE, renewing=True, renews_at=NOW - timedelta(days=2))) == "IN_PROGRESS"
    assert _renewal(IMPORTED) == "NOT_RENEWED"
    assert _renewal(replace(IMPORTED, renews_at=NOW + timedelta(days=3))) == "NOT_RENEWED"  # never, whatever else is said
    strict = replace(PRIVATE, renews_at=None, not_renewed_because="it has not been exported and is not in use")
    assert _renewal(strict) == "NOT_RENEWED"
    assert events.available(IMPORTED, "REIMPORT", NOW).detail["ManagedRenewal"] == "NOT_RENEWED"
    assert events.available(PUBLIC, "ISSUANCE", NOW).detail["ManagedRenewal"] == "ON_TRACK"


def test_managed_renewal_needs_action_or_overdue() -> None:
    waiting = replace(PRIVATE, needs_action="PCA_INVALID_STATE", renewing=True, authority_status="DISABLED")
    assert _renewal(waiting) == "NEEDS_ACTION"
    assert events.action_required(waiting, "PCA_INVALID_STATE", NOW).detail["ManagedRenewal"] == "NEEDS_ACTION"
    # The event itself says the renewal waits, even when the facts were read before the plan said so.
    assert events.action_required(PRIVATE, "CAA_ERROR", NOW).detail["ManagedRenewal"] == "NEEDS_ACTION"

    late = replace(PRIVATE, renews_at=NOW - timedelta(hours=1, seconds=1))
    assert _renewal(late) == "OVERDUE"
    action = events.approaching(late, NOW).detail["RecommendedAction"]
    assert action == ("The renewal certsmith planned for 2026-12-19 has not happened: check that a certsmith worker runs "
                      "and what `certsmith renewal status` says; replace it before 2027-01-02 if it cannot be renewed.")
    failed = replace(late, renews_at=NOW - timedelta(days=3), last_error="the CA did not answer")
    assert _renewal(failed) == "OVERDUE"
    assert "has not happened (the CA did not answer)" in events.approaching(failed, NOW).detail["RecommendedAction"]
    stuck = replace(failed, renewing=True)
    assert _renewal(stuck) == "OVERDUE"
    assert events.approaching(stuck, NOW).detail["RecommendedAction"] == (
        "Find out why certsmith's renewal of it, due on 2026-12-16, keeps failing (the CA did not answer): "
        "`certsmith renewal status` shows it; certsmith keeps trying until 2027-01-02.")
    assert _renewal(replace(stuck, renews_at=NOW - timedelta(minutes=30))) == "IN_PROGRESS"  # an error, still in time


def test_renewal_state_is_the_same_function_for_every_caller() -> None:
    assert events.MANAGED_RENEWAL == ("ON_TRACK", "IN_PROGRESS", "NEEDS_ACTION", "OVERDUE", "NOT_RENEWED")
    assert events.renewal_state("PRIVATE", NOW, renews_at=NOW + timedelta(days=1)) == events.ON_TRACK
    assert events.renewal_state("AMAZON_ISSUED", NOW) == events.NOT_RENEWED
    assert events.renewal_state("PRIVATE", NOW, renews_at=NOW - 2 * events.RENEWAL_GRACE) == events.OVERDUE
    with pytest.raises(ValueError, match="renews_at must be timezone-aware"):
        events.renewal_state("PRIVATE", NOW, renews_at=datetime(2026, 11, 3))
