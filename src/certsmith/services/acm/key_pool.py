"""Spare RSA keys for ACM private certificates, made ahead so that RequestCertificate can sign at once.

Generating an RSA key takes 30 ms (2048 bits) to 300 ms (4096 bits) on one core, too long for a request
on the event loop; signing with one takes a quarter of a millisecond. So the worker keeps up to
``Settings.key_pool_size`` spare keys per RSA algorithm in the ``key_pool`` table, and a request
claims one with a single ``DELETE … RETURNING`` (``FOR UPDATE SKIP LOCKED`` on PostgreSQL): a key
leaves the pool once, to one request, whichever process asks. Pool keys are sealed like every key,
bound to their row's id (a UUID, the resource they belong to until claimed; a master-key rotation
re-seals them with the rest); the request re-seals the key under its certificate's ARN.

EC keys are not pooled: generating one (25 to 110 µs, measured) costs less than a claim's write transaction.

Filling: a request that claims a key (or finds none) asks for an ``acm.fill-key-pool`` job for its
algorithm when none is queued (at most once a second per process, until its worker saw the pool
full). The job has keys made for up to a quarter of a second, stores them, and queues its own
continuation until the pool is full, so it never holds the worker for long. The keys are made on one
thread per process at nice +10, from CPU time that requests leave over. A worker asks for RSA_2048
(RequestCertificate's default) when it starts, unless every CA is an EC CA; the other sizes fill
once requested.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from ...domain.algorithms import KeyAlgorithm, generate_private_key, key_algorithm_of
from ...domain.clock import Clock
from ...domain.errors import InternalError
from ...store.database import Database
from ...store.jobs import DEAD, JobQueue
from ...store.tables import AuthorityRow, Base, JobRow
from ..ports import WorkSignal

__all__ = ["FILL_AT_START", "FILL_KEY_POOL_JOB", "POOLED_ALGORITHMS", "ClaimedKey", "KeyPool"]

FILL_KEY_POOL_JOB = "acm.fill-key-pool"
POOLED_ALGORITHMS = (KeyAlgorithm.RSA_2048, KeyAlgorithm.RSA_3072, KeyAlgorithm.RSA_4096)
FILL_AT_START = (KeyAlgorithm.RSA_2048,)
FILL_SECONDS = 0.25  # a fill job's turn on the worker; it queues its continuation for the rest
REQUEST_INTERVAL = 1.0  # seconds between one process's fill requests for one algorithm

log = logging.getLogger("certsmith.key_pool")
_POOL = Base.metadata.tables["key_pool"]
_INSERT = insert(_POOL)


def _yield_to_requests() -> None:
    """The key generator's thread runs at nice +10 (a per-thread value on Linux), so that spare keys are
    made from CPU time that requests and the other jobs leave over."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):  # not Linux, or not allowed: keys are made at the usual priority
        return


_generator_lock = threading.Lock()
_generator_thread: list[ThreadPoolExecutor] = []


def _generator() -> ThreadPoolExecutor:
    """The process's one key generation thread, started by the first fill job."""
    with _generator_lock:
        if not _generator_thread:
            _generator_thread.append(ThreadPoolExecutor(1, "certsmith-keygen", initializer=_yield_to_requests))
        return _generator_thread[0]


class KeyCipher(Protocol):
    """Seals secrets bound to the resource they belong to (the KeySealer)."""

    def seal(self, plaintext: bytes, resource: str) -> bytes: ...

    def open(self, sealed: bytes, resource: str) -> bytes: ...


@dataclass(frozen=True, slots=True)
class ClaimedKey:
    """A key taken out of the pool: no other request can have it. Still sealed under its id."""

    id: str
    key_algorithm: str
    sealed_key: bytes = field(repr=False)
    created_at: datetime


