"""CRL publication follows the CA's activation and settings, whatever issues its certificates (FixedClock)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from cryptography import x509
from sqlalchemy import select

from certsmith.domain.algorithms import SigningAlgorithm
from certsmith.domain.authority import AuthorityStatus, RevocationSettings
from certsmith.domain.clock import FixedClock
from certsmith.domain.revocation import RevocationReason
from certsmith.domain.validity import Validity, ValidityPeriodType
from certsmith.services.context import Caller
from certsmith.services.pca.issuance import IssueRequest
from certsmith.services.pca.revocation import REFRESH_CRL_JOB
from certsmith.services.wiring import Container
from certsmith.store.jobs import READY
from certsmith.store.tables import JobRow

from .ca_world import START, drain, issue, leaf_csr, make_root, world

__all__ = ["world"]


def crl_settings(days: int) -> RevocationSettings:
    return RevocationSettings(crl_enabled=True, crl_configured=True, crl_expiration_days=days)


def published(container: Container, caller: Caller, arn: str) -> x509.CertificateRevocationList:
    """The CRL served for the CA, checked to be signed by the CA's certificate and to name it as issuer."""
    der = container.revocation.crl(arn.rsplit("/", 1)[-1])
    assert der is not None, "the CA publishes no CRL"
    crl = x509.load_der_x509_crl(der)
    ca_certificate = x509.load_pem_x509_certificate(container.authorities.certificate(caller, arn)[0].encode())
    assert crl.is_signature_valid(ca_certificate.public_key()), "the CRL is not signed by the CA's key"
    assert crl.issuer == ca_certificate.subject
    return crl


def number(crl: x509.CertificateRevocationList) -> int:
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def scheduled_refreshes(container: Container) -> list[JobRow]:
    with container.database.read() as session:
        return list(session.scalars(select(JobRow).where(JobRow.kind == REFRESH_CRL_JOB, JobRow.state == READY)))


def stays_fresh(container: Container, caller: Caller, clock: FixedClock, arn: str, *, days: int,
                step: timedelta) -> list[int]:
    """Advance the clock by ``step`` for ``days``, running due jobs each time; the CRL never passes nextUpdate."""
    numbers = []
    end = clock.now() + timedelta(days=days)
    while clock.now() < end:
        clock.advance(step)
        drain(container)
        crl = published(container, caller, arn)
        assert crl.next_update_utc is not None and crl.next_update_utc > clock.now(), \
            f"stale CRL at {clock.now()}: its nextUpdate was {crl.next_update_utc}"
        numbers.append(number(crl))
    assert numbers == sorted(numbers), "CRL numbers only grow"
    return numbers


def test_activation_publishes_a_crl_without_any_issuance(world: Any) -> None:
    container, caller, clock = world
    arn = make_root(container, caller, revocation=crl_settings(2))
    drain(container)
    crl = published(container, caller, arn)
    assert crl.last_update_utc == START and crl.next_update_utc == START + timedelta(days=2) and len(crl) == 0
    numbers = stays_fresh(container, caller, clock, arn, days=10, step=timedelta(hours=5))
    assert len(set(numbers)) >= 10, "a 2-day CRL is re-signed every day"
    assert len(scheduled_refreshes(container)) == 1, "one schedule per CA"


def test_a_ca_without_crls_publishes_none(world: Any) -> None:
    container, caller, _clock = world
    arn = make_root(container, caller)
    drain(container)
    assert container.revocation.crl(arn.rsplit("/", 1)[-1]) is None
    assert scheduled_refreshes(container) == []


def test_turning_crls_on_publishes_one_at_once(world: Any) -> None:
    container, caller, clock = world
    arn = make_root(container, caller)
    drain(container)
    clock.advance(timedelta(hours=3))
    container.authorities.update(caller, arn, None, crl_settings(1))
    drain(container)
    crl = published(container, caller, arn)
    assert crl.last_update_utc == START + timedelta(hours=3)
    stays_fresh(container, caller, clock, arn, days=4, step=timedelta(hours=7))


