"""CA rotation and fleet re-issue through the services, on a real database, with real workers and openssl."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select

from certsmith.domain.algorithms import SigningAlgorithm
from certsmith.domain.authority import AuthorityStatus, AuthorityType, RevocationSettings, UsageMode
from certsmith.domain.clock import FixedClock
from certsmith.domain.errors import (
    ConflictError,
    InvalidArgsError,
    InvalidArnError,
    InvalidStateError,
    ResourceNotFoundError,
    ValidationError,
)
from certsmith.domain.validity import Validity, ValidityPeriodType
from certsmith.keys.master_key import MasterKeySource
from certsmith.keys.sealing import KeySealer
from certsmith.services.acm.certificates import RequestedCertificate
from certsmith.services.context import Caller
from certsmith.services.master_key import open_master_key
from certsmith.services.pca.issuance import IssueRequest
from certsmith.services.pca.reissue import ReissueService, parse_rate
from certsmith.services.pca.reissue_job import ReissueRunner
from certsmith.services.wiring import Container
from certsmith.store.tables import (
    CaReissueItemRow,
    CaReissueRow,
    CertificateRow,
    CertificateVersionRow,
    IssuedCertificateRow,
    JobRow,
)
from certsmith.worker.loop import RunLater

from ..conftest import need_binary
from .ca_world import START, drain, issue, world

__all__ = ["world"]

REVOCATION = RevocationSettings(crl_enabled=True, crl_expiration_days=7, crl_configured=True, ocsp_enabled=True,
                                ocsp_configured=True)
ROOT_CONFIG = {"KeyAlgorithm": "EC_prime256v1", "SigningAlgorithm": "SHA256WITHECDSA",
               "Subject": {"CommonName": "Rotation Root", "Organization": "Certsmith Tests"}}
SUB_TEMPLATE = "arn:aws:acm-pca:::template/SubordinateCACertificate_PathLen{}/V1"
TAGS = [{"Key": "team", "Value": "pki"}]
World = tuple[Container, Caller, FixedClock]


# -- helpers ---------------------------------------------------------------------------------------------------------
@contextmanager
def worker_running(container: Container) -> Iterator[None]:
    stop = threading.Event()
    thread = threading.Thread(target=container.worker().run_forever, args=(stop,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)


def create_ca(container: Container, caller: Caller, kind: AuthorityType, name: str,
              key_algorithm: str = "EC_prime256v1") -> str:
    signing = "SHA256WITHECDSA" if key_algorithm.startswith("EC") else "SHA256WITHRSA"
    configuration = {**ROOT_CONFIG, "KeyAlgorithm": key_algorithm, "SigningAlgorithm": signing,
                     "Subject": {"CommonName": name, "Organization": "Certsmith Tests"}}
    arn = container.authorities.create(caller, authority_type=kind, configuration=configuration, revocation=REVOCATION,
                                       usage_mode=UsageMode.GENERAL_PURPOSE,
                                       key_storage_standard="FIPS_140_2_LEVEL_3_OR_HIGHER", idempotency_token=None,
                                       tags=TAGS)
    drain(container)
    return arn


def activate(container: Container, caller: Caller, arn: str, parent: str | None, path_length: int = 0,
             years: int = 2) -> None:
    csr = container.authorities.csr(caller, arn).encode()
    signer = parent or arn
    template = SUB_TEMPLATE.format(path_length) if parent else "arn:aws:acm-pca:::template/RootCACertificate/V1"
    signing = SigningAlgorithm(container.authorities.describe(caller, signer).configuration["SigningAlgorithm"])
    cert_arn = issue(container, caller, IssueRequest(signer, csr, signing, Validity(years, ValidityPeriodType.YEARS),
                                                     template_arn=template))
    drain(container)
    certificate, chain = container.issuance.get(caller, signer, cert_arn)
    container.authorities.import_certificate(caller, arn, certificate.encode(),
                                             chain.encode() if parent and chain else None)


def root(container: Container, caller: Caller, name: str = "Rotation Root", key_algorithm: str = "EC_prime256v1") -> str:
    arn = create_ca(container, caller, AuthorityType.ROOT, name, key_algorithm)
    activate(container, caller, arn, None, years=3)
    return arn


def rotate(container: Container, caller: Caller, arn: str) -> Any:
    with worker_running(container):
        return asyncio.run(container.rotation.rotate(caller, arn))


def ca_certificate(container: Container, caller: Caller, arn: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(container.authorities.certificate(caller, arn)[0].encode())


def openssl_verify(tmp_path: Path, anchor: x509.Certificate, leaf: x509.Certificate,
                   untrusted: list[x509.Certificate] = ()) -> None:  # type: ignore[assignment]
    openssl = need_binary("openssl")
    (tmp_path / "anchor.pem").write_bytes(anchor.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "leaf.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    args = [openssl, "verify", "-attime", str(int((START + timedelta(days=1)).timestamp())),
            "-CAfile", str(tmp_path / "anchor.pem")]
    if untrusted:
        (tmp_path / "untrusted.pem").write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM)
                                                          for c in untrusted))
        args += ["-untrusted", str(tmp_path / "untrusted.pem")]
    result = subprocess.run([*args, str(tmp_path / "leaf.pem")], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and ": OK" in result.stdout, result.stdout + result.stderr


def spki(key: Any) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def leaf_csr(name: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])).add_extension(
        x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False).sign(key, hashes.SHA256()).public_bytes(
        serialization.Encoding.PEM)


def fleet(container: Container, caller: Caller, ca: str, acm: int, pca: int) -> tuple[list[str], list[str]]:
    """``acm`` ACM private certificates and ``pca`` IssueCertificate ones from ``ca``: (ACM ARNs, PCA ARNs)."""
    acm_arns = [container.certificates.request(caller, RequestedCertificate(
        f"svc{index}.rotation.test", [], ca, "EC_prime256v1", None, {}, [])) for index in range(acm)]
    pca_arns = [issue(container, caller, IssueRequest(ca, leaf_csr(f"host{index}.rotation.test"),
                                                      SigningAlgorithm.SHA256WITHECDSA,
                                                      Validity(90 + index, ValidityPeriodType.DAYS)))
                for index in range(pca)]
    drain(container)
    return acm_arns, pca_arns


def sealer(container: Container) -> KeySealer:
    settings = container.settings
    return KeySealer(open_master_key(MasterKeySource(settings.data_dir, settings.master_key), container.database,
                                     container.clock))


def fresh_service(container: Container) -> ReissueService:
    """A ReissueService built from the container's parts, as a new worker process would have it."""
    return ReissueService(container.database, container.jobs, sealer(container), container.clock, container.signal,
                          container.issuance, container.recorder, container.settings.effective_public_url)


