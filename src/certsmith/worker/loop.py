"""The worker: lease due jobs, run them, retry with backoff, and dead-letter what keeps failing."""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ..domain.clock import Clock
from ..store.database import Database
from ..store.jobs import DEAD, JobQueue, LeasedJob

__all__ = ["JobHandler", "LocalSignal", "Periodic", "RunLater", "Worker"]

log = logging.getLogger("certsmith.worker")


class RunLater(Exception):
    """Raised by a job that is waiting for the world (a DNS record, a CA that is down): run it again after
    ``delay``, without counting an attempt. ``reason`` is kept as the job's last message."""

    def __init__(self, delay: timedelta, reason: str) -> None:
        super().__init__(reason)
        self.delay, self.reason = delay, reason


@dataclass(frozen=True, slots=True)
class Periodic:
    """A task a worker runs every ``seconds`` (each worker does; the task must be safe to run concurrently)."""

    name: str
    seconds: float
    run: Callable[[], object]


@dataclass(frozen=True, slots=True)
class JobHandler:
    """How to run one kind of job.

    ``run`` takes one payload and raises on failure. ``run_batch``, when given, takes every leased
    job of the kind at once and returns, per job, None for done or the error text; kinds with many
    small jobs (issuance) use it to share reads, key openings and the write transaction, in which
    it also completes (``JobQueue.complete``) the jobs that are done.
    """

    run: Callable[[dict[str, Any]], None] | None = None
    on_dead: Callable[[dict[str, Any], str], None] | None = None
    run_batch: Callable[[list[LeasedJob]], list[str | None]] | None = None
    parallel: int = 1  # run up to this many jobs of the kind at once (jobs that wait on the network)


class LocalSignal:
    """A WorkSignal for workers in the same process, and the hand-off of jobs born leased to them.

    While local workers run, a service that commits many small jobs (issuance) may insert them
    already leased to ``holder`` and hand them over here once committed: the workers then run them
    without a lease query. The jobs stay durable; if the process dies, their lease runs out and
    any worker takes them over.
    """

    def __init__(self) -> None:
        self.event = threading.Event()
        self._lock = threading.Lock()
        self._handed: deque[LeasedJob] = deque()
        self._workers = 0
        self.holder = f"local-{os.getpid()}-{uuid.uuid4().hex[:8]}"

    def notify(self) -> None:
        self.event.set()

    def lease_holder(self) -> str | None:
        """The lease holder to insert jobs for, or None when no local worker runs."""
        return self.holder if self._workers else None

    def hand(self, jobs: list[LeasedJob]) -> None:
        with self._lock:
            self._handed.extend(jobs)
        self.event.set()

    def take(self, limit: int) -> list[LeasedJob]:
        with self._lock:
            return [self._handed.popleft() for _ in range(min(limit, len(self._handed)))]

    def attach(self) -> None:
        with self._lock:
            self._workers += 1

    def detach(self) -> None:
        with self._lock:
            self._workers -= 1


