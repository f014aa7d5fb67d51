"""The validation zone's data: the label secret, and the DNS-01 TXT values open orders publish there."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import delete, select

from ...domain.clock import Clock
from ...domain.public_names import challenge_owner, validation_label, validation_target
from ...store.database import Database
from ...store.tables import DnsChallengeRow
from .installation_secrets import InstallationSecrets

__all__ = ["ChallengeStore", "ValidationRecords"]

LABEL_SECRET = "validation-labels"


class ValidationRecords:
    """The CNAME each name's owner adds once: ``_acme-challenge.<base>`` → ``<label>.<validation zone>``.

    The label is an HMAC of (account, base name) under a random secret of the installation; HTTP validation
    uses the same label as the folder of a name's redirect target.
    """

    def __init__(self, secrets: InstallationSecrets, zone: str | None) -> None:
        self._secrets, self.zone = secrets, zone

    def secret(self) -> bytes:
        return self._secrets.get(LABEL_SECRET)

    def label(self, account_id: str, name: str) -> str:
        return validation_label(self.secret(), account_id, name)

    def record(self, account_id: str, name: str) -> tuple[str, str]:
        """(record name, CNAME target) for a requested name, both without the trailing dot."""
        assert self.zone is not None
        return challenge_owner(name), validation_target(self.label(account_id, name), self.zone)


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
