"""The key pool on the services: the worker fills it, a request takes each key once, and it can be turned off."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select

from certsmith.domain.acm import CertificateStatus
from certsmith.domain.algorithms import KeyAlgorithm, SigningAlgorithm
from certsmith.domain.authority import AuthorityStatus, AuthorityType, RevocationSettings, UsageMode
from certsmith.domain.clock import FixedClock
from certsmith.domain.errors import InternalError
from certsmith.domain.validity import Validity, ValidityPeriodType
from certsmith.services.acm.certificates import ISSUE_PRIVATE_JOB, RequestedCertificate
from certsmith.services.acm.key_pool import FILL_KEY_POOL_JOB
from certsmith.services.context import Caller
from certsmith.services.pca.issuance import IssueRequest
from certsmith.services.wiring import Container, build
from certsmith.settings import Settings
from certsmith.store.tables import CertificateRow, JobRow, KeyPoolRow

from ..conftest import backend_url
from .ca_world import START, drain, issue

RSA = KeyAlgorithm.RSA_2048
RSA_CONFIG = {"KeyAlgorithm": "RSA_2048", "SigningAlgorithm": "SHA256WITHRSA", "Subject": {"CommonName": "Pool Root"}}


def open_world(tmp_path: Path, pool_size: int) -> tuple[Container, Caller]:
    container = build(Settings(data_dir=tmp_path / "data", database_url=backend_url(), key_pool_size=pool_size),
                      FixedClock(START))
    account = container.accounts.credential(
        (tmp_path / "data" / "credentials").read_text().split("aws_access_key_id = ")[1].split("\n")[0])
    assert account is not None
    return container, Caller(account.account_id, "us-east-1", account.principal)


@pytest.fixture()
def world(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Container, Caller]]:
    container, caller = open_world(tmp_path, getattr(request, "param", 3))
    yield container, caller
    container.writes.close()
    container.database.dispose()


def rsa_root(container: Container, caller: Caller) -> str:
    arn = container.authorities.create(caller, authority_type=AuthorityType.ROOT, configuration=RSA_CONFIG,
                                       revocation=RevocationSettings(), usage_mode=UsageMode.GENERAL_PURPOSE,
                                       key_storage_standard="FIPS_140_2_LEVEL_3_OR_HIGHER", idempotency_token=None,
                                       tags=[])
    drain(container)
    csr = container.authorities.csr(caller, arn).encode()
    cert_arn = issue(container, caller, IssueRequest(
        arn, csr, SigningAlgorithm.SHA256WITHRSA, Validity(5, ValidityPeriodType.YEARS),
        template_arn="arn:aws:acm-pca:::template/RootCACertificate/V1"))
    drain(container)
    certificate, _ = container.issuance.get(caller, arn, cert_arn)
    container.authorities.import_certificate(caller, arn, certificate.encode(), None)
    return arn


def request(container: Container, caller: Caller, ca: str, name: str, algorithm: str = "RSA_2048") -> str:
    return container.certificates.request(caller, RequestedCertificate(
        domain_name=name, subject_alternative_names=[], authority_arn=ca, key_algorithm=algorithm,
        idempotency_token=None, options={}, tags=[]))


def spare(container: Container) -> list[KeyPoolRow]:
    with container.database.read() as session:
        return list(session.scalars(select(KeyPoolRow)))


def queued_jobs(container: Container) -> list[str]:
    with container.database.read() as session:
        return [job.kind for job in session.scalars(select(JobRow))]


def test_the_worker_fills_the_pool_and_refills_what_requests_take(world: Any) -> None:
    container, caller = world
    ca = rsa_root(container, caller)  # its worker started with no CA yet: RSA_2048 was asked for at once
    assert [row.key_algorithm for row in spare(container)] == ["RSA_2048"] * 3
    assert queued_jobs(container) == []  # the fill jobs stopped when the pool was full

    arn = request(container, caller, ca, "pooled.internal.test")
    record = container.certificates.describe(caller, arn)
    assert record.status == CertificateStatus.ISSUED
    assert len(spare(container)) == 2 and queued_jobs(container) == [FILL_KEY_POOL_JOB]
    drain(container)
    assert len(spare(container)) == 3 and queued_jobs(container) == []


def test_a_claimed_key_is_sealed_under_the_certificate_and_leaves_the_pool(world: Any) -> None:
    container, caller = world
    ca = rsa_root(container, caller)
    before = {row.id: row.sealed_key for row in spare(container)}
    sealer = container.certificates._vault  # the KeySealer
    first, second = spare(container)[:2]
    with pytest.raises(InternalError):  # a spare key opens under its own id only
        sealer.open_private_key(first.sealed_key, second.id)
    pool_keys = {sealer.open_private_key(sealed, key_id).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) for key_id, sealed in before.items()}

    arn = request(container, caller, ca, "sealed.internal.test")
    taken = set(before) - {row.id for row in spare(container)}
    assert len(taken) == 1
    with container.database.read() as session:
        row = session.scalars(select(CertificateRow).where(CertificateRow.arn == arn)).one()
    assert row.sealed_key is not None and row.sealed_key != before[taken.pop()]
    key = sealer.open_private_key(row.sealed_key, arn)
    assert key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo) in pool_keys


def test_a_key_the_ca_refused_goes_back_to_the_pool(world: Any) -> None:
    container, caller = world
    ca = rsa_root(container, caller)
    before = sorted(row.id for row in spare(container))
    container.authorities.update(caller, ca, AuthorityStatus.DISABLED, None)
    arn = request(container, caller, ca, "refused.internal.test")
    assert container.certificates.describe(caller, arn).status == CertificateStatus.PENDING_VALIDATION
    assert sorted(row.id for row in spare(container)) == before
    assert ISSUE_PRIVATE_JOB in queued_jobs(container)
    drain(container)  # the job path answers as it always did
    record = container.certificates.describe(caller, arn)
    assert (record.status, record.failure_reason) == (CertificateStatus.FAILED, "PCA_INVALID_STATE")


@pytest.mark.parametrize("world", [0], indirect=True)
def test_without_a_pool_rsa_takes_the_issue_job_and_nothing_is_made_ahead(world: Any) -> None:
    container, caller = world
    ca = rsa_root(container, caller)
    arn = request(container, caller, ca, "nopool.internal.test")
    assert container.certificates.describe(caller, arn).status == CertificateStatus.PENDING_VALIDATION
    assert queued_jobs(container) == [ISSUE_PRIVATE_JOB]
    drain(container)
    assert container.certificates.describe(caller, arn).status == CertificateStatus.ISSUED
    assert spare(container) == []


def test_ec_keys_are_made_on_the_spot_and_an_ec_only_installation_keeps_no_rsa_keys(world: Any) -> None:
    from .ca_world import make_root

    container, caller = world
    ca = make_root(container, caller, years=2)  # an EC CA, created before its first worker started
    arn = request(container, caller, ca, "ec.internal.test", "EC_prime256v1")
    assert container.certificates.describe(caller, arn).status == CertificateStatus.ISSUED
    drain(container)
    assert spare(container) == [] and queued_jobs(container) == []