class Worker:
    def __init__(self, database: Database, queue: JobQueue, handlers: Mapping[str, JobHandler], clock: Clock,
                 signal: LocalSignal | None = None, batch: int = 64, poll_seconds: float = 1.0,
                 linger_seconds: float = 0.02, periodic: Sequence[Periodic] = (),
                 lease: timedelta = timedelta(minutes=5)) -> None:
        self._db, self._queue, self._handlers, self._clock = database, queue, dict(handlers), clock
        self._signal = signal or LocalSignal()
        self._batch, self._poll, self._linger = batch, poll_seconds, linger_seconds
        self.worker_id = f"worker-{uuid.uuid4().hex[:12]}"
        self._next_table_lease = 0.0
        self._periodic = list(periodic)
        self._lease = lease  # how long a job leased by this worker is its own; then any worker takes it over
        self._next_periodic = [0.0] * len(self._periodic)

    def run_periodic(self) -> None:
        """Run the periodic tasks whose interval has passed (the renewal scheduler, the notice sweep)."""
        for index, task in enumerate(self._periodic):
            if time.monotonic() < self._next_periodic[index]:
                continue
            self._next_periodic[index] = time.monotonic() + task.seconds
            try:
                task.run()
            except Exception:  # the database may be briefly unavailable; the next round tries again
                log.exception("%s: %s failed", self.worker_id, task.name)

    def run_once(self, *, table: bool = True) -> int:
        """Run one batch: jobs handed over in memory, then due jobs from the table; returns how many."""
        jobs = self._signal.take(self._batch)
        if table and (not jobs or time.monotonic() >= self._next_table_lease):
            # Handed-over jobs never starve the table: it is read at least once a second.
            self._next_table_lease = time.monotonic() + 1.0
            with self._db.transaction() as session:
                jobs += self._queue.lease(session, self.worker_id, self._clock.now(), max(1, self._batch - len(jobs)),
                                          self._lease)
        by_kind: dict[str, list[LeasedJob]] = {}
        for job in jobs:
            by_kind.setdefault(job.kind, []).append(job)
        done: list[int] = []
        failed: list[tuple[LeasedJob, str]] = []
        later: list[tuple[LeasedJob, RunLater]] = []
        for kind, group in by_kind.items():
            handler = self._handlers.get(kind)
            for job, error in zip(group, self._run_group(handler, kind, group), strict=True):
                if isinstance(error, RunLater):
                    later.append((job, error))
                elif error is not None:
                    failed.append((job, error))
                elif handler is None or handler.run_batch is None:  # batch handlers complete their own jobs
                    done.append(job.id)
        if done or later:
            with self._db.transaction() as session:
                self._queue.complete(session, done)
                now = self._clock.now()
                for job, wait in later:
                    self._queue.postpone(session, job.id, now, wait.delay, wait.reason)
        for job, error in failed:
            log.warning("job %s (%s) attempt %s failed: %s", job.id, job.kind, job.attempts, error)
            with self._db.transaction() as session:
                state = self._queue.fail(session, job.id, error, self._clock.now())
            handler = self._handlers.get(job.kind)
            if state == DEAD and handler is not None and handler.on_dead is not None:
                log.error("job %s (%s) is dead after %s attempts", job.id, job.kind, job.attempts)
                handler.on_dead(job.payload, error)
        return len(jobs)

    @staticmethod
    def _run_group(handler: JobHandler | None, kind: str, group: list[LeasedJob]) -> list[str | RunLater | None]:
        """Errors per job (None for success, RunLater to wait); a job's failure must never stop the worker."""
        if handler is None:
            return [f"no handler for job kind {kind!r}"] * len(group)
        if handler.run_batch is not None:
            try:
                return list(handler.run_batch(group))
            except Exception as exc:  # noqa: BLE001 - the whole batch failed: every job in it is retried
                return [f"{type(exc).__name__}: {exc}"] * len(group)
        run = handler.run
        assert run is not None

        def one(job: LeasedJob) -> str | RunLater | None:
            try:
                run(job.payload)
            except RunLater as wait:
                return wait
            except Exception as exc:  # noqa: BLE001 - a job's failure must not stop the worker
                return f"{type(exc).__name__}: {exc}"
            return None

        if handler.parallel > 1 and len(group) > 1:
            with ThreadPoolExecutor(max_workers=min(handler.parallel, len(group))) as pool:
                return list(pool.map(one, group))
        return [one(job) for job in group]

    def run_forever(self, stop: threading.Event) -> None:
        log.info("%s started", self.worker_id)
        self._signal.attach()
        try:
            self._loop(stop)
        finally:
            self._signal.detach()
            while self.run_once(table=False):  # what was handed over is run now, not left to its lease expiry
                pass
        log.info("%s stopped", self.worker_id)

    def _loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.run_periodic()
            try:
                leased = self.run_once()
            except Exception:  # the database may be briefly unavailable; keep going
                log.exception("%s: leasing failed", self.worker_id)
                leased = 0
            if leased < self._batch:
                woken = self._signal.event.wait(self._poll)
                self._signal.event.clear()
                if woken and self._linger and leased > 1:
                    # Under load (the last round found several jobs), let a burst accumulate so that one read and
                    # one commit serve many jobs. An idle worker answers at once.
                    stop.wait(self._linger)