class KeyPool:
    def __init__(self, database: Database, jobs: JobQueue, cipher: KeyCipher, clock: Clock, signal: WorkSignal,
                 size: int) -> None:
        if size < 0:
            raise ValueError(f"key_pool_size must be 0 (no pool) or more, not {size}")
        self._db, self._jobs, self._cipher, self._clock, self._signal = database, jobs, cipher, clock, signal
        self.size = size
        self._lock = threading.Lock()
        self._next_request: dict[KeyAlgorithm, float] = {}

    def pools(self, algorithm: KeyAlgorithm) -> bool:
        """Whether keys of this algorithm come from the pool here (RSA, and the pool is on)."""
        return self.size > 0 and algorithm in POOLED_ALGORITHMS

    # -- requests -------------------------------------------------------------------------------------------------
    def claim(self, algorithm: KeyAlgorithm) -> ClaimedKey | None:
        """Take a spare key out of the pool for good, or None when it has none; ask for a refill either way."""
        pick = select(_POOL.c.id).where(_POOL.c.key_algorithm == algorithm.value).limit(1)
        with self._db.transaction() as session:
            if not self._db.is_sqlite:  # SQLite's BEGIN IMMEDIATE already lets one writer in at a time
                pick = pick.with_for_update(skip_locked=True)
            row = session.execute(delete(_POOL).where(_POOL.c.id == pick.scalar_subquery()).returning(
                _POOL.c.id, _POOL.c.key_algorithm, _POOL.c.sealed_key, _POOL.c.created_at)).first()
            queued = self._queue_fill(session, algorithm)
        if queued:
            self._signal.notify()
        return None if row is None else ClaimedKey(row.id, row.key_algorithm, row.sealed_key, row.created_at)

    def open(self, claimed: ClaimedKey) -> rsa.RSAPrivateKey:
        """The key; InternalError when it does not open (another master key) or is not of its row's algorithm."""
        der = self._cipher.open(claimed.sealed_key, claimed.id)
        # certsmith made this key and AES-GCM proved the bytes unchanged, so OpenSSL's RSA consistency
        # check (28 ms for 2048 bits, 218 ms for 4096) would only repeat what generation guaranteed.
        key = serialization.load_der_private_key(der, password=None, unsafe_skip_rsa_key_validation=True)
        if not isinstance(key, rsa.RSAPrivateKey) or key_algorithm_of(key.public_key()) != claimed.key_algorithm:
            raise InternalError(f"spare key {claimed.id} is not a {claimed.key_algorithm} key")
        return key

    def give_back(self, session: Session, claimed: ClaimedKey) -> None:
        """Return a claimed key that no certificate holds (its CA refused before signing) to the pool."""
        session.execute(_INSERT, {"id": claimed.id, "key_algorithm": claimed.key_algorithm,
                                  "sealed_key": claimed.sealed_key, "created_at": claimed.created_at})

    def start_filling(self) -> None:
        """Ask for the algorithms kept ready from the start (a worker calls this as it starts).

        Only an RSA CA signs RSA keys, so nothing is made ahead while every CA is of another family; an
        installation without a CA yet gets its keys, so that its first RSA certificate is issued at once.
        """
        if self.size <= 0:
            return
        with self._db.transaction() as session:
            ca_keys = set(session.scalars(select(AuthorityRow.key_algorithm).distinct()))
            if ca_keys and not any(KeyAlgorithm(key).family == "RSA" for key in ca_keys):
                return
            queued = [self._queue_fill(session, algorithm) for algorithm in FILL_AT_START
                      if self.count(algorithm, session) < self.size]
        if any(queued):
            self._signal.notify()

    def _queue_fill(self, session: Session, algorithm: KeyAlgorithm) -> bool:
        """Queue a fill job unless this process asked within the last second or one is queued already."""
        now = time.monotonic()
        with self._lock:
            if self._next_request.get(algorithm, 0.0) > now:
                return False
            self._next_request[algorithm] = now + REQUEST_INTERVAL
        queued = session.scalars(select(JobRow.payload).where(JobRow.kind == FILL_KEY_POOL_JOB, JobRow.state != DEAD))
        if any(payload.get("key_algorithm") == algorithm.value for payload in queued):
            return False
        self._jobs.enqueue(session, FILL_KEY_POOL_JOB, {"key_algorithm": algorithm.value}, self._clock.now())
        return True

    def _generate(self, algorithm: KeyAlgorithm, missing: int) -> list[dict[str, Any]]:
        """Up to ``missing`` new sealed keys, made for at most FILL_SECONDS (at least one)."""
        deadline = time.monotonic() + FILL_SECONDS
        rows: list[dict[str, Any]] = []
        while len(rows) < missing and (not rows or time.monotonic() < deadline):
            key = generate_private_key(algorithm)
            key_id = uuid.uuid4().hex
            der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
            rows.append({"id": key_id, "key_algorithm": algorithm.value, "created_at": self._clock.now(),
                         "sealed_key": self._cipher.seal(der, key_id)})
        return rows

    def _filled(self, algorithm: KeyAlgorithm) -> None:
        """The pool is full: this process's next claim may ask for a refill at once (the chain has ended)."""
        with self._lock:
            self._next_request.pop(algorithm, None)

    # -- the worker -----------------------------------------------------------------------------------------------
    def count(self, algorithm: KeyAlgorithm, session: Session | None = None) -> int:
        statement = select(func.count()).select_from(_POOL).where(_POOL.c.key_algorithm == algorithm.value)
        if session is not None:
            return int(session.scalar(statement) or 0)
        with self._db.read() as reader:
            return int(reader.scalar(statement) or 0)

    def run_fill_job(self, payload: dict[str, Any]) -> None:
        """Add keys for up to FILL_SECONDS; queue the continuation while the pool is not full."""
        algorithm = KeyAlgorithm(payload["key_algorithm"])
        if not self.pools(algorithm):
            return
        missing = self.size - self.count(algorithm)
        rows = _generator().submit(self._generate, algorithm, missing).result() if missing > 0 else []
        if not rows:
            self._filled(algorithm)
            return
        with self._db.transaction() as session:
            session.execute(_INSERT, rows)
            spare = self.count(algorithm, session)
            more = spare < self.size
            if more:
                self._jobs.enqueue(session, FILL_KEY_POOL_JOB, {"key_algorithm": algorithm.value}, self._clock.now())
        if more:
            self._signal.notify()
        else:
            self._filled(algorithm)
        log.info("key pool %s: %d spare keys (%d new)", algorithm.value, spare, len(rows))