def test_a_shorter_validity_sets_a_faster_cadence(world: Any) -> None:
    container, caller, clock = world
    arn = make_root(container, caller, revocation=crl_settings(7))
    drain(container)
    clock.advance(timedelta(days=1))
    container.authorities.update(caller, arn, None, crl_settings(1))
    drain(container)
    assert published(container, caller, arn).next_update_utc == clock.now() + timedelta(days=1)
    # The 7-day schedule's refresh (due at 3.5 days) still runs once, then only the new cadence goes on.
    stays_fresh(container, caller, clock, arn, days=6, step=timedelta(hours=5))
    assert len(scheduled_refreshes(container)) == 1


def test_crls_turned_off_and_on_again_restart_the_schedule(world: Any) -> None:
    container, caller, clock = world
    arn = make_root(container, caller, revocation=crl_settings(2))
    drain(container)
    container.authorities.update(caller, arn, None, RevocationSettings(crl_configured=True))
    clock.advance(timedelta(days=3))
    drain(container)  # the schedule's refresh finds CRLs off and ends the schedule
    assert container.revocation.crl(arn.rsplit("/", 1)[-1]) is None
    assert scheduled_refreshes(container) == []
    container.authorities.update(caller, arn, None, crl_settings(2))
    drain(container)
    assert published(container, caller, arn).last_update_utc == clock.now()
    stays_fresh(container, caller, clock, arn, days=5, step=timedelta(hours=6))


def test_a_restored_ca_publishes_again(world: Any) -> None:
    container, caller, clock = world
    arn = make_root(container, caller, revocation=crl_settings(2))
    drain(container)
    container.authorities.update(caller, arn, AuthorityStatus.DISABLED, None)
    container.authorities.delete(caller, arn, 7)
    clock.advance(timedelta(days=4))
    drain(container)  # the schedule ends while the CA is DELETED: its last CRL has passed its nextUpdate
    stale = x509.load_der_x509_crl(container.revocation.crl(arn.rsplit("/", 1)[-1]) or b"")
    assert stale.next_update_utc is not None and stale.next_update_utc < clock.now()
    container.authorities.restore(caller, arn)
    drain(container)
    assert published(container, caller, arn).last_update_utc == clock.now()
    container.authorities.update(caller, arn, AuthorityStatus.ACTIVE, None)
    stays_fresh(container, caller, clock, arn, days=5, step=timedelta(hours=6))
    assert len(scheduled_refreshes(container)) == 1


def test_revocation_of_a_certificate_signed_for_acm_is_on_the_next_crl(world: Any) -> None:
    container, caller, clock = world
    arn = make_root(container, caller, revocation=crl_settings(7))
    drain(container)
    csr = x509.load_pem_x509_csr(leaf_csr())
    signed = container.issuance.sign_now(caller, arn, csr, Validity(30, ValidityPeriodType.DAYS))
    pca_arn = issue(container, caller, IssueRequest(arn, leaf_csr(), SigningAlgorithm.SHA256WITHECDSA,
                                                    Validity(30, ValidityPeriodType.DAYS)))
    drain(container)
    before = published(container, caller, arn)
    clock.advance(timedelta(minutes=5))
    container.issuance.revoke(caller, arn, format(signed.certificate.serial_number, "x"),
                              RevocationReason.KEY_COMPROMISE)
    drain(container)
    after = published(container, caller, arn)
    assert number(after) > number(before) and after.last_update_utc == clock.now()
    entry = after.get_revoked_certificate_by_serial_number(signed.certificate.serial_number)
    assert entry is not None and entry.revocation_date_utc == clock.now()
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason is x509.ReasonFlags.key_compromise
    pca_serial = int(pca_arn.rsplit("/", 1)[-1], 16)
    assert after.get_revoked_certificate_by_serial_number(pca_serial) is None
    stays_fresh(container, caller, clock, arn, days=8, step=timedelta(hours=12))
    assert published(container, caller, arn).get_revoked_certificate_by_serial_number(
        signed.certificate.serial_number) is not None, "a revoked serial stays on every later CRL"
