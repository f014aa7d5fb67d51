"""Fleet re-issue: every live certificate of one CA signed again by another, at a rate, resumably.

A run (``ca_reissues``) is worked by one job (``pca.reissue``) in small batches. Each batch is committed with its
items (``ca_reissue_items``, unique per run, kind and old serial) and the run's cursor, so a worker that dies
resumes after the last committed batch and no certificate is re-issued twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...domain.algorithms import KeyAlgorithm
from ...domain.arns import AuthorityArn
from ...domain.authority import AuthorityStatus, check_can_revoke, reported_status
from ...domain.clock import Clock
from ...domain.errors import ConflictError, InvalidArgsError, InvalidStateError, ResourceNotFoundError
from ...store.database import Database
from ...store.jobs import JobQueue
from ...store.tables import AuthorityRow, CaReissueItemRow, CaReissueRow, CertificateRow, IssuedCertificateRow
from ..context import Caller
from ..ports import KeyVault, WorkSignal
from .issuance import IssuanceService
from .lookup import decode_token, encode_token, load_authority
from .reissue_certs import (
    ACM,
    MAX_RATE,
    PCA,
    RUNNING,
    Cursor,
    VersionRecorder,
    acm_live,
    count,
    format_rate,
    parse_rate,
    pca_live,
    serial_hex,
)
from .reissue_job import ReissueRunner

__all__ = ["MAX_RATE", "REISSUE_JOB", "ReissueItem", "ReissuePlan", "ReissueRecord", "ReissueService", "format_rate",
           "parse_rate"]

REISSUE_JOB = "pca.reissue"
_SAMPLES = 5


@dataclass(frozen=True, slots=True)
class ReissueRecord:
    id: str | None  # None for a dry run: nothing was stored
    state: str
    source_arn: str
    target_arn: str
    rate: float
    revoke_source: bool
    total: int
    done: int
    failed: int
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    message: str | None

    @classmethod
    def of(cls, row: CaReissueRow) -> ReissueRecord:
        return cls(row.id, row.state, row.source_arn, row.target_arn, row.rate, row.revoke_source, row.total,
                   row.done, row.failed, row.created_at, row.updated_at, row.finished_at, row.message)


@dataclass(frozen=True, slots=True)
class ReissueItem:
    kind: str
    source_serial: str
    certificate_arn: str | None
    target_serial: str | None
    state: str
    error: str | None


@dataclass(frozen=True, slots=True)
class ReissuePlan:
    """What a run would re-issue: counts per kind, and the first few certificates of each."""

    acm: int
    pca: int
    samples: tuple[ReissueItem, ...]


class ReissueService:
    def __init__(self, database: Database, jobs: JobQueue, vault: KeyVault, clock: Clock, signal: WorkSignal,
                 issuance: IssuanceService, recorder: VersionRecorder, public_url: str) -> None:
        self._db, self._jobs, self._clock, self._signal = database, jobs, clock, signal
        self._runner = ReissueRunner(database, jobs, vault, clock, signal, issuance, recorder, public_url)

    # -- start ------------------------------------------------------------------------------------------------------
    def start(self, caller: Caller, source_arn: str, target_arn: str, rate: str, revoke_source: bool,
              dry_run: bool) -> tuple[ReissueRecord, ReissuePlan | None]:
        """Check the request and store a RUNNING run with its job; with ``dry_run``, only say what it would do."""
        per_second = parse_rate(rate)
        source_id = self._check_arns(source_arn, target_arn)
        now = self._clock.now()
        with self._db.read() as session:
            source = load_authority(session, caller, source_arn, now, field="SourceCertificateAuthorityArn")
            target = load_authority(session, caller, target_arn, now, field="TargetCertificateAuthorityArn")
            self._check_authorities(source, target, revoke_source, now)
        probe = CaReissueRow(id="", account_id=caller.account_id, region=caller.region, source_arn=source.arn,
                             target_arn=target.arn, state=RUNNING, rate=per_second, revoke_source=revoke_source,
                             total=0, done=0, failed=0, created_at=now, updated_at=now)
        if dry_run:
            with self._db.read() as session:
                plan = self._plan(session, probe, source, now)
            return ReissueRecord(
                None, "DRY_RUN", source.arn, target.arn, per_second, revoke_source, plan.acm + plan.pca, 0, 0, now,
                now, None, None), plan
        with self._db.transaction() as session:
            source = load_authority(session, caller, source_arn, now, for_update=True,
                                    field="SourceCertificateAuthorityArn")
            running = session.scalar(select(CaReissueRow.id).where(CaReissueRow.source_arn == source.arn,
                                                                   CaReissueRow.state == RUNNING))
            if running is not None:
                raise ConflictError(f"re-issue {running} of the certificates of {source.arn} is still RUNNING; wait "
                                    "for it to end (certsmith ca reissue-status) before starting another",
                                    field="SourceCertificateAuthorityArn")
            pca_until = session.scalar(select(IssuedCertificateRow.id).where(
                IssuedCertificateRow.authority_id == source_id).order_by(IssuedCertificateRow.id.desc()).limit(1))
            probe.id = str(uuid.uuid4())
            probe.total = count(session, acm_live(probe, now)) + count(session, pca_live(probe, source, now))
            probe.cursor = Cursor(pca_until=pca_until or 0).dump()
            session.add(probe)
            self._jobs.enqueue(session, REISSUE_JOB, {"reissue_id": probe.id}, now)
            record = ReissueRecord.of(probe)
        self._signal.notify()
        return record, None

    @staticmethod
    def _check_arns(source_arn: str, target_arn: str) -> str:
        source = AuthorityArn.parse(source_arn, "SourceCertificateAuthorityArn")
        target = AuthorityArn.parse(target_arn, "TargetCertificateAuthorityArn")
        if str(source) == str(target):
            raise InvalidArgsError("TargetCertificateAuthorityArn is the source CA itself: give the CA that replaces "
                                   "it (certsmith ca rotate makes one)", field="TargetCertificateAuthorityArn")
        if (source.account, source.region) != (target.account, target.region):
            raise InvalidArgsError(f"TargetCertificateAuthorityArn is a CA of account {target.account} in "
                                   f"{target.region}; the source CA is of account {source.account} in {source.region}: "
                                   "certificates are re-issued within one account and region",
                                   field="TargetCertificateAuthorityArn")
        return source.authority_id

    @staticmethod
    def _check_authorities(source: AuthorityRow, target: AuthorityRow, revoke_source: bool, now: datetime) -> None:
        status = reported_status(AuthorityStatus(target.status), target.not_after, now)
        if status is not AuthorityStatus.ACTIVE:
            raise InvalidStateError(f"the target CA {target.arn} is {status.value}; certificates are re-issued only "
                                    "by an ACTIVE CA", field="TargetCertificateAuthorityArn")
        source_family, target_family = KeyAlgorithm(source.key_algorithm).family, KeyAlgorithm(target.key_algorithm).family
        if source_family != target_family:
            raise InvalidArgsError(f"the target CA's key is {target.key_algorithm} and the source CA's is "
                                   f"{source.key_algorithm}: a re-issue keeps the CA's key family ({source_family})",
                                   field="TargetCertificateAuthorityArn")
        if revoke_source:
            source_status = reported_status(AuthorityStatus(source.status), source.not_after, now)
            try:
                check_can_revoke(source_status)
            except InvalidStateError:
                raise InvalidStateError(f"RevokeSource needs the source CA ACTIVE or DISABLED to revoke the old "
                                        f"certificates; it is {source_status.value}", field="RevokeSource") from None

    @staticmethod
    def _plan(session: Session, probe: CaReissueRow, source: AuthorityRow, now: datetime) -> ReissuePlan:
        acm_rows = session.scalars(acm_live(probe, now).order_by(CertificateRow.id).limit(_SAMPLES)).all()
        pca_rows = session.execute(pca_live(probe, source, now).order_by(IssuedCertificateRow.id).limit(_SAMPLES)).all()
        samples = [ReissueItem(ACM, serial_hex(r.serial or "0"), r.arn, None, "PLANNED", None) for r in acm_rows]
        samples += [ReissueItem(PCA, r.serial_hex, f"{source.arn}/certificate/{r.serial_hex}", None, "PLANNED", None)
                    for r in pca_rows]
        return ReissuePlan(count(session, acm_live(probe, now)), count(session, pca_live(probe, source, now)),
                           tuple(samples))

    # -- read -------------------------------------------------------------------------------------------------------
    @staticmethod
    def _load(session: Session, caller: Caller, reissue_id: str) -> CaReissueRow:
        row = session.get(CaReissueRow, reissue_id) if len(reissue_id) <= 36 else None
        if row is None or (row.account_id, row.region) != (caller.account_id, caller.region):
            raise ResourceNotFoundError(f"re-issue {reissue_id} was not found", field="ReissueId")
        return row

    def describe(self, caller: Caller, reissue_id: str) -> ReissueRecord:
        with self._db.read() as session:
            return ReissueRecord.of(self._load(session, caller, reissue_id))

    def items(self, caller: Caller, reissue_id: str, max_results: int | None,
              next_token: str | None) -> tuple[list[ReissueItem], str | None]:
        offset = decode_token(next_token)
        page = min(max_results or 100, 1000)
        with self._db.read() as session:
            self._load(session, caller, reissue_id)
            rows = session.scalars(select(CaReissueItemRow).where(CaReissueItemRow.reissue_id == reissue_id)
                                   .order_by(CaReissueItemRow.id).offset(offset).limit(page + 1)).all()
        items = [ReissueItem(r.kind, r.source_serial, r.certificate_arn, r.target_serial, r.state, r.error)
                 for r in rows[:page]]
        return items, encode_token(offset + page) if len(rows) > page else None

    # -- the job ----------------------------------------------------------------------------------------------------
    def run_job(self, payload: dict[str, Any]) -> None:
        """Work the run in batches at its rate; raises RunLater to wait for the rate or to let other jobs run."""
        self._runner.run(payload["reissue_id"])

    def step(self, reissue_id: str) -> bool:
        """One batch, as soon as the rate allows it; False once the run has ended."""
        return self._runner.step(reissue_id)

    def mark_failed(self, payload: dict[str, Any], error: str) -> None:
        """Called when the job is dead: the run ends FAILED, with what is left unsaid in its message."""
        self._runner.finish(payload["reissue_id"], f"the re-issue stopped after repeated errors: {error}")
