"""The job of a CA re-issue run: batches at the run's rate, each committed with its items and the run's cursor."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from ...domain.acm import CertificateStatus
from ...domain.authority import AuthorityStatus, reported_status
from ...domain.clock import Clock
from ...store.database import Database
from ...store.jobs import JobQueue
from ...store.tables import AuthorityRow, CaReissueItemRow, CaReissueRow, CertificateRow
from ...worker.loop import RunLater
from ..acm.private_signing import sign_private, store_material
from ..ports import KeyVault, WorkSignal
from .issuance import IssuanceService
from .reissue_certs import (
    ACM,
    DONE,
    FAILED,
    PCA,
    REVOKED,
    RUNNING,
    SUCCEEDED,
    Cursor,
    Outcome,
    PcaCandidate,
    VersionRecorder,
    acm_live,
    acm_outcome,
    format_rate,
    issuer_context,
    pca_batch,
    revoke_sources,
    serial_hex,
    sign_pca,
    store_pca,
)
from .revocation import queue_crl_refresh

__all__ = ["BATCH_MAX", "ReissueRunner"]

BATCH_MAX = 50  # certificates in one batch (one commit) at most
BATCH_SECONDS = 0.5  # a batch holds this much of the rate (at least one certificate)
BUDGET_SECONDS = 5.0  # a job run works this long, then lets the worker's other jobs run
INLINE_WAIT = 2.0  # the job waits for the rate this long at most; a longer wait postpones it
SIGNING_SECONDS = 30.0  # a batch stops signing after this long (and commits): far inside a job's lease
_CHANGED = "it changed while it was being re-issued (renewed, revoked or deleted); it was left as it is"


class _Bucket:
    """Tokens at ``rate`` a second, measured on a monotonic clock, up to one batch's worth; it starts empty."""

    def __init__(self, rate: float, now: float) -> None:
        self.rate, self.tokens, self.at = rate, 0.0, now
        self.batch = max(1, min(BATCH_MAX, int(rate * BATCH_SECONDS)))

    def refill(self, now: float) -> None:
        self.tokens = min(float(self.batch), self.tokens + (now - self.at) * self.rate)
        self.at = now

    def wait(self, count: int, now: float) -> float:
        """Seconds until ``count`` certificates (a batch at most) may be re-issued."""
        self.refill(now)
        return max(0.0, (count - self.tokens) / self.rate)


@dataclass(slots=True)
class _Work:
    """The next batch, as read: what the run's cursor will say once it is committed, and its certificates."""

    cursor: Cursor
    target: AuthorityRow
    acm_rows: list[CertificateRow]
    candidates: list[PcaCandidate]

    def __len__(self) -> int:
        return len(self.acm_rows) + len(self.candidates)


