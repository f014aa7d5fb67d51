"""Random secrets of the installation (validation labels, approval links), made once and sealed in the database.

They are not derived from the master key: rotating the key must not move every validation record or void every
approval link.
"""

from __future__ import annotations

import os
import threading

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ...domain.clock import Clock
from ...store.database import Database
from ...store.tables import InstallationSecretRow
from ..ports import SecretSealer

__all__ = ["InstallationSecrets"]


class InstallationSecrets:
    def __init__(self, database: Database, sealer: SecretSealer, clock: Clock) -> None:
        self._db, self._sealer, self._clock = database, sealer, clock
        self._known: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> bytes:
        """The secret called ``name`` (32 random bytes), made by the first process that asks."""
        with self._lock:
            if name not in self._known:
                self._known[name] = self._load_or_create(name)
            return self._known[name]

    def _read(self, name: str) -> bytes | None:
        with self._db.read() as session:
            return session.scalar(select(InstallationSecretRow.sealed_value).where(InstallationSecretRow.name == name))

    def _load_or_create(self, name: str) -> bytes:
        sealed = self._read(name)
        if sealed is None:
            try:
                with self._db.transaction() as session:
                    session.add(InstallationSecretRow(name=name, created_at=self._clock.now(),
                                                      sealed_value=self._sealer.seal(os.urandom(32), name)))
            except IntegrityError:  # another process made it first
                pass
            sealed = self._read(name)
        assert sealed is not None
        return self._sealer.open(sealed, name)
