"""The order job: once every name is validated, get the certificate from the issuer (ACME CA or private CA)."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from ...acme import AcmeError, AcmeProblem, AcmeRateLimited, AcmeSession, AcmeUnavailable, PlacedOrder
from ...acme.ari import certificate_id as ari_certificate_id
from ...acme.ari import first_certificate
from ...dns.providers import ProviderError
from ...domain.acm import CertificateStatus, FailureReason, certificate_facts
from ...domain.algorithms import KeyAlgorithm, generate_private_key
from ...domain.clock import Clock
from ...domain.public_names import validation_base
from ...domain.renewal import AriWindow
from ...store.database import Database
from ...store.tables import CertificateRow, IssuerRow
from ...worker.loop import RunLater
from ..acm.private_signing import PrivateMaterial, certificate_request, sign_private, store_material
from ..events.outbox import EventOutbox
from ..pca.issuance import IssuanceService
from ..ports import KeyVault
from ..renewal.recorder import RenewalRecorder
from .dns_providers import DnsProviderService
from .issuers import ACME, IssuerService
from .responders import DirectResponder, Responder, ZoneResponder
from .validation import tell_validation_failed

__all__ = ["OrderRefused", "OrderingService"]
_OUTBOX = EventOutbox()

log = logging.getLogger("certsmith.ordering")
ORDER_SECONDS = 120.0  # how long one attempt waits for the CA to validate and sign
# ACME problems about the names themselves: the CA checked and said no.
_RECHECKED = ("unauthorized", "incorrectResponse", "dns")  # what a stale resolver cache on the CA's side looks like
_COUNTERS = ("denials", "retries")  # the row's acme state that counts one series of attempts
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


class OrderRefused(Exception):
    """The issuer said no about the names (or is gone): not worth trying again as it is."""

    def __init__(self, failure: FailureReason, message: str, problem: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.failure, self.message, self.problem = failure, message, problem


class OrderingService:
    def __init__(self, database: Database, clock: Clock, vault: KeyVault, issuers: IssuerService,
                 issuance: IssuanceService, zone: ZoneResponder, http: Responder, providers: DnsProviderService,
                 recorder: RenewalRecorder) -> None:
        self._db, self._clock, self._vault, self._issuers = database, clock, vault, issuers
        self._issuance, self._zone, self._http, self._providers = issuance, zone, http, providers
        self._recorder = recorder

    def run(self, payload: dict[str, Any]) -> None:
        """The order job of a first issuance: the certificate, or the refusal, is written to the row."""
        certificate_id = payload["certificate_id"]
        with self._db.read() as session:
            row = session.get(CertificateRow, certificate_id)
            if row is None or row.status != CertificateStatus.PENDING_VALIDATION:
                return
        try:
            material, message, authorized_at = self._obtain(row, None, None)
        except OrderRefused as refused:
            self._finish(certificate_id, failure=refused.failure, problem=refused.problem, message=refused.message)
            return
        # With a DNS provider answering DNS-01, validating is the order's part: the names were validated when the
        # ACME CA's authorizations became valid. Otherwise the validation job or the last approval recorded it.
        validated_at = authorized_at if (row.acme or {}).get("direct") else None
        self._finish(certificate_id, material=material, message=message, validated_at=validated_at)

    def obtain(self, row: CertificateRow, *, replaces: str | None = None,
               key: CertificateIssuerPrivateKeyTypes | None = None) -> PrivateMaterial:
        """One attempt to get a certificate for ``row``'s names from its issuer, whatever the row's status.

        A new key of the row's algorithm unless ``key`` is given. ``replaces`` (an ACME CA only) is the ARI id of
        the certificate this one renews (:meth:`replaces_id`); when the CA will not take it, the order is placed
        without it. Raises :class:`OrderRefused` (a refusal; the issuer was removed) or :class:`RunLater` (rate
        limit, CA unavailable, DNS provider failure, the one more order after a denial). The row's ``acme`` state
        keeps the progress and the counters of those retries, which a successful attempt clears.
        """
        material, _, _ = self._obtain(row, replaces, key)
        return material

    def renewal_window(self, row: CertificateRow) -> AriWindow | None:
        """The ACME CA's suggested renewal window (RFC 9773) for the row's certificate, or None.

        None for a private-CA issuer, a CA without renewalInfo, a row without a certificate or one that has expired
        (RFC 9773 asks clients not to ask then), and when the CA cannot be asked now (logged).
        """
        if not row.certificate_pem:
            return None
        now = self._clock.now()
        if row.not_after is not None and row.not_after <= now:
            return None
        issuer = self._issuers.by_name(row.account_id, row.region, row.issuer_name)
        if issuer is None or issuer.type != ACME:
            return None
        try:
            with self._issuers.session(issuer) as session:
                info = session.renewal_info(row.certificate_pem)
        except (AcmeError, ValueError) as error:
            log.warning("certificate %s: no renewal information from issuer %s: %s", row.id, issuer.name, error)
            return None
        if info is None:
            return None
        retry = now + timedelta(seconds=info.retry_after) if info.retry_after is not None else None
        return AriWindow(info.start, info.end, retry, info.explanation_url)

    def replaces_id(self, row: CertificateRow) -> str | None:
        """The ARI certificate id of the row's current certificate (for ``replaces``), or None."""
        if not row.certificate_pem:
            return None
        try:
            return ari_certificate_id(first_certificate(row.certificate_pem))
        except ValueError:
            return None

    def _obtain(self, row: CertificateRow, replaces: str | None,
                key: CertificateIssuerPrivateKeyTypes | None) -> tuple[PrivateMaterial, str, datetime | None]:
        """The material, what to say of it, and when the ACME CA's authorizations were all valid (None: private CA)."""
        issuer = self._issuers.by_name(row.account_id, row.region, row.issuer_name)
        if issuer is None:
            first = row.status == CertificateStatus.PENDING_VALIDATION
            when = " before the certificate was issued" if first else "; the certificate cannot be renewed from it"
            raise OrderRefused(FailureReason.OTHER, f"issuer {row.issuer_name!r} was removed{when}")
        if issuer.type != ACME:
            material = sign_private(self._issuance, self._vault, row, key)
            if isinstance(material, FailureReason):
                raise OrderRefused(material, f"the private CA refused: {material.value}")
            return material, "issued by the private CA", None
        return self._order(row, issuer, replaces, key)

    # -- ACME -------------------------------------------------------------------------------------------------------
    def _order(self, row: CertificateRow, issuer: IssuerRow, replaces: str | None,
               key: CertificateIssuerPrivateKeyTypes | None) -> tuple[PrivateMaterial, str, datetime]:
        if key is None:
            key = generate_private_key(KeyAlgorithm(row.key_algorithm))
        names = list(row.names)
        started = time.monotonic()
        responder = self._responder(row)
        try:
            try:
                chain, authorized_at = self._attempt(row, issuer, key, names, responder, replaces)
            except AcmeProblem as problem:
                if problem.type.endswith(":accountDoesNotExist"):  # the CA forgot the account: register again
                    issuer = self._issuers.reregister(issuer)
                    chain, authorized_at = self._attempt(row, issuer, key, names, responder, replaces)
                else:
                    raise
        except AcmeProblem as problem:
            retried = int((row.acme or {}).get("denials", 0))
            if problem.code in _RECHECKED and retried < 1:
                # Every record was in place when the order began; a resolver on the CA's side may still have held
                # the previous order's values. One more order, a little later, tells that from a real denial.
                self._note(row.id, f"the ACME CA did not see the challenge ({problem.detail}); ordering once more",
                           denials=retried + 1, problem=problem.as_dict())
                raise RunLater(timedelta(seconds=5), f"ACME challenge not seen: {problem.detail}") from None
            raise OrderRefused(failure_of(problem), f"the ACME CA refused: {problem.detail}", problem.as_dict()) from None
        except AcmeRateLimited as limited:
            wait = limited.retry_after or 60.0
            self._note(row.id, f"the ACME CA's rate limit: trying again in {wait:.0f} s")
            raise RunLater(timedelta(seconds=wait), str(limited)) from None
        except (AcmeUnavailable, TimeoutError, ProviderError) as error:
            retries = int((row.acme or {}).get("retries", 0)) + 1
            wait = getattr(error, "retry_after", None) or min(300.0, 2.0 ** min(retries, 9) / 2)
            what = "the DNS provider failed" if isinstance(error, ProviderError) else "the ACME CA is unavailable"
            self._note(row.id, f"{what} ({error}); trying again in {wait:.0f} s", retries=retries)
            raise RunLater(timedelta(seconds=wait), f"{what}: {error}") from None
        finally:
            responder.clear(row)
        leaf, rest = split_chain(chain)
        certificate = x509.load_pem_x509_certificate(leaf.encode())
        material = PrivateMaterial(leaf, rest, self._vault.seal_private_key(key, row.arn), certificate_facts(certificate))
        if any(k in (row.acme or {}) for k in _COUNTERS):
            self._forget_counters(row.id)
        return material, f"issued by {issuer.name} in {time.monotonic() - started:.2f} s", authorized_at

    def _responder(self, row: CertificateRow) -> Responder:
        direct = (row.acme or {}).get("direct")
        if direct:
            return DirectResponder(self._providers, str(direct))
        if any(v.get("ValidationMethod") == "HTTP" for v in row.validations or []):
            return self._http
        return self._zone

    def _attempt(self, row: CertificateRow, issuer: IssuerRow, key: CertificateIssuerPrivateKeyTypes,
                 names: list[str], responder: Responder, replaces: str | None) -> tuple[str, datetime]:
        """The full chain, and when every authorization of the order was found valid."""
        with self._issuers.session(issuer) as session:
            deadline = time.monotonic() + ORDER_SECONDS
            order = self._place(session, row, names, responder.challenge_type, replaces)
            self._note(row.id, "order placed", order_url=order.url)
            pending = [c for c in order.challenges if c.status != "valid"]
            responder.publish(row, pending, deadline)
            for challenge in pending:
                session.answer(challenge)
            session.wait_authorizations(order, deadline)
            authorized_at = self._clock.now()
            csr = certificate_request(key, names).public_bytes(serialization.Encoding.PEM)
            return session.finalize(order, csr, deadline), authorized_at

    @staticmethod
    def _place(session: AcmeSession, row: CertificateRow, names: list[str], challenge_type: str,
               replaces: str | None) -> PlacedOrder:
        """newOrder, with ``replaces`` when given; again without it when the CA refuses the order with it."""
        if replaces is None:
            return session.new_order(names, challenge_type=challenge_type)
        try:
            return session.new_order(names, replaces=replaces, challenge_type=challenge_type)
        except (AcmeProblem, AcmeUnavailable) as refused:
            # Only the CA's answer to newOrder itself (it no longer knows the old certificate, it was replaced
            # already; Pebble answers 500 when the names differ); not an outage (502-504, no answer), a rate limit
            # or a forgotten account, which the caller handles.
            if isinstance(refused, AcmeProblem):
                taken = refused.status is not None and refused.code != "accountDoesNotExist"
            else:
                taken = not isinstance(refused, AcmeRateLimited) and (refused.problem or {}).get("status") == 500
            if not taken:
                raise
            log.info("certificate %s: the ACME CA did not take the order as the replacement of %s (%s); "
                     "ordering without it", row.id, replaces, refused)
            return session.new_order(names, challenge_type=challenge_type)

    # -- outcome ----------------------------------------------------------------------------------------------------
    def _forget_counters(self, certificate_id: str) -> None:
        """A certificate was received: the next series of attempts (a renewal) starts with no retries or denials."""
        with self._db.transaction() as session:
            row = session.get(CertificateRow, certificate_id)
            if row is not None and row.acme:
                row.acme = {k: v for k, v in row.acme.items() if k not in _COUNTERS}

    def _note(self, certificate_id: str, message: str, **extra: Any) -> None:
        with self._db.transaction() as session:
            row = session.get(CertificateRow, certificate_id)
            if row is not None:
                row.acme = {**(row.acme or {}), "message": message, "checked_at": self._clock.now().isoformat(), **extra}

    def _finish(self, certificate_id: str, *, material: PrivateMaterial | None = None,
                failure: FailureReason | None = None, problem: dict[str, Any] | None = None, message: str,
                validated_at: datetime | None = None) -> None:
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
                if validated_at is not None and row.validated_at is None:
                    row.validated_at = validated_at
                self._recorder.record(session, row, "ISSUANCE", row.issued_at)
            else:
                assert failure is not None
                row.status, row.failure_reason = CertificateStatus.FAILED.value, failure.value
                if failure in (FailureReason.DOMAIN_VALIDATION_DENIED, FailureReason.CAA_ERROR):
                    named = (problem or {}).get("identifier")  # the name the CA refused; without one, every name
                    row.validations = [{**v, "ValidationStatus": "FAILED"} if not named or
                                       validation_base(v["DomainName"]) == validation_base(str(named)) else v
                                       for v in row.validations or []]
                    failed = [v["DomainName"] for v in row.validations if v["ValidationStatus"] == "FAILED"]
                    tell_validation_failed(session, _OUTBOX, row, failure.value, message, self._clock.now(),
                                           failed_names=failed)
        log.info("certificate %s: %s", certificate_id, message)
