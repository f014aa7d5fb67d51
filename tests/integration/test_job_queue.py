"""The durable job queue on a real database: SQLite or PostgreSQL (CERTSMITH_TEST_BACKEND)."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from certsmith.domain.clock import FixedClock, SystemClock
from certsmith.store.database import Database
from certsmith.store.jobs import DEAD, JobQueue
from certsmith.worker.loop import JobHandler, Worker


def test_many_workers_never_run_a_job_twice(database: Database) -> None:
    queue = JobQueue()
    clock = SystemClock()
    with database.transaction() as session:
        for n in range(300):
            queue.enqueue(session, "count", {"n": n}, clock.now())
    seen: Counter[int] = Counter()
    lock = threading.Lock()

    def record(payload: dict[str, Any]) -> None:
        with lock:
            seen[payload["n"]] += 1

    workers = [Worker(database, queue, {"count": JobHandler(record)}, clock, batch=7) for _ in range(4)]
    barrier = threading.Barrier(len(workers))

    def drain(worker: Worker) -> None:
        barrier.wait()
        while worker.run_once():
            pass

    threads = [threading.Thread(target=drain, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(seen) == list(range(300))
    assert set(seen.values()) == {1}, {n: c for n, c in seen.items() if c > 1}
    with database.transaction() as session:
        assert queue.counts(session) == {}, "finished jobs leave the queue"


def test_failing_job_backs_off_then_goes_dead(database: Database) -> None:
    queue = JobQueue()
    clock = FixedClock(datetime(2026, 1, 1, tzinfo=UTC))
    dead_payloads: list[tuple[dict[str, Any], str]] = []

    def explode(_payload: dict[str, Any]) -> None:
        raise RuntimeError("the peer is down")

    worker = Worker(database, queue, {"boom": JobHandler(explode, lambda p, e: dead_payloads.append((p, e)))}, clock)
    with database.transaction() as session:
        queue.enqueue(session, "boom", {"id": 7}, clock.now(), max_attempts=3)
    assert worker.run_once() == 1
    assert worker.run_once() == 0, "a failed job must wait for its backoff"
    clock.advance(timedelta(seconds=3))
    assert worker.run_once() == 1
    clock.advance(timedelta(seconds=3))
    assert worker.run_once() == 0, "the second backoff is longer"
    clock.advance(timedelta(seconds=6))
    assert worker.run_once() == 1
    with database.transaction() as session:
        dead = queue.dead(session)
        assert [(j.attempts, j.state) for j in dead] == [(3, DEAD)]
        assert "the peer is down" in (dead[0].last_error or "")
    assert dead_payloads == [({"id": 7}, "RuntimeError: the peer is down")]


def test_expired_lease_is_taken_over(database: Database) -> None:
    queue = JobQueue()
    clock = FixedClock(datetime(2026, 1, 1, tzinfo=UTC))
    with database.transaction() as session:
        queue.enqueue(session, "slow", {}, clock.now())
        assert len(queue.lease(session, "dead-worker", clock.now(), 10)) == 1
    with database.transaction() as session:
        assert queue.lease(session, "other", clock.now(), 10) == []
    clock.advance(timedelta(minutes=6))
    with database.transaction() as session:
        taken = queue.lease(session, "other", clock.now(), 10)
    assert len(taken) == 1 and taken[0].attempts == 2
