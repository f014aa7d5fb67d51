"""What IssueCertificate checks about a CA, kept in memory for the authorities that are ACTIVE.

IssueCertificate is the call clients make most, and the CA behind it rarely changes. The facts
are kept for ``ttl`` seconds and only while the CA is ACTIVE: any other state is read fresh on
every call, so a CA becomes usable the moment it is activated. A change this process makes
(disable, delete, new certificate) is seen at once; a change made by another API process on the
same database is seen within ``ttl``. The worker checks the CA again before it signs, so a
certificate requested in that window from a CA just disabled ends FAILED rather than signed.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime

from ...domain.authority import AuthorityStatus
from ...store.tables import AuthorityRow

__all__ = ["ActiveAuthorities", "IssuingAuthority"]


@dataclass(frozen=True, slots=True)
class IssuingAuthority:
    id: str
    arn: str
    account_id: str
    region: str
    status: AuthorityStatus
    type: str
    key_algorithm: str
    usage_mode: str
    not_after: datetime | None

    @classmethod
    def of(cls, row: AuthorityRow) -> IssuingAuthority:
        return cls(row.id, row.arn, row.account_id, row.region, AuthorityStatus(row.status), row.type, row.key_algorithm,
                   row.usage_mode, row.not_after)


class ActiveAuthorities:
    def __init__(self, ttl: float = 1.0) -> None:
        self._ttl = ttl
        self._entries: dict[tuple[str, str, str], tuple[float, IssuingAuthority]] = {}
        self._lock = threading.Lock()

    def get(self, account_id: str, region: str, arn: str) -> IssuingAuthority | None:
        entry = self._entries.get((account_id, region, arn))
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def keep(self, authority: IssuingAuthority) -> None:
        if authority.status is AuthorityStatus.ACTIVE:
            with self._lock:
                key = (authority.account_id, authority.region, authority.arn)
                self._entries[key] = (time.monotonic() + self._ttl, authority)

    def forget(self, authority_id: str) -> None:
        with self._lock:
            for key in [key for key, (_, authority) in self._entries.items() if authority.id == authority_id]:
                del self._entries[key]