class ReissueRunner:
    def __init__(self, database: Database, jobs: JobQueue, vault: KeyVault, clock: Clock, signal: WorkSignal,
                 issuance: IssuanceService, recorder: VersionRecorder, public_url: str, *,
                 ticker: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self._db, self._jobs, self._vault, self._clock, self._signal = database, jobs, vault, clock, signal
        self._issuance, self._recorder, self._public_url = issuance, recorder, public_url
        self._ticker, self._sleep = ticker, sleep
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def run(self, reissue_id: str) -> None:
        """Batches until the run ends or the budget of this job run is spent (then RunLater(0) continues it)."""
        started = self._ticker()
        while self.step(reissue_id, max_wait=INLINE_WAIT):
            if self._ticker() - started >= BUDGET_SECONDS:
                self._signal.notify()
                raise RunLater(timedelta(0), f"re-issue {reissue_id} continues after the worker's other jobs")

    def step(self, reissue_id: str, max_wait: float | None = None) -> bool:
        """One batch, as soon as the rate allows it; False once the run has ended.

        Raises RunLater when the rate needs a wait longer than ``max_wait`` (nothing of the batch is done then).
        """
        with self._db.read() as session:
            run = session.get(CaReissueRow, reissue_id)
        if run is None or run.state != RUNNING:
            with self._lock:
                self._buckets.pop(reissue_id, None)
            return False
        with self._lock:
            bucket = self._buckets.setdefault(reissue_id, _Bucket(run.rate, self._ticker()))
        work = self._next(run, bucket.batch)
        if work is None:
            return False
        wait = bucket.wait(len(work), self._ticker())
        if max_wait is not None and wait > max_wait:
            raise RunLater(timedelta(seconds=wait), f"re-issue {reissue_id} waits {wait:.1f} s for its rate of "
                                                    f"{format_rate(run.rate)}")
        if wait > 0:
            self._sleep(wait)
            bucket.refill(self._ticker())
        bucket.tokens -= self._do(run, work)
        return True

    # -- one batch --------------------------------------------------------------------------------------------------
    def _next(self, run: CaReissueRow, limit: int) -> _Work | None:
        """Read the next batch (ACM certificates first, then IssueCertificate ones); None when the run has ended."""
        now = self._clock.now()
        cursor = Cursor.load(run.cursor)
        with self._db.read() as session:
            source = session.scalars(select(AuthorityRow).where(AuthorityRow.arn == run.source_arn)).first()
            target = session.scalars(select(AuthorityRow).where(AuthorityRow.arn == run.target_arn)).first()
            acm_rows: list[CertificateRow] = []
            if cursor.phase == ACM:
                acm_rows = list(session.scalars(acm_live(run, now).where(CertificateRow.id > cursor.acm_after)
                                                .order_by(CertificateRow.id).limit(limit)))
                if not acm_rows:
                    cursor.phase = PCA
            candidates = pca_batch(session, run, source, cursor, now, limit) \
                if cursor.phase == PCA and source is not None else []
        status = AuthorityStatus.DELETED if target is None else \
            reported_status(AuthorityStatus(target.status), target.not_after, now)
        if target is None or status is not AuthorityStatus.ACTIVE:
            self.finish(run.id, f"stopped: the target CA became {status.value}; "
                                f"{max(0, run.total - run.done - run.failed)} certificates were not re-issued")
            return None
        if not acm_rows and not candidates:
            self.finish(run.id, None)
            return None
        if candidates:
            cursor.pca_after = candidates[-1].id
        return _Work(cursor, target, acm_rows, candidates)

    def _do(self, run: CaReissueRow, work: _Work) -> int:
        """Sign the batch's certificates again (outside any transaction), then commit them; how many were.

        New keys (RSA 4096 takes seconds) may make a batch long: it is cut at SIGNING_SECONDS, well inside the job's
        lease, and the cursor stops at the last certificate signed.
        """
        now = self._clock.now()
        deadline = self._ticker() + SIGNING_SECONDS
        outcomes: list[Outcome] = []
        for row in work.acm_rows:
            if outcomes and self._ticker() >= deadline:
                break
            old_serial = serial_hex(row.serial or "0")
            row.authority_arn = run.target_arn  # a detached copy: the stored row changes in the commit
            outcomes.append(acm_outcome(row, old_serial, sign_private(self._issuance, self._vault, row)))
            work.cursor.acm_after = row.id
        if work.candidates:
            issuer = issuer_context(self._vault, work.target, self._public_url)
            outcomes += [sign_pca(candidate, issuer, work.target, now) for candidate in work.candidates]
        self._commit(run.id, work.cursor, outcomes, now)
        return len(outcomes)

    def _commit(self, reissue_id: str, cursor: Cursor, outcomes: list[Outcome], now: datetime) -> None:
        """Store the batch: new certificates, items, revocations and the cursor, in one transaction."""
        crl_queued = False
        with self._db.transaction() as session:
            run = session.get(CaReissueRow, reissue_id)
            if run is None or run.state != RUNNING:
                return  # ended meanwhile: nothing of this batch is kept
            target = session.scalars(select(AuthorityRow).where(AuthorityRow.arn == run.target_arn)).one()
            items: list[dict[str, Any]] = []
            for outcome in outcomes:
                error, target_serial = outcome.error, None
                if error is None:
                    target_serial = self._store(session, run, target, outcome, now)
                    error = None if target_serial is not None else _CHANGED
                items.append({"kind": outcome.kind, "source_serial": outcome.source_serial,
                              "certificate_arn": outcome.certificate_arn if outcome.kind == ACM or target_serial
                              else None, "target_serial": target_serial, "state": DONE if error is None else FAILED,
                              "error": error})
            if run.revoke_source:
                source = session.scalars(select(AuthorityRow).where(AuthorityRow.arn == run.source_arn)).first()
                revoked, why_not = revoke_sources(session, source, [i["source_serial"] for i in items
                                                                    if i["state"] == DONE], now)
                for item in items:
                    if item["state"] == DONE:
                        item["state"], item["error"] = (REVOKED, None) if item["source_serial"] in revoked else \
                            (DONE, why_not)
                if revoked and source is not None:
                    crl_queued = queue_crl_refresh(session, self._jobs, source, now)
            session.add_all(CaReissueItemRow(reissue_id=reissue_id, updated_at=now, **item) for item in items)
            failed = sum(1 for item in items if item["state"] == FAILED)
            run.done, run.failed = run.done + len(items) - failed, run.failed + failed
            run.total = max(run.total, run.done + run.failed)
            run.cursor, run.updated_at = cursor.dump(), now
        if crl_queued:
            self._signal.notify()

    def _store(self, session: Any, run: CaReissueRow, target: AuthorityRow, outcome: Outcome,
               now: datetime) -> str | None:
        """Put one re-issued certificate in place; its new serial, or None when the old one changed meanwhile."""
        if outcome.kind == PCA:
            return store_pca(session, outcome, run, target, now)
        assert outcome.material is not None
        row = session.get(CertificateRow, outcome.row_id)
        if row is None or row.status != CertificateStatus.ISSUED or row.authority_arn != run.source_arn \
                or serial_hex(row.serial or "0") != outcome.source_serial:
            return None
        store_material(row, outcome.material)
        row.authority_arn, row.issued_at = run.target_arn, now
        self._recorder.record(session, row, "REISSUE", now)
        return serial_hex(outcome.material.facts.serial)

    def finish(self, reissue_id: str, stopped: str | None) -> None:
        """End the run: SUCCEEDED when every certificate was re-issued, else FAILED with why (``stopped``)."""
        now = self._clock.now()
        with self._db.transaction() as session:
            run = session.get(CaReissueRow, reissue_id)
            if run is None or run.state != RUNNING:
                return
            if stopped is None:
                run.total = run.done + run.failed
            if stopped is None and run.failed == 0:
                run.state, run.message = SUCCEEDED, f"{run.done} certificates re-issued"
            else:
                run.state = FAILED
                failures = f"{run.failed} of {run.total} certificates could not be re-issued (the items say why)" \
                    if run.failed else None
                run.message = "; ".join(part for part in (stopped, failures) if part)
            run.updated_at = run.finished_at = now
        with self._lock:
            self._buckets.pop(reissue_id, None)
