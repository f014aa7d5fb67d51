"""A public certificate whose records never appear times out after 72 hours (an injected clock), and the
validation job polls with growing pauses meanwhile, without spending its attempts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from certsmith.dns.server import ValidationDnsServer
from certsmith.domain.clock import FixedClock
from certsmith.services.acm.certificates import RequestedCertificate
from certsmith.services.context import Caller
from certsmith.services.public.issuers import IssuerSpec
from certsmith.services.public.requests import VALIDATE_JOB
from certsmith.services.public.validation import VALIDATION_TIMEOUT, next_check
from certsmith.services.wiring import Container, build
from certsmith.settings import Settings
from certsmith.store.tables import CertificateRow, JobRow

from ..conftest import backend_url
from .ca_world import START, drain, make_root


@pytest.fixture()
def zone_world(tmp_path: Path) -> Iterator[tuple[Container, Caller, FixedClock]]:
    # The "resolver" is a validation zone server of its own: it refuses every name outside acme.test, so no
    # record is ever found, and nothing leaves the machine.
    dns = ValidationDnsServer("acme.test", "127.0.0.1", 0, dict)
    dns.start()
    clock = FixedClock(START)
    container = build(Settings(data_dir=tmp_path / "data", database_url=backend_url(), validation_zone="acme.test",
                               resolvers=f"127.0.0.1:{dns.port}", dns_listen=f"127.0.0.1:{dns.port}"), clock)
    key_id = (tmp_path / "data" / "credentials").read_text().split("aws_access_key_id = ")[1].split("\n")[0]
    account = container.accounts.credential(key_id)
    assert account is not None
    yield container, Caller(account.account_id, "us-east-1", account.principal), clock
    container.writes.close()
    container.database.dispose()
    dns.stop()


def test_a_request_without_its_records_times_out_after_72_hours(zone_world: tuple[Container, Caller, FixedClock]) -> None:
    container, caller, clock = zone_world
    container.issuers.create(caller, IssuerSpec("inhouse", authority_arn=make_root(container, caller, years=5)))
    arn = container.public_requests.request(caller, RequestedCertificate(
        "late.example.test", [], None, "EC_prime256v1", None, {}, []))
    certificate_id = arn.rsplit("/", 1)[1]

    def state() -> tuple[str, JobRow | None]:
        with container.database.read() as session:
            row = session.get(CertificateRow, certificate_id)
            assert row is not None
            job = session.scalars(select(JobRow).where(JobRow.kind == VALIDATE_JOB)).first()
            return row.status, job

    drain(container)
    status, job = state()
    assert status == "PENDING_VALIDATION"
    assert job is not None and job.attempts == 0 and job.run_after == START + timedelta(seconds=1)
    clock.advance(timedelta(minutes=1))
    drain(container)
    status, job = state()
    assert status == "PENDING_VALIDATION" and job is not None
    assert job.run_after == clock.now() + timedelta(seconds=7.5)  # an eighth of its age: the pauses grow
    assert job.attempts == 0 and "not in place" in (job.last_error or "")
    clock.advance(timedelta(hours=8))
    drain(container)
    status, job = state()
    assert job is not None and job.run_after == clock.now() + timedelta(minutes=10)  # up to ten minutes
    clock.advance(VALIDATION_TIMEOUT)
    drain(container)
    status, job = state()
    assert status == "VALIDATION_TIMED_OUT" and job is None
    detail = container.certificates.describe(caller, arn)
    assert detail.validations is not None
    assert [v["ValidationStatus"] for v in detail.validations] == ["FAILED"]


def test_the_pause_between_checks_grows_with_the_age_of_the_request_within_bounds() -> None:
    assert next_check(timedelta(0)) == timedelta(seconds=1)
    assert next_check(timedelta(minutes=1)) == timedelta(seconds=7.5)
    assert next_check(timedelta(days=2)) == timedelta(minutes=10)
