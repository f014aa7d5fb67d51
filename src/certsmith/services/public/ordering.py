"""The order job: once every name is validated, get the certificate from the issuer (ACME CA or private CA)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from ...acme import AcmeProblem, AcmeRateLimited, AcmeSession, AcmeUnavailable, PlacedOrder
from ...domain.acm import CertificateStatus, FailureReason, certificate_facts
from ...domain.algorithms import KeyAlgorithm, generate_private_key
from ...domain.clock import Clock
from ...domain.public_names import validation_base
from ...store.database import Database
from ...store.tables import CertificateRow, IssuerRow
from ...worker.loop import RunLater
from ..acm.private_signing import PrivateMaterial, certificate_request, sign_private, store_material
from ..pca.issuance import IssuanceService
from ..ports import KeyVault
from .challenges import ChallengeStore, ValidationRecords
from .issuers import ACME, IssuerService

__all__ = ["OrderingService"]

log = logging.getLogger("certsmith.ordering")
ORDER_SECONDS = 120.0  # how long one attempt waits for the CA to validate and sign
# ACME problems about the names themselves: the CA checked and said no.
_RECHECKED = ("unauthorized", "incorrectResponse", "dns")  # what a stale resolver cache on the CA's side looks like
_DENIED = ("unauthorized", "dns", "incorrectResponse", "rejectedIdentifier", "connection", "unsupportedIdentifier")


def split_chain(full_chain: str) -> tuple[str, str]:
    """(leaf PEM, rest of the chain PEM) from a PEM bundle, leaf first."""
    certificates = x509.load_pem_x509_certificates(full_chain.encode())
    pems = [c.public_bytes(serialization.Encoding.PEM).decode() for c in certificates]
    return pems[0], "".join(pems[1:])


def failure_of(problem: AcmeProblem) -> FailureReason:
    short = problem.type.rsplit(":", 1)[-1]
    if short == "caa":
        return FailureReason.CAA_ERROR
    return FailureReason.DOMAIN_VALIDATION_DENIED if short in _DENIED else FailureReason.OTHER


class OrderingService:
    def __init__(self, database: Database, clock: Clock, vault: KeyVault, issuers: IssuerService,
                 issuance: IssuanceService, records: ValidationRecords, challenges: ChallengeStore,
                 confirm_published: Callable[[str, str, float], bool]) -> None:
        self._db, self._clock, self._vault, self._issuers = database, clock, vault, issuers
        self._issuance, self._records, self._challenges = issuance, records, challenges
        self._confirm = confirm_published

    def run(self, payload: dict[str, Any]) -> None:
        certificate_id = payload["certificate_id"]
        with self._db.read() as session:
            row = session.get(CertificateRow, certificate_id)
            if row is None or row.status != CertificateStatus.PENDING_VALIDATION:
                return
        issuer = self._issuers.by_name(row.account_id, row.region, row.issuer_name)
        if issuer is None:
            self._finish(certificate_id, failure=FailureReason.OTHER,
                         message=f"issuer {row.issuer_name!r} was removed before the certificate was issued")
            return
        if issuer.type != ACME:
            material = sign_private(self._issuance, self._vault, row)
            if isinstance(material, FailureReason):
                self._finish(certificate_id, failure=material, message=f"the private CA refused: {material.value}")
            else:
                self._finish(certificate_id, material=material, message="issued by the private CA")
            return
        self._order(row, issuer)

    # -- ACME -------------------------------------------------------------------------------------------------------
    def _order(self, row: CertificateRow, issuer: IssuerRow) -> None:
        key = generate_private_key(KeyAlgorithm(row.key_algorithm))
        names = list(row.names)
        started = time.monotonic()
        try:
            try:
                chain = self._attempt(row, issuer, key, names)
            except AcmeProblem as problem:
                if problem.type.endswith(":accountDoesNotExist"):  # the CA forgot the account: register again
                    issuer = self._issuers.reregister(issuer)
                    chain = self._attempt(row, issuer, key, names)
                else:
                    raise
        except AcmeProblem as problem:
            self._challenges.clear(row.id)
            retried = int((row.acme or {}).get("denials", 0))
            if problem.code in _RECHECKED and retried < 1:
                # Every CNAME was in place when the order began; a resolver on the CA's side may still have held
                # the previous order's values. One more order, a little later, tells that from a real denial.
                self._note(row.id, f"the ACME CA did not see the challenge ({problem.detail}); ordering once more",
                           denials=retried + 1, problem=problem.as_dict())
                raise RunLater(timedelta(seconds=5), f"ACME challenge not seen: {problem.detail}") from None
            self._finish(row.id, failure=failure_of(problem), problem=problem.as_dict(),
                         message=f"the ACME CA refused: {problem.detail}")
            return
        except AcmeRateLimited as limited:
            self._challenges.clear(row.id)
            wait = limited.retry_after or 60.0
            self._note(row.id, f"the ACME CA's rate limit: trying again in {wait:.0f} s")
            raise RunLater(timedelta(seconds=wait), str(limited)) from None
        except (AcmeUnavailable, TimeoutError) as error:
            self._challenges.clear(row.id)
            retries = int((row.acme or {}).get("retries", 0)) + 1
            wait = getattr(error, "retry_after", None) or min(300.0, 2.0 ** min(retries, 9) / 2)
            self._note(row.id, f"the ACME CA is unavailable ({error}); trying again in {wait:.0f} s", retries=retries)
            raise RunLater(timedelta(seconds=wait), f"ACME CA unavailable: {error}") from None
        self._challenges.clear(row.id)
        leaf, rest = split_chain(chain)
        certificate = x509.load_pem_x509_certificate(leaf.encode())
        material = PrivateMaterial(leaf, rest, self._vault.seal_private_key(key, row.arn), certificate_facts(certificate))
        self._finish(row.id, material=material,
                     message=f"issued by {issuer.name} in {time.monotonic() - started:.2f} s")

    def _attempt(self, row: CertificateRow, issuer: IssuerRow, key: CertificateIssuerPrivateKeyTypes,
                 names: list[str]) -> str:
        with self._issuers.session(issuer) as session:
            return self._attempt_in(session, row, key, names)

    def _attempt_in(self, session: AcmeSession, row: CertificateRow, key: CertificateIssuerPrivateKeyTypes,
                    names: list[str]) -> str:
        deadline = time.monotonic() + ORDER_SECONDS
        order: PlacedOrder = session.new_order(names)
        self._note(row.id, "order placed", order_url=order.url)
        pending = [c for c in order.challenges if c.status != "valid"]
        values = [(self._records.record(row.account_id, c.identifier)[1], c.txt_value) for c in pending]
        self._challenges.publish(row.id, values)
        for owner, value in values:
            if not self._confirm(owner, value, min(10.0, max(0.1, deadline - time.monotonic()))):
                raise AcmeUnavailable(f"the validation zone does not serve the challenge for {owner} yet")
        for challenge in pending:
            session.answer(challenge)
        session.wait_authorizations(order, deadline)
        csr = certificate_request(key, names).public_bytes(serialization.Encoding.PEM)
        return session.finalize(order, csr, deadline)

    # -- outcome ----------------------------------------------------------------------------------------------------
    def _note(self, certificate_id: str, message: str, **extra: Any) -> None:
        with self._db.transaction() as session:
            row = session.get(CertificateRow, certificate_id)
            if row is not None:
                row.acme = {**(row.acme or {}), "message": message, "checked_at": self._clock.now().isoformat(), **extra}

    def _finish(self, certificate_id: str, *, material: PrivateMaterial | None = None,
                failure: FailureReason | None = None, problem: dict[str, Any] | None = None, message: str) -> None:
        with self._db.transaction() as session:
            row = session.get(CertificateRow, certificate_id)
            if row is None or row.status != CertificateStatus.PENDING_VALIDATION:
                return
            state = {**(row.acme or {}), "message": message, "checked_at": self._clock.now().isoformat()}
            if problem is not None:
                state["problem"] = problem
            row.acme = state
            if material is not None:
                store_material(row, material)
                row.status, row.issued_at = CertificateStatus.ISSUED.value, self._clock.now()
                row.validations = [{**v, "ValidationStatus": "SUCCESS"} for v in row.validations or []]
            else:
                assert failure is not None
                row.status, row.failure_reason = CertificateStatus.FAILED.value, failure.value
                if failure in (FailureReason.DOMAIN_VALIDATION_DENIED, FailureReason.CAA_ERROR):
                    named = (problem or {}).get("identifier")  # the name the CA refused; without one, every name
                    row.validations = [{**v, "ValidationStatus": "FAILED"} if not named or
                                       validation_base(v["DomainName"]) == validation_base(str(named)) else v
                                       for v in row.validations or []]
        log.info("certificate %s: %s", certificate_id, message)
