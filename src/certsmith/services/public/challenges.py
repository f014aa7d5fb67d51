"""The validation zone's data: the label secret, and the DNS-01 TXT values open orders publish there."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from ...domain.clock import Clock
from ...domain.public_names import challenge_owner, validation_label, validation_target
from ...store.database import Database
from ...store.tables import DnsChallengeRow, InstallationSecretRow
from ..ports import SecretSealer

__all__ = ["ChallengeStore", "ValidationRecords"]

LABEL_SECRET = "validation-labels"


class ValidationRecords:
    """The CNAME each name's owner adds once: ``_acme-challenge.<base>`` → ``<label>.<validation zone>``.

    The label is an HMAC of (account, base name) under a random secret of the installation, sealed in
    the database (not derived from the master key: rotating the key must not move every record).
    """

    def __init__(self, database: Database, sealer: SecretSealer, clock: Clock, zone: str | None) -> None:
        self._db, self._sealer, self._clock, self.zone = database, sealer, clock, zone
        self._secret: bytes | None = None
        self._lock = threading.Lock()

    def secret(self) -> bytes:
        with self._lock:
            if self._secret is None:
                self._secret = self._load_or_create()
            return self._secret

    def _load_or_create(self) -> bytes:
        with self._db.read() as session:
            sealed = session.scalar(select(InstallationSecretRow.sealed_value)
                                    .where(InstallationSecretRow.name == LABEL_SECRET))
        if sealed is None:
            try:
                with self._db.transaction() as session:
                    session.add(InstallationSecretRow(name=LABEL_SECRET, created_at=self._clock.now(),
                                                      sealed_value=self._sealer.seal(os.urandom(32), LABEL_SECRET)))
            except IntegrityError:  # another process made it first
                pass
            with self._db.read() as session:
                sealed = session.scalar(select(InstallationSecretRow.sealed_value)
                                        .where(InstallationSecretRow.name == LABEL_SECRET))
        assert sealed is not None
        return self._sealer.open(sealed, LABEL_SECRET)

    def record(self, account_id: str, name: str) -> tuple[str, str]:
        """(record name, CNAME target) for a requested name, both without the trailing dot."""
        assert self.zone is not None
        return challenge_owner(name), validation_target(validation_label(self.secret(), account_id, name), self.zone)


class ChallengeStore:
    """TXT values by owner name in the validation zone, kept in the database so that every process serves them."""

    def __init__(self, database: Database, clock: Clock) -> None:
        self._db, self._clock = database, clock
        self.listeners: list[Callable[[], None]] = []  # in-process DNS servers, told at once

    def publish(self, certificate_id: str, values: Sequence[tuple[str, str]]) -> None:
        """Replace the certificate's TXT values with ``values`` [(owner, value)]."""
        now = self._clock.now()
        with self._db.transaction() as session:
            session.execute(delete(DnsChallengeRow).where(DnsChallengeRow.certificate_id == certificate_id))
            session.add_all([DnsChallengeRow(owner=owner.lower(), value=value, certificate_id=certificate_id,
                                             created_at=now) for owner, value in values])
        self._tell()

    def clear(self, certificate_id: str) -> None:
        with self._db.transaction() as session:
            session.execute(delete(DnsChallengeRow).where(DnsChallengeRow.certificate_id == certificate_id))
        self._tell()

    def load(self) -> dict[str, list[str]]:
        """Every published value by owner name (what the DNS server serves)."""
        found: dict[str, list[str]] = {}
        with self._db.read() as session:
            for owner, value in session.execute(select(DnsChallengeRow.owner, DnsChallengeRow.value)
                                                .order_by(DnsChallengeRow.id)):
                found.setdefault(owner, []).append(value)
        return found

    def _tell(self) -> None:
        for listener in list(self.listeners):
            listener()
