"""The worker: lease due jobs, run them, retry with backoff, and dead-letter what keeps failing."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..domain.clock import Clock
from ..domain.errors import CertsmithError
from ..store.database import Database
from ..store.jobs import DEAD, JobQueue

__all__ = ["JobHandler", "LocalSignal", "Worker"]

log = logging.getLogger("certsmith.worker")


@dataclass(frozen=True, slots=True)
class JobHandler:
    run: Callable[[dict[str, Any]], None]
    on_dead: Callable[[dict[str, Any], str], None] | None = None


class LocalSignal:
    """A WorkSignal for workers in the same process."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def notify(self) -> None:
        self.event.set()


class Worker:
    def __init__(self, database: Database, queue: JobQueue, handlers: Mapping[str, JobHandler], clock: Clock,
                 signal: LocalSignal | None = None, batch: int = 32, poll_seconds: float = 1.0) -> None:
        self._db, self._queue, self._handlers, self._clock = database, queue, dict(handlers), clock
        self._signal = signal or LocalSignal()
        self._batch, self._poll = batch, poll_seconds
        self.worker_id = f"worker-{uuid.uuid4().hex[:12]}"

    def run_once(self) -> int:
        """Run one batch of due jobs; returns how many were leased."""
        with self._db.transaction() as session:
            jobs = self._queue.lease(session, self.worker_id, self._clock.now(), self._batch)
        done: list[int] = []
        for job in jobs:
            handler = self._handlers.get(job.kind)
            try:
                if handler is None:
                    raise CertsmithError(f"no handler for job kind {job.kind!r}")
                handler.run(job.payload)
                done.append(job.id)
            except Exception as exc:  # a job's failure must never stop the worker
                error = f"{type(exc).__name__}: {exc}"
                log.warning("job %s (%s) attempt %s failed: %s", job.id, job.kind, job.attempts, error)
                with self._db.transaction() as session:
                    state = self._queue.fail(session, job.id, error, self._clock.now())
                if state == DEAD and handler is not None and handler.on_dead is not None:
                    log.error("job %s (%s) is dead after %s attempts", job.id, job.kind, job.attempts)
                    handler.on_dead(job.payload, error)
        if done:
            with self._db.transaction() as session:
                for job_id in done:
                    self._queue.complete(session, job_id, self._clock.now())
        return len(jobs)

    def run_forever(self, stop: threading.Event) -> None:
        log.info("%s started", self.worker_id)
        while not stop.is_set():
            try:
                leased = self.run_once()
            except Exception:  # the database may be briefly unavailable; keep going
                log.exception("%s: leasing failed", self.worker_id)
                leased = 0
            if leased == 0:
                self._signal.event.wait(self._poll)
                self._signal.event.clear()
        log.info("%s stopped", self.worker_id)
