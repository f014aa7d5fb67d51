"""The validation job: is each name's CNAME or HTTP redirect in place? Then CAA, then the order. Never in a request."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from ...dns.resolve import DnsLookupError, Resolvers
from ...domain.acm import CertificateStatus, FailureReason
from ...domain.certsmith_events import validation_failed
from ...domain.clock import Clock
from ...domain.public_names import CaaRecord, caa_decision
from ...store.database import Database
from ...store.jobs import JobQueue
from ...store.tables import CertificateRow, IssuerRow
from ...worker.loop import RunLater
from ..events.outbox import EventOutbox
from ..ports import WorkSignal
from ..renewal.recorder import issuer_of
from .challenges import ChallengeStore
from .http_validation import HttpRedirectCheck
from .issuers import IssuerService

__all__ = ["ORDER_JOB", "VALIDATION_TIMEOUT", "ValidationService", "record_matches", "tell_validation_failed"]

ORDER_JOB = "public.order"
VALIDATION_TIMEOUT = timedelta(hours=72)
log = logging.getLogger("certsmith.validation")


def record_matches(seen: tuple[str, ...], expected: str) -> bool:
    """Whether a CNAME chain (targets in order) reaches the expected target (case and trailing dot ignored)."""
    want = expected.rstrip(".").lower()
    return any(target.rstrip(".").lower() == want for target in seen)


def tell_validation_failed(session: Session, outbox: EventOutbox, row: CertificateRow, reason: str, message: str,
                           now: datetime, *, failed_names: Sequence[str] = (), issuer_arn: str | None = None) -> None:
    """Write Certsmith Validation Failed for ``row`` (just stored FAILED or VALIDATION_TIMED_OUT) in its transaction."""
    method = next((v.get("ValidationMethod") for v in row.validations or [] if v.get("ValidationMethod")), None)
    outbox.add(session, row.account_id, row.region, validation_failed(
        row.arn, list(row.names), reason, message, now, failed_names=failed_names, issuer=issuer_of(row),
        issuer_arn=issuer_arn, validation_method=method), now)


def next_check(age: timedelta) -> timedelta:
    """Poll often while a request is young (the records are usually being added), less as it ages."""
    return min(timedelta(minutes=10), max(timedelta(seconds=1), age / 8))


class ValidationService:
    def __init__(self, database: Database, jobs: JobQueue, clock: Clock, signal: WorkSignal, resolvers: Resolvers,
                 challenges: ChallengeStore, issuers: IssuerService, http: HttpRedirectCheck,
                 outbox: EventOutbox | None = None) -> None:
        self._db, self._jobs, self._clock, self._signal = database, jobs, clock, signal
        self._resolvers, self._challenges, self._issuers, self._http = resolvers, challenges, issuers, http
        self._outbox = outbox or EventOutbox()

    def run(self, payload: dict[str, Any]) -> None:
        certificate_id = payload["certificate_id"]
        with self._db.read() as session:
            row = session.get(CertificateRow, certificate_id)
            if row is None or row.status != CertificateStatus.PENDING_VALIDATION:
                return
            validations = [dict(v) for v in row.validations or []]
            created_at, issuer_name = row.created_at, row.issuer_name
        now = self._clock.now()
        if now - created_at >= VALIDATION_TIMEOUT:
            self._time_out(certificate_id)
            return
        if any(v.get("ValidationMethod") == "EMAIL" for v in validations):
            return  # approved through the mailed links, not checked here
        direct = (row.acme or {}).get("direct")
        waiting = [] if direct else self.check_names(validations)
        done = not waiting
        with self._db.transaction() as session:
            current = session.get(CertificateRow, certificate_id)
            if current is None or current.status != CertificateStatus.PENDING_VALIDATION:
                return
            current.validations = validations
            if not done:
                current.acme = {**(current.acme or {}), "message": "waiting for " + "; ".join(waiting),
                                "checked_at": now.isoformat()}
            elif not direct and current.validated_at is None:
                current.validated_at = self._clock.now()  # every record found (direct: the order validates)
        if not done:
            raise RunLater(next_check(now - created_at), "validation records not in place yet")
        issuer = self._issuers.by_name(row.account_id, row.region, issuer_name)
        refusal = self._caa_refusal(row.names, issuer)
        with self._db.transaction() as session:
            current = session.get(CertificateRow, certificate_id)
            if current is None or current.status != CertificateStatus.PENDING_VALIDATION:
                return
            if refusal is not None:
                current.status, current.failure_reason = CertificateStatus.FAILED.value, FailureReason.CAA_ERROR.value
                current.acme = {**(current.acme or {}), "message": refusal,
                                "problem": {"type": "urn:ietf:params:acme:error:caa", "detail": refusal}}
                tell_validation_failed(session, self._outbox, current, FailureReason.CAA_ERROR.value, refusal,
                                       self._clock.now(), issuer_arn=issuer.arn if issuer is not None else None)
                return
            current.acme = {**(current.acme or {}), "message": "every name validated; ordering the certificate"}
            self._jobs.enqueue(session, ORDER_JOB, {"certificate_id": certificate_id}, self._clock.now(),
                               max_attempts=20)
        self._signal.notify()

    def check_names(self, validations: list[dict[str, Any]]) -> list[str]:
        """Check each pending name's CNAME or HTTP redirect, marking those in place SUCCESS; what is still missing.

        Used before a first order and before each renewal (the persistent records must still be there)."""
        seen: dict[str, str | None] = {}  # record name or host → what is missing (None: in place)
        for validation in validations:
            if validation["ValidationStatus"] == "SUCCESS":
                continue
            name = validation["DomainName"]
            record, redirect = validation.get("ResourceRecord"), validation.get("HttpRedirect")
            if record is not None and record["Name"] not in seen:
                answers = self._resolvers.cname(record["Name"].rstrip("."), until=record["Value"])
                found = bool(answers) and all(record_matches(a.values, record["Value"]) for a in answers)
                seen[record["Name"]] = None if found else f"the validation CNAME of {name}"
            elif redirect is not None and name not in seen:
                finding = self._http.check(name, redirect)
                seen[name] = None if finding.ok else f"the HTTP redirect of {name} ({finding.detail})"
            missing = seen[record["Name"] if record is not None else name]
            if missing is None:
                validation["ValidationStatus"] = "SUCCESS"
        return [m for m in dict.fromkeys(seen.values()) if m is not None]

    def _caa_refusal(self, names: list[str], issuer: IssuerRow | None) -> str | None:
        """Why CAA forbids the issuer for one of the names, or None. A lookup that fails is retried later."""
        identities = list(issuer.caa_identities) if issuer is not None else []
        for name in names:
            try:
                found = self._resolvers.caa(name)
            except DnsLookupError as error:
                raise RunLater(timedelta(seconds=30), f"CAA lookup failed: {error}") from None
            if found is None:
                continue
            node, records = found
            decision = caa_decision(node, [CaaRecord(*r) for r in records], identities, name.startswith("*."))
            if not decision.allowed:
                return decision.reason
        return None

    def _time_out(self, certificate_id: str) -> None:
        with self._db.transaction() as session:
            row = session.get(CertificateRow, certificate_id)
            if row is None or row.status != CertificateStatus.PENDING_VALIDATION:
                return
            row.status = CertificateStatus.VALIDATION_TIMED_OUT.value
            row.validations = [{**v, "ValidationStatus": "FAILED" if v["ValidationStatus"] != "SUCCESS" else "SUCCESS"}
                               for v in row.validations or []]
            row.acme = {**(row.acme or {}), "message": "no validation within 72 hours; delete the certificate and "
                                                       "request a new one once the records are in place"}
            failed = [v["DomainName"] for v in row.validations if v["ValidationStatus"] != "SUCCESS"]
            tell_validation_failed(session, self._outbox, row, CertificateStatus.VALIDATION_TIMED_OUT.value,
                                   f"no validation of {', '.join(failed) or 'its names'} within 72 hours",
                                   self._clock.now(), failed_names=failed)
        self._challenges.clear(certificate_id)
        log.info("certificate %s timed out waiting for validation", certificate_id)
