"""Where events come from, on a real database: ACM-PCA's (aws.acm-pca), ACM Certificate Revoked, certsmith's own
(validation failed, CRL published, CA expiring), and the facts the ACM events carry (issuer, plan, the CA's state).

One container per module on a FixedClock that only moves forward; every test reads the events of its own resources.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from certsmith.domain import certsmith_events as own
from certsmith.domain import events as acm
from certsmith.domain import pca_events as pca
from certsmith.domain.acm import CertificateStatus
from certsmith.domain.algorithms import SigningAlgorithm
from certsmith.domain.authority import AuthorityStatus, RevocationSettings
from certsmith.domain.clock import FixedClock
from certsmith.domain.revocation import RevocationReason
from certsmith.domain.validity import Validity, ValidityPeriodType
from certsmith.services.acm.certificates import RequestedCertificate
from certsmith.services.context import Caller
from certsmith.services.pca.issuance import IssueRequest, parse_serial
from certsmith.services.public.issuers import IssuerSpec
from certsmith.services.wiring import Container, build
from certsmith.settings import Settings
from certsmith.store.tables import AuthorityRow, CertificateRow, IssuerRow

from ..conftest import backend_url
from .ca_world import START, drain, leaf_csr, make_root
from .renewal_world import DAY, certificate, imported_bundle, request_private, run_until

World = tuple[Container, Caller, FixedClock]
CRL_ON = RevocationSettings(crl_enabled=True, crl_expiration_days=7, crl_configured=True)
SEVEN_DAYS = [{"Key": "certsmith:validity", "Value": "7d"}]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("event-sources")
    clock = FixedClock(START)
    container = build(Settings(data_dir=tmp / "data", database_url=backend_url(), validation_zone="validation.test",
                               public_url="https://certsmith.test"), clock)
    account = container.accounts.credential(
        (tmp / "data" / "credentials").read_text().split("aws_access_key_id = ")[1].split("\n")[0])
    assert account is not None
    yield container, Caller(account.account_id, "us-east-1", account.principal), clock
    container.writes.close()
    container.database.dispose()


def told(container: Container, detail_type: str, resource: str) -> list[dict[str, Any]]:
    """The envelopes of one detail-type naming ``resource``, oldest first."""
    with container.database.read() as session:
        found = container.outbox.read(session, detail_type=detail_type, resource=resource, limit=100000)
    return [envelope for _, envelope in found]


def _issue(container: Container, caller: Caller, ca: str) -> str:
    return asyncio.run(container.issuance.issue(caller, IssueRequest(
        ca, leaf_csr(), SigningAlgorithm.SHA256WITHECDSA, Validity(30, ValidityPeriodType.DAYS))))


def test_a_ca_tells_its_creation_issuances_revocations_crls_and_audit_reports(world: World) -> None:
    container, caller, _ = world
    ca = make_root(container, caller, years=2, revocation=CRL_ON)
    created = told(container, pca.CREATION, ca)
    assert [(e["source"], e["resources"], e["detail"]) for e in created] == [("aws.acm-pca", [ca], {"result": "success"})]
    assert created[0]["account"] == caller.account_id and created[0]["region"] == "us-east-1"
    arns = [_issue(container, caller, ca) for _ in range(3)]
    drain(container)  # the three are signed in one batch: one statement writes their events
    for arn in arns:
        assert [(e["resources"], e["detail"]) for e in told(container, pca.ISSUANCE, arn)] == [
            ([ca, arn], {"result": "success"})]
    assert len(told(container, pca.ISSUANCE, ca)) == 4  # with the CA's own certificate (the root signs its CSR)

    serial = arns[0].rsplit("/", 1)[1]
    container.issuance.revoke(caller, ca, serial, RevocationReason.KEY_COMPROMISE)
    assert [e["resources"] for e in told(container, pca.REVOCATION, ca)] == [[ca, arns[0]]]
    before = len(told(container, own.CRL_PUBLISHED, ca))
    drain(container)  # the CRL refresh the revocation queued
    generated = told(container, pca.CRL_GENERATION, ca)
    assert generated and all(e["detail"] == {"result": "success"} and e["resources"] == [ca] for e in generated)
    published = told(container, own.CRL_PUBLISHED, ca)
    assert len(published) == before + 1
    last = published[-1]["detail"]
    assert last["RevokedCount"] == 1 and last["CrlNumber"] > 0
    assert last["NextUpdate"] > last["ThisUpdate"] and last["RecommendedAction"].startswith("No action needed")

    report_id, key = container.audit_reports.create(caller, ca, "audit-bucket", "JSON")
    drain(container)
    report = told(container, pca.AUDIT_REPORT, ca)
    assert [(e["resources"], e["detail"]) for e in report] == [
        ([ca, f"arn:aws:s3:::audit-bucket/{key}"], {"result": "success"})]
    assert report_id in key


def test_a_request_refused_by_its_ca_meanwhile_is_told_as_a_failed_issuance(world: World) -> None:
    container, caller, _ = world
    ca = make_root(container, caller)
    arn = _issue(container, caller, ca)
    container.authorities.update(caller, ca, AuthorityStatus.DISABLED, None)
    drain(container)
    failed = told(container, pca.ISSUANCE, arn)
    assert len(failed) == 1 and failed[0]["detail"]["result"] == "failure"
    assert "DISABLED" in failed[0]["detail"]["reason"]


def test_acm_revoke_tells_acm_and_the_ca_in_their_transactions(world: World) -> None:
    container, caller, _ = world
    ca = make_root(container, caller, years=2)
    arn = request_private(container, caller, ca, "revoked.events.test")
    drain(container)
    container.lifecycle.export(caller, arn, b"passphrase")
    container.lifecycle.revoke(caller, arn, "KEY_COMPROMISE")
    revoked = told(container, acm.REVOKED, arn)
    assert len(revoked) == 1
    envelope = revoked[0]
    assert envelope["source"] == "aws.acm" and envelope["resources"] == [arn]
    detail = envelope["detail"]
    assert list(detail) == ["CertificateType", "CommonName", "FirstSubjectAlternativeName", "ValidityInDays",
                            "CertificateKeyPairOrigin", "CertificateExpirationDate", "Exportable", "DomainNames",
                            "Issuer", "InUseBy", "RecommendedAction"]
    assert detail["CertificateType"] == "PRIVATE" and detail["Exportable"] is True
    assert detail["Issuer"] == ca and detail["DomainNames"] == ["revoked.events.test"] and detail["InUseBy"] == []
    assert "(revoked: KEY_COMPROMISE)" in detail["RecommendedAction"]
    row = certificate(container, arn)
    assert row.status == "REVOKED" and row.serial is not None
    issued = f"{ca}/certificate/{parse_serial(row.serial)}"
    assert [e["resources"] for e in told(container, pca.REVOCATION, ca)] == [[ca, issued]]


def test_available_names_the_ca_and_when_certsmith_renews(world: World) -> None:
    container, caller, _ = world
    ca = make_root(container, caller, years=2)
    arn = container.certificates.request(caller, RequestedCertificate(
        "app.events.test", ["api.events.test"], ca, "EC_prime256v1", None, {}, []))
    drain(container)
    available = told(container, acm.AVAILABLE, arn)
    assert len(available) == 1
    detail = available[0]["detail"]
    plan = certificate(container, arn).renewal_plan or {}
    assert detail["Action"] == "ISSUANCE" and detail["Issuer"] == ca
    assert detail["DomainNames"] == ["app.events.test", "api.events.test"] and detail["InUseBy"] == []
    assert detail["RecommendedAction"] == ("The certificate is ready to install. No action needed: certsmith renews it "
                                           f"on {plan['at'][:10]}.")
    issued = f"{ca}/certificate/{parse_serial(certificate(container, arn).serial or '')}"
    assert [e["resources"] for e in told(container, pca.ISSUANCE, issued)] == [[ca, issued]]  # as any issuance


def test_notices_say_what_to_do_with_the_ca_state_read_in_the_sweep(world: World) -> None:
    container, caller, clock = world
    ca = make_root(container, caller, years=3)
    arn = request_private(container, caller, ca, "blocked.events.test", tags=SEVEN_DAYS)
    drain(container)
    planned = certificate(container, arn).next_renewal_at
    assert planned is not None
    container.notices.sweep()
    approaching = told(container, acm.APPROACHING, arn)  # 7 days left: inside the 45-day window at once
    assert approaching[-1]["detail"]["RecommendedAction"] == (
        f"No action needed: certsmith renews it on {acm.day(planned)}.")
    container.authorities.update(caller, ca, AuthorityStatus.DISABLED, None)
    run_until(container, clock, container.worker(), planned + timedelta(hours=1))
    required = told(container, acm.ACTION_REQUIRED, arn)
    assert required and required[-1]["detail"]["RenewalStatusReason"] == "PCA_INVALID_STATE"
    assert required[-1]["detail"]["RecommendedAction"].startswith(
        f"Enable the issuing CA {ca} (it is DISABLED): `certsmith ca enable {ca}`")
    container.authorities.update(caller, ca, AuthorityStatus.ACTIVE, None)


def test_imported_certificates_name_their_issuer_dn(world: World) -> None:
    container, caller, clock = world
    now = clock.now()
    arn = container.imports.import_certificate(
        caller, imported_bundle("imported.events.test", now - DAY, now + 10 * DAY), None, None)
    available = told(container, acm.AVAILABLE, arn)
    assert available[0]["detail"]["Issuer"] == "CN=imported.events.test"
    container.notices.sweep()
    approaching = told(container, acm.APPROACHING, arn)
    assert approaching and approaching[-1]["detail"]["Issuer"] == "CN=imported.events.test"
    not_after = certificate(container, arn).not_after
    assert not_after is not None
    assert approaching[-1]["detail"]["RecommendedAction"] == (
        f"Import a renewed certificate before {acm.day(not_after)}; certsmith cannot renew an imported certificate.")


def _acme_issuer(container: Container, caller: Caller, name: str) -> None:
    """An ACME issuer row as CreateIssuer stores it (no CA is asked: these tests never order)."""
    now = container.clock.now()
    with container.database.transaction() as session:
        session.add(IssuerRow(
            id=uuid.uuid4().hex, arn=f"arn:aws:certsmith:us-east-1:{caller.account_id}:issuer/{name}",
            account_id=caller.account_id, region="us-east-1", name=name, type="ACME",
            directory_url=f"https://{name}.test/directory", caa_identities=[], is_default=False, created_at=now,
            updated_at=now))


def _public(container: Container, caller: Caller, issuer: str, name: str) -> str:
    return container.public_requests.request(caller, RequestedCertificate(
        name, [f"www.{name}"], None, "EC_prime256v1", None, {}, [{"Key": "certsmith:issuer", "Value": issuer}]))


def test_an_acme_certificate_names_its_issuer_and_directory(world: World) -> None:
    container, caller, clock = world
    _acme_issuer(container, caller, "acme-one")
    arn = _public(container, caller, "acme-one", "acme.example.com")
    now = clock.now()
    with container.database.transaction() as session:  # as if the order had succeeded 80 days ago
        session.execute(update(CertificateRow).where(CertificateRow.arn == arn).values(
            status="ISSUED", not_before=now - 80 * DAY, not_after=now + 10 * DAY, issued_at=now - 80 * DAY,
            next_notice_at=now, renewal_plan={"eligibility": "ELIGIBLE", "at": (now + DAY).isoformat()}))
    container.notices.sweep()
    detail = told(container, acm.APPROACHING, arn)[-1]["detail"]
    assert detail["Issuer"] == "acme-one (https://acme-one.test/directory)"
    assert detail["DomainNames"] == ["acme.example.com", "www.acme.example.com"]
    assert detail["RecommendedAction"] == f"No action needed: certsmith renews it on {acm.day(now + DAY)}."


def test_a_validation_that_times_out_is_told(world: World) -> None:
    container, caller, clock = world
    ca = make_root(container, caller)
    container.issuers.create(caller, IssuerSpec(name="internal-events", authority_arn=ca))
    arn = _public(container, caller, "internal-events", "late.example.com")
    row = certificate(container, arn)
    clock.advance(timedelta(hours=73))
    container.validation.run({"certificate_id": row.id})
    assert certificate(container, arn).status == CertificateStatus.VALIDATION_TIMED_OUT
    failed = told(container, own.VALIDATION_FAILED, arn)
    assert len(failed) == 1
    envelope = failed[0]
    assert envelope["source"] == "certsmith" and envelope["resources"] == [arn]
    detail = envelope["detail"]
    assert detail["Reason"] == "VALIDATION_TIMED_OUT" and detail["DomainValidationMethod"] == "DNS"
    assert detail["FailedNames"] == ["late.example.com", "www.late.example.com"] and detail["Issuer"] == ca
    assert detail["RecommendedAction"].startswith("Put the validation records of late.example.com, www.late.example.com")


def test_the_ca_expiry_check_tells_each_threshold_once(world: World) -> None:
    container, caller, _ = world
    ca = make_root(container, caller)  # one year
    stopped = make_root(container, caller)
    container.authorities.update(caller, stopped, AuthorityStatus.DISABLED, None)
    with container.database.read() as session:
        not_after = session.scalar(select(AuthorityRow.not_after).where(AuthorityRow.arn == ca))
    assert not_after is not None

    def check(days_left: float) -> list[int]:
        container.notices.ca_expiry(not_after - timedelta(days=days_left))
        return [e["detail"]["Threshold"] for e in told(container, own.CA_EXPIRING, ca)]

    assert check(120) == []
    assert check(89) == [90]
    assert check(88) == [90]  # once per threshold, however often it runs
    assert check(20) == [90, 30]
    assert check(6.5) == [90, 30, 7]
    assert check(1) == [90, 30, 7]
    assert told(container, own.CA_EXPIRING, stopped) == []  # only ACTIVE CAs
    last = told(container, own.CA_EXPIRING, ca)[-1]
    assert last["detail"]["DaysToExpiry"] == 6 and last["detail"]["Subject"] == "CN=T"
    assert last["resources"] == [ca]
    ids = [e["id"] for e in told(container, own.CA_EXPIRING, ca)]
    assert len(set(ids)) == 3 and all(uuid.UUID(i).version == 5 for i in ids)