def run_to_end(service: ReissueService, reissue_id: str, deadline: float = 120.0) -> None:
    """Run the job as a worker would: again after each RunLater, for as long as it asks."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            service.run_job({"reissue_id": reissue_id})
            return
        except RunLater as later:
            time.sleep(later.delay.total_seconds())
    raise AssertionError(f"re-issue {reissue_id} did not end within {deadline} s")


def wait_for(predicate: Any, deadline: float = 60.0, what: str = "condition") -> None:
    end = time.monotonic() + deadline
    while not predicate():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)


def items_of(container: Container, reissue_id: str) -> list[CaReissueItemRow]:
    with container.database.read() as session:
        return list(session.scalars(select(CaReissueItemRow).where(CaReissueItemRow.reissue_id == reissue_id)
                                    .order_by(CaReissueItemRow.id)))


def ocsp_status(container: Container, authority_id: str, certificate: x509.Certificate,
                issuer: x509.Certificate) -> ocsp.OCSPCertStatus:
    request = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, hashes.SHA1()).build()
    answer = ocsp.load_der_ocsp_response(container.revocation.ocsp(authority_id, request.public_bytes(
        serialization.Encoding.DER)))
    assert answer.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    return answer.certificate_status


# -- rotation --------------------------------------------------------------------------------------------------------
def test_rotating_a_root_gives_a_new_key_under_the_same_name(world: World, tmp_path: Path) -> None:
    container, caller, _ = world
    old_arn = root(container, caller)
    result = rotate(container, caller, old_arn)
    assert result.status == "ACTIVE" and result.parent_arn is None and result.arn != old_arn
    old, new = container.authorities.describe(caller, old_arn), container.authorities.describe(caller, result.arn)
    assert new.status is AuthorityStatus.ACTIVE and new.type == "ROOT"
    assert new.configuration == old.configuration and new.revocation == old.revocation
    assert new.usage_mode == old.usage_mode and new.key_storage_standard == old.key_storage_standard
    assert container.admin.list_tags(caller, result.arn, None, None)[0] == TAGS
    old_cert, new_cert = ca_certificate(container, caller, old_arn), ca_certificate(container, caller, result.arn)
    assert new_cert.subject == old_cert.subject and new_cert.issuer == new_cert.subject
    assert spki(new_cert.public_key()) != spki(old_cert.public_key())
    assert new_cert.not_valid_after_utc - new_cert.not_valid_before_utc == \
        old_cert.not_valid_after_utc - old_cert.not_valid_before_utc
    openssl_verify(tmp_path, new_cert, new_cert)


def test_rotating_a_subordinate_has_the_same_parent_sign_it(world: World, tmp_path: Path) -> None:
    container, caller, _ = world
    parent = root(container, caller, "Rotation Parent")
    old_arn = create_ca(container, caller, AuthorityType.SUBORDINATE, "Rotation Issuing")
    activate(container, caller, old_arn, parent, path_length=1)
    result = rotate(container, caller, old_arn)
    assert result.status == "ACTIVE" and result.parent_arn == parent
    new_cert, old_cert = ca_certificate(container, caller, result.arn), ca_certificate(container, caller, old_arn)
    parent_cert = ca_certificate(container, caller, parent)
    assert new_cert.subject == old_cert.subject and new_cert.issuer == parent_cert.subject
    assert spki(new_cert.public_key()) != spki(old_cert.public_key())
    assert new_cert.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 1
    assert new_cert.not_valid_after_utc <= parent_cert.not_valid_after_utc
    openssl_verify(tmp_path, parent_cert, new_cert)
    # The parent's records know the new CA's certificate (GetCertificate, CRL, audit reports).
    serial = format(new_cert.serial_number, "x")
    got, chain = container.issuance.get(caller, parent, f"{parent}/certificate/{serial}")
    assert x509.load_pem_x509_certificate(got.encode()) == new_cert and chain
    # What the new subordinate issues chains to the same root.
    leaf_arn = issue(container, caller, IssueRequest(result.arn, leaf_csr("leaf.rotation.test"),
                                                     SigningAlgorithm.SHA256WITHECDSA,
                                                     Validity(30, ValidityPeriodType.DAYS)))
    drain(container)
    leaf = x509.load_pem_x509_certificate(container.issuance.get(caller, result.arn, leaf_arn)[0].encode())
    openssl_verify(tmp_path, parent_cert, leaf, [new_cert])


def test_a_subordinate_of_an_outside_parent_waits_for_its_certificate(world: World) -> None:
    container, caller, clock = world
    outside_key = ec.generate_private_key(ec.SECP256R1())
    outside_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Outside Root")])
    now = clock.now()
    outside = (x509.CertificateBuilder().subject_name(outside_name).issuer_name(outside_name)
               .public_key(outside_key.public_key()).serial_number(7).not_valid_before(now - timedelta(days=1))
               .not_valid_after(now + timedelta(days=3650))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
               .sign(outside_key, hashes.SHA256()))
    old_arn = create_ca(container, caller, AuthorityType.SUBORDINATE, "Outside Issuing")
    csr = x509.load_pem_x509_csr(container.authorities.csr(caller, old_arn).encode())
    signed = (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(outside_name)
              .public_key(csr.public_key()).serial_number(8).not_valid_before(now - timedelta(hours=1))
              .not_valid_after(now + timedelta(days=365))
              .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
              .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
              .add_extension(x509.SubjectKeyIdentifier.from_public_key(csr.public_key()), critical=False)
              .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(outside_key.public_key()),
                             critical=False)
              .sign(outside_key, hashes.SHA256()))
    container.authorities.import_certificate(caller, old_arn, signed.public_bytes(serialization.Encoding.PEM),
                                             outside.public_bytes(serialization.Encoding.PEM))
    result = rotate(container, caller, old_arn)
    assert result.status == "PENDING_CERTIFICATE" and result.parent_arn is None and result.csr
    assert container.authorities.describe(caller, result.arn).status is AuthorityStatus.PENDING_CERTIFICATE
    new_csr = x509.load_pem_x509_csr(result.csr.encode())
    assert new_csr.subject == csr.subject and spki(new_csr.public_key()) != spki(csr.public_key())


def test_rotation_refuses_a_ca_without_a_certificate(world: World) -> None:
    container, caller, _ = world
    pending = create_ca(container, caller, AuthorityType.ROOT, "Not Yet")
    with pytest.raises(InvalidStateError) as refused:
        asyncio.run(container.rotation.rotate(caller, pending))
    assert refused.value.field == "CertificateAuthorityArn" and "PENDING_CERTIFICATE" in refused.value.message
    parent = root(container, caller, "Disabled Parent")
    sub = create_ca(container, caller, AuthorityType.SUBORDINATE, "Under Disabled")
    activate(container, caller, sub, parent)
    container.authorities.update(caller, parent, AuthorityStatus.DISABLED, None)
    before = len(container.authorities.list(caller, None, None, None)[0])
    with pytest.raises(InvalidStateError) as disabled:
        asyncio.run(container.rotation.rotate(caller, sub))
    assert "parent CA" in disabled.value.message and "DISABLED" in disabled.value.message
    assert len(container.authorities.list(caller, None, None, None)[0]) == before  # nothing was created


# -- re-issue --------------------------------------------------------------------------------------------------------
def test_reissue_moves_a_mixed_fleet_at_its_rate_and_revokes_the_old(world: World, tmp_path: Path) -> None:
    container, caller, _ = world
    old_arn = root(container, caller)
    acm_arns, pca_arns = fleet(container, caller, old_arn, 100, 100)
    new_arn = rotate(container, caller, old_arn).arn
    old_cert, new_cert = ca_certificate(container, caller, old_arn), ca_certificate(container, caller, new_arn)
    old_pca = {arn: x509.load_pem_x509_certificate(container.issuance.get(caller, old_arn, arn)[0].encode())
               for arn in pca_arns}
    with container.database.read() as session:
        old_acm = {row.arn: x509.load_pem_x509_certificate((row.certificate_pem or "").encode())
                   for row in session.scalars(select(CertificateRow).where(CertificateRow.arn.in_(acm_arns)))}

    with worker_running(container):
        started = time.monotonic()
        record, plan = container.reissue.start(caller, old_arn, new_arn, "50/s", True, False)
        assert plan is None and record.total == 200 and record.state == "RUNNING"

        def ended() -> bool:
            return container.reissue.describe(caller, record.id or "").state != "RUNNING"

        wait_for(ended, 60, "the re-issue run")
        elapsed = time.monotonic() - started
        run = container.reissue.describe(caller, record.id or "")
        assert run.state == "SUCCEEDED" and (run.done, run.failed, run.total) == (200, 0, 200), run
        assert run.finished_at is not None and run.message
        # 200 at 50/s, in batches of 25 as the bucket (empty at first) fills: about 4 s, never less.
        assert 50 * 0.7 <= 200 / elapsed <= 50 * 1.02, f"{200 / elapsed:.1f}/s"
        old_id = old_arn.rsplit("/", 1)[-1]

        def crl_lists_them() -> bool:
            crl = container.revocation.crl(old_id)
            return crl is not None and len(list(x509.load_der_x509_crl(crl))) == 200

        wait_for(crl_lists_them, 30, "the old CA's CRL")

    items = items_of(container, record.id or "")
    assert len(items) == 200 and {i.state for i in items} == {"REVOKED"} and not any(i.error for i in items)
    assert sorted(i.kind for i in items) == ["ACM"] * 100 + ["PCA"] * 100
    crl = x509.load_der_x509_crl(container.revocation.crl(old_id) or b"")
    assert crl.is_signature_valid(old_cert.public_key())  # type: ignore[arg-type]
    revoked = {format(entry.serial_number, "x"): entry for entry in crl}
    assert set(revoked) == {i.source_serial for i in items}
    assert {e.extensions.get_extension_for_class(x509.CRLReason).value.reason for e in revoked.values()} == \
        {x509.ReasonFlags.superseded}

    # ACM certificates: the same ARN, a new key from the new CA, a REISSUE version.
    with container.database.read() as session:
        rows = {row.arn: row for row in session.scalars(select(CertificateRow).where(CertificateRow.arn.in_(acm_arns)))}
        versions = session.execute(select(CertificateVersionRow.certificate_id, func.count()).where(
            CertificateVersionRow.action == "REISSUE").group_by(CertificateVersionRow.certificate_id)).all()
    assert {count for _, count in versions} == {1} and len(versions) == 100
    for arn, row in rows.items():
        assert row.authority_arn == new_arn and row.status == "ISSUED"
        now_cert = x509.load_pem_x509_certificate((row.certificate_pem or "").encode())
        now_cert.verify_directly_issued_by(new_cert)
        assert spki(now_cert.public_key()) != spki(old_acm[arn].public_key())
        assert now_cert.subject == old_acm[arn].subject
    openssl_verify(tmp_path, new_cert, x509.load_pem_x509_certificate((rows[acm_arns[0]].certificate_pem or "").encode()))
    assert ocsp_status(container, old_id, old_acm[acm_arns[0]], old_cert) is ocsp.OCSPCertStatus.REVOKED

    # IssueCertificate certificates: a new one from the new CA for the same key, subject, extensions, validity length.
    by_old = {i.source_serial: i for i in items if i.kind == "PCA"}
    for old_leaf in old_pca.values():
        item = by_old[format(old_leaf.serial_number, "x")]
        assert item.certificate_arn == f"{new_arn}/certificate/{item.target_serial}"
        got, chain = container.issuance.get(caller, new_arn, item.certificate_arn or "")
        leaf = x509.load_pem_x509_certificate(got.encode())
        assert chain and x509.load_pem_x509_certificate(chain.encode()) == new_cert
        leaf.verify_directly_issued_by(new_cert)
        assert spki(leaf.public_key()) == spki(old_leaf.public_key()) and leaf.subject == old_leaf.subject
        assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == \
            old_leaf.not_valid_after_utc - old_leaf.not_valid_before_utc
        same = {e.oid for e in old_leaf.extensions} == {e.oid for e in leaf.extensions}
        assert same and leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName) == \
            old_leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        assert ocsp_status(container, new_arn.rsplit("/", 1)[-1], leaf, new_cert) is ocsp.OCSPCertStatus.GOOD
    first = old_pca[pca_arns[0]]
    assert ocsp_status(container, old_id, first, old_cert) is ocsp.OCSPCertStatus.REVOKED
    openssl_verify(tmp_path, new_cert, x509.load_pem_x509_certificate(
        container.issuance.get(caller, new_arn, by_old[format(first.serial_number, "x")].certificate_arn or "")[0]
        .encode()))

    # A second run finds nothing left to move.
    again, _ = container.reissue.start(caller, old_arn, new_arn, "50/s", False, False)
    assert again.total == 0
    run_to_end(container.reissue, again.id or "")
    assert container.reissue.describe(caller, again.id or "").state == "SUCCEEDED"
    page, token = container.reissue.items(caller, record.id or "", 150, None)
    rest, end = container.reissue.items(caller, record.id or "", 150, token)
    assert len(page) == 150 and len(rest) == 50 and end is None


def test_a_run_stopped_between_batches_resumes_with_every_certificate_once(world: World) -> None:
    container, caller, _ = world
    old_arn = root(container, caller)
    fleet(container, caller, old_arn, 60, 60)
    new_arn = rotate(container, caller, old_arn).arn
    record, _ = container.reissue.start(caller, old_arn, new_arn, "1000/s", False, False)
    first = fresh_service(container)
    assert first.step(record.id or "") and first.step(record.id or "")  # 50 ACM certificates, then the other 10
    halfway = container.reissue.describe(caller, record.id or "")
    assert halfway.state == "RUNNING" and halfway.done == 60
    # The worker that ran those batches is gone; another takes the run over from its cursor.
    run_to_end(fresh_service(container), record.id or "")
    assert_every_certificate_once(container, caller, record.id or "", new_arn, 120)


def assert_every_certificate_once(container: Container, caller: Caller, reissue_id: str, new_arn: str,
                                  total: int) -> None:
    run = container.reissue.describe(caller, reissue_id)
    assert run.state == "SUCCEEDED" and (run.done, run.failed, run.total) == (total, 0, total), run
    items = items_of(container, reissue_id)
    assert len(items) == total and len({(i.kind, i.source_serial) for i in items}) == total
    new_id = new_arn.rsplit("/", 1)[-1]
    with container.database.read() as session:
        versions = session.execute(select(CertificateVersionRow.certificate_id, func.count()).where(
            CertificateVersionRow.action == "REISSUE").group_by(CertificateVersionRow.certificate_id)).all()
        reissued = session.scalars(select(IssuedCertificateRow.request).where(
            IssuedCertificateRow.authority_id == new_id, IssuedCertificateRow.template_arn.not_like("%RootCA%"))).all()
    assert {count for _, count in versions} == {1} and len(versions) == sum(i.kind == "ACM" for i in items)
    from_pca = [r["reissued_from"] for r in reissued if r.get("reissued_from")]
    assert len(from_pca) == len(set(from_pca)) == sum(i.kind == "PCA" for i in items)


_KILLED_WORKER = """
import sys, threading
from datetime import datetime
from pathlib import Path
from certsmith.domain.clock import FixedClock
from certsmith.services.wiring import build
from certsmith.settings import Settings
settings = Settings(data_dir=Path(sys.argv[1]), database_url=sys.argv[2] or None)
container = build(settings, FixedClock(datetime.fromisoformat(sys.argv[3])), prepare=False)
container.worker().run_forever(threading.Event())
"""


def test_a_killed_worker_leaves_a_run_that_resumes_with_every_certificate_once(world: World, tmp_path: Path) -> None:
    container, caller, clock = world
    old_arn = root(container, caller)
    fleet(container, caller, old_arn, 80, 70)
    new_arn = rotate(container, caller, old_arn).arn
    record, _ = container.reissue.start(caller, old_arn, new_arn, "100/s", True, False)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    log = tmp_path / "worker.log"
    with log.open("wb") as output:
        worker = subprocess.Popen([sys.executable, "-c", _KILLED_WORKER, str(container.settings.data_dir),
                                   container.settings.database_url or "", clock.now().isoformat()],
                                  env=env, stdout=output, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: container.reissue.describe(caller, record.id or "").done >= 50, 90, "the first batches")
        finally:
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait(timeout=30)
    killed_at = container.reissue.describe(caller, record.id or "")
    assert killed_at.state == "RUNNING" and 50 <= killed_at.done < 150, (killed_at, log.read_text())
    # The job is still leased to the dead worker; once its lease has run out, a worker here takes it over.
    clock.advance(timedelta(minutes=10))
    with worker_running(container):
        wait_for(lambda: container.reissue.describe(caller, record.id or "").state != "RUNNING", 90, "the resumed run")
    assert_every_certificate_once(container, caller, record.id or "", new_arn, 150)
    assert {i.state for i in items_of(container, record.id or "")} == {"REVOKED"}
    with container.database.read() as session:
        assert session.scalar(select(func.count()).select_from(JobRow).where(JobRow.kind == "pca.reissue")) == 0


def test_dry_run_changes_nothing(world: World) -> None:
    container, caller, _ = world
    old_arn = root(container, caller)
    acm_arns, pca_arns = fleet(container, caller, old_arn, 7, 6)
    new_arn = rotate(container, caller, old_arn).arn

    def snapshot() -> tuple[Any, ...]:
        with container.database.read() as session:
            return (session.scalar(select(func.count()).select_from(CaReissueRow)),
                    session.scalar(select(func.count()).select_from(JobRow).where(JobRow.kind == "pca.reissue")),
                    session.scalar(select(func.count()).select_from(IssuedCertificateRow)),
                    sorted((r.arn, r.authority_arn, r.serial) for r in session.scalars(select(CertificateRow))))

    before = snapshot()
    record, plan = container.reissue.start(caller, old_arn, new_arn, "10/m", True, True)
    assert snapshot() == before
    assert record.id is None and record.state == "DRY_RUN" and record.total == 13 and abs(record.rate - 1 / 6) < 1e-9
    assert plan is not None and (plan.acm, plan.pca) == (7, 6)
    assert [s.kind for s in plan.samples] == ["ACM"] * 5 + ["PCA"] * 5
    assert {s.certificate_arn for s in plan.samples if s.kind == "ACM"} <= set(acm_arns)
    assert {s.certificate_arn for s in plan.samples if s.kind == "PCA"} <= set(pca_arns)


def test_refusals_name_the_field(world: World) -> None:
    container, caller, _ = world
    old_arn = root(container, caller)
    new_arn = rotate(container, caller, old_arn).arn
    rsa = root(container, caller, "RSA Root", "RSA_2048")
    pending = create_ca(container, caller, AuthorityType.ROOT, "Pending")
    other_account = old_arn.replace(f":{caller.account_id}:", ":999999999999:")

    def refused(error: type[Exception], field: str | None, words: str, *args: Any) -> None:
        source, target, rate, revoke = (list(args) + [old_arn, new_arn, "50/s", False][len(args):])[:4]
        with pytest.raises(error) as raised:
            container.reissue.start(caller, source, target, rate, revoke, False)
        assert getattr(raised.value, "field", None) == field and words in str(raised.value), str(raised.value)

    refused(InvalidArgsError, "TargetCertificateAuthorityArn", "source CA itself", old_arn, old_arn)
    refused(InvalidStateError, "TargetCertificateAuthorityArn", "PENDING_CERTIFICATE", old_arn, pending)
    refused(InvalidArgsError, "TargetCertificateAuthorityArn", "999999999999", old_arn, other_account)
    refused(InvalidArgsError, "TargetCertificateAuthorityArn", "key family", old_arn, rsa)
    refused(InvalidArnError, "TargetCertificateAuthorityArn", "", old_arn, "arn:aws:acm-pca:nope")
    refused(ResourceNotFoundError, None, "was not found", old_arn,
            old_arn.rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000")
    for rate, words in (("fast", "not a rate"), ("0/s", "above zero"), ("1001/s", "limit of 1000/s"),
                        ("60001/m", "limit of 1000/s"), ("50", "not a rate")):
        refused(ValidationError, "Rate", words, old_arn, new_arn, rate)
    assert parse_rate("10/m") == pytest.approx(1 / 6) and parse_rate("0.5/s") == 0.5 and parse_rate("1000/s") == 1000
    container.authorities.update(caller, new_arn, AuthorityStatus.DISABLED, None)
    refused(InvalidStateError, "TargetCertificateAuthorityArn", "DISABLED")
    container.authorities.update(caller, new_arn, AuthorityStatus.ACTIVE, None)
    container.authorities.delete(caller, pending, 7)
    refused(InvalidStateError, "RevokeSource", "DELETED", pending, new_arn, "50/s", True)

    record, _ = container.reissue.start(caller, old_arn, new_arn, "50/s", False, False)
    refused(ConflictError, "SourceCertificateAuthorityArn", record.id or "")
    with pytest.raises(ResourceNotFoundError):
        container.reissue.describe(caller, "00000000-0000-0000-0000-000000000000")
    with pytest.raises(ResourceNotFoundError):
        container.reissue.describe(Caller("999999999999", caller.region, "someone"), record.id or "")


def test_a_slow_batch_is_cut_short_and_the_rest_follows(world: World) -> None:
    container, caller, _ = world
    old_arn = root(container, caller)
    fleet(container, caller, old_arn, 12, 0)
    new_arn = rotate(container, caller, old_arn).arn
    record, _ = container.reissue.start(caller, old_arn, new_arn, "1000/s", False, False)
    seconds = iter(range(0, 10**6, 11))  # every look at the time finds 11 s more gone: signing looks slow
    runner = ReissueRunner(container.database, container.jobs, sealer(container), container.clock, container.signal,
                           container.issuance, container.recorder, container.settings.effective_public_url,
                           ticker=lambda: float(next(seconds)), sleep=lambda _seconds: None)
    assert runner.step(record.id or "")
    # Signing stopped once 30 s had gone (after the third certificate), and what was signed is committed.
    assert container.reissue.describe(caller, record.id or "").done == 3
    while runner.step(record.id or ""):
        pass
    assert_every_certificate_once(container, caller, record.id or "", new_arn, 12)
