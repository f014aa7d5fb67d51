"""Issue jobs born leased to the local workers: run from memory, or taken over when the lease runs out."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from certsmith.domain.algorithms import SigningAlgorithm
from certsmith.domain.authority import AuthorityStatus
from certsmith.domain.errors import InvalidStateError
from certsmith.domain.validity import Validity, ValidityPeriodType
from certsmith.services.pca.issuance import IssueRequest
from certsmith.store.jobs import LEASED
from certsmith.store.tables import JobRow
from certsmith.worker.loop import LocalSignal, Worker

from .ca_world import drain, issue, leaf_csr, make_root, world

__all__ = ["world"]


def request(arn: str) -> IssueRequest:
    return IssueRequest(arn, leaf_csr(), SigningAlgorithm.SHA256WITHECDSA, Validity(5, ValidityPeriodType.DAYS))


def test_handed_over_job_is_leased_in_the_table_and_run_from_memory(world: Any) -> None:
    container, caller, _ = world
    arn = make_root(container, caller)
    container.signal.attach()  # as a running local worker does
    cert_arn = issue(container, caller, request(arn))
    with container.database.read() as session:
        job = session.scalars(select(JobRow).where(JobRow.kind == "certificate.issue")).one()
        assert (job.state, job.leased_by, job.attempts) == (LEASED, container.signal.holder, 1)
    worker = container.worker()
    assert worker.run_once(table=False) == 1  # no lease query: the job came from memory
    certificate, chain = container.issuance.get(caller, arn, cert_arn)
    assert certificate.startswith("-----BEGIN CERTIFICATE-----") and chain
    with container.database.read() as session:
        assert session.scalars(select(JobRow)).all() == []


def test_a_job_handed_to_a_process_that_died_is_taken_over_after_its_lease(world: Any) -> None:
    container, caller, clock = world
    arn = make_root(container, caller)
    container.signal.attach()
    cert_arn = issue(container, caller, request(arn))
    # The process that held the job is gone: another worker, with its own (empty) hand-over.
    other = Worker(container.database, container.jobs, container.handlers(), clock, LocalSignal())
    assert other.run_once() == 0  # still leased
    clock.advance(timedelta(minutes=6))
    assert other.run_once() == 1
    assert container.issuance.get(caller, arn, cert_arn)[0].startswith("-----BEGIN CERTIFICATE-----")


def test_a_disabled_ca_is_refused_at_once_by_the_process_that_disabled_it(world: Any) -> None:
    container, caller, _ = world
    arn = make_root(container, caller)
    issue(container, caller, request(arn))  # the CA's facts are now kept
    drain(container)
    container.authorities.update(caller, arn, AuthorityStatus.DISABLED, None)
    try:
        issue(container, caller, request(arn))
    except InvalidStateError as error:
        assert "DISABLED" in error.message
    else:
        raise AssertionError("a disabled CA issued")
