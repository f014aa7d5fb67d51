"""RequestCertificate signs at once when the CA can: the boto3 waiter returns on its first poll.

A server of its own with a pool of three spare keys per RSA algorithm, so that a few requests drain
it. The pool's rows are read from the server's database to know when the worker has filled it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import WaiterError
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import create_engine, text

from certsmith.testing.pki import WAIT, root_ca

from ..conftest import Server, backend_url, start_server

POOL = 3
PASSPHRASE = b"correct horse battery staple"
# The waiter's own schedule: a second poll would come 60 s after the first.
FIRST_POLL_ONLY = {"Delay": 60, "MaxAttempts": 2}


@pytest.fixture(scope="module")
def pooled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("key_pool")
    config = folder / "certsmith.toml"
    config.write_text(f"key_pool_size = {POOL}\n")
    server = start_server(folder, backend_url(), extra=["--config", str(config)])
    yield server
    server.stop()
    log = server.log_path.read_text()
    assert "Traceback" not in log, log
    assert "PRIVATE KEY" not in log and "MII" not in log, "key material in the log"


@pytest.fixture(scope="module")
def acm(pooled: Server) -> Any:
    return pooled.client("acm")


@pytest.fixture(scope="module")
def pca(pooled: Server) -> Any:
    return pooled.client("acm-pca")


@pytest.fixture(scope="module")
def rsa_ca(pca: Any) -> str:
    return root_ca(pca, "Pool RSA Root", key_algorithm="RSA_2048", signing="SHA256WITHRSA")


@pytest.fixture(scope="module")
def ec_ca(pca: Any) -> str:
    return root_ca(pca, "Pool EC Root")


def spare_keys(server: Server, algorithm: str = "RSA_2048") -> int:
    engine = create_engine(server.database_url or f"sqlite:///{server.data_dir / 'certsmith.db'}")
    try:
        with engine.connect() as connection:
            return int(connection.execute(text("SELECT count(*) FROM key_pool WHERE key_algorithm = :a"),
                                          {"a": algorithm}).scalar_one())
    finally:
        engine.dispose()


def wait_for_spare_keys(server: Server, count: int, algorithm: str = "RSA_2048", seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while spare_keys(server, algorithm) < count:
        assert time.monotonic() < deadline, f"the worker did not make {count} {algorithm} keys in {seconds} s"
        time.sleep(0.05)


def request(acm: Any, ca: str, domain: str, **extra: Any) -> str:
    arn: str = acm.request_certificate(DomainName=domain, CertificateAuthorityArn=ca, **extra)["CertificateArn"]
    return arn


def public_key(acm: Any, arn: str) -> bytes:
    leaf = x509.load_pem_x509_certificate(acm.get_certificate(CertificateArn=arn)["Certificate"].encode())
    return leaf.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_an_rsa_certificate_is_issued_before_the_request_answers(pooled: Server, acm: Any, pca: Any,
                                                                 rsa_ca: str) -> None:
    wait_for_spare_keys(pooled, 1)
    arn = request(acm, rsa_ca, "pooled.internal.test", SubjectAlternativeNames=["www.pooled.internal.test"])
    detail = acm.describe_certificate(CertificateArn=arn)["Certificate"]  # the first call
    assert detail["Status"] == "ISSUED" and detail["KeyAlgorithm"] == "RSA_2048"
    assert [o["ValidationStatus"] for o in detail["DomainValidationOptions"]] == ["SUCCESS", "SUCCESS"]
    assert detail["IssuedAt"] >= detail["CreatedAt"]
    started = time.monotonic()
    acm.get_waiter("certificate_validated").wait(CertificateArn=arn, WaiterConfig=FIRST_POLL_ONLY)
    assert time.monotonic() - started < 5
    # The CA recorded it like any certificate it issued.
    got = acm.get_certificate(CertificateArn=arn)
    leaf = x509.load_pem_x509_certificate(got["Certificate"].encode())
    from_ca = pca.get_certificate(CertificateAuthorityArn=rsa_ca,
                                  CertificateArn=f"{rsa_ca}/certificate/{format(leaf.serial_number, 'x')}")
    assert from_ca["Certificate"] == got["Certificate"]
    # The key, re-sealed under the certificate's ARN, is the certificate's key.
    exported = acm.export_certificate(CertificateArn=arn, Passphrase=PASSPHRASE)
    key = serialization.load_pem_private_key(exported["PrivateKey"].encode(), PASSPHRASE)
    assert key.public_key() == leaf.public_key()


def test_an_ec_certificate_is_issued_before_the_request_answers(acm: Any, ec_ca: str) -> None:
    arn = request(acm, ec_ca, "ec.pooled.internal.test", KeyAlgorithm="EC_prime256v1")
    assert acm.describe_certificate(CertificateArn=arn)["Certificate"]["Status"] == "ISSUED"
    started = time.monotonic()
    acm.get_waiter("certificate_validated").wait(CertificateArn=arn, WaiterConfig=FIRST_POLL_ONLY)
    assert time.monotonic() - started < 5


def test_keys_are_never_reused_and_the_worker_refills_the_pool(pooled: Server, acm: Any, rsa_ca: str) -> None:
    wait_for_spare_keys(pooled, POOL)
    arns = [request(acm, rsa_ca, f"drain{n}.internal.test") for n in range(3 * POOL)]
    statuses = [acm.describe_certificate(CertificateArn=arn)["Certificate"]["Status"] for arn in arns]
    assert statuses[:POOL] == ["ISSUED"] * POOL  # the pool's keys
    for arn in arns:  # the rest came from the pool as the worker refilled it, or from the issue job
        acm.get_waiter("certificate_validated").wait(CertificateArn=arn, WaiterConfig=WAIT)
    keys = [public_key(acm, arn) for arn in arns]
    assert len(set(keys)) == len(keys)
    wait_for_spare_keys(pooled, POOL, seconds=30)


def test_a_disabled_ca_takes_the_issue_job_and_fails_as_before(pooled: Server, acm: Any, pca: Any) -> None:
    disabled = root_ca(pca, "Pool Disabled Root", key_algorithm="RSA_2048", signing="SHA256WITHRSA")
    pca.update_certificate_authority(CertificateAuthorityArn=disabled, Status="DISABLED")
    wait_for_spare_keys(pooled, POOL)
    arn = request(acm, disabled, "disabled.pooled.internal.test")
    assert spare_keys(pooled) == POOL  # the key the CA refused went back to the pool
    with pytest.raises(WaiterError, match="terminal failure"):
        acm.get_waiter("certificate_validated").wait(CertificateArn=arn, WaiterConfig=WAIT)
    detail = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    assert (detail["Status"], detail["FailureReason"]) == ("FAILED", "PCA_INVALID_STATE")


def test_an_ec_key_for_an_rsa_ca_fails_with_the_cas_reason(acm: Any, rsa_ca: str) -> None:
    arn = request(acm, rsa_ca, "mismatch.pooled.internal.test", KeyAlgorithm="EC_prime256v1")
    with pytest.raises(WaiterError, match="terminal failure"):
        acm.get_waiter("certificate_validated").wait(CertificateArn=arn, WaiterConfig=WAIT)
    assert acm.describe_certificate(CertificateArn=arn)["Certificate"]["FailureReason"] == "PCA_INVALID_ARGS"


def test_idempotency_token_returns_the_issued_certificate(acm: Any, ec_ca: str) -> None:
    first = request(acm, ec_ca, "idem.pooled.internal.test", KeyAlgorithm="EC_prime256v1", IdempotencyToken="p1")
    assert request(acm, ec_ca, "idem.pooled.internal.test", KeyAlgorithm="EC_prime256v1",
                   IdempotencyToken="p1") == first
    assert acm.describe_certificate(CertificateArn=first)["Certificate"]["Status"] == "ISSUED"

