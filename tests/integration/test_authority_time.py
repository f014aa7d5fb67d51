"""Lifecycle rules that depend on time, driven through the services with a FixedClock."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from cryptography import x509
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select

from certsmith.domain.algorithms import SigningAlgorithm
from certsmith.domain.authority import AuthorityStatus, AuthorityType, RevocationSettings, UsageMode
from certsmith.domain.errors import InvalidStateError, RequestFailedError, ResourceNotFoundError
from certsmith.domain.validity import Validity, ValidityPeriodType
from certsmith.services.pca.issuance import IssueRequest
from certsmith.store.tables import AuthorityRow, JobRow

from .ca_world import CONFIG, START, drain, issue, leaf_csr, make_root, world

__all__ = ["world"]


def test_ca_reports_expired_and_refuses_work(world: Any) -> None:
    container, caller, clock = world
    arn = make_root(container, caller, years=1)
    assert container.authorities.describe(caller, arn).status is AuthorityStatus.ACTIVE
    clock.advance(timedelta(days=367))
    assert container.authorities.describe(caller, arn).status is AuthorityStatus.EXPIRED
    with pytest.raises(InvalidStateError, match="EXPIRED"):
        issue(container, caller, IssueRequest(arn, leaf_csr(), SigningAlgorithm.SHA256WITHECDSA,
                                                      Validity(1, ValidityPeriodType.DAYS)))
    with pytest.raises(InvalidStateError):
        container.authorities.update(caller, arn, AuthorityStatus.DISABLED, None)
    # An expired CA can still be deleted (and is restorable to DISABLED).
    container.authorities.delete(caller, arn, 7)
    assert container.authorities.describe(caller, arn).status is AuthorityStatus.DELETED


def test_deleted_ca_disappears_after_its_window(world: Any) -> None:
    container, caller, clock = world
    arn = container.authorities.create(caller, authority_type=AuthorityType.ROOT, configuration=CONFIG,
                                       revocation=RevocationSettings(), usage_mode=UsageMode.GENERAL_PURPOSE,
                                       key_storage_standard="FIPS_140_2_LEVEL_3_OR_HIGHER", idempotency_token=None,
                                       tags=[])
    drain(container)
    container.authorities.delete(caller, arn, 7)
    described = container.authorities.describe(caller, arn)
    assert described.status is AuthorityStatus.DELETED and described.restorable_until == START + timedelta(days=7)
    authority_id = arn.rsplit("/", 1)[-1]
    drain(container)
    with container.database.read() as session:
        assert session.get(AuthorityRow, authority_id) is not None, "purged before its window ended"
    clock.advance(timedelta(days=7, seconds=1))
    with pytest.raises(ResourceNotFoundError):
        container.authorities.describe(caller, arn)
    with pytest.raises(ResourceNotFoundError):
        container.authorities.restore(caller, arn)
    drain(container)
    with container.database.read() as session:
        assert session.get(AuthorityRow, authority_id) is None, "the CA and its sealed key are gone"


def test_restored_ca_is_not_purged(world: Any) -> None:
    container, caller, clock = world
    arn = make_root(container, caller)
    container.authorities.update(caller, arn, AuthorityStatus.DISABLED, None)
    container.authorities.delete(caller, arn, 7)
    container.authorities.restore(caller, arn)
    clock.advance(timedelta(days=8))
    drain(container)
    assert container.authorities.describe(caller, arn).status is AuthorityStatus.DISABLED


def test_issuance_after_the_ca_is_disabled_fails_the_certificate(world: Any) -> None:
    container, caller, _clock = world
    arn = make_root(container, caller)
    cert_arn = issue(container, caller, IssueRequest(arn, leaf_csr(), SigningAlgorithm.SHA256WITHECDSA,
                                                             Validity(5, ValidityPeriodType.DAYS)))
    container.authorities.update(caller, arn, AuthorityStatus.DISABLED, None)
    drain(container)
    with pytest.raises(RequestFailedError, match="DISABLED"):
        container.issuance.get(caller, arn, cert_arn)


def test_ca_whose_key_generation_keeps_failing_becomes_failed(world: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    container, caller, clock = world

    def broken(_algorithm: Any) -> Any:
        raise RuntimeError("entropy source unavailable")

    monkeypatch.setattr("certsmith.services.pca.authorities.generate_private_key", broken)
    arn = container.authorities.create(caller, authority_type=AuthorityType.ROOT, configuration=CONFIG,
                                       revocation=RevocationSettings(), usage_mode=UsageMode.GENERAL_PURPOSE,
                                       key_storage_standard="FIPS_140_2_LEVEL_3_OR_HIGHER", idempotency_token=None,
                                       tags=[])
    for _ in range(10):
        drain(container)
        clock.advance(timedelta(hours=2))
    described = container.authorities.describe(caller, arn)
    assert described.status is AuthorityStatus.FAILED and described.failure_reason == "OTHER"
    with container.database.read() as session:
        dead = container.jobs.dead(session)
        assert dead and "entropy source unavailable" in (dead[0].last_error or "")
    with pytest.raises(InvalidStateError):
        container.authorities.csr(caller, arn)


def test_crl_is_refreshed_before_it_goes_stale(world: Any) -> None:
    container, caller, clock = world
    settings = RevocationSettings(crl_enabled=True, crl_configured=True, crl_expiration_days=2)
    arn = make_root(container, caller, revocation=settings)
    authority_id = arn.rsplit("/", 1)[-1]
    issue(container, caller, IssueRequest(arn, leaf_csr(), SigningAlgorithm.SHA256WITHECDSA,
                                                  Validity(30, ValidityPeriodType.DAYS)))
    drain(container)
    first = x509.load_der_x509_crl(container.revocation.crl(authority_id) or b"")
    assert first.next_update_utc == START + timedelta(days=2)
    numbers = [first.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number]
    for day in range(1, 6):
        clock.advance(timedelta(days=1, seconds=1))
        drain(container)
        crl = x509.load_der_x509_crl(container.revocation.crl(authority_id) or b"")
        assert crl.next_update_utc is not None and crl.next_update_utc > clock.now(), f"stale CRL on day {day}"
        numbers.append(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)
    assert numbers == sorted(set(numbers)), "every refresh has a larger CRL number"
    with container.database.read() as session:
        pending = list(session.scalars(select(JobRow).where(JobRow.kind == "crl.refresh")))
    assert len(pending) == 1 and pending[0].payload.get("scheduled") is True
    with container.database.read() as session:  # CA rows come without their CRL, which is read only when served
        row = session.get(AuthorityRow, authority_id)
        assert row is not None and "crl_der" not in sa_inspect(row).dict
        assert row.crl_der is not None and len(row.crl_der) > 0
