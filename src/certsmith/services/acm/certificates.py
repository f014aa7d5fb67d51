"""ACM certificates: request from a private CA, describe, get, list, delete, tags."""

from __future__ import annotations

import heapq
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from sqlalchemy import select
from sqlalchemy.orm import Session

from ...domain.acm import (
    CertificateStatus,
    CertificateType,
    FailureReason,
    check_domain_name,
    request_names,
)
from ...domain.algorithms import KeyAlgorithm, generate_private_key
from ...domain.arns import CertificateArn
from ...domain.clock import Clock
from ...domain.errors import (
    InternalError,
    InvalidStateError,
    RequestInProgressError,
    ResourceInUseError,
    ResourceNotFoundError,
    ValidationError,
)
from ...domain.tags import check_tags, tags_with, tags_without
from ...store.database import Database
from ...store.jobs import JobQueue
from ...store.tables import CertificateRow, DeployBindingRow
from ..context import Caller
from ..pca.issuance import IssuanceService
from ..ports import KeyVault, WorkSignal
from ..renewal.recorder import RenewalRecorder
from .certificate_records import CertificateFilter, CertificateRecord, list_query, page_token, token_position
from .key_pool import ClaimedKey, KeyPool
from .private_signing import PrivateMaterial, private_validity, sign_private, store_material

__all__ = ["ISSUE_PRIVATE_JOB", "CertificateService", "RequestedCertificate", "earlier_request", "recent_request"]

ISSUE_PRIVATE_JOB = "acm.issue-private"
IDEMPOTENCY_WINDOW = timedelta(hours=1)
REQUEST_KEY_ALGORITHMS = tuple(a.value for a in (KeyAlgorithm.RSA_2048, KeyAlgorithm.RSA_3072, KeyAlgorithm.RSA_4096,
                                                 KeyAlgorithm.EC_prime256v1, KeyAlgorithm.EC_secp384r1,
                                                 KeyAlgorithm.EC_secp521r1))
log = logging.getLogger("certsmith.certificates")


@dataclass(frozen=True, slots=True)
class RequestedCertificate:
    domain_name: str
    subject_alternative_names: list[str]
    authority_arn: str | None
    key_algorithm: str
    idempotency_token: str | None
    options: dict[str, Any]
    tags: list[dict[str, str]]
    validation_method: str | None = None
    domain_validation_options: tuple[dict[str, str], ...] = ()


def earlier_request(session: Session, caller: Caller, token: str, now: datetime) -> str | None:
    """The certificate requested with this IdempotencyToken within the last hour, if any."""
    return session.scalar(select(CertificateRow.arn).where(
        CertificateRow.account_id == caller.account_id, CertificateRow.region == caller.region,
        CertificateRow.idempotency_token == token,
        CertificateRow.created_at > now - IDEMPOTENCY_WINDOW))


def recent_request(database: Database, caller: Caller, token: str | None, now: datetime) -> str | None:
    """earlier_request in a read of its own (a first look, before the request's transaction looks again)."""
    if token is None:
        return None
    with database.read() as reader:
        return earlier_request(reader, caller, token, now)


