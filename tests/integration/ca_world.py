"""A container with a FixedClock and a root CA helper, for tests that drive the services directly."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from certsmith.domain.algorithms import SigningAlgorithm
from certsmith.domain.authority import AuthorityType, RevocationSettings, UsageMode
from certsmith.domain.clock import FixedClock
from certsmith.domain.validity import Validity, ValidityPeriodType
from certsmith.services.context import Caller
from certsmith.services.pca.issuance import IssueRequest
from certsmith.services.wiring import Container, build
from certsmith.settings import Settings

from ..conftest import backend_url

START = datetime(2030, 1, 1, tzinfo=UTC)
CONFIG = {"KeyAlgorithm": "EC_prime256v1", "SigningAlgorithm": "SHA256WITHECDSA", "Subject": {"CommonName": "T"}}


@pytest.fixture()
def world(tmp_path: Path) -> Iterator[tuple[Container, Caller, FixedClock]]:
    clock = FixedClock(START)
    container = build(Settings(data_dir=tmp_path / "data", database_url=backend_url()), clock)
    account = container.accounts.credential(
        (tmp_path / "data" / "credentials").read_text().split("aws_access_key_id = ")[1].split("\n")[0])
    assert account is not None
    caller = Caller(account.account_id, "us-east-1", account.principal)
    yield container, caller, clock
    container.writes.close()
    container.database.dispose()


def drain(container: Container) -> None:
    worker = container.worker()
    while worker.run_once():
        pass


def make_root(container: Container, caller: Caller, years: int = 1,
              revocation: RevocationSettings | None = None) -> str:
    arn = container.authorities.create(caller, authority_type=AuthorityType.ROOT, configuration=CONFIG,
                                       revocation=revocation or RevocationSettings(),
                                       usage_mode=UsageMode.GENERAL_PURPOSE,
                                       key_storage_standard="FIPS_140_2_LEVEL_3_OR_HIGHER", idempotency_token=None,
                                       tags=[])
    drain(container)
    csr = container.authorities.csr(caller, arn).encode()
    cert_arn = issue(container, caller, IssueRequest(
        arn, csr, SigningAlgorithm.SHA256WITHECDSA, Validity(years, ValidityPeriodType.YEARS),
        template_arn="arn:aws:acm-pca:::template/RootCACertificate/V1"))
    drain(container)
    certificate, _ = container.issuance.get(caller, arn, cert_arn)
    container.authorities.import_certificate(caller, arn, certificate.encode(), None)
    return arn


def issue(container: Container, caller: Caller, request: IssueRequest) -> str:
    return asyncio.run(container.issuance.issue(caller, request))


def leaf_csr() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leaf.test")])).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM)