class CertificateService:
    def __init__(self, database: Database, jobs: JobQueue, vault: KeyVault, clock: Clock, signal: WorkSignal,
                 issuance: IssuanceService, pool: KeyPool, recorder: RenewalRecorder) -> None:
        self._db, self._jobs, self._vault, self._clock, self._signal = database, jobs, vault, clock, signal
        self._issuance, self._pool, self._recorder = issuance, pool, recorder

    # -- request --------------------------------------------------------------------------------------------------
    def request(self, caller: Caller, request: RequestedCertificate) -> str:
        """Store the certificate ISSUED when its CA signs at once; else PENDING_VALIDATION with an issue job."""
        names = request_names(request.domain_name, request.subject_alternative_names, check_domain_name)
        check_tags(request.tags)
        private_validity(request.tags)
        if request.authority_arn is None:
            raise ValidationError("certsmith issues certificates from a private CA: give CertificateAuthorityArn "
                                  "(public certificates validated by DNS are not offered yet)",
                                  field="CertificateAuthorityArn")
        if request.key_algorithm not in REQUEST_KEY_ALGORITHMS:
            raise ValidationError(f"KeyAlgorithm {request.key_algorithm} cannot be requested (it can only be "
                                  f"imported); use one of {', '.join(REQUEST_KEY_ALGORITHMS)}", field="KeyAlgorithm")
        now = self._clock.now()
        token = request.idempotency_token
        existing = recent_request(self._db, caller, token, now)
        if existing is not None:
            return existing
        arn = CertificateArn.new(caller.region, caller.account_id)
        options = {"CertificateTransparencyLoggingPreference": "ENABLED", "Export": "DISABLED", **request.options}
        row = CertificateRow(
            id=arn.certificate_id, arn=str(arn), account_id=caller.account_id, region=caller.region,
            type=CertificateType.PRIVATE.value, status=CertificateStatus.PENDING_VALIDATION.value,
            domain_name=names[0], names=names, key_algorithm=request.key_algorithm,
            authority_arn=request.authority_arn, key_usages=[], extended_key_usages=[], options=options,
            export_option=options["Export"], exported=False, in_use_by=[], tags=request.tags,
            key_pair_origin="AWS_MANAGED", idempotency_token=token, created_at=now)
        material, unused = self._sign_at_once(row)
        with self._db.transaction() as session:
            # Another process may have stored this token meanwhile (the read above was outside this transaction).
            existing = None if token is None else earlier_request(session, caller, token, now)
            if existing is not None:
                if unused is not None:
                    self._pool.give_back(session, unused)
                return existing
            session.add(row)
            if material is not None:
                store_material(row, material)
                row.status, row.issued_at = CertificateStatus.ISSUED.value, self._clock.now()
                self._recorder.record(session, row, "ISSUANCE", row.issued_at)
            else:
                self._jobs.enqueue(session, ISSUE_PRIVATE_JOB, {"certificate_id": arn.certificate_id}, now)
                if unused is not None:
                    self._pool.give_back(session, unused)
        if material is None:
            self._signal.notify()
        return str(arn)

    def _sign_at_once(self, row: CertificateRow) -> tuple[PrivateMaterial | None, ClaimedKey | None]:
        """(The CA's signature on a ready key, None) when the CA signs now; else (None, a claimed key to give back).

        EC keys are generated here (25 to 110 µs); RSA keys come from the pool, and when it has none the
        request takes the job path, whose worker generates the key.
        """
        algorithm = KeyAlgorithm(row.key_algorithm)
        claimed: ClaimedKey | None = None
        key: CertificateIssuerPrivateKeyTypes
        if algorithm.family == "EC":
            key = generate_private_key(algorithm)
        elif self._pool.pools(algorithm):
            claimed = self._pool.claim(algorithm)
            if claimed is None:
                return None, None
            try:
                key = self._pool.open(claimed)
            except InternalError as error:  # a spare key is disposable: drop it, the job makes a new key
                log.warning("%s; it is dropped", error.message)
                return None, None
        else:
            return None, None
        try:
            outcome = sign_private(self._issuance, self._vault, row, key)
        except Exception as error:  # noqa: BLE001 - e.g. the database: the job retries it with backoff
            # Whether the CA recorded the certificate is unknown, so the key is not given back.
            log.warning("signing %s at once failed (%s); its issue job will retry", row.arn, type(error).__name__)
            return None, None
        if isinstance(outcome, FailureReason):  # the CA refused before signing; the job records why
            return None, claimed
        return outcome, None

    def run_issue_job(self, payload: dict[str, Any]) -> None:
        """Generate the key pair, have the CA sign it, store both: ISSUED, or FAILED with the CA's reason."""
        with self._db.read() as session:
            row = session.get(CertificateRow, payload["certificate_id"])
        if row is None or row.status != CertificateStatus.PENDING_VALIDATION or row.authority_arn is None:
            return
        material = sign_private(self._issuance, self._vault, row)
        if isinstance(material, FailureReason):
            self._fail(payload["certificate_id"], material)
            return
        with self._db.transaction() as session:
            current = session.get(CertificateRow, payload["certificate_id"])
            if current is None or current.status != CertificateStatus.PENDING_VALIDATION:
                return
            store_material(current, material)
            current.status, current.issued_at = CertificateStatus.ISSUED.value, self._clock.now()
            self._recorder.record(session, current, "ISSUANCE", current.issued_at)

    def _fail(self, certificate_id: str, reason: FailureReason) -> None:
        with self._db.transaction() as session:
            row = session.get(CertificateRow, certificate_id)
            if row is not None and row.status == CertificateStatus.PENDING_VALIDATION:
                row.status, row.failure_reason = CertificateStatus.FAILED.value, reason.value

    def mark_failed(self, payload: dict[str, Any]) -> None:
        self._fail(payload["certificate_id"], FailureReason.OTHER)

    # -- read -----------------------------------------------------------------------------------------------------
    def load(self, caller: Caller, arn_text: str, session: Session | None = None, *, lock: bool = False) -> CertificateRow:
        """The caller's certificate, read in ``session`` (a write transaction; ``lock``: its row locked until the
        transaction ends, as CreateBinding and DeleteBinding lock it) or in a read of its own."""
        arn = CertificateArn.parse(arn_text)
        caller.check_owns(arn.region, arn.account, arn_text, "CertificateArn", "certificate")
        if session is None:
            with self._db.read() as reader:
                row = reader.get(CertificateRow, arn.certificate_id)
        else:
            row = session.get(CertificateRow, arn.certificate_id, with_for_update=lock or None,
                              populate_existing=lock)
        if row is None or row.arn != arn_text:
            raise ResourceNotFoundError(f"certificate {arn_text} was not found", arn=arn_text)
        return row

    def describe(self, caller: Caller, arn: str) -> CertificateRecord:
        return CertificateRecord.of(self.load(caller, arn))

    def page(self, caller: Caller, where: CertificateFilter, max_items: int | None,
             next_token: str | None) -> tuple[list[CertificateRecord], str | None]:
        """A page of certificates, newest first unless ascending order is asked for."""
        limit = max_items or 100
        after = token_position(next_token)
        with self._db.read() as session:
            key_types: list[str | None] = list(where.key_types) or [None]
            runs = [self._run(session, caller, where, key_type, after, limit) for key_type in key_types]
        found = list(heapq.merge(*runs, key=lambda row: (row.created_at, row.id), reverse=where.descending))
        page = found[:limit]
        token = page_token(page[-1]) if len(found) > limit else None
        return [CertificateRecord.of(row) for row in page], token

    @staticmethod
    def _run(session: Session, caller: Caller, where: CertificateFilter, key_type: str | None,
             after: tuple[datetime, str] | None, limit: int) -> list[CertificateRow]:
        """Up to limit + 1 matching certificates of one key type, in page order."""
        found: list[CertificateRow] = []
        while len(found) <= limit:
            # The usage filters look inside JSON lists and are applied here, so read on until the page is full.
            rows = list(session.scalars(list_query(caller.account_id, caller.region, where, key_type, after, limit + 1)))
            found += [row for row in rows if where.matches_usages(row)]
            if len(rows) <= limit:
                break
            after = (rows[-1].created_at, rows[-1].id)
        return found[:limit + 1]

    def get(self, caller: Caller, arn: str) -> tuple[str, str | None]:
        row = self.load(caller, arn)
        if row.certificate_pem is None:
            if row.status == CertificateStatus.PENDING_VALIDATION:
                raise RequestInProgressError(f"certificate {arn} is still being issued; try again shortly", arn=arn)
            raise InvalidStateError(f"certificate {arn} is {row.status} and has no certificate", field="CertificateArn")
        return row.certificate_pem, row.chain_pem or None

    # -- change ---------------------------------------------------------------------------------------------------
    def update_options(self, caller: Caller, arn: str, options: dict[str, Any]) -> None:
        with self._db.transaction() as session:
            row = self.load(caller, arn, session)
            if "Export" in options and options["Export"] != row.options.get("Export", "DISABLED"):
                raise ValidationError("Options.Export is chosen when the certificate is requested and cannot be "
                                      "changed", field="Options.Export")
            if row.status in (CertificateStatus.FAILED, CertificateStatus.REVOKED, CertificateStatus.EXPIRED):
                raise InvalidStateError(f"certificate {arn} is {row.status}; its options cannot be changed",
                                        field="CertificateArn")
            row.options = {**row.options, **{k: v for k, v in options.items()
                                             if k in ("CertificateTransparencyLoggingPreference", "Export")}}

    def delete(self, caller: Caller, arn: str) -> None:
        with self._db.transaction() as session:
            row = self.load(caller, arn, session, lock=True)  # no binding is added while it is deleted
            bindings = list(session.execute(select(DeployBindingRow.arn, DeployBindingRow.id, DeployBindingRow.name)
                                            .where(DeployBindingRow.certificate_arn == row.arn)
                                            .order_by(DeployBindingRow.created_at, DeployBindingRow.id)))
            others = [user for user in row.in_use_by or [] if user not in {b.arn for b in bindings}]
            if bindings or others:
                named = [f"binding {b.arn}" + (f" ({b.name})" if b.name else "") for b in bindings]
                how = "detach it first"
                if len(bindings) == 1:
                    how = f"remove the binding first: certsmith deploy remove {bindings[0].id}, or DeleteBinding"
                elif bindings:
                    how = "remove the bindings first: certsmith deploy remove <id> for each, or DeleteBinding"
                users = [*named, *others]
                shown = ", ".join(users[:5]) + (f" and {len(users) - 5} more" if len(users) > 5 else "")
                raise ResourceInUseError(f"certificate {arn} is in use by {shown}; {how}", arn=arn)
            session.delete(row)

    def tags(self, caller: Caller, arn: str) -> list[dict[str, str]]:
        return list(self.load(caller, arn).tags)

    def change_tags(self, caller: Caller, arn: str, add: list[dict[str, Any]] | None = None,
                    remove: list[dict[str, Any]] | None = None) -> None:
        with self._db.transaction() as session:
            row = self.load(caller, arn, session)
            tags = tags_with(list(row.tags), add, "certificate") if add else list(row.tags)
            row.tags = tags_without(tags, remove) if remove else tags
            if row.next_renewal_at is not None:  # a tag may bring (or take away) a renewal policy: plan it anew
                row.next_renewal_at = min(row.next_renewal_at, self._clock.now())
